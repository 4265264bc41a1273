#!/usr/bin/env bash
# authd-decision.sh - what postroom-authd decides and caches, against a
# private PostgreSQL: good key, wrong key, unknown user, someone else's
# key, unscoped, expired, revoked, alias logins (refused by design: only
# the primary address logs in); one bcrypt per uncached attempt and none
# for a cached one (metrics); purges by revocation, scope change and user
# removal; last_used_at written in batches, not per request, and flushed
# at SIGTERM; the batch write does not purge the cache; and revocation
# with two authd processes on one database failing on the very next
# attempt at both.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"

pg_start || { fail "pg_start"; done_testing; }
pg_fresh_db authd_dec || { fail "pg_fresh_db"; done_testing; }
U=u@example.test
pctl domain add example.test >/dev/null
pctl user add "$U" >/dev/null
pctl user add other@example.test >/dev/null
pctl user add gone@example.test >/dev/null
pctl alias add alias@example.test "$U" >/dev/null
mkkey() { pctl --json key create "$1" --scope "$2" | jq -r "${3:-.key}"; }
KEY=$(mkkey "$U" smtp)
KEY_ID=$(pctl --json key list "$U" | jq -r '.[0].id')
KEY_IMAP=$(mkkey "$U" imap)
KEY_MULTI=$(mkkey "$U" imap,smtp)
KEY_OTHER=$(mkkey other@example.test smtp)
KEY_GONE=$(mkkey gone@example.test smtp)
KEY_EXP=$(mkkey "$U" smtp)
psqlc "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE prefix = '${KEY_EXP:3:12}'"
# wrong key: same prefix, last character changed
last=${KEY: -1}; [ "$last" = a ] && repl=b || repl=a
WRONG=${KEY:0:42}$repl

AUTHD_EXTRA=("last_used_interval = 3600;" "ip_backoff_initial_ms = 0;" "ip_backoff_max_ms = 0;"
	"ip_lockout_failures = 0;" "ip_account_lockout_failures = 0;" "account_failure_limit = 1000;")
authd_start "$POSTROOM_CONF" "$TAP_TMP/a" && pass "authd A started" || { fail "authd A"; done_testing; }
A=$AUTHD_SOCKET A_PID=$AUTHD_PID A_METRICS=$AUTHD_METRICS

auth() { authd_client "$A" auth "$@"; }
bcrypts() { AUTHD_METRICS=$A_METRICS authd_metric postroom_authd_bcrypt_total; }
INVALID="reason=Invalid address or API key"

is "$(auth "$U" "$KEY")" "OK	1	user=$U" "good key: OK with the canonical address"
is "$(bcrypts)" 1 "one bcrypt for the uncached attempt"
is "$(auth "$U" "$KEY" --mech LOGIN)" "OK	1	user=$U" "good key again (LOGIN)"
is "$(auth U@EXAMPLE.test "$KEY")" "OK	1	user=$U" "mixed-case address: same account"
is "$(bcrypts)" 1 "cached attempts run no bcrypt"
is "$(AUTHD_METRICS=$A_METRICS authd_metric postroom_authd_cache_hits_total)" 2 "cache hits counted"
is "$(auth "$U" "$KEY_MULTI")" "OK	1	user=$U" "key with scopes imap,smtp: OK"

b0=$(bcrypts)
is "$(auth "$U" "$WRONG")" "FAIL	1	$INVALID" "wrong key (right prefix): FAIL"
is "$(auth nobody@example.test "$KEY")" "FAIL	1	$INVALID" "unknown user: the same FAIL"
is "$(auth "$U" "$KEY_OTHER")" "FAIL	1	$INVALID" "another user's key: the same FAIL"
is "$(auth "$U" pr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)" "FAIL	1	$INVALID" "unknown key: the same FAIL"
is "$(auth "$U" "not a key")" "FAIL	1	$INVALID" "malformed key: the same FAIL"
is "$(auth 'not an address' "$KEY")" "FAIL	1	$INVALID" "malformed address: the same FAIL"
is "$(( $(bcrypts) - b0 ))" 6 "each of those six failures cost exactly one bcrypt (dummy when nothing found)"
is "$(auth alias@example.test "$KEY")" "FAIL	1	$INVALID" "alias address does not log in (primary only)"
is "$(auth "$U" "$KEY_IMAP")" "FAIL	1	reason=API key not valid for SMTP" "key without scope smtp: FAIL"
is "$(auth "$U" "$KEY_EXP")" "FAIL	1	reason=API key expired" "expired key: FAIL"
is "$(auth "$U" "$KEY" --authzid other@example.test)" \
	"FAIL	1	reason=Authorization identity differs from the user: not allowed" "authzid of another user: FAIL"
is "$(auth "$U" "$KEY" --authzid "$U")" "OK	1	user=$U" "authzid equal to the user (doveadm style): OK"

