#!/bin/bash
# policyd-dns.sh - SPF and DNSBL through a real DNS server on loopback
# (dnsmasq, tests/lib/dns.sh) with policyd.dns_server pointing at it:
# the RFC 7208 results pass, fail, softfail, neutral, none, permerror and
# temperror (a server that never answers), the HELO identity for the null
# sender, DNSBL listed / not listed / error codes, tag-not-reject by
# default, configured rejection, one evaluation per message instance,
# SIGHUP reload. Needs PostgreSQL and dnsmasq.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/dns.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

command -v dnsmasq >/dev/null || { fail "dnsmasq installed (tools/install-deps)"; done_testing; }
# The test zone. Expected results per RFC 7208: ip4 match -> the
# qualifier's result (4.6.2, 5.6), no match -> the "all" qualifier, no
# record -> none (4.5), an unknown mechanism or several records ->
# permerror (4.5, 4.6), include of a domain without a record -> permerror
# (5.2), a record split in several strings is one record (3.3).
dns_start '--txt-record=pass.test,"v=spf1 ip4:192.0.2.0/24 -all"' \
	'--txt-record=soft.test,"v=spf1 ip4:192.0.2.0/24 ~all"' \
	'--txt-record=neutral.test,"v=spf1 ?all"' \
	'--host-record=none.test,192.0.2.50' \
	'--txt-record=broken.test,"v=spf1 ip4:192.0.2.0/24 foo:bar -all"' \
	'--txt-record=twice.test,"v=spf1 -all"' '--txt-record=twice.test,"v=spf1 +all"' \
	'--txt-record=incnone.test,"v=spf1 include:none.test -all"' \
	'--txt-record=split.test,"v=spf1 ip4:192.0.2.0/24"," -all"' \
	'--txt-record=other.test,"v=spf1 a:mail.other.test -all"' \
	'--host-record=mail.other.test,203.0.113.5' \
	'--host-record=99.2.0.192.bl.test,127.0.0.2' \
	'--host-record=98.2.0.192.bl.test,127.255.255.254' \
	'--host-record=97.2.0.192.hard.test,127.0.0.4' || { fail "dnsmasq starts"; done_testing; }
pass "dnsmasq on $DNS_SERVER"
is "$(dns_query pass.test TXT)" "NOERROR 1" "the test zone answers"
is "$(dns_query nothing.test TXT)" "NXDOMAIN 0" "unknown names are NXDOMAIN, never forwarded"

pg_start && pg_fresh_db policyd || { fail "PostgreSQL"; done_testing; }
pctl domain add postroom.test >/dev/null
pctl user add alice@postroom.test >/dev/null
pd_conf "rules.mx_enabled = true" "policyd.dns_server = \"$DNS_SERVER\"" \
	"policyd.dnsbl_zones = \"bl.test; hard.test=127.0.0.4:reject\"" "policyd.hostname = \"mx.postroom.test\""
pd_start || { fail "policyd starts"; done_testing; }

# verdict SENDER CLIENT [HELO]: the DATA reply of a message (RCPT first,
# on one connection), queue id Q-CLIENT
verdict() {
	local common=("server_port=25" "client_address=$2" "helo_name=${3:-client.test}" "sender=$1"
		      "sasl_username=" "instance=$RANDOM.$RANDOM" "queue_id=Q-$2")
	{ req protocol_state=RCPT "${common[@]}" recipient=alice@postroom.test
	  req protocol_state=DATA "${common[@]}" recipient=; } | pd_req readsocket | sed -n '3s/^action=//p'
}
field() { printf '%s' "$1" | tr ';' '\n' | sed -n "s/^ *$2=//p"; }

while read -r sender client want spam desc; do
	v=$(verdict "$sender" "$client")
	is "$(field "$v" spf)" "$want" "SPF $want: $desc"
	is "$(field "$v" spam)" "$spam" "  spam=$spam"
done <<'CASES'
x@pass.test 192.0.2.10 pass no ip4 mechanism matches
x@pass.test 198.51.100.7 fail yes -all (the only result tagged by default)
x@soft.test 198.51.100.7 softfail no ~all
x@neutral.test 198.51.100.7 neutral no ?all
x@none.test 198.51.100.7 none no domain without a TXT record
x@nothing.test 198.51.100.7 none no domain that does not exist
x@broken.test 192.0.2.10 permerror no unknown mechanism
x@twice.test 192.0.2.10 permerror no two SPF records
x@incnone.test 192.0.2.10 permerror no include of a domain without record
x@split.test 192.0.2.10 pass no record in two strings
x@other.test 203.0.113.5 pass no a: mechanism resolved
x@other.test 203.0.113.6 fail yes a: mechanism not matching
CASES

v=$(verdict "" 192.0.2.10 pass.test)
is "$(field "$v" spf)/$(field "$v" spf_identity)/$(field "$v" spf_domain)" "pass/helo/pass.test" \
	"null sender: HELO identity checked (RFC 7208 2.3)"
like "$v" '^PREPEND X-Postroom-Verdict: v=1; spam=no; ' "verdict is a PREPEND of the signed header"
like "$v" "client=192\.0\.2\.10; helo=pass\.test; receiver=mx\.postroom\.test; qid=Q-192\.0\.2\.10; ts=<ts>; sig=<sig>$" \
	"bound to client, queue id and time, signed"

