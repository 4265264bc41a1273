#!/usr/bin/env bash
# two-hosts.sh - two MTA hosts in front of one PostgreSQL (issue 23 part 2).
# Host A and host B are each a whole postroom pipeline (tests/lib/pipeline.sh:
# a private Postfix from contrib/postfix, postroom-authd, -milter,
# -policyd, -webhookd, every daemon as its own database role); host A
# delivers through pipe(8) and postroom-deliver, host B through
# postroom-lmtpd (virtual_transport = lmtp:). Only the database is shared
# (B is started with PIPELINE_DB_FROM=A). The test runs in a network and
# mount namespace of its own (unshare -nm), the two hosts on loopback
# ports of it. It proves:
#  delivery: a burst through both hosts at once, every message stored
#    exactly once; one queue file whose reply was lost (stored, then
#    deferred) is retried by Postfix with the same Received: line and is
#    still one email; the same message resent through the other host
#    carries that host's Received: line and is a second email (MISSION's
#    identity: the content);
#  keys: a key revoked (postroomctl key revoke) is refused at once by
#    postroom-authd of the other host, whose cache had accepted it;
#  quotas: the sending quota (policyd) and the storage quota count what
#    went through both hosts;
#  events: postroom-webhookd on both hosts share the outbox: every event
#    reaches the one HTTP receiver once;
#  mixed versions: a newer schema marked compatible (a test-only migration
#    applied with psql) keeps mail flowing on both hosts; marked
#    incompatible, a host whose daemons reconnect defers (Postfix keeps the
#    mail) and delivers it once when the schema is compatible again.
# It prints the storing rate of one host and of the two together
# (two SMTP sessions of TWO_HOSTS_N messages, default 30, both to host A,
# then one to each host; diagnostics, no bound asserted).
# Needs root, postfix, swaks, jq, unshare.
set -u
if [ -z "${POSTROOM_TEST_NS:-}" ]; then
	. "$(dirname "$0")/../lib/tap.sh"
	. "$(dirname "$0")/../lib/netns.sh"
	netns_reexec "Postfix" "" "$0" "$@"
fi
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh" # smtp_reply
ip link set lo up || { fail "loopback up in the new network namespace"; done_testing; }

D=example.test
PIPELINE_DOMAIN=$D
COMMON=("policyd.quota_messages = 4" "policyd.quota_flush_interval = 200" "policyd.cache_ttl = 1"
	"webhook.poll_interval = 200")

# ---- host A: PostgreSQL, the pipe ----------------------------------------------
PIPELINE_CONF_EXTRA=("${COMMON[@]}")
PIPELINE_DIR=$TAP_TMP/hosta PIPELINE_NOTIFY=1 pipeline_start ||
	{ fail "host A starts"; done_testing; }
A_DIR=$PIPELINE_DIR A_CONF=$PIPELINE_CONF A_PF=$PF_CONF A_LOG=$PF_LOG A_MX=$PF_PORT_MX A_SUB=$PF_PORT_SUB
REC_URL=$HTTP_REC_URL REC_OUT=$HTTP_REC_OUT
postconf -c "$A_PF" -e myhostname=mx-a.$D minimal_backoff_time=1s maximal_backoff_time=2s \
	queue_run_delay=1s && postfix -c "$A_PF" reload >/dev/null 2>&1
# ---- host B: the same database, LMTP ------------------------------------------
PIPELINE_CONF_EXTRA=("${COMMON[@]}" "deliver.notify_url = \"$REC_URL$PIPELINE_NOTIFY_PATH\""
	"deliver.notify_key = \"$PIPELINE_NOTIFY_KEY\"" "webhook.conninfo = \"$(pg_role_conninfo webhook)\"")
PIPELINE_DIR=$TAP_TMP/hostb PIPELINE_DB_FROM=$A_DIR pipeline_start || { fail "host B starts"; done_testing; }
B_DIR=$PIPELINE_DIR B_CONF=$PIPELINE_CONF B_PF=$PF_CONF B_LOG=$PF_LOG B_MX=$PF_PORT_MX B_SUB=$PF_PORT_SUB
pipeline_daemon_start webhookd || fail "host B: postroom-webhookd starts"
# postroom-lmtpd of host B, its own listen socket
B_LMTP=$B_DIR/lmtp
sed -E "s|^lmtpd = \\{|lmtpd = { listen = \"unix:$B_LMTP\"; user = \"$PIPELINE_USER\"; socket_owner = \"$PIPELINE_USER\"; socket_group = \"\"; socket_mode = \"0666\";|" \
	"$B_CONF" >"$B_DIR/lmtpd.conf" && chown "$PIPELINE_USER" "$B_DIR/lmtpd.conf" && chmod 600 "$B_DIR/lmtpd.conf"
