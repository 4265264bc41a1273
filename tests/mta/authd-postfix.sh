#!/usr/bin/env bash
# authd-postfix.sh - postroom-authd behind a real Postfix (smtpd_sasl_type =
# dovecot, on loopback high ports) with swaks as the SMTP client: AUTH
# PLAIN and LOGIN with a good key (235, and the sasl_username Postfix
# logs), a wrong key, a key without the smtp scope and a revoked key (535
# with authd's reason), over STARTTLS on the submission port too, Postfix's
# real client IP reaching the rate limiter, and the database being down
# (what Postfix 3.7 makes of code=temp_fail). Also doveadm auth test, the
# third real client. Needs root, postfix, swaks (libauthen-sasl-perl),
# dovecot-core.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"

pg_start || { fail "pg_start"; done_testing; }
pg_fresh_db authd_pf || { fail "pg_fresh_db"; done_testing; }
U=sender@postroom.test
pctl user add "$U" >/dev/null
KEY=$(pctl --json key create "$U" --scope smtp | jq -r .key)
KEY_IMAP=$(pctl --json key create "$U" --scope imap | jq -r .key)
KEY_REV=$(pctl --json key create "$U" --scope smtp | jq -r .key)
REV_ID=$(pctl --json key list "$U" | jq -r --arg p "${KEY_REV:3:12}" '.[] | select(.prefix == $p) | .id')
AUTHD_EXTRA=("ip_backoff_initial_ms = 0;" "ip_backoff_max_ms = 0;" "ip_lockout_failures = 0;" "ip_account_lockout_failures = 0;")
authd_start "$POSTROOM_CONF" && pass "authd_start" || { fail "authd_start"; done_testing; }

PF_MAIN_EXTRA=("smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = dovecot"
	"smtpd_sasl_path = $AUTHD_SOCKET"
	"smtpd_recipient_restrictions = permit_sasl_authenticated, reject")
if pf_start; then pass "pf_start with smtpd_sasl_type = dovecot"; else fail "pf_start"; done_testing; fi

# sw MECH PASSWORD [swaks options]: one SMTP session, AUTH, MAIL, RCPT
sw() {
	local mech=$1 pw=$2; shift 2
	swaks --server "127.0.0.1:$PF_PORT_MX" --helo client.test --auth "$mech" \
		--auth-user "$U" --auth-password "$pw" --from "$U" --to rcpt@elsewhere.example \
		--quit-after RCPT "$@" 2>&1
}
out=$(sw PLAIN "$KEY")
like "$out" '250-AUTH PLAIN LOGIN' "Postfix offers the mechanisms authd announced"
like "$out" '<- +235 2\.7\.0 Authentication successful' "PLAIN, good key: 235"
like "$out" '<- +250 2\.1\.5 Ok' "authenticated client may relay"
if pf_wait_log "sasl_method=PLAIN, sasl_username=$U"; then pass "Postfix logs sasl_username=$U"
else fail "Postfix logs sasl_username=$U" "$(tail -n 5 "$PF_LOG")"; fi
out=$(sw LOGIN "$KEY")
like "$out" '<- +235 2\.7\.0 Authentication successful' "LOGIN, good key: 235"
out=$(sw PLAIN "$(key_wrong "$KEY")")
like "$out" '<\*\* +535 5\.7\.8 Error: authentication failed: Invalid address or API key' "PLAIN, wrong key: 535"
out=$(sw LOGIN "$(key_wrong "$KEY")")
like "$out" '<\*\* +535 5\.7\.8 Error: authentication failed: Invalid address or API key' "LOGIN, wrong key: 535"
out=$(sw PLAIN "$KEY_IMAP")
like "$out" '<\*\* +535 5\.7\.8 Error: authentication failed: API key not valid for SMTP' "key without smtp scope: 535"
out=$(sw PLAIN "$KEY_REV")
like "$out" '<- +235 ' "key to be revoked: 235 (and cached)"
pctl key revoke "$REV_ID" >/dev/null
out=$(sw PLAIN "$KEY_REV")
like "$out" '<\*\* +535 5\.7\.8 Error: authentication failed: Invalid address or API key' "revoked key: 535 at once"
out=$(sw LOGIN "$KEY_REV")
like "$out" '<\*\* +535 ' "revoked key, LOGIN: 535"
like "$(grep 'failed user=' "$AUTHD_LOG" | tail -n 1)" 'rip=127\.0\.0\.1' "the real client IP reaches authd (rip=)"

# submission port: STARTTLS, then AUTH (secured)
out=$(swaks --server "127.0.0.1:$PF_PORT_SUB" --tls --helo client.test --auth PLAIN \
	--auth-user "$U" --auth-password "$KEY" --from "$U" --to rcpt@elsewhere.example \
	--quit-after RCPT 2>&1)
like "$out" '<~ +235 2\.7\.0 Authentication successful' "submission over STARTTLS: 235"

# several sessions through one smtpd process reuse its authd connection
conns0=$(authd_metric postroom_authd_connections)
ok '[ "$conns0" -ge 1 ]' "smtpd keeps its authd connection open ($conns0 open)"

# doveadm auth test: service=doveadm, authzid = authcid
out=$(doveadm auth test -a "$AUTHD_SOCKET" "$U" "$KEY" 2>&1); st=$?
is "$st" 0 "doveadm auth test, good key: exit 0"
like "$out" "user=$U" "doveadm shows user=$U"
out=$(doveadm auth test -a "$AUTHD_SOCKET" "$U" "$(key_wrong "$KEY")" 2>&1); st=$?
is "$st" 77 "doveadm auth test, wrong key: exit 77"
like "$out" 'reason=Invalid address or API key' "doveadm shows the reason"

# the database down: cached keys still work; an uncached one fails
pg_server_stop
out=$(sw PLAIN "$KEY")
like "$out" '<- +235 ' "database down: cached key still 235"
KEY2_WRONG=pr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
out=$(sw PLAIN "$KEY2_WRONG")
like "$out" '<\*\* +535 5\.7\.8 Error: authentication failed: Temporary authentication failure' \
	"database down, uncached: Postfix 3.7 answers 535 with authd's temp_fail reason"
pg_server_start
authd_stop
ok authd_log_clean "no sanitizer report"
done_testing
