#!/usr/bin/env bash
# dkim-postfix.sh - DKIM signing and DKIM/DMARC verdicts with real parts
# (issue 22): two private Postfix instances, the sender (the whole postroom
# pipeline, tests/lib/pipeline.sh, with contrib/postfix/dkim.main.cf on
# top) and the receiver (an MX storing into postroom by the pipe service of
# master.cf.postroom), one OpenDKIM and one OpenDMARC from contrib/opendkim
# and contrib/opendmarc (only sockets, paths and the trust anchor
# rewritten), and dnsmasq serving the DKIM, DMARC and SPF records on port
# 53. OpenDKIM and OpenDMARC use the system resolver, so the test runs in
# a network and mount namespace of its own (unshare -nm) with its own
# /etc/resolv.conf bind-mounted: nothing leaves the namespace.
# Checks: postroomctl domain dkim (files, modes, tables, refusals,
# rotation only once the new record resolves, config check with
# dkim.enabled), a submission signed (Message-Id added and signed, the sent
# copy stored after signing) and stored by the receiver with dkim=pass and
# dmarc=pass, a message altered after signing stored with dkim=fail, a
# mailing-list footer (dkim=fail, dmarc=fail: spam by the documented rule),
# an unsigned message of a p=reject domain with dmarc=fail, a forged
# Authentication-Results and Received-SPF removed, an unsigned message
# from an SPF-authorised MAIL FROM with dmarc=pass (the receiver's
# postroom-milter hands OpenDMARC policyd's SPF verdict as Received-SPF),
# and domain check;
# each verdict also as stored (emails.auth_results, the spam flag and
# reason: deliver.trusted_authserv_id, deliver.dmarc_spam_policies).
# Needs root, postfix, swaks, jq, opendkim, opendmarc, dnsmasq, unshare.
set -u
if [ -z "${POSTROOM_TEST_NS:-}" ]; then
	. "$(dirname "$0")/../lib/tap.sh"
	. "$(dirname "$0")/../lib/netns.sh"
	netns_reexec "Postfix" "opendkim opendmarc dnsmasq" "$0" "$@"
fi
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/lib/dns.sh"	# dns_query

# ---- the namespace: loopback up, our resolv.conf ---------------------------
ip link set lo up || { fail "loopback up in the new network namespace"; done_testing; }
echo "nameserver 127.0.0.1" >"$TAP_TMP/resolv.conf"
mount --bind "$TAP_TMP/resolv.conf" /etc/resolv.conf ||
	{ fail "bind-mount resolv.conf in the new mount namespace"; done_testing; }
pass "own network and mount namespace, resolv.conf -> 127.0.0.1"

# OpenDKIM (RequireSafeKeys) refuses a key below a world-writable
# directory such as /tmp: the keys live on a tmpfs this test mounts in its
# own mount namespace (nothing of the host's /mnt is read or changed)
KEYMNT=/mnt
mount -t tmpfs -o mode=0755,size=16m postroom-dkim "$KEYMNT" ||
	{ fail "a tmpfs on $KEYMNT in the new mount namespace"; done_testing; }
KEYDIR=$KEYMNT/dkim
C=$POSTROOM_SRCDIR/contrib
PIPELINE_DOMAIN=example.test
PIPELINE_CONF_EXTRA=("dkim.key_dir = \"$KEYDIR\"" "dkim.key_user = \"opendkim\""
	"dkim.dns_server = \"127.0.0.1\"" "rules.postmaster_address = \"bob@example.test\""
	"deliver.trusted_authserv_id = \"mx.example.com\"" "policyd.spf = true" "policyd.dns_server = \"127.0.0.1\""
	"rules.port_roles = \"ORIGINATING=submission recvmx=mx\"")
pipeline_start || { fail "pipeline starts"; done_testing; }
pass "sender pipeline starts"
S_PF_CONF=$PF_CONF S_PF_LOG=$PF_LOG S_PORT_SUB=$PF_PORT_SUB
SP=$PIPELINE_DIR/postfix/spool