lmtpd_b_start() {
	"$POSTROOM_BUILDDIR/postroom-lmtpd" -f -c "$B_DIR/lmtpd.conf" >>"$B_DIR/logs/lmtpd.log" 2>&1 </dev/null &
	B_LMTPD=$!
	at_exit "kill $B_LMTPD 2>/dev/null"
	local i
	for i in $(seq 100); do
		[ -S "$B_LMTP" ] && grep -q 'lmtpd: ready' "$B_DIR/logs/lmtpd.log" && return 0
		sleep 0.1
	done
	return 1
}
lmtpd_b_start || fail "host B: postroom-lmtpd starts" "$(tail -n 5 "$B_DIR/logs/lmtpd.log")"
postconf -c "$B_PF" -e myhostname=mx-b.$D "virtual_transport = lmtp:unix:$B_LMTP" \
	"lmtp_send_xforward_command = yes" && postfix -c "$B_PF" reload >/dev/null 2>&1
pass "two hosts on one database: A (pipe) on port $A_MX, B (LMTP) on port $B_MX"

# emails.message_id is stored without its angle brackets
count() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1@foreign.example'"; }
prefix_count() { psqlc "SELECT count(*) FROM emails WHERE message_id LIKE '$1-%'"; }
dups() { psqlc "SELECT count(*) FROM (SELECT message_id FROM emails WHERE message_id IS NOT NULL GROUP BY message_id HAVING count(*) > 1) d"; }
now() { date +%s.%N; }

# ---- delivery: a burst through both hosts at once -------------------------------
N=${TWO_HOSTS_N:-30}
diag "t=${SECONDS}s both hosts up"
# burst PREFIX PORT1 PORT2: two SMTP sessions at once, N messages each
burst() {
	pipeline_send "$N" "alice@$D" "$1a" "$2" >"$TAP_TMP/$1a.out" 2>&1 &
	local pa=$!
	pipeline_send "$N" "alice@$D" "$1b" "$3" >"$TAP_TMP/$1b.out" 2>&1 &
	local pb=$!
	wait $pa $pb
}
t0=$(now)
burst one "$A_MX" "$A_MX"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id LIKE 'one%'" $((2 * N)) 120 ||
	fail "one host: $((2 * N)) stored" "$(prefix_count one)"
t1=$(now)
burst b "$A_MX" "$B_MX"
is "$(cat "$TAP_TMP/ba.out") $(cat "$TAP_TMP/bb.out")" "$N $N" "a burst at once: $N messages answered 250 by each host"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id LIKE 'ba-%' OR message_id LIKE 'bb-%'" $((2 * N)) 180
t2=$(now)
is "$(prefix_count ba) $(prefix_count bb)" "$N $N" "... every message stored"
is "$(dups)" 0 "... each exactly once"
is "$(psqlc "SELECT count(DISTINCT e.id) FROM emails e JOIN mailbox_entries m ON m.email_id = e.id
	JOIN users u ON u.id = m.user_id WHERE u.address = 'alice@$D' AND (e.message_id LIKE 'ba-%' OR e.message_id LIKE 'bb-%')")" \
	$((2 * N)) "... each in alice's mailbox"
rate1=$(echo "2 * $N / ($t1 - $t0)" | bc -l)
rate2=$(echo "2 * $N / ($t2 - $t1)" | bc -l)
diag "storing rate, two SMTP sessions at once: one host $(printf %.1f "$rate1") msg/s ($((2 * N)) messages), two hosts together $(printf %.1f "$rate2") msg/s ($((2 * N)) messages): ratio $(printf %.2f "$(echo "$rate2 / $rate1" | bc -l)")"

diag "t=${SECONDS}s burst done"
# ---- delivery: a lost reply, the same queue file again ---------------------------
# postroom-deliver of host A behind a wrapper that, once, stores and then
# answers 75 (the reply lost): Postfix retries the same queue file
WRAP=$A_DIR/deliver-wrap
FLAG=$A_DIR/lose-reply/once
install -d -o "$PIPELINE_USER" -m 0755 "$A_DIR/lose-reply"
cat >"$WRAP" <<EOF
#!/bin/sh
"$POSTROOM_BUILDDIR/postroom-deliver" "\$@"
rc=\$?
if [ \$rc = 0 ] && rm "$FLAG" 2>/dev/null; then
	echo "4.3.0 test: the reply is lost" ; exit 75
fi
exit \$rc
EOF
chmod 755 "$WRAP"
sed -i "s|argv=$POSTROOM_BUILDDIR/postroom-deliver |argv=$WRAP |" "$A_PF/master.cf"
postfix -c "$A_PF" reload >/dev/null 2>&1
sleep 1
install -o "$PIPELINE_USER" /dev/null "$FLAG"
cat >"$TAP_TMP/lost.eml" <<EOF
From: sender@foreign.example
To: alice@$D
Subject: lost reply
Message-ID: <lost@foreign.example>

