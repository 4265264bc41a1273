#!/usr/bin/env bash
# ctl-keys.sh - API keys: create/verify/revoke round trip, scopes, expiry,
# bad input, nothing but a hash stored.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl user add alice@example.com >/dev/null
pctl user add bob@example.com >/dev/null

json=$(pctl --json key create alice@example.com --scope smtp --name laptop)
key=$(echo "$json" | jq -r .key)
id=$(echo "$json" | jq -r .id)
like "$key" '^pr_[0-9A-Za-z]{40}$' "key create prints a pr_ key"
is "$(echo "$json" | jq -r .prefix)" "${key:3:12}" "prefix is the 12 chars after pr_"
is "$(echo "$json" | jq -c .scopes)" '["smtp"]' "scopes as a JSON array"
is "$(psqlc "SELECT count(*) FROM api_keys WHERE key_hash LIKE '\$2b\$04\$%'")" "1" "stored as bcrypt \$2b\$ (test cost 4)"
is "$(psqlc "SELECT count(*) FROM api_keys WHERE key_hash LIKE '%${key:3}%' OR name LIKE '%${key:3}%'")" "0" \
	"the key itself is stored nowhere"
ok "! pctl --json key list alice@example.com | grep -q '${key:15}'" "key list never shows the key"

run_status 0 "the key checks for alice" sh -c "echo '$key' | \"\$POSTROOM_BUILDDIR/postroomctl\" -c \"\$POSTROOM_CONF\" key check alice@example.com"
run_status 1 "the key fails for bob" sh -c "echo '$key' | \"\$POSTROOM_BUILDDIR/postroomctl\" -c \"\$POSTROOM_CONF\" key check bob@example.com"
wrong="${key:0:15}$(printf 'A%.0s' $(seq 28))"
run_status 1 "a wrong key with the right prefix fails" sh -c "echo '$wrong' | \"\$POSTROOM_BUILDDIR/postroomctl\" -c \"\$POSTROOM_CONF\" key check alice@example.com"
like "$(cat "$TAP_TMP/err")" "does not match" "... because it does not match"
run_status 1 "the key lacks scope imap" sh -c "echo '$key' | \"\$POSTROOM_BUILDDIR/postroomctl\" -c \"\$POSTROOM_CONF\" key check alice@example.com --scope imap"

run_status 0 "key revoke" pctl key revoke "$id"
run_status 1 "a revoked key fails" sh -c "echo '$key' | \"\$POSTROOM_BUILDDIR/postroomctl\" -c \"\$POSTROOM_CONF\" key check alice@example.com"
run_status 1 "revoking twice exits 1" pctl key revoke "$id"
like "$(cat "$TAP_TMP/err")" "already revoked" "... saying it is already revoked"
is "$(pctl --json key list alice@example.com | jq -r '.[0].status')" "revoked" "key list shows it revoked"
run_status 64 "revoke with a malformed id exits 64" pctl key revoke "'; DROP TABLE api_keys; --"
run_status 1 "revoke of an unknown id exits 1" pctl key revoke 00000000-0000-0000-0000-000000000000

run_status 64 "bad scope refused" pctl key create alice@example.com --scope smtp,root
like "$(cat "$TAP_TMP/err")" "bad scope 'root'" "... naming the scope"
run_status 64 "missing --scope refused" pctl key create alice@example.com
run_status 1 "key for an unknown user refused" pctl key create nobody@example.com --scope smtp
multi=$(pctl --json key create alice@example.com --scope smtp --scope imap,app)
is "$(echo "$multi" | jq -c .scopes)" '["smtp","imap","app"]' "repeated and comma-separated scopes"

exp=$(pctl --json key create alice@example.com --scope smtp --expires '30 days')
like "$(echo "$exp" | jq -r .expires_at)" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T' "relative expiry resolved to a timestamp"
run_status 64 "expiry in the past refused" pctl key create alice@example.com --scope smtp --expires 2001-01-01
run_status 64 "garbage expiry refused" pctl key create alice@example.com --scope smtp --expires soon-ish
k2=$(echo "$exp" | jq -r .key)
psqlc "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = '$(echo "$exp" | jq -r .id)'"
run_status 1 "an expired key fails" sh -c "echo '$k2' | \"\$POSTROOM_BUILDDIR/postroomctl\" -c \"\$POSTROOM_CONF\" key check alice@example.com"
like "$(cat "$TAP_TMP/err")" "expired" "... as expired"
is "$(psqlc "SELECT count(*) FROM api_keys")" "3" "exactly the three keys created exist (refusals store nothing)"
done_testing
