#!/usr/bin/env bash
# storage-quota.sh - the storage quota per user (issue 18 item 4) against
# PostgreSQL: postroomctl storage-quota set|show|recount (user limit,
# domain default, sizes with a suffix); usage kept by the storing
# transaction (postroom-deliver); 452 4.2.2 Mailbox full at RCPT from
# postroom-policyd (policy protocol) and postroom-milter (miltertest),
# each logged in as its own role: under, at and over the limit, SIZE=
# crossing it, an alias and a sub-address counting for their user,
# postmaster exempt, a submission to a full local user; the soft limit (a
# message accepted is stored even when it takes its user over); exact
# usage after 8 concurrent deliveries to one user; recount repairing a
# wrong usage; rules.storage_quota = false; the database down (451 4.3.0);
# "no limit" cached until a user's or a domain's limit notifies (032).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"

pg_start && pg_fresh_db squota || { fail "PostgreSQL"; done_testing; }
pg_login_roles || { fail "login roles"; done_testing; }
pctl domain add example.com >/dev/null
for u in alice bob carol dave; do pctl user add $u@example.com >/dev/null; done
pctl alias add alice.alias@example.com alice@example.com >/dev/null

# deliver_to N RCPT: store one message of about N body bytes for RCPT
DN=0
deliver_to() {
	DN=$((DN + 1))
	{
		printf 'From: sender@foreign.org\nTo: %s\nSubject: quota %d\nMessage-ID: <quota-%d@foreign.org>\n\n' "$2" "$DN" "$DN"
		head -c "$1" /dev/zero | tr '\0' 'x' | fold -w 70
		echo
	} >"$TAP_TMP/m$DN"
	deliver_run "$TAP_TMP/m$DN" -f sender@foreign.org -- "$2"
}
usage() { pctl --json storage-quota show "$1" | jq -r .usage; }
size_sum() {
	psqlc "SELECT COALESCE(sum(size_bytes), 0) FROM mailbox_entries m JOIN users u ON u.id = m.user_id
		WHERE u.address = '$1'"
}

# ---- postroomctl ----------------------------------------------------------
deliver_to 2000 alice@example.com
is "$D_RC" 0 "a message stored for alice"
deliver_to 500 bob@example.com
UA=$(usage alice@example.com)
UB=$(usage bob@example.com)
is "$UA" "$(size_sum alice@example.com)" "alice's usage = the size of the message she holds ($UA)"
is "$(usage carol@example.com)" 0 "carol holds nothing: usage 0"
is "$(pctl storage-quota show alice@example.com | tr '\n' '|')" \
	"user alice@example.com|usage: $UA bytes|limit: none (none)|" "show: usage and no limit"
is "$(pctl --json storage-quota set alice@example.com 500M | jq -c .)" \
	'{"user":"alice@example.com","bytes":524288000}' "set 500M = 524288000 bytes"
is "$(pctl --json storage-quota set alice@example.com 2G | jq .bytes)" 2147483648 "set 2G"
is "$(pctl --json storage-quota set alice@example.com 10k | jq .bytes)" 10240 "set 10k"
for bad in 1.5G -1 12X none "" 99999999999999999999; do
	run_status 64 "set '$bad' for a user refused as a usage error" pctl storage-quota set alice@example.com "$bad"
done
run_status 1 "set for an unknown user: refused" pctl storage-quota set nobody@example.com 1M
run_status 1 "set for an unknown domain: refused" pctl storage-quota set --domain nowhere.example 1M
run_status 64 "'default' is not a domain value" pctl storage-quota set --domain example.com default
run_status 0 "set --domain example.com 1M" pctl storage-quota set --domain example.com 1M
is "$(pctl --json storage-quota show carol@example.com | jq -c '[.limit, .source]')" '[1048576,"domain"]' \
	"carol: the domain's default, source domain"
is "$(pctl --json storage-quota show alice@example.com | jq -c '[.limit, .source]')" '[10240,"user"]' \
	"alice: her own limit overrides it, source user"
is "$(pctl --json storage-quota show | jq -r '.[].user' | tr '\n' ' ')" \
	"alice@example.com bob@example.com carol@example.com dave@example.com " "show without an address: every user"
run_status 0 "set --domain example.com none" pctl storage-quota set --domain example.com none
is "$(pctl --json storage-quota show carol@example.com | jq -c '[.limit, .source]')" '[null,"none"]' \
	"carol: no limit again"
run_status 0 "set alice default" pctl storage-quota set alice@example.com default
is "$(psqlc "SELECT count(*) FROM storage_quota_limits")" 0 "default removes the user's row"

# alice at her limit, bob with 1000 bytes of room, carol without a limit
pctl storage-quota set alice@example.com "$UA" >/dev/null
pctl storage-quota set bob@example.com $((UB + 1000)) >/dev/null

# ---- postroom-policyd ------------------------------------------------------
pd_conf "rules.mx_enabled = true" "policyd.spf = false" \
	"policyd.conninfo = \"$(pg_role_conninfo policyd)\""
