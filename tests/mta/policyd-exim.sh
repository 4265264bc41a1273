#!/bin/bash
# policyd-exim.sh - a real Exim 4.96 with contrib/exim/postroom-policyd.acl:
# relay attempt refused, hosted recipient accepted, unknown user refused,
# over-quota user deferred, SPF-failing sender accepted with the signed
# verdict added at the top (above Exim's Received:), and fail-closed:
# with policyd stopped every recipient gets 451; an authenticated RCPT to
# an address on the user's suppression list gets 550 5.1.1 (issue 21). Sessions run with
# `exim -bs` as root, the client address, port and login set with -oMa,
# -oMi and -oMai (what a daemon would see).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/dns.sh"
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

exim_prepare || { fail "exim_prepare"; done_testing; }
dns_start '--txt-record=spf-ok.test,"v=spf1 ip4:192.0.2.0/24 -all"' || { fail "dnsmasq"; done_testing; }
pg_start && pg_fresh_db policyd || { fail "PostgreSQL"; done_testing; }
pctl domain add postroom.test >/dev/null
pctl user add alice@postroom.test >/dev/null
pd_conf "rules.mx_enabled = true" "policyd.dns_server = \"$DNS_SERVER\"" "policyd.quota_messages = 1" \
	"policyd.hostname = \"exim.postroom.test\""
pd_start || { fail "policyd starts"; done_testing; }

EXIM_CONF_EXTRA=("POSTROOM_POLICYD = inet:$PD_ADDR" "acl_smtp_rcpt = acl_postroom_rcpt"
	"acl_smtp_data = acl_postroom_data")
conf=$(exim_conf_minimal "$TAP_TMP/exim")
sed -i "s|^begin acl\$|begin acl\n.include $POSTROOM_SRCDIR/contrib/exim/postroom-policyd.acl|" "$conf"
like "$(exim_run "$conf" -bV 2>&1)" 'Exim version 4\.96' "Exim accepts the contrib ACL"

# session ADDR LOGIN LINES...: an SMTP session on port 25 (-bs), queue only
session() {
	local addr=$1 login=$2; shift 2
	local auth=()
	[ -n "$login" ] && auth=(-oMai "$login")
	printf '%s\r\n' "$@" | exim_run "$conf" -odq -bs -oMa "$addr" -oMi 127.0.0.1.25 "${auth[@]}" 2>&1 | tr -d '\r'
}
# message ADDR LOGIN FROM TO: a whole message in one session
message() {
	session "$1" "$2" "EHLO client.test" "MAIL FROM:<$3>" "RCPT TO:<$4>" DATA "Subject: t" "" "hi" . QUIT
}

out=$(session 198.51.100.7 "" "EHLO client.test" "MAIL FROM:<x@example.org>" "RCPT TO:<victim@elsewhere.example>" QUIT)
like "$out" '^554 5\.7\.1 Relay access denied' "relay attempt refused (554 5.7.1 from policyd)"
out=$(session 198.51.100.7 "" "EHLO client.test" "MAIL FROM:<x@example.org>" "RCPT TO:<nobody@postroom.test>" QUIT)
like "$out" '^550 5\.1\.1 User unknown' "unknown user refused"

out=$(message 198.51.100.7 "" x@spf-ok.test alice@postroom.test)
like "$out" '^250 OK id=' "SPF-failing sender accepted (tag, not reject)"
id=$(printf '%s\n' "$out" | sed -n 's/^250 OK id=\(.*\)$/\1/p')
hfile=$(ls "$TAP_TMP"/exim/spool/input/*/"$id-H" "$TAP_TMP"/exim/spool/input/"$id-H" 2>/dev/null | head -n 1)
# the header lines of the -H spool file ("NNNF Name: value"), not the
# ACL variables stored before them
hdrs=$(grep -E '^[0-9]{3}[A-Z* ] ' "$hfile" 2>/dev/null | sed -E 's/^[0-9]{3}[A-Z* ] //')
like "$hdrs" 'X-Postroom-Verdict: v=1; spam=yes; reason=spf=fail; spf=fail; ' "verdict header added: spam=yes, spf=fail"
like "$hdrs" "qid=$id; ts=[0-9]+; sig=[0-9a-f]{64}" "bound to Exim's message id and signed"
first=$(printf '%s\n' "$hdrs" | grep -oE '^(X-Postroom-Verdict|Received):' | head -n 1)
is "$first" "X-Postroom-Verdict:" "the verdict is above Exim's Received: header"
is "$(printf '%s\n' "$hdrs" | grep -c '^X-Postroom-Verdict:')" 1 "added once"

out=$(message 192.0.2.10 "" x@spf-ok.test alice@postroom.test)
like "$out" '^250 OK id=' "hosted recipient accepted (SPF pass)"

out=$(message 198.51.100.9 alice@postroom.test alice@postroom.test friend@elsewhere.example)
like "$out" '^250 OK id=' "authenticated: relaying allowed (first message)"
out=$(message 198.51.100.9 alice@postroom.test alice@postroom.test friend@elsewhere.example)
like "$out" '^450.4\.7\.1 Sending quota exceeded: at most 1 messages per hour' "over quota: deferred 450 4.7.1"
out=$(session 198.51.100.9 "" "EHLO c" "MAIL FROM:<alice@postroom.test>" "RCPT TO:<x@elsewhere.example>" QUIT)
like "$out" '^554 5\.7\.1 Relay access denied' "same without login: relay refused"

# a suppressed address (issue 21): bob's next authenticated send to it is
# refused at RCPT through Exim, another address is not
pctl user add bob@postroom.test >/dev/null
pctl suppression add gone@elsewhere.example --user bob@postroom.test --reason 'hard bounce: 5.1.1' >/dev/null
out=$(session 198.51.100.9 bob@postroom.test "EHLO c" "MAIL FROM:<bob@postroom.test>" "RCPT TO:<gone@elsewhere.example>" QUIT)
like "$out" '^550 5\.1\.1 .*suppress' "authenticated RCPT to an address on bob's suppression list: 550 5.1.1"
out=$(session 198.51.100.9 bob@postroom.test "EHLO c" "MAIL FROM:<bob@postroom.test>" "RCPT TO:<other@elsewhere.example>" QUIT)
like "$out" '^250 Accepted' "... another address is accepted"

pd_stop
out=$(session 198.51.100.7 "" "EHLO client.test" "MAIL FROM:<x@example.org>" "RCPT TO:<alice@postroom.test>" QUIT)
like "$out" '^451 4\.3\.0 policy service unavailable' "policyd down: hosted recipient deferred (fail closed)"
out=$(session 198.51.100.7 "" "EHLO client.test" "MAIL FROM:<x@example.org>" "RCPT TO:<victim@elsewhere.example>" QUIT)
like "$out" '^451 4\.3\.0' "policyd down: relay attempt deferred, never accepted"
unlike "$out" '^250 Accepted' "nothing accepted while policyd is down"
done_testing