# ---- keys -------------------------------------------------------------------
diag "t=${SECONDS}s keys"
out=$(pctl domain dkim example.test --selector s1 2>&1)
like "$out" 's1\._domainkey\.example\.test\. IN TXT \( "v=DKIM1; k=rsa; p=' "domain dkim prints the TXT record to publish"
is "$(stat -c '%a %U' "$KEYDIR/keys/example.test/s1.private")" "600 opendkim" "private key: mode 0600, owner dkim.key_user"
is "$(stat -c '%a %G' "$KEYDIR")" "750 opendkim" "key directory: 0750, group of dkim.key_user"
ok "openssl pkey -in '$KEYDIR/keys/example.test/s1.private' -noout -check >/dev/null 2>&1" "the key is a valid private key (OpenSSL)"
is "$(openssl rsa -in "$KEYDIR/keys/example.test/s1.private" -noout -text 2>/dev/null | head -n 1)" \
	"Private-Key: (2048 bit, 2 primes)" "2048 bits by default"
is "$(cat "$KEYDIR/KeyTable")" "s1._domainkey.example.test example.test:s1:$KEYDIR/keys/example.test/s1.private" "KeyTable line"
is "$(cat "$KEYDIR/SigningTable")" "*@example.test s1._domainkey.example.test" "SigningTable line"
is "$(cat "$KEYDIR/signing.exim")" "example.test: s1" "signing.exim line (Exim)"
run_status 1 "a second key without --rotate: refused (1)" pctl domain dkim example.test --selector s9
run_status 1 "a domain that is not hosted: refused (1)" pctl domain dkim nothosted.test
mkdir -m 0755 "$TAP_TMP/open"
sed "s|$KEYDIR|$TAP_TMP/open|" "$PIPELINE_CONF" >"$TAP_TMP/open.conf" && chmod 600 "$TAP_TMP/open.conf"
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/open.conf" domain dkim example.test 2>&1)
st=$?
is "$st" 78 "a world-readable key directory: refused (78)"
like "$out" 'closed to others' "... saying why ($out)"
is "$("$PG_BINDIR/pg_dump" "$POSTROOM_DB" | grep -c 'PRIVATE KEY')" 0 "no private key in the database (pg_dump)"

# config check with dkim.enabled: a hosted domain without a key fails it
pctl domain add recv.test >/dev/null && pctl user add bob@recv.test >/dev/null
sed 's|^dkim = {|dkim = { enabled = true;|' "$PIPELINE_CONF" >"$TAP_TMP/on.conf" && chmod 600 "$TAP_TMP/on.conf"
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/on.conf" config check 2>&1)
st=$?
is "$st" 78 "config check, dkim.enabled, recv.test without a key: fails (78)"
like "$out" 'recv.test has no DKIM key' "... naming the domain"
pctl domain dkim recv.test --selector r1 >/dev/null
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/on.conf" config check 2>&1)
is "$?" 0 "... passes once every hosted domain has its key ($out)"
mv "$KEYDIR/keys/recv.test/r1.private" "$TAP_TMP/r1.away"
"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/on.conf" config check >/dev/null 2>&1
is "$?" 78 "... and fails on a host without the key file (copied to every host)"
mv "$TAP_TMP/r1.away" "$KEYDIR/keys/recv.test/r1.private"