pd_start || { fail "policyd starts"; done_testing; }
inb() { action protocol_state=RCPT server_port=25 client_address=198.51.100.30 sender=x@foreign.org \
	recipient="$1" size="${2:-0}" queue_id=Q$RANDOM; }
is "$(inb alice@example.com)" "452 4.2.2 Mailbox full" "policyd: a user at the limit gets 452 4.2.2 Mailbox full"
is "$(inb ALICE.ALIAS@example.com)" "452 4.2.2 Mailbox full" "policyd: her alias counts for her"
is "$(inb alice+news@example.com)" "452 4.2.2 Mailbox full" "policyd: her sub-address counts for her"
is "$(inb bob@example.com)" "DUNNO" "policyd: under the limit, no size: accepted"
is "$(inb bob@example.com 1000)" "DUNNO" "policyd: size= that exactly fills the room: accepted"
is "$(inb bob@example.com 1001)" "452 4.2.2 Mailbox full" "policyd: size= that would cross the limit: 452"
is "$(inb carol@example.com 9999999)" "DUNNO" "policyd: no limit: accepted whatever the size"
is "$(inb postmaster@example.com)" "DUNNO" "policyd: postmaster is never refused for quota"
is "$(action protocol_state=RCPT server_port=587 client_address=198.51.100.31 sender=carol@example.com \
	sasl_username=carol@example.com recipient=alice@example.com)" "452 4.2.2 Mailbox full" \
	"policyd: a submission to a full local user: 452"
is "$(action protocol_state=RCPT server_port=587 client_address=198.51.100.31 sender=carol@example.com \
	sasl_username=carol@example.com recipient=friend@foreign.org)" "DUNNO" \
	"policyd: a submission to a foreign recipient: unchanged"
pctl storage-quota set alice@example.com $((UA - 1)) >/dev/null
is "$(inb alice@example.com)" "452 4.2.2 Mailbox full" "policyd: over the limit: 452 (read at once, no cache)"
pctl storage-quota set alice@example.com $((UA + 1)) >/dev/null
is "$(inb alice@example.com)" "DUNNO" "policyd: one byte under the limit: accepted"
pctl storage-quota set alice@example.com "$UA" >/dev/null
pctl storage-quota set --domain example.com "$UB" >/dev/null
is "$(inb dave@example.com)" "DUNNO" "policyd: dave (holding nothing) under the domain default: accepted"
is "$(inb dave@example.com $((UB + 1)))" "452 4.2.2 Mailbox full" "policyd: the domain default applies with size="
pctl storage-quota set --domain example.com none >/dev/null

# ---- "no limit" is cached; a limit given empties the cache (sql/032) -------
# (the same lib/rules_pg.c serves the milter)
# quota_wait ADDRESS WANT - poll policyd (a notification is asynchronous)
quota_wait() {
	local i got
	for i in $(seq 50); do
		got=$(inb "$1")
		[ "$got" = "$2" ] && break
		sleep 0.1
	done
	echo "$got"
}
is "$(inb carol@example.com)" "DUNNO" "policyd: carol, no limit: accepted (the answer kept)"
psqlc "ALTER TABLE storage_quota_limits DISABLE TRIGGER storage_quota_limits_notify" >/dev/null
pctl storage-quota set carol@example.com 0 >/dev/null
is "$(inb carol@example.com)" "DUNNO" \
	"policyd: a limit set without its notification is not seen: 'no limit' was cached"
psqlc "ALTER TABLE storage_quota_limits ENABLE TRIGGER storage_quota_limits_notify" >/dev/null
psqlc "UPDATE storage_quota_limits SET bytes = 0 WHERE user_id = (SELECT id FROM users WHERE address = 'carol@example.com')" >/dev/null
is "$(quota_wait carol@example.com "452 4.2.2 Mailbox full")" "452 4.2.2 Mailbox full" \
	"policyd: a user's limit given (storage_quota_limits notifies): 452 within 5 s"
pctl storage-quota set carol@example.com default >/dev/null
is "$(quota_wait carol@example.com DUNNO)" "DUNNO" "policyd: her limit removed: accepted again"
is "$(inb carol@example.com)" "DUNNO" "policyd: ...and 'no limit' kept again"
pctl storage-quota set --domain example.com 0 >/dev/null
is "$(quota_wait carol@example.com "452 4.2.2 Mailbox full")" "452 4.2.2 Mailbox full" \
	"policyd: a domain default given (domains notifies): 452 within 5 s"
pctl storage-quota set --domain example.com none >/dev/null
is "$(quota_wait carol@example.com DUNNO)" "DUNNO" "policyd: the domain default removed: accepted"
is "$(inb alice@example.com)" "452 4.2.2 Mailbox full" "policyd: alice, with a limit, is still asked each time"

# ---- postroom-milter -------------------------------------------------------
# (a configuration file of its own: policyd's are copied from $POSTROOM_CONF)
MAIN_CONF=$POSTROOM_CONF
POSTROOM_CONF=$TAP_TMP/milter.conf
cp "$MAIN_CONF" "$POSTROOM_CONF"
[ -n "${PG_RUNAS:-}" ] && chown "$PG_RUNAS" "$POSTROOM_CONF"
milter_conf "security = { hmac_secret = \"$MILTER_SECRET\"; };" \
	'rules = { mx_enabled = true; };' \
	"milter = { socket = \"@MILTER_SOCK@\"; user = \"$(milter_user)\"; conninfo = \"$(pg_role_conninfo milter)\"; };"
