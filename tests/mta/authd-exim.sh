#!/usr/bin/env bash
# authd-exim.sh - postroom-authd behind a real Exim 4.96 (dovecot
# authenticators, daemon on a loopback port) with swaks: PLAIN and LOGIN
# with a good key (235, the authenticated id in Exim's log), a wrong key,
# an unscoped and a revoked key (535). Exim opens one authd connection per
# attempt and sends resp= empty when there is no initial response. Needs
# root, apt-get (first run downloads Exim's packages), swaks.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"

if exim_prepare; then pass "exim_prepare"; else fail "exim_prepare"; done_testing; fi
pg_start || { fail "pg_start"; done_testing; }
pg_fresh_db authd_exim || { fail "pg_fresh_db"; done_testing; }
U=sender@postroom.test
pctl user add "$U" >/dev/null
KEY=$(pctl --json key create "$U" --scope smtp | jq -r .key)
KEY_IMAP=$(pctl --json key create "$U" --scope imap | jq -r .key)
KEY_REV=$(pctl --json key create "$U" --scope smtp | jq -r .key)
REV_ID=$(pctl --json key list "$U" | jq -r --arg p "${KEY_REV:3:12}" '.[] | select(.prefix == $p) | .id')
# Exim's SMTP processes run as Debian-exim: the socket must be theirs too
AUTHD_SOCKET_MODE=0666
AUTHD_EXTRA=("ip_backoff_initial_ms = 0;" "ip_backoff_max_ms = 0;" "ip_lockout_failures = 0;" "ip_account_lockout_failures = 0;")
authd_start "$POSTROOM_CONF" && pass "authd_start" || { fail "authd_start"; done_testing; }

conf=$(exim_conf_minimal "$TAP_TMP/exim")
# the snippet shipped in contrib/, with the socket path of this test
sed "s|/var/spool/postfix/private/auth|$AUTHD_SOCKET|" \
	"$POSTROOM_SRCDIR/contrib/exim/authd.authenticators" >"$TAP_TMP/auths"
{ echo; echo "begin authenticators"; echo; cat "$TAP_TMP/auths"; } >>"$conf"
like "$(exim_run "$conf" -bV 2>&1)" 'Authenticators:.*dovecot' "Exim accepts the contrib authenticators"
if exim_daemon "$conf"; then pass "exim_daemon"; else fail "exim_daemon"; done_testing; fi

sw() {
	local mech=$1 pw=$2; shift 2
	swaks --server "127.0.0.1:$EXIM_PORT" --helo client.test --auth "$mech" \
		--auth-user "$U" --auth-password "$pw" --from "$U" --to someone@postroom.test "$@" 2>&1
}
out=$(sw PLAIN "$KEY")
like "$out" '250-AUTH PLAIN LOGIN' "Exim offers PLAIN and LOGIN"
like "$out" '<- +235 Authentication succeeded' "PLAIN, good key: 235"
like "$out" '<- +250 OK id=' "message accepted"
for i in $(seq 50); do grep -q "A=postroom_plain:$U" "$TAP_TMP/exim/log/mainlog" && break; sleep 0.1; done
like "$(cat "$TAP_TMP/exim/log/mainlog")" "A=postroom_plain:$U" "Exim logs the id authd returned (user=)"
out=$(sw LOGIN "$KEY" --quit-after AUTH)
like "$out" '<- +235 Authentication succeeded' "LOGIN, good key: 235"
out=$(sw PLAIN "$(key_wrong "$KEY")" --quit-after AUTH)
like "$out" '<\*\* +535 Incorrect authentication data' "PLAIN, wrong key: 535"
out=$(sw LOGIN "$(key_wrong "$KEY")" --quit-after AUTH)
like "$out" '<\*\* +535 Incorrect authentication data' "LOGIN, wrong key: 535"
out=$(sw PLAIN "$KEY_IMAP" --quit-after AUTH)
like "$out" '<\*\* +535 ' "key without smtp scope: 535"
out=$(sw PLAIN "$KEY_REV" --quit-after AUTH)
like "$out" '<- +235 ' "key to be revoked: 235"
pctl key revoke "$REV_ID" >/dev/null
out=$(sw PLAIN "$KEY_REV" --quit-after AUTH)
like "$out" '<\*\* +535 ' "revoked key: 535 at once"
like "$(grep 'failed user=' "$AUTHD_LOG" | tail -n 1)" 'rip=127\.0\.0\.1' "Exim passes the client IP (rip=)"
is "$(authd_metric postroom_authd_connections)" 0 "Exim closed every authd connection (one per attempt)"
authd_stop
ok authd_log_clean "no sanitizer report"
done_testing