the reply to this one is lost once
EOF
swaks --server 127.0.0.1 --port "$A_MX" --from sender@foreign.example --to "alice@$D" \
	--ehlo client.example --data "$TAP_TMP/lost.eml" >"$TAP_TMP/lost.swaks" 2>&1
like "$(cat "$TAP_TMP/lost.swaks")" '<- +250 2\.0\.0 Ok: queued' "host A accepts the message"
for i in $(seq 150); do grep -q 'the reply is lost' "$A_LOG" && break; sleep 0.2; done
qid=$(grep 'the reply is lost' "$A_LOG" | head -n 1 | sed -E 's/.*: ([0-9A-F]+): to=.*/\1/')
for i in $(seq 60); do grep -q "$qid: to=<alice@$D>.*status=sent" "$A_LOG" && break; postqueue -c "$A_PF" -f; sleep 0.5; done
like "$(grep "$qid: to=<alice@$D>" "$A_LOG" | tr '\n' ' ')" 'status=deferred .*status=sent' \
	"the first attempt stored and was deferred (reply lost), Postfix retried queue file $qid"
is "$(count lost)" 1 "... still one email"
sed -i "s|argv=$WRAP |argv=$POSTROOM_BUILDDIR/postroom-deliver |" "$A_PF/master.cf"
postfix -c "$A_PF" reload >/dev/null 2>&1

# ---- delivery: resent through the other host -------------------------------------
swaks --server 127.0.0.1 --port "$B_MX" --from sender@foreign.example --to "alice@$D" \
	--ehlo client.example --data "$TAP_TMP/lost.eml" >"$TAP_TMP/resent.swaks" 2>&1
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id = 'lost@foreign.example'" 2 30
is "$(count lost)" 2 "the same message resent through host B (its own Received: line): two emails"
rcv=$(psqlc "SELECT string_agg(DISTINCT substring(convert_from(postroom_email_raw(id), 'UTF8') from 'by (mx-[ab])'), ',' ORDER BY substring(convert_from(postroom_email_raw(id), 'UTF8') from 'by (mx-[ab])')) FROM emails WHERE message_id = 'lost@foreign.example'" 2>&1)
is "$rcv" "mx-a,mx-b" "... one received by each host"

diag "t=${SECONDS}s lost reply, resend done"
# ---- keys: revoked on one host, refused at once on the other ----------------------
KEY=$(pctl --json key create "bob@$D" --scope smtp --name two-hosts | jq -r .key)
KID=$(pctl --json key list "bob@$D" | jq -r '.[] | select(.name == "two-hosts") | .id')
auth() { # auth PORT: AUTH PLAIN over STARTTLS on a submission port
	swaks --server 127.0.0.1 --port "$1" --tls --ehlo client.example --auth PLAIN \
		--auth-user "bob@$D" --auth-password "$KEY" --quit-after AUTH 2>&1
}
like "$(auth "$B_SUB")" '<~ +235 ' "key accepted by host B (and cached by its authd)"
like "$(auth "$A_SUB")" '<~ +235 ' "key accepted by host A"
pctl key revoke "$KID" >/dev/null
like "$(auth "$B_SUB")" '<~\* +535 ' "revoked (postroomctl, shared database): host B refuses it at once"
like "$(auth "$A_SUB")" '<~\* +535 ' "... and host A"

# ---- quotas -------------------------------------------------------------------------
CKEY=$(pctl --json key create "alice@$D" --scope smtp --name quota | jq -r .key)
submit() { # submit PORT: one authenticated message from alice to a foreign address
	swaks --server 127.0.0.1 --port "$1" --tls --ehlo client.example --auth PLAIN \
		--auth-user "alice@$D" --auth-password "$CKEY" --from "alice@$D" \
		--to friend@elsewhere.example 2>&1
}
got=""
for p in "$A_SUB" "$B_SUB" "$A_SUB" "$B_SUB"; do
	out=$(submit "$p")
	[[ $out == *"250 2.0.0 Ok: queued"* ]] && got+="250 " || got+="refused "
	sleep 0.5 # > policyd.quota_flush_interval: counted in quota_usage
done
is "$got" "250 250 250 250 " "sending quota 4/hour: 2 messages through A and 2 through B accepted"
out=$(submit "$A_SUB")
like "$out" '450 4\.7\.1 .*quota' "the fifth, through host A: 450 4.7.1 (counts of both hosts)"
out=$(submit "$B_SUB")
like "$out" '450 4\.7\.1 .*quota' "... and through host B"