milter_start || { fail "postroom-milter starts"; done_testing; }
mt_run storage-quota.lua
like "$(cat "$MILTER_LOG")" "reject: RCPT TO <alice@example.com> from 192.0.2.10, MAIL FROM <someone@foreign.org>: 452 4.2.2 Mailbox full" \
	"milter: the refusal logged with its reply"
milter_stop_check
POSTROOM_CONF=$MAIN_CONF

# ---- the soft limit: what is accepted is stored -----------------------------
deliver_to 3000 alice@example.com
is "$D_RC" 0 "deliver stores a message for alice although she is full (never refuses for quota)"
U2=$(usage alice@example.com)
ok '[ "$U2" -gt "$UA" ] && [ "$U2" = "$(size_sum alice@example.com)" ]' \
	"alice is over her limit now: usage $U2 > limit $UA, = what she holds"

# ---- 8 concurrent deliveries to one user ------------------------------------
pids=()
for i in 1 2 3 4 5 6 7 8; do
	{
		printf 'From: s@foreign.org\nTo: dave@example.com\nSubject: c%d\nMessage-ID: <conc-%d@foreign.org>\n\n' "$i" "$i"
		head -c $((i * 777)) /dev/zero | tr '\0' 'y' | fold -w 70
	} >"$TAP_TMP/c$i"
	"$DELIVER_BIN" -c "$POSTROOM_CONF" -f s@foreign.org -- dave@example.com <"$TAP_TMP/c$i" \
		>/dev/null 2>"$TAP_TMP/c$i.err" &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do wait "$p" || st=1; done
is "$st" 0 "8 concurrent deliveries to dave all stored"
is "$(psqlc "SELECT count(*) FROM mailbox_entries m JOIN users u ON u.id = m.user_id WHERE u.address = 'dave@example.com'")" 8 \
	"dave holds 8 messages"
is "$(usage dave@example.com)" "$(size_sum dave@example.com)" "dave's usage is exact after 8 concurrent deliveries"

# ---- recount ---------------------------------------------------------------
psqlc "SELECT postroom_storage_fold()" >/dev/null
psqlc "UPDATE storage_usage SET bytes = bytes + 12345 WHERE user_id = (SELECT id FROM users WHERE address = 'bob@example.com')" >/dev/null
psqlc "INSERT INTO storage_usage_delta (user_id, bytes) SELECT id, -99 FROM users WHERE address = 'dave@example.com'" >/dev/null
is "$(usage bob@example.com)" $((UB + 12345)) "a damaged usage (base) shows"
is "$(pctl storage-quota recount bob@example.com | tr '\n' '|')" \
	"bob@example.com: usage $((UB + 12345)) bytes recorded, $UB counted: repaired|recounted 1 user(s), 1 repaired|" \
	"recount ADDRESS repairs it"
is "$(usage bob@example.com)" "$UB" "bob's usage is right again"
is "$(pctl --json storage-quota recount | jq -c .)" '{"users":4,"repaired":1}' \
	"recount without an address: every user checked, the damaged delta of dave repaired"
is "$(usage dave@example.com)" "$(size_sum dave@example.com)" "dave's usage is right again"
is "$(pctl --json storage-quota recount | jq -c .)" '{"users":4,"repaired":0}' "a second recount finds nothing"
psqlc "SELECT postroom_storage_fold()" >/dev/null
is "$(usage dave@example.com)" "$(size_sum dave@example.com)" "and a fold keeps it right"

# ---- rules.storage_quota = false -------------------------------------------
pd_stop
pd_conf "rules.mx_enabled = true" "rules.storage_quota = false" "policyd.spf = false" \
	"policyd.conninfo = \"$(pg_role_conninfo policyd)\""
pd_start || fail "policyd restarts"
is "$(inb alice@example.com)" "DUNNO" "rules.storage_quota = false: no storage quota check"
pd_stop
pd_conf "rules.mx_enabled = true" "policyd.spf = false" "policyd.conninfo = \"$(pg_role_conninfo policyd)\""
pd_start || fail "policyd restarts"
is "$(inb alice@example.com)" "452 4.2.2 Mailbox full" "on again by default"

# ---- the database down: policyd keeps serving cached answers (offline
# mode, postroom-policyd(8)); the quota, a check that only refuses, is
# then skipped with a log line rather than deferring mail policyd
# accepted before the quota existed (lmtpd stores it once the database is
# back; the limit is soft anyway) ----
is "$(inb bob@example.com)" "DUNNO" "bob accepted while the database runs (his address now cached)"
pg_server_stop
is "$(inb bob@example.com)" "DUNNO" \
	"database down: a cached recipient is still accepted, the quota not checked"
like "$(cat "$TAP_TMP/policyd.log" 2>/dev/null)" "storage quota not checked: the database is not answering" \
	"database down: the skipped quota check is logged"
pg_server_start
pd_done
