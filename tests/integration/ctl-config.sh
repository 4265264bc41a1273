#!/usr/bin/env bash
# ctl-config.sh - configuration handling seen from the command line: a
# world-readable file with a secret is refused, typos are caught, -c works
# before the sub-command, --json output is valid JSON.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }

cp "$POSTROOM_CONF" "$TAP_TMP/secret.conf"
echo 'security = { hmac_secret = "0123456789abcdef0123456789abcdef"; };' >>"$TAP_TMP/secret.conf"
chmod 644 "$TAP_TMP/secret.conf"
run_status 78 "world-readable config with a secret refused (exit 78)" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/secret.conf" user list
like "$(cat "$TAP_TMP/err")" "world-readable.*security.hmac_secret" "... naming the secret parameter"
unlike "$(cat "$TAP_TMP/err")" "0123456789abcdef" "... without printing the secret"
chmod 640 "$TAP_TMP/secret.conf"
run_status 0 "the same file at 0640 is accepted" "$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/secret.conf" user list

printf 'database = { conninfo = "host=%s user=postroom dbname=postroom password=x"; };\n' "$PGHOST" >"$TAP_TMP/pw.conf"
chmod 604 "$TAP_TMP/pw.conf"
run_status 78 "world-readable conninfo with a password refused" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/pw.conf" user list

echo 'databse = { conninfo = "x"; };' >"$TAP_TMP/typo.conf"
run_status 78 "unknown parameter refused" "$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/typo.conf" config check
like "$(cat "$TAP_TMP/err")" "line 1: unknown parameter databse.conninfo" "... naming line and parameter"
echo 'milter = { sockett = "unix:/x"; };' >"$TAP_TMP/typo2.conf"
run_status 78 "a typo in a program's section is refused by config check" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/typo2.conf" config check
like "$(cat "$TAP_TMP/err")" "unknown parameter milter.sockett" "... naming the parameter"
echo 'miltr = { socket = "unix:/x"; };' >"$TAP_TMP/typo3.conf"
run_status 78 "an unknown section is refused" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/typo3.conf" config check
like "$(cat "$TAP_TMP/err")" "unknown parameter miltr.socket" "... naming it"

# a renamed parameter keeps working under its old name, with a warning
cp "$POSTROOM_CONF" "$TAP_TMP/old.conf"
echo 'milter = { sent_recipient = "sent@postroom.invalid"; };' >>"$TAP_TMP/old.conf"
run_status 0 "the old name milter.sent_recipient still passes config check" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/old.conf" config check
like "$(cat "$TAP_TMP/err")" "warning: .*milter.sent_recipient is deprecated: use rules.sent_recipient" \
	"... with a deprecation warning"
cp "$POSTROOM_CONF" "$TAP_TMP/new.conf"
echo 'rules = { sent_recipient = "sent@postroom.invalid"; };' >>"$TAP_TMP/new.conf"
run_status 0 "the new name rules.sent_recipient passes config check" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/new.conf" config check
unlike "$(cat "$TAP_TMP/err")" "deprecated" "... without a warning"
cat "$TAP_TMP/old.conf" >"$TAP_TMP/both.conf"
echo 'rules = { sent_recipient = "other@postroom.invalid"; };' >>"$TAP_TMP/both.conf"
run_status 78 "the old and the new name together are refused" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/both.conf" config check
like "$(cat "$TAP_TMP/err")" "rules.sent_recipient is set twice" "... naming the parameter"
# every program's section is listed by config params
for sec in database limits apikey security rules deliver lmtpd authd milter policyd; do
	ok 'pctl config params | cut -f1 | grep -q "^$sec\."' "config params lists the $sec section"
done

run_status 78 "missing -c file refused" "$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/none.conf" user list

run_status 0 "config check passes" pctl config check
out=$(pctl --json config params)
ok 'echo "$out" | jq -e "length > 3" >/dev/null' "config params --json is a JSON array"
ok 'echo "$out" | jq -e ".[] | select(.name==\"security.hmac_secret\") | .secret" >/dev/null' \
	"secret parameters flagged"
# libpq PG* environment applies when conninfo is absent
printf '# empty\n' >"$TAP_TMP/env.conf"
run_status 0 "without conninfo, PG* environment variables are used" \
	env PGDATABASE=postroom "$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/env.conf" user list
run_status 64 "no command: usage, exit 64" "$POSTROOM_BUILDDIR/postroomctl"
run_status 0 "--help exits 0" "$POSTROOM_BUILDDIR/postroomctl" --help
done_testing