v=$(verdict x@pass.test 192.0.2.99)
is "$(field "$v" spam)/$(field "$v" reason)/$(field "$v" dnsbl)" "yes/dnsbl=bl.test/bl.test=127.0.0.2" \
	"DNSBL listed: tagged, not rejected (default)"
v=$(verdict x@pass.test 192.0.2.98)
is "$(field "$v" spam)/$(field "$v" dnsbl)" "no/none" "DNSBL answer 127.255.255.254 is not a listing"
v=$(verdict x@pass.test 192.0.2.10)
is "$(field "$v" dnsbl)" "none" "not listed (NXDOMAIN)"
is "$(action protocol_state=RCPT server_port=25 client_address=192.0.2.97 sender=x@pass.test \
	helo_name=h sasl_username= recipient=alice@postroom.test instance=hard1)" \
	"554 5.7.1 Service unavailable; client [192.0.2.97] blocked using hard.test" \
	"zone configured :reject refuses at RCPT"
v=$(verdict x@pass.test 198.51.100.7)
is "$(field "$v" spam)/$(field "$v" reason)" "yes/spf=fail" "SPF fail is tagged, not rejected, by default"

# one evaluation per message: further RCPTs of the instance ask no DNS
before=$(grep -c 'query\[TXT\] soft.test' "$TAP_TMP/dnsmasq.log")
for r in alice bob carol; do
	req protocol_state=RCPT server_port=25 client_address=198.51.100.7 sender=x@soft.test \
		helo_name=h sasl_username= recipient=$r@postroom.test instance=same1
done | pd_req persistent >/dev/null
req protocol_state=DATA server_port=25 client_address=198.51.100.7 sender=x@soft.test \
	helo_name=h sasl_username= instance=same1 | pd_req persistent >/dev/null
after=$(grep -c 'query\[TXT\] soft.test' "$TAP_TMP/dnsmasq.log")
is "$((after - before))" 1 "three RCPTs and DATA of one instance: one SPF query"
is "$(grep -c 'query\[SPF\]\|query\[type=99\]' "$TAP_TMP/dnsmasq.log")" 0 "no queries for the obsolete SPF RR type"
no_auth=$(action protocol_state=DATA server_port=587 client_address=198.51.100.7 sender=alice@postroom.test \
	sasl_username=alice@postroom.test)
is "$no_auth" DUNNO "authenticated submission: no SPF, no verdict header"

# SIGHUP: SPF fail now refused (550 5.7.23); temperror can never be
sed -i 's/policyd = {/policyd = { spf_reject = "fail";/' "$PD_CONF"
kill -HUP "$PD_PID"
for i in $(seq 50); do grep -q 'configuration reloaded' "$TAP_TMP/policyd.log" && break; sleep 0.1; done
like "$(action protocol_state=RCPT server_port=25 client_address=198.51.100.8 sender=x@pass.test \
	helo_name=h sasl_username= recipient=alice@postroom.test instance=rej1)" \
	'^550 5\.7\.23 SPF fail for pass\.test' "after SIGHUP: spf_reject = fail refuses with 550 5.7.23"
sed -i 's/spf_reject = "fail";/spf_reject = "temperror";/' "$PD_CONF"
kill -HUP "$PD_PID"
for i in $(seq 50); do grep -q 'keeping the running one' "$TAP_TMP/policyd.log" && break; sleep 0.1; done
like "$(cat "$TAP_TMP/policyd.log")" 'policyd.spf_reject: .*temperror is never refused' \
	"a bad reload is refused and logged"
run_status 78 "-t refuses spf_reject = temperror (EX_CONFIG)" \
	"$POSTROOM_BUILDDIR/postroom-policyd" -t -c "$PD_CONF"
pd_stop

# temperror: a DNS server that never answers; nothing waits past the budget
dns_blackhole
pd_conf "rules.mx_enabled = true" "policyd.dns_server = \"$DNS_DEAD\"" "policyd.dns_timeout = 1" \
	"policyd.check_timeout = 2" "policyd.dnsbl_zones = \"bl.test:reject\"" "policyd.spf_reject = \"fail\""
pd_start || { fail "policyd starts (dead DNS)"; done_testing; }
start=$(date +%s%N)
rcpt=$(action protocol_state=RCPT server_port=25 client_address=192.0.2.99 sender=x@pass.test \
	helo_name=h sasl_username= recipient=alice@postroom.test instance=dead1 queue_id=QD)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
is "$rcpt" DUNNO "DNS timeout: RCPT accepted (never rejected, even with reject configured)"
ok "[ $ms -lt 3500 ]" "within the check budget (${ms} ms)"
v=$(action protocol_state=DATA server_port=25 client_address=192.0.2.99 sender=x@pass.test \
	helo_name=h sasl_username= instance=dead1 queue_id=QD)
is "$(field "$v" spf)/$(field "$v" dnsbl)/$(field "$v" spam)" "temperror/bl.test=temperror/no" \
	"tagged temperror, not spam"
pd_done
