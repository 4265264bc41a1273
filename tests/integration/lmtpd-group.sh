#!/usr/bin/env bash
# lmtpd-group.sh - group commit in postroom-lmtpd (lmtpd_group,
# lib/store_group.c). A test transaction holds a lock on email_raw so that
# the first store waits; the messages that sessions finish meanwhile queue
# up and are stored together in one transaction when it is released.
# Checked: every message stored exactly once and answered 250; the group
# really formed (group=N, N >= 2, in the log); a reply and its parent in
# one group share a thread; an attachment two messages of the group carry
# is one blob; the same message from two sessions at once is one email
# with both recipients delivered; a message the database refuses gets 451
# 4.3.0 alone, while the others of its group are stored (the group falls
# back to one transaction per message) and nothing of it is left behind.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in alice bob carol; do pctl user add $u@example.com >/dev/null; done
# pool of 2: one transaction stores at a time, one connection answers RCPT
LMTPD_EXTRA='pool_size = 2;' lmtpd_start || { fail "lmtpd started"; done_testing; }
S=$LMTPD_SOCKET

# msg ID [HEADERS] [ATTACHMENT-TEXT] - a message file
msg() {
	local id=$1 hdrs=${2:-} att=${3:-} f=$TAP_TMP/$1.eml
	{
		printf 'From: dave@example.org\r\nTo: alice@example.com\r\nSubject: %s\r\n' "$id"
		printf 'Message-ID: <%s@example.org>\r\n%b' "$id" "$hdrs"
		if [ -n "$att" ]; then
			printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
			printf -- '--b1\r\nContent-Type: text/plain\r\n\r\nbody %s\r\n' "$id"
			printf -- '--b1\r\nContent-Type: text/plain; name="shared.txt"\r\n'
			printf 'Content-Disposition: attachment; filename="shared.txt"\r\n\r\n%s\r\n--b1--\r\n' "$att"
		else
			printf '\r\nbody %s\r\n' "$id"
		fi
	} >"$f"
	echo "$f"
}
# send FILE RCPT... - one LMTP transaction, the replies on stdout
send() {
	local f=$1 r
	shift
	{ printf 'LHLO c\r\nMAIL FROM:<dave@example.org>\r\n'; for r in "$@"; do printf 'RCPT TO:<%s>\r\n' "$r"; done
	  printf 'DATA\r\n'; cat "$f"; printf '.\r\nQUIT\r\n'; } | lmtp "$S"
}
# block SECONDS - hold a lock that makes every insert into email_raw wait
block() {
	"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "BEGIN" \
		-c "LOCK TABLE email_raw IN EXCLUSIVE MODE" -c "SELECT pg_sleep($1)" -c "COMMIT" >/dev/null &
	BLOCK_PID=$!
	for _ in $(seq 50); do
		[ "$(psqlc "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = 'email_raw' AND l.mode = 'ExclusiveLock' AND l.granted")" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}
count() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1@example.org'"; }
logged_group() { sed -n "s/.*message-id=<$1@example.org>.* group=\([0-9]*\) .*/\1/p" "$LMTPD_LOG" | tail -1; }

# --- a group that commits ---------------------------------------------------------
ATT="the same attachment in two messages of one group"
msg g0 >/dev/null
for i in 1 2 3 4; do msg g$i >/dev/null; done
msg parent >/dev/null
msg child "In-Reply-To: <parent@example.org>\r\nReferences: <parent@example.org>\r\n" >/dev/null
msg att1 "" "$ATT" >/dev/null
msg att2 "" "$ATT" >/dev/null
msg twice >/dev/null
# the lock is held 8 s: time for all ten sends to queue behind it even on a
# loaded machine (the parent and its reply must land in one group)
block 8 || fail "the test's lock was taken"
send "$TAP_TMP/g0.eml" alice@example.com >"$TAP_TMP/g0.out" &
P=($!)
sleep 1	# g0 leads alone and waits for the lock; the rest queue behind it
for id in g1 g2 g3 g4 parent child att1 att2; do
	send "$TAP_TMP/$id.eml" alice@example.com >"$TAP_TMP/$id.out" &
	P+=($!)
done
send "$TAP_TMP/twice.eml" alice@example.com >"$TAP_TMP/twice.a.out" &
P+=($!)
send "$TAP_TMP/twice.eml" bob@example.com >"$TAP_TMP/twice.b.out" &
P+=($!)
wait "${P[@]}" "$BLOCK_PID"
for id in g0 g1 g2 g3 g4 parent child att1 att2; do
	like "$(cat "$TAP_TMP/$id.out")" "250 2.0.0 <alice@example.com> Ok: stored as" "$id: 250 after the lock"
	is "$(count $id)" 1 "$id: stored once"
done
is "$(logged_group g0)" 0 "the first message was stored alone (nothing else was waiting)"
max=0
for id in g1 g2 g3 g4 parent child att1 att2; do
	g=$(logged_group $id)
	[ "${g:-0}" -gt "$max" ] && max=$g
done
ok "[ $max -ge 2 ]" "messages that queued meanwhile were stored together (largest group: $max)"
is "$(logged_group parent)" "$(logged_group child)" "the parent and its reply went in the same group"
is "$(psqlc "SELECT count(DISTINCT thread_id) FROM emails WHERE message_id IN ('parent@example.org', 'child@example.org')")" 1 \
	"the parent and its reply share a thread"
is "$(psqlc "SELECT count(*) FROM email_attachments a JOIN emails e ON e.id = a.email_id WHERE e.message_id IN ('att1@example.org', 'att2@example.org')")" 2 \
	"both messages have their attachment row"
is "$(psqlc "SELECT count(DISTINCT b.sha256) FROM blobs b JOIN email_attachments a ON a.sha256 = b.sha256 JOIN emails e ON e.id = a.email_id WHERE e.message_id IN ('att1@example.org', 'att2@example.org')")" 1 \
	"... and one blob holds its content"
like "$(cat "$TAP_TMP/twice.a.out")" "250 2.0.0 <alice@example.com> Ok: stored as" "the same message from two sessions: 250 to the first"
like "$(cat "$TAP_TMP/twice.b.out")" "250 2.0.0 <bob@example.com> Ok: stored as" "... and 250 to the second"
is "$(count twice)" 1 "... stored once"
is "$(psqlc "SELECT string_agg(r.address || ':' || r.delivered, ',' ORDER BY r.address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = 'twice@example.org'")" \
	"alice@example.com:true,bob@example.com:true" "... with both recipients delivered"
is "$(psqlc "SELECT count(*) FROM emails e WHERE NOT EXISTS (SELECT 1 FROM email_raw r WHERE r.email_id = e.id)")" 0 \
	"every email has its raw message"

# --- a group with a message the database refuses ------------------------------------
psqlc "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN
	IF NEW.subject = 'poison' THEN RAISE EXCEPTION 'test: poisoned message'; END IF; RETURN NEW; END \$\$;
	CREATE TRIGGER test_poison BEFORE INSERT ON emails FOR EACH ROW EXECUTE FUNCTION test_poison()" ||
	fail "the test's trigger"
msg h0 >/dev/null
for id in h1 h2 poison h3; do msg $id >/dev/null; done
block 4 || fail "the test's lock was taken again"
send "$TAP_TMP/h0.eml" alice@example.com >"$TAP_TMP/h0.out" &
P=($!)
sleep 1
for id in h1 h2 poison h3; do
	send "$TAP_TMP/$id.eml" alice@example.com >"$TAP_TMP/$id.out" &
	P+=($!)
done
wait "${P[@]}" "$BLOCK_PID"
like "$(cat "$TAP_TMP/poison.out")" "451 4.3.0 <alice@example.com>: mail store unavailable" "the refused message: 451 4.3.0"
is "$(count poison)" 0 "... nothing of it stored"
like "$(grep 'message-id=<poison@example.org>' "$LMTPD_LOG")" "result=deferred: .*test: poisoned message" "... and the log says why"
for id in h0 h1 h2 h3; do
	like "$(cat "$TAP_TMP/$id.out")" "250 2.0.0 <alice@example.com> Ok: stored as" "$id: 250 beside the refused message"
	is "$(count $id)" 1 "$id: stored once"
done
is "$(logged_group h1)$(logged_group h2)$(logged_group h3)" 000 \
	"the others were stored one by one once their group failed"
is "$(psqlc "SELECT count(*) FROM email_recipients r WHERE NOT EXISTS (SELECT 1 FROM emails e WHERE e.id = r.email_id)")" 0 \
	"no recipient row without its email"

lmtpd_stop
unlike "$(cat "$LMTPD_LOG")" "Sanitizer|runtime error" "no sanitizer report from the daemon (an ASan build checks leaks at exit)"
done_testing
