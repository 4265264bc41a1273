#!/bin/bash
# policyd-postfix.sh - a real Postfix with check_policy_service pointing
# at postroom-policyd (relay and data restrictions, as in
# contrib/postfix/policyd.main.cf): a relay attempt is refused, a hosted
# recipient accepted, an unknown user refused, an over-quota user
# deferred, an SPF-failing sender accepted with the signed verdict
# prepended once, above Postfix's Received: header. Client addresses and
# SASL logins are set with XCLIENT (as an MX host or submission service
# would see them); SPF/DNSBL resolve through a loopback dnsmasq.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/dns.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

dns_start '--txt-record=spf-ok.test,"v=spf1 ip4:192.0.2.0/24 -all"' \
	'--host-record=77.2.0.192.bl.test,127.0.0.2' || { fail "dnsmasq"; done_testing; }
pg_start && pg_fresh_db policyd || { fail "PostgreSQL"; done_testing; }
pctl domain add postroom.test >/dev/null
pctl user add alice@postroom.test >/dev/null
pd_conf "rules.mx_enabled = true" "policyd.dns_server = \"$DNS_SERVER\"" \
	"policyd.dnsbl_zones = \"bl.test\"" "policyd.quota_messages = 2" "policyd.hostname = \"mx.postroom.test\""
pd_start || { fail "policyd starts"; done_testing; }

# contrib/postfix/policyd.main.cf as shipped (its port replaced), one
# "name = value" line per setting; permit_mynetworks is added after the
# policy check because this Postfix has no SASL server (see below)
mapfile -t snippet < <(sed "s/127\.0\.0\.1:10045/$PD_ADDR/g" "$POSTROOM_SRCDIR/contrib/postfix/policyd.main.cf" |
	grep -v '^#' | awk '/^[ \t]/ { sub(/^[ \t]+/, " "); line = line $0; next }
		{ if (line != "") print line; line = $0 } END { if (line != "") print line }' |
	sed 's/}, *permit_sasl_authenticated/}, permit_mynetworks, permit_sasl_authenticated/' | grep .)
# postroom-deliver behind a pipe(8) service for the hosted domain, as the
# cluster's owner (only it reaches the test database's socket), with the
# HMAC secret policyd signs with
DUSER=${PG_RUNAS:-nobody}
DCONF="$TAP_TMP/deliver.conf"
{ cat "$POSTROOM_CONF"; printf 'security = { hmac_secret = "%s"; };\n' "$PD_SECRET"; } >"$DCONF"
chown "$DUSER" "$DCONF" && chmod 600 "$DCONF"
PF_MASTER_EXTRA="postroom unix - n n - - pipe
  flags=hu user=$DUSER null_sender= argv=$POSTROOM_BUILDDIR/postroom-deliver -c $DCONF -f \${sender} -a \${sasl_username} -C \${client_address} -q \${queue_id} -- \${recipient}"
PF_MAIN_EXTRA=(
	"${snippet[@]}"
	"transport_maps = inline:{postroom.test=postroom:}"
	"postroom_destination_recipient_limit = 1"
	"smtpd_authorized_xclient_hosts = 127.0.0.1"
	"mynetworks = 127.0.0.1/32"
	"smtpd_end_of_data_restrictions = check_client_access static:HOLD"
)
pf_start || { fail "Postfix starts"; done_testing; }
# the MX service's port is "mx" for policyd
sed -i "s/policyd = {/policyd = { }; rules = { port_roles = \"$PF_PORT_MX=mx\"; }; policyd2 = {/" "$PD_CONF" 2>/dev/null
sed -i 's/rules = {  *mx_enabled = true; };//; s/rules = { port_roles = \("[^"]*"\); };/rules = { mx_enabled = true; port_roles = \1; };/; s/policyd = { }; \(.*\) policyd2 = {/\1 policyd = {/' "$PD_CONF"
if "$POSTROOM_BUILDDIR/postroom-policyd" -t -c "$PD_CONF" >/dev/null; then
	kill -HUP "$PD_PID"
	for i in $(seq 50); do grep -q 'configuration reloaded' "$TAP_TMP/policyd.log" && break; sleep 0.1; done
	pass "policyd maps port $PF_PORT_MX to the MX role"
else
	fail "policyd maps port $PF_PORT_MX to the MX role" "$(cat "$PD_CONF")"
fi

# mx ADDR FROM TO [swaks args]: an SMTP transaction on the MX port
mx() {
	local addr=$1 from=$2 to=$3; shift 3
	swaks --timeout 10 --server "127.0.0.1:$PF_PORT_MX" --helo client.test --xclient-addr "$addr" \
		--from "$from" --to "$to" --header "Subject: policyd test" --body "hello" "$@" 2>&1
}

out=$(mx 198.51.100.7 x@example.org victim@elsewhere.example)
like "$out" '<\*\* +554 5\.7\.1 .*Relay access denied' "relay attempt refused by policyd"
out=$(mx 198.51.100.7 x@example.org nobody@postroom.test)
like "$out" '<\*\* +550 5\.1\.1 .*User unknown' "unknown user refused"
out=$(mx 192.0.2.10 x@spf-ok.test alice@postroom.test)
like "$out" '<- +250 2\.0\.0 Ok: queued as' "hosted recipient accepted (SPF pass)"
mid_of() { printf '%s\n' "$1" | sed -n 's/^ *-> Message-Id: <\(.*\)>.*/\1/p' | head -n 1; }
mid_pass=$(mid_of "$out")