# purges: scope change, user removal
is "$(auth other@example.test "$KEY_OTHER")" "OK	1	user=other@example.test" "other user: OK (now cached)"
psqlc "UPDATE api_keys SET scopes = '{imap}' WHERE prefix = '${KEY_OTHER:3:12}'"
is "$(auth other@example.test "$KEY_OTHER")" "FAIL	1	reason=API key not valid for SMTP" \
	"scope change takes effect on the next attempt"
is "$(auth gone@example.test "$KEY_GONE")" "OK	1	user=gone@example.test" "user to be removed: OK (cached)"
pctl user remove gone@example.test >/dev/null
is "$(auth gone@example.test "$KEY_GONE")" "FAIL	1	$INVALID" "removed user fails on the next attempt"

# last_used_at: not written per request, written at SIGTERM
is "$(psqlc "SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL")" 0 \
	"last_used_at not written per request (interval 3600 s)"

# a key that expires while cached (no UPDATE, so no notification)
KEY_SOON=$(pctl --json key create "$U" --scope smtp --expires '3 seconds' | jq -r .key)
SOON_T0=$EPOCHREALTIME
is "$(auth "$U" "$KEY_SOON")" "OK	1	user=$U" "key expiring in 3 s: OK (cached now)"

# a second authd on the same database
AUTHD_EXTRA=("last_used_interval = 1;" "ip_backoff_initial_ms = 0;" "ip_backoff_max_ms = 0;" "ip_lockout_failures = 0;" "ip_account_lockout_failures = 0;" "account_failure_limit = 1000;")
authd_start "$POSTROOM_CONF" "$TAP_TMP/b" && pass "authd B started" || fail "authd B"
B=$AUTHD_SOCKET B_METRICS=$AUTHD_METRICS
is "$(authd_client "$B" auth "$U" "$KEY")" "OK	1	user=$U" "B: good key, cached now"
sleep 2.5
ok '[ -n "$(psqlc "SELECT last_used_at FROM api_keys WHERE id = '"'$KEY_ID'"'")" ]' \
	"B wrote last_used_at within its 1 s interval"
is "$(authd_client "$B" auth "$U" "$KEY")" "OK	1	user=$U" "B: OK after the last-use write"
is "$(AUTHD_METRICS=$B_METRICS authd_metric postroom_authd_bcrypt_total)" 1 \
	"the last-use write did not purge B's cache (still one bcrypt)"
is "$(auth "$U" "$KEY")" "OK	1	user=$U" "A: OK from its cache"

# revocation: the very next attempt fails at both
pctl key revoke "$KEY_ID" >/dev/null
is "$(auth "$U" "$KEY")" "FAIL	1	$INVALID" "A: revoked key fails on the very next attempt"
is "$(authd_client "$B" auth "$U" "$KEY")" "FAIL	1	$INVALID" "B: revoked key fails on the very next attempt"
# ... many times over, back-to-back with the revocation
fails=0
for i in 1 2 3 4 5; do
	k=$(mkkey "$U" smtp)
	id=$(pctl --json key list "$U" | jq -r --arg p "${k:3:12}" '.[] | select(.prefix == $p) | .id')
	authd_client "$A" auth "$U" "$k" >/dev/null
	authd_client "$B" auth "$U" "$k" >/dev/null
	pctl key revoke "$id" >/dev/null
	a=$(authd_client "$A" auth "$U" "$k"); b=$(authd_client "$B" auth "$U" "$k")
	[ "$a" = "FAIL	1	$INVALID" ] && [ "$b" = "FAIL	1	$INVALID" ] || { fails=$((fails + 1)); diag "attempt $i: A: $a, B: $b"; }
done
is "$fails" 0 "5 more revocations: each fails at once on A and on B"

while [ "$(echo "$EPOCHREALTIME - $SOON_T0 < 3.2" | bc)" = 1 ]; do sleep 0.1; done
is "$(auth "$U" "$KEY_SOON")" "FAIL	1	reason=API key expired" \
	"the cached key fails once its expiry passed (checked on every cache hit)"

# SIGTERM flushes A's batched last-use times
before=$(psqlc "SELECT last_login_at FROM users WHERE address = 'other@example.test'")
is "$before" "" "users.last_login_at not yet written by A"
authd_stop "$A_PID"
ok '! kill -0 "$A_PID" 2>/dev/null' "A stopped on SIGTERM"
ok '[ -n "$(psqlc "SELECT last_used_at FROM api_keys WHERE prefix = '"'${KEY_MULTI:3:12}'"'")" ]' \
	"A's last_used_at written at SIGTERM"
ok '[ -n "$(psqlc "SELECT last_login_at FROM users WHERE address = '"'other@example.test'"'")" ]' \
	"users.last_login_at written too"
authd_stop "$AUTHD_PID"
ok 'authd_log_clean "$TAP_TMP/a/authd.log" "$TAP_TMP/b/authd.log"' "no sanitizer report"
done_testing