# ---- DNS: dnsmasq on port 53 of the namespace --------------------------------
# txt_opt NAME FILE: a --txt-record option, the record cut into 255-byte strings
txt_opt() {
	local rec parts="" i
	rec=$(cat "$2")
	for ((i = 0; i < ${#rec}; i += 255)); do parts+=",\"${rec:i:255}\""; done
	printf 'txt-record=%s%s\n' "$1" "$parts"
}
dns_conf() {
	{
		printf '%s\n' port=53 listen-address=127.0.0.1 bind-interfaces no-resolv no-hosts no-poll \
			'local=/#/' user=root "log-facility=$TAP_TMP/dnsmasq.log" log-queries
		txt_opt s1._domainkey.example.test "$KEYDIR/keys/example.test/s1.txt"
		printf '%s\n' 'txt-record=_dmarc.example.test,"v=DMARC1; p=reject"' \
			'txt-record=example.test,"v=spf1 ip4:127.0.0.2 -all"' \
			'txt-record=_dmarc.recv.test,"v=DMARC1; p=none"' \
			'mx-host=example.test,mx.example.test,10' 'host-record=mx.example.test,127.0.0.2' \
			'ptr-record=2.0.0.127.in-addr.arpa,mx.example.test'
		printf '%s\n' "$@"
	} >"$TAP_TMP/dnsmasq.conf"
}
dns_run() {
	dnsmasq --conf-file="$TAP_TMP/dnsmasq.conf" --keep-in-foreground --pid-file= 2>>"$TAP_TMP/dnsmasq.err" &
	DNS_PID=$!
	local i
	for i in $(seq 50); do
		DNS_PORT=53 dns_query s1._domainkey.example.test TXT 2>/dev/null | grep -q '^NOERROR' && return 0
		sleep 0.1
	done
	return 1
}
dns_conf
dns_run || fail "dnsmasq answers on 127.0.0.1:53" "$(cat "$TAP_TMP/dnsmasq.err")"
at_exit 'kill $DNS_PID'

# ---- rotation: the new selector signs once its record resolves ------------
diag "t=${SECONDS}s rotation"
pctl domain dkim recv.test --rotate --selector r2 >/dev/null
is "$(awk '{print $1 "=" $2}' "$KEYDIR/keys/recv.test/selectors" | tr '\n' ' ')" "r1=active r2=pending " "--rotate: the new selector is pending"
is "$(cat "$KEYDIR/SigningTable" | grep recv.test)" "*@recv.test r1._domainkey.recv.test" "... the old one still signs"
out=$(pctl domain dkim recv.test 2>&1)
like "$out" 'r2 is pending: its DNS record is not visible \(nxdomain\)' "before the record is published: still pending"
kill "$DNS_PID"; wait "$DNS_PID" 2>/dev/null
dns_conf "$(txt_opt r2._domainkey.recv.test "$KEYDIR/keys/recv.test/r2.txt")"
dns_run || fail "dnsmasq restarts"
out=$(pctl domain dkim recv.test 2>&1)
like "$out" 'r2 resolves in DNS: it signs from now on' "once published: promoted ($(echo "$out" | head -n 1))"
is "$(awk '{print $1 "=" $2}' "$KEYDIR/keys/recv.test/selectors" | tr '\n' ' ')" "r1=old r2=active " "... r2 active, r1 old (kept)"
is "$(grep -c recv.test "$KEYDIR/KeyTable") $(grep recv.test "$KEYDIR/SigningTable")" \
	"2 *@recv.test r2._domainkey.recv.test" "... both keys in the KeyTable, r2 in the SigningTable"
run_status 1 "the active selector cannot be removed" pctl domain dkim recv.test --remove r2
pctl domain dkim recv.test --remove r1 >/dev/null
ok "[ ! -e '$KEYDIR/keys/recv.test/r1.private' ] && ! grep -q r1 '$KEYDIR/KeyTable'" "--remove r1: key file and table line gone"

# ---- domain check: what the world's DNS says ------------------------------
diag "t=${SECONDS}s domain check"
out=$(pctl domain check example.test --ip 127.0.0.2 2>&1)
is "$?" 0 "domain check example.test: every item ok (exit 0)"
is "$(printf '%s\n' "$out" | awk '{ print $1 "=" $2 }' | tr '\n' ' ')" "mx=ok spf=ok dkim=ok dmarc=ok ptr=ok " \
	"... mx, spf (pass for 127.0.0.2), dkim s1, dmarc, ptr (forward-confirmed)"
out=$(pctl domain check recv.test --ip 127.0.0.9 2>&1)
is "$?" 1 "domain check recv.test: something wrong (exit 1)"
like "$out" 'mx +WRONG no MX record' "... no MX: wrong"
like "$out" 'fix: recv\.test\. IN TXT "v=spf1 ip4:127\.0\.0\.9 -all"' "... no SPF: the record to publish"
like "$out" 'dkim +ok +selector r2 \(active\): published' "... the rotated selector r2 is published"
like "$out" 'ptr +WRONG 127\.0\.0\.9 -> no PTR' "... no PTR for the sending address"
is "$(pctl --json domain check example.test | jq -r '[.[] | .item + "=" + .status] | join(" ")')" \
	"mx=ok spf=ok dkim=ok dmarc=ok" "--json: the items without --ip (no ptr)"

# ---- OpenDKIM and OpenDMARC from contrib -------------------------------------
diag "t=${SECONDS}s milters"
DKIM_PORT=$(free_port) DMARC_PORT=$(free_port)
printf '%s\t%s\n' "inet:8891@127.0.0.1" "inet:$DKIM_PORT@127.0.0.1" \
	"/etc/postroom/dkim/" "$KEYDIR/" \
	"/run/opendkim/opendkim.pid" "$TAP_TMP/opendkim.pid" \
	"TrustAnchorFile" "# (no DNSSEC in the test zone) TrustAnchorFile" >"$TAP_TMP/dkim.tsv"
_pl_rewrite "$C/opendkim/opendkim.conf" "$TAP_TMP/opendkim.conf" "$TAP_TMP/dkim.tsv"
# libunbound recurses from the root, never queries a loopback address and
# answers every name under test. itself (RFC 6761): here it forwards all to
# dnsmasq on 127.0.0.1
printf 'server:\n\tdo-not-query-localhost: no\n\tdo-ip6: no\n\tlocal-zone: "test." nodefault\nforward-zone:\n\tname: "."\n\tforward-addr: 127.0.0.1\n' >"$TAP_TMP/unbound.conf"
printf 'ResolverConfiguration %s\n' "$TAP_TMP/unbound.conf" >>"$TAP_TMP/opendkim.conf"
printf '%s\t%s\n' "inet:8893@127.0.0.1" "inet:$DMARC_PORT@127.0.0.1" \
	"/run/opendmarc/opendmarc.pid" "$TAP_TMP/opendmarc.pid" >"$TAP_TMP/dmarc.tsv"
_pl_rewrite "$C/opendmarc/opendmarc.conf" "$TAP_TMP/opendmarc.conf" "$TAP_TMP/dmarc.tsv"
opendkim -f -x "$TAP_TMP/opendkim.conf" >"$TAP_TMP/opendkim.log" 2>&1 &
DKIM_PID=$!
at_exit "kill $DKIM_PID"
opendmarc -f -c "$TAP_TMP/opendmarc.conf" >"$TAP_TMP/opendmarc.log" 2>&1 &
DMARC_PID=$!
at_exit "kill $DMARC_PID"
wait_port "$DKIM_PORT" && wait_port "$DMARC_PORT" && pass "opendkim and opendmarc listen (contrib configuration)" ||
	fail "opendkim and opendmarc listen" "$(cat "$TAP_TMP/opendkim.log" "$TAP_TMP/opendmarc.log")"

# ---- the receiver: an MX for recv.test storing into postroom --------------
# with the pipeline's postroom-policyd (SPF verdict) and postroom-milter in
# front of OpenDKIM and OpenDMARC, as contrib/postfix/dkim.main.cf orders
# them (the role "mx" by the name recvmx in rules.port_roles)
RECV=$TAP_TMP/recv
PF_DOMAIN=recv.test
PD="check_policy_service inet:127.0.0.1:$PIPELINE_PD_PORT"
PF_MAIN_EXTRA=("relay_domains =" "virtual_mailbox_domains = recv.test" "virtual_mailbox_maps = static:postroom"
	"virtual_transport = postroom" "postroom_destination_recipient_limit = 1"
	"smtpd_relay_restrictions = $PD, reject_unauth_destination" "smtpd_data_restrictions = $PD"
	"smtpd_policy_service_policy_context = recvmx" "milter_macro_daemon_name = recvmx"
	"smtpd_milters = unix:$SP/postroom/milter.sock, inet:127.0.0.1:$DKIM_PORT, inet:127.0.0.1:$DMARC_PORT"
	"milter_default_action = tempfail")
PF_MASTER_EXTRA=$(printf 'postroom unix - n n - - pipe\n  flags=hu user=%s null_sender= argv=%s/postroom-deliver -c %s -f ${sender} -a ${sasl_username} -C ${client_address} -q ${queue_id} -- ${recipient}\n' \
	"$PIPELINE_USER" "$POSTROOM_BUILDDIR" "$PIPELINE_CONF")
pf_start "$RECV" || fail "receiver Postfix starts"
R_PF_CONF=$PF_CONF R_PORT_MX=$PF_PORT_MX R_PF_LOG=$PF_LOG
at_exit "PF_CONF=$R_PF_CONF PF_MASTER_PID=$PF_MASTER_PID pf_stop"
PF_CONF=$S_PF_CONF PF_LOG=$S_PF_LOG

# ---- the sender: dkim.main.cf on top of the pipeline --------------------------
grep -v '^[[:space:]]*#' "$C/postfix/dkim.main.cf" | grep . |
	sed -e "s|unix:/postroom/milter.sock|unix:$SP/postroom/milter.sock|" \
		-e "s|inet:127.0.0.1:8891|inet:127.0.0.1:$DKIM_PORT|" -e "s|inet:127.0.0.1:8893|inet:127.0.0.1:$DMARC_PORT|" |
	while IFS= read -r l; do postconf -c "$S_PF_CONF" -e "$l"; done
# test plumbing: recv.test is relayed to the receiver, from 127.0.0.2
printf 'recv.test smtp:[127.0.0.1]:%s\n' "$R_PORT_MX" >>"$S_PF_CONF/postroom_transport"
postmap -c "$PIPELINE_DIR/contrib/pm" "hash:$S_PF_CONF/postroom_transport"
postconf -c "$S_PF_CONF" -e "smtp_bind_address = 127.0.0.2"
postfix -c "$S_PF_CONF" reload >/dev/null 2>&1
sleep 1

# raw_of WHERE: the raw message of the one email matching the SQL condition
email_of() { psqlc "SELECT e.id FROM emails e WHERE $1 ORDER BY e.received_at DESC LIMIT 1"; }
wait_email() {
	local i
	for i in $(seq 75); do
		[ -n "$(email_of "$1")" ] && return 0
		sleep 0.2
	done
	return 1
}
# verdicts_of ID: the stored results (emails.auth_results, --json) and the
# spam flag: "dkim domains dmarc policy spam reason"
verdicts_of() {
	pctl --json mail show "$1" | jq -r '[.auth_results.dkim, (.auth_results.dkim_domains // [] | join(",")),
		.auth_results.dmarc, .auth_results.dmarc_policy, .spam, .spam_reason] | map(tostring) | join(" ")'
}
to_bob="e.sent_by_user_id IS NULL AND EXISTS (SELECT 1 FROM email_recipients r WHERE r.email_id = e.id AND lower(r.address) = 'bob@recv.test')"

# ---- 1. a signed submission: dkim=pass, dmarc=pass at the receiver --------
diag "t=${SECONDS}s signed submission"
swaks --server "127.0.0.1:$S_PORT_SUB" --tls --ehlo client.example --auth PLAIN \
	--auth-user alice@example.test --auth-password "$PIPELINE_KEY" --from alice@example.test \
	--to bob@recv.test --header "Subject: dkim one" --header "Message-Id:" --suppress-data \
	--body "signed by postroom" --timeout 30 >"$TAP_TMP/swaks1.out" 2>&1
ok "grep -q '^<~* *250 ' '$TAP_TMP/swaks1.out'" "submission on 587 accepted"
wait_email "e.subject = 'dkim one' AND $to_bob" || fail "stored at the receiver" "$(tail -n 20 "$R_PF_LOG")"
RAW1=$(pctl mail raw "$(email_of "e.subject = 'dkim one' AND $to_bob")")
like "$RAW1" 'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;' "signed by OpenDKIM, d=example.test"
like "$(printf '%s' "$RAW1" | tr -d '\r\n\t ')" 's=s1;' "... with the active selector s1"
like "$(printf '%s' "$RAW1" | tr -d '\r\n\t ' | grep -o 'h=[^;]*')" '[Mm]essage-[Ii]d' "... the Message-Id added for the client is signed"
# flat TEXT: the message with its header lines unfolded (one line)
flat() { printf '%s' "$1" | tr -d '\r\n\t'; }
like "$(flat "$RAW1")" 'Authentication-Results: mx\.example\.com; *dkim=pass \(2048-bit key[^)]*\) header\.d=example\.test' "receiver: dkim=pass, d=example.test"
like "$RAW1" 'Authentication-Results: mx.example.com; dmarc=pass' "receiver: dmarc=pass"
is "$(verdicts_of "$(email_of "e.subject = 'dkim one' AND $to_bob")")" "pass example.test pass reject false null" \
	"stored: dkim=pass by example.test, dmarc=pass (p=reject), not spam"
SENT1=$(email_of "e.subject = 'dkim one' AND e.sent_by_user_id IS NOT NULL")
like "$(pctl mail raw "$SENT1")" 'DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;' \
	"the sent copy is stored after signing (DKIM-Signature in it)"

# ---- 2. altered after signing: dkim=fail ---------------------------------------
diag "t=${SECONDS}s altered, unsigned, forged"
# send_mx FILE [MAIL-FROM]: the message in FILE to the receiver's MX from
# 127.0.0.2; MAIL FROM by default the bounce address of a list: its SPF
# result (pass: libspf2 lets loopback clients pass) is not aligned with the
# From domain, so it gives DMARC no SPF pass
send_mx() {
	"$PL_PYTHON" - "$R_PORT_MX" "$1" "${2:-list-bounces@lists.example.org}" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30, source_address=("127.0.0.2", 0))
s.sendmail(sys.argv[3], ["bob@recv.test"], open(sys.argv[2], "rb").read())
s.quit()
PY
}
printf '%s' "$RAW1" | awk '/^Authentication-Results:/ { skip = 1; next } skip && /^[ \t]/ { next } { skip = 0; print }' |
	sed -e 's/^Subject: dkim one/Subject: dkim two/' >"$TAP_TMP/altered.eml"
send_mx "$TAP_TMP/altered.eml" && wait_email "e.subject = 'dkim two' AND $to_bob" || fail "altered message stored"
RAW2=$(pctl mail raw "$(email_of "e.subject = 'dkim two' AND $to_bob")")
like "$(flat "$RAW2")" 'Authentication-Results: mx\.example\.com; *dkim=fail reason="signature verification failed"' "altered after signing: dkim=fail"
like "$RAW2" 'dmarc=fail \(p=reject' "... and dmarc=fail under p=reject"
is "$(verdicts_of "$(email_of "e.subject = 'dkim two' AND $to_bob")")" "fail  fail reject true dmarc=fail(p=reject)" \
	"stored: dkim=fail, dmarc=fail under p=reject: spam (deliver.dmarc_spam_policies)"

# ---- 2b. a mailing list: footer added to the body, From unchanged ----------
printf '%s' "$RAW1" | awk '/^Authentication-Results:/ { skip = 1; next } skip && /^[ \t]/ { next } { skip = 0; print }' |
	sed -e 's/^Subject: dkim one/Subject: dkim list/' >"$TAP_TMP/list.eml"
printf -- '--\r\nlist footer: unsubscribe at https://lists.example.org/\r\n' >>"$TAP_TMP/list.eml"
send_mx "$TAP_TMP/list.eml" && wait_email "e.subject = 'dkim list' AND $to_bob" || fail "list message stored"
RAWL=$(pctl mail raw "$(email_of "e.subject = 'dkim list' AND $to_bob")")
like "$(flat "$RAWL")" 'dkim=fail reason="signature verification failed"' "mailing-list footer: stored with dkim=fail (body changed)"
like "$RAWL" 'dmarc=fail \(p=reject' "... and dmarc=fail under the author's p=reject (doc/INSTALL.md step 14)"
is "$(verdicts_of "$(email_of "e.subject = 'dkim list' AND $to_bob")")" "fail  fail reject true dmarc=fail(p=reject)" \
	"... stored so; the documented rule flags it spam (the author's p=reject)"

# ---- 3. p=reject, no signature: dmarc=fail --------------------------------------
printf 'From: alice@example.test\r\nTo: bob@recv.test\r\nSubject: dkim three\r\nMessage-Id: <three@example.test>\r\n\r\nunsigned\r\n' >"$TAP_TMP/unsigned.eml"
send_mx "$TAP_TMP/unsigned.eml" && wait_email "e.subject = 'dkim three' AND $to_bob" || fail "unsigned message stored"
RAW3=$(pctl mail raw "$(email_of "e.subject = 'dkim three' AND $to_bob")")
like "$RAW3" 'dmarc=fail \(p=reject' "unsigned mail of a p=reject domain: dmarc=fail"
is "$(verdicts_of "$(email_of "e.subject = 'dkim three' AND $to_bob")")" "none  fail reject true dmarc=fail(p=reject)" \
	"... stored dkim=none, dmarc=fail: spam"

# ---- 4. a forged Authentication-Results with our authserv-id ----------------
printf 'Authentication-Results: mx.example.com; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\nReceived-SPF: pass (forged) envelope-from="alice@example.test"; identity=mailfrom;\r\nFrom: alice@example.test\r\nTo: bob@recv.test\r\nSubject: dkim four\r\nMessage-Id: <four@example.test>\r\n\r\nforged\r\n' >"$TAP_TMP/forged.eml"
send_mx "$TAP_TMP/forged.eml" && wait_email "e.subject = 'dkim four' AND $to_bob" || fail "forged message stored"
RAW4=$(pctl mail raw "$(email_of "e.subject = 'dkim four' AND $to_bob")")
unlike "$RAW4" 'dkim=pass header.d=example.test; dmarc=pass' "the forged Authentication-Results is removed"
like "$RAW4" 'dmarc=fail' "... and the real verdict is dmarc=fail"
is "$(verdicts_of "$(email_of "e.subject = 'dkim four' AND $to_bob")")" "none  fail reject true dmarc=fail(p=reject)" \
	"... stored: the real verdicts (dkim=none, dmarc=fail), spam"
unlike "$RAW4" 'Received-SPF: pass \(forged\)' "the forged Received-SPF is removed (postroom-milter)"
like "$(flat "$RAW4")" 'Received-SPF: pass \(mx\.example\.com: postroom-policyd verdict\) client-ip=127\.0\.0\.2; envelope-from="list-bounces@lists\.example\.org"; identity=mailfrom;' \
	"... policyd's verdict for the real MAIL FROM (lists.example.org) instead"

# ---- 5. SPF for DMARC: unsigned, MAIL FROM authorised by example.test's SPF --
diag "t=${SECONDS}s spf for dmarc"
printf 'From: alice@example.test\r\nTo: bob@recv.test\r\nSubject: dkim five\r\nMessage-Id: <five@example.test>\r\n\r\nunsigned, SPF-aligned\r\n' >"$TAP_TMP/spf.eml"
send_mx "$TAP_TMP/spf.eml" alice@example.test && wait_email "e.subject = 'dkim five' AND $to_bob" || fail "SPF-aligned message stored"
RAW5=$(pctl mail raw "$(email_of "e.subject = 'dkim five' AND $to_bob")")
like "$(flat "$RAW5")" 'Received-SPF: pass \(mx\.example\.com: postroom-policyd verdict\) client-ip=127\.0\.0\.2; envelope-from="alice@example\.test"; identity=mailfrom;' \
	"postroom-milter adds Received-SPF from policyd's signed verdict (spf=pass)"
is "$(printf '%s\n' "$RAW5" | grep -ci '^Received-SPF:')" 1 "... exactly one Received-SPF"
like "$RAW5" 'Authentication-Results: mx.example.com; dmarc=pass' "OpenDMARC: dmarc=pass through SPF alone (no DKIM signature)"
is "$(verdicts_of "$(email_of "e.subject = 'dkim five' AND $to_bob")")" "none  pass reject false null" \
	"stored: dkim=none, dmarc=pass (p=reject), not spam"
diag "t=${SECONDS}s"
# DKIM_KEEP=DIR: keep the files and logs for a post-mortem
[ -n "${DKIM_KEEP:-}" ] && { rm -rf "$DKIM_KEEP"; cp -a "$TAP_TMP" "$DKIM_KEEP"; }
done_testing