pctl storage-quota set "bob@$D" 100000 >/dev/null
r=$(smtp_reply RCPT "$B_MX" sender@foreign.example "bob@$D")
like "$r" '^250 ' "storage quota 100 kB, bob's mailbox empty: host B accepts mail for bob ($r)"
printf 'From: sender@foreign.example\r\nTo: bob@%s\r\nSubject: big\r\nMessage-ID: <big@foreign.example>\r\n\r\n%s\r\n' \
	"$D" "$(head -c 150000 /dev/zero | tr '\0' x | fold -w 76)" >"$TAP_TMP/big.eml"
swaks --server 127.0.0.1 --port "$A_MX" --from sender@foreign.example --to "bob@$D" \
	--ehlo client.example --data "$TAP_TMP/big.eml" >/dev/null 2>&1
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id = 'big@foreign.example'" 1 30
r=$(smtp_reply RCPT "$B_MX" sender@foreign.example "bob@$D")
like "$r" '^452 4\.2\.2' "150 kB stored through host A take bob over 100 kB: host B answers 452 4.2.2 ($r)"

diag "t=${SECONDS}s keys, quotas done"
# ---- events: both webhookd, one receiver, every event once -------------------------
pipeline_wait_sql "SELECT count(*) FROM webhook_deliveries WHERE endpoint = 'notify_url'" 0 60 ||
	fail "every webhook delivery done" "$(psqlc "SELECT count(*), min(last_status), max(attempts) FROM webhook_deliveries")"
exp=$(psqlc "SELECT count(*) FROM events WHERE kind IN ('new', 'link')")
sleep 1
got=$(wc -l <"$REC_OUT")
is "$got" "$exp" "events: the receiver got $exp requests, one per event"
is "$(jq -r .body "$REC_OUT" | sort -u | wc -l)" "$got" "... no event twice"
sa=$(psqlc "SELECT count(*) FROM pg_stat_activity WHERE usename = '${POSTROOM_DB}_webhook_login'")
ok "[ $sa -ge 2 ]" "... each with its own database session ($sa)"

diag "t=${SECONDS}s events done"
# ---- mixed versions: a compatible newer schema, then an incompatible one -----------
BUILD=$(psqlc "SELECT max(version) FROM schema_migrations")
NEXT=$((BUILD + 1))
psqlc "BEGIN; ALTER TABLE users ADD COLUMN two_hosts_test integer;
	INSERT INTO schema_migrations (version, name, compatible_from) VALUES ($NEXT, '${NEXT}_two_hosts_test', $BUILD); COMMIT" >/dev/null
# host A's pipe connects (and checks) for each message; host B's lmtpd
# is restarted: a fresh start on the newer schema
kill "$B_LMTPD"; wait "$B_LMTPD" 2>/dev/null
lmtpd_b_start
pipeline_send 5 "alice@$D" mixa "$A_MX" >/dev/null 2>&1
pipeline_send 5 "alice@$D" mixb "$B_MX" >/dev/null 2>&1
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id LIKE 'mix%'" 10 60
is "$(prefix_count mixa) $(prefix_count mixb)" "5 5" "schema $NEXT marked compatible with $BUILD: mail flows on both hosts"

psqlc "UPDATE schema_migrations SET compatible_from = NULL WHERE version = $NEXT" >/dev/null
kill "$B_LMTPD"; wait "$B_LMTPD" 2>/dev/null
lmtpd_b_start
r=$(pipeline_send 3 "alice@$D" incb "$B_MX" 2>&1)
for i in $(seq 100); do grep -q "newer than this build ($BUILD) and not marked compatible" "$B_DIR/logs/lmtpd.log" && break; sleep 0.2; done
like "$(cat "$B_DIR/logs/lmtpd.log")" "database schema version $NEXT is newer than this build \\($BUILD\\) and not marked compatible" \
	"schema $NEXT not compatible: host B's restarted lmtpd refuses it, saying why"
sleep 2
is "$(prefix_count incb)" 0 "... nothing stored"
ok "[ \$(PF_CONF=$B_PF pipeline_queue_count) -ge 1 ]" "... the mail waits in host B's queue (deferred, not bounced)"
unlike "$(cat "$B_LOG")" 'incb.*status=bounced|status=bounced' "... nothing bounced"
psqlc "UPDATE schema_migrations SET compatible_from = $BUILD WHERE version = $NEXT" >/dev/null
postqueue -c "$B_PF" -f
pipeline_wait_sql "SELECT count(*) FROM emails WHERE message_id LIKE 'incb-%'" 3 60
is "$(prefix_count incb)" 3 "marked compatible again: the deferred mail arrives (lmtpd's next connection checks again)"
is "$(dups)" 1 "... once (the only message stored twice is the one resent through host B)"
diag "t=${SECONDS}s mixed versions done"

done_testing