out=$(mx 198.51.100.7 x@spf-ok.test alice@postroom.test)
like "$out" '<- +250 2\.0\.0 Ok: queued as' "SPF-failing sender accepted (tag, not reject)"
mid_fail=$(mid_of "$out")
qid=$(printf '%s\n' "$out" | sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p')
hdrs=$(postcat -c "$PF_CONF" -hq "$qid" 2>/dev/null)
like "$hdrs" 'X-Postroom-Verdict: v=1; spam=yes; reason=spf=fail; spf=fail; ' "verdict header prepended: spam=yes, spf=fail"
like "$hdrs" "qid=$qid; ts=[0-9]+; sig=[0-9a-f]{64}" "bound to Postfix's queue id and signed"
is "$(printf '%s\n' "$hdrs" | grep -c '^X-Postroom-Verdict:')" 1 "prepended once per message"
is "$(printf '%s\n' "$hdrs" | grep -m1 -E '^(X-Postroom-Verdict|Received):' | cut -d: -f1)" \
	X-Postroom-Verdict "the verdict is above Postfix's Received: header (the trusted zone)"

# deliver's reading (lib/verdict.c) of the headers as Postfix queued them
probe() { printf '%s\n' "$hdrs" | "$POSTROOM_BUILDDIR/tests/unit/test-verdict-probe" "$PD_SECRET" "$1" mx.postroom.test; }
is "$(probe "$qid")" "spam=1 valid=1 reason=spf=fail" "deliver's reading: genuine verdict verifies, spam flagged"
is "$(probe 9ABCDEF)" "spam=0 valid=0 reason=" "the same headers under another queue id: no effect"
genuine=$(printf '%s\n' "$hdrs" | sed -n 's/^X-Postroom-Verdict: //p')
out=$(mx 192.0.2.10 x@spf-ok.test alice@postroom.test --header "X-Postroom-Verdict: $genuine" \
	--header "X-Postroom-Verdict: v=1; spam=yes; reason=forged; ts=1; sig=00")
qid2=$(printf '%s\n' "$out" | sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p')
mid_copied=$(mid_of "$out")
hdrs=$(postcat -c "$PF_CONF" -hq "$qid2" 2>/dev/null)
is "$(printf '%s\n' "$hdrs" | grep -c '^X-Postroom-Verdict:')" 3 "a sender's copied and forged verdicts travel below ours"
is "$(probe "$qid2")" "spam=0 valid=1 reason=" "copied genuine and forged verdicts have no effect (ours says spam=no)"

out=$(mx 192.0.2.77 x@spf-ok.test alice@postroom.test)
mid_listed=$(mid_of "$out")
qid=$(printf '%s\n' "$out" | sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p')
like "$(postcat -c "$PF_CONF" -hq "$qid" 2>/dev/null)" 'spam=yes; reason=dnsbl=bl\.test; .*dnsbl=bl\.test=127\.0\.0\.2' \
	"DNSBL-listed client accepted and tagged"

# authenticated (XCLIENT LOGIN; the address stays in mynetworks because
# this private Postfix has no SASL server for permit_sasl_authenticated):
# submission to anyone, then over quota
sub() { mx 127.0.0.1 alice@postroom.test friend@elsewhere.example --xclient-login alice@postroom.test; }
like "$(sub)" '<- +250 2\.0\.0 Ok: queued as' "authenticated: relaying to a foreign domain allowed"
like "$(sub)" '<- +250 2\.0\.0 Ok: queued as' "second message within quota (2)"
like "$(sub)" '<\*\* +450 4\.7\.1 .*Sending quota exceeded: at most 2 messages per hour' "third message deferred: 450 4.7.1"
out=$(mx 127.0.0.1 bob@postroom.test friend@elsewhere.example --xclient-login alice@postroom.test)
like "$out" '<\*\* +553 5\.7\.1 .*Sender address not owned by user' "sender not owned by the login refused"

# release the held messages into postroom-deliver and read what it stored:
# the spam flag comes from this hop's verdict, never from the sender's copies
postsuper -c "$PF_CONF" -H ALL >/dev/null 2>&1
postqueue -c "$PF_CONF" -f
for i in $(seq 150); do [ "$(psqlc 'SELECT count(*) FROM emails')" -ge 4 ] && break; sleep 0.2; done
stored() { psqlc "SELECT spam::text || ' ' || COALESCE(spam_reason, '-') FROM emails WHERE message_id IN ('$1', '<$1>')"; }
ok '[ -n "$mid_pass" ] && [ -n "$mid_fail" ] && [ -n "$mid_copied" ] && [ -n "$mid_listed" ]' "Message-Ids of the four messages known"
is "$(stored "$mid_fail")" "true spf=fail" "delivered through Postfix: the SPF-failing message is stored flagged as spam"
is "$(stored "$mid_listed")" "true dnsbl=bl.test" "the DNSBL-listed client's message is stored flagged as spam"
is "$(stored "$mid_pass")" "false -" "the SPF-passing message is stored clean"
is "$(stored "$mid_copied")" "false -" "copied genuine and forged verdicts in the message: stored clean"

# policyd down: Postfix's default action for an unreachable policy service
pd_stop
out=$(mx 198.51.100.7 x@example.org alice@postroom.test)
like "$out" '<\*\* +451 4\.3\.0' "policyd down: 451 4.3.0, not accepted"
done_testing
