#!/usr/bin/env bash
# dkim-exim.sh - DKIM with Exim's own parts (issue 22): two private Exim
# 4.96 (tests/lib/exim.sh) both running contrib/exim/exim4.conf.postroom
# with only paths, ports, sockets, domains and the smarthost rewritten: the
# sender signs on remote_smtp with the key of postroomctl domain dkim, the
# receiver (an MX for recv.test in front of postroom-policyd and
# postroom-deliver) verifies with its built-in DKIM and adds
# Authentication-Results with its authserv-id (${authresults}), which
# deliver stores (deliver.trusted_authserv_id) as the Postfix path does
# (tests/mta/dkim-postfix.sh). dnsmasq serves the DKIM and DMARC records on
# port 53 of a network and mount namespace of the test's own (unshare -nm)
# with its own /etc/resolv.conf: Exim resolves through the system resolver.
# Checks: Debian's build has DKIM and no DMARC (asserted, so that a build
# with DMARC makes this test say so); signed by the sender, stored with
# dkim=pass header.d=example.test; altered after signing: dkim=fail, not
# spam; unsigned from a p=reject domain: dkim=none, no dmarc result (the
# build has none), not spam; a forged Authentication-Results with our
# authserv-id (and a foreign one) removed, no effect on what is stored.
# Needs root, apt-get (Exim's packages, as tests/lib/exim.sh), python3,
# dnsmasq, openssl, jq, unshare.
set -u
if [ -z "${POSTROOM_TEST_NS:-}" ]; then
	. "$(dirname "$0")/../lib/tap.sh"
	. "$(dirname "$0")/../lib/netns.sh"
	netns_reexec "Exim" "dnsmasq python3 jq openssl" "$0" "$@"
fi
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/dns.sh"	# dns_query
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

CONTRIB=$POSTROOM_SRCDIR/contrib/exim/exim4.conf.postroom
exim_prepare || { fail "exim_prepare"; done_testing; }

# ---- the namespace: loopback up, our resolv.conf ---------------------------
ip link set lo up || { fail "loopback up in the new network namespace"; done_testing; }
echo "nameserver 127.0.0.1" >"$TAP_TMP/resolv.conf"
mount --bind "$TAP_TMP/resolv.conf" /etc/resolv.conf ||
	{ fail "bind-mount resolv.conf in the new mount namespace"; done_testing; }
# the keys on a tmpfs of this mount namespace (Debian-exim must reach them;
# $TAP_TMP is closed to it)
KEYMNT=/mnt
mount -t tmpfs -o mode=0755,size=16m postroom-dkim "$KEYMNT" ||
	{ fail "a tmpfs on $KEYMNT in the new mount namespace"; done_testing; }
KEYDIR=$KEYMNT/dkim

# ---- what Debian's Exim is built with --------------------------------------------
BV=$("$EXIM_BIN" -C /dev/null -bV 2>/dev/null | grep '^Support for:')
diag "$BV"
like "$BV" ' DKIM ' "Exim's build verifies and signs DKIM"
unlike "$BV" 'DMARC' "Exim's build has no DMARC (contrib/exim/README.md says so): no dmarc= from Exim"

# ---- PostgreSQL, domains, keys -------------------------------------------------
pg_start && pg_fresh_db dkim_exim || { fail "PostgreSQL"; done_testing; }
printf 'dkim = { key_dir = "%s"; key_user = "Debian-exim"; dns_server = "127.0.0.1"; };\n' "$KEYDIR" >>"$POSTROOM_CONF"
pctl domain add example.test >/dev/null && pctl user add alice@example.test >/dev/null
pctl domain add recv.test >/dev/null && pctl user add bob@recv.test >/dev/null
out=$(pctl domain dkim example.test --selector s1 2>&1)
like "$out" 's1\._domainkey\.example\.test\. IN TXT' "postroomctl domain dkim example.test: key s1 ($?)"
is "$(cat "$KEYDIR/signing.exim")" "example.test: s1" "signing.exim names the active selector"
is "$(stat -c '%a %U' "$KEYDIR/keys/example.test/s1.private")" "600 Debian-exim" "the key is Debian-exim's, 0600"

# ---- DNS: dnsmasq on port 53 of the namespace ------------------------------------
rec=$(cat "$KEYDIR/keys/example.test/s1.txt")
parts=""
for ((i = 0; i < ${#rec}; i += 255)); do parts+=",\"${rec:i:255}\""; done
printf '%s\n' port=53 listen-address=127.0.0.1 bind-interfaces no-resolv no-hosts no-poll 'local=/#/' user=root \
	"txt-record=s1._domainkey.example.test$parts" 'txt-record=_dmarc.example.test,"v=DMARC1; p=reject"' \
	'txt-record=example.test,"v=spf1 ip4:127.0.0.2 -all"' >"$TAP_TMP/dnsmasq.conf"
dnsmasq --conf-file="$TAP_TMP/dnsmasq.conf" --keep-in-foreground --pid-file= 2>>"$TAP_TMP/dnsmasq.err" &
DNS_PID=$!
at_exit "kill $DNS_PID"
for i in $(seq 50); do
	DNS_PORT=53 dns_query s1._domainkey.example.test TXT 2>/dev/null | grep -q '^NOERROR' && break
	sleep 0.1
done
like "$(DNS_PORT=53 dns_query s1._domainkey.example.test TXT 2>&1)" '^NOERROR' "dnsmasq serves the DKIM record on 127.0.0.1:53"

# ---- policyd (the receiver's MX rules and SPF verdict), deliver ---------------
P25=$(free_port) P587=$(free_port) P465=$(free_port)
pd_conf "rules.mx_enabled = true" "rules.port_roles = \"$P25=mx $P587=submission $P465=submission\"" \
	"policyd.dns_server = \"127.0.0.1\"" "policyd.hostname = \"mx.example.com\""
pd_start || { fail "policyd starts"; done_testing; }
getent passwd postroom >/dev/null ||
	useradd --system --no-create-home --shell /usr/sbin/nologin postroom ||
	{ fail "user postroom"; done_testing; }
chmod 711 "$PG_DIR"
DCONF=$TAP_TMP/deliver.conf
{ cat "$POSTROOM_CONF"; echo "security = { hmac_secret = \"$PD_SECRET\"; };"
  echo 'deliver = { trusted_authserv_id = "mx.example.com"; };'; } >"$DCONF"
chown postroom "$DCONF" && chmod 600 "$DCONF"

# ---- two Exim configurations from the shipped file ----------------------------------
# xconf DIR HOSTNAME DOMAIN INTERFACE SMARTHOST: DIR/exim.conf
xconf() {
	local d=$1
	mkdir -p "$d/spool" "$d/log" && chown Debian-exim:Debian-exim "$d/spool" "$d/log"
	sed -e "s|^POSTROOM_DELIVER = .*|POSTROOM_DELIVER = $POSTROOM_BUILDDIR/postroom-deliver|" \
		-e "s|^POSTROOM_CONFFILE = .*|POSTROOM_CONFFILE = $DCONF|" \
		-e "s|^POSTROOM_POLICYD = inet:.*|POSTROOM_POLICYD = inet:$PD_ADDR|" \
		-e "s|^POSTROOM_AUTHD_SOCKET = .*|POSTROOM_AUTHD_SOCKET = $TAP_TMP/no-authd|" \
		-e "s|^POSTROOM_DKIM_DIR = .*|POSTROOM_DKIM_DIR = $KEYDIR|" \
		-e "s|^POSTROOM_SMARTHOST =.*|POSTROOM_SMARTHOST = $5|" \
		-e "s|^primary_hostname = .*|primary_hostname = $2|" \
		-e "s|^domainlist local_domains = example.com\$|domainlist local_domains = $3|" \
		-e "s|^qualify_recipient = .*|qualify_recipient = $3|" \
		-e "s|^local_interfaces = .*|local_interfaces = $4|" \
		-e "s|^daemon_smtp_ports = 25 : 587 : 465\$|daemon_smtp_ports = $P25 : $P587 : $P465|" \
		-e "s|^tls_on_connect_ports = 465\$|tls_on_connect_ports = $P465|" \
		-e "s|^tls_certificate = .*|tls_certificate = $TAP_TMP/cert.pem|" \
		-e "s|^tls_privatekey = .*|tls_privatekey = $TAP_TMP/key.pem|" \
		-e "s|^exim_path = .*|exim_path = $EXIM_BIN|" \
		-e "s|^spool_directory = .*|spool_directory = $d/spool|" \
		-e "s|^log_file_path = .*|log_file_path = $d/log/%slog|" \
		"$CONTRIB" >"$d/exim.conf"
	chown root:root "$d/exim.conf" && chmod 644 "$d/exim.conf"
}
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.recv.test \
	-keyout "$TAP_TMP/key.pem" -out "$TAP_TMP/cert.pem" >/dev/null 2>&1 || { fail "certificate"; done_testing; }
chown Debian-exim "$TAP_TMP/key.pem" "$TAP_TMP/cert.pem"
chmod 711 "$TAP_TMP"
S=$TAP_TMP/sender R=$TAP_TMP/recv
# the sender: example.test, no daemon (mail injected with -bm), everything
# else to the receiver (127.0.0.2 is its own address, so 127.0.0.1 is not
# "self" for its smarthost router)
xconf "$S" mail.example.test example.test 127.0.0.2 "127.0.0.1::$P25"
# the receiver: the MX of recv.test
xconf "$R" mx.recv.test recv.test 127.0.0.1 ""
is "$(diff "$CONTRIB" "$R/exim.conf" | grep -c '^[<>]')" 34 "receiver: only paths, ports, sockets, names and domains differ from the shipped file"
like "$(exim_run "$R/exim.conf" -bV 2>&1)" 'Exim version 4\.96' "Exim accepts the receiver's configuration"
exim_daemon_listen "$R/exim.conf" "$P25" -odq || { fail "receiver Exim starts"; done_testing; }

# ---- helpers -----------------------------------------------------------------------
email_of() { psqlc "SELECT e.id FROM emails e JOIN email_recipients r ON r.email_id = e.id AND r.address = 'bob@recv.test' WHERE e.subject = '$1' LIMIT 1"; }
# stored SUBJECT: run the receiver's queue, print the email id once stored
stored() {
	local i id
	for i in $(seq 20); do
		exim_run "$R/exim.conf" -qff >/dev/null 2>&1
		id=$(email_of "$1")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.25
	done
	return 1
}
# verdicts_of ID: "dkim domains dmarc policy spam reason", as dkim-postfix.sh
verdicts_of() {
	pctl --json mail show "$1" | jq -r '[.auth_results.dkim, (.auth_results.dkim_domains // [] | join(",")),
		.auth_results.dmarc, .auth_results.dmarc_policy, .spam, .spam_reason] | map(tostring) | join(" ")'
}
flat() { printf '%s' "$1" | tr -d '\r\n\t'; }
# send_mx FILE: the message to the receiver's MX port, MAIL FROM alice@example.test
send_mx() {
	python3 - "$P25" "$1" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=30)
s.sendmail("alice@example.test", ["bob@recv.test"], open(sys.argv[2], "rb").read())
s.quit()
PY
}

# ---- 1. signed by the sender's Exim, verified by the receiver's -------------------
printf 'From: alice@example.test\nTo: bob@recv.test\nSubject: exim dkim one\nMessage-Id: <one@example.test>\n\nsigned by Exim\n' |
	exim_run "$S/exim.conf" -odq -bm -f alice@example.test bob@recv.test
exim_run "$S/exim.conf" -qff >/dev/null 2>&1
ID1=$(stored "exim dkim one") || fail "signed message stored at the receiver" "$(tail -n 20 "$S/log/mainlog" "$R/log/mainlog")"
RAW1=$(pctl mail raw "$ID1")
like "$RAW1" 'DKIM-Signature: v=1; a=rsa-sha256; q=dns/txt; c=relaxed/relaxed;' "signed by the sender's remote_smtp (relaxed)"
like "$(flat "$RAW1")" 'd=example\.test; *s=s1;' "... d=example.test with the active selector s1"
is "$(printf '%s\n' "$RAW1" | grep -m3 -oE '^(Authentication-Results|X-Postroom-Verdict|Received):' | tr '\n' ' ')" \
	"X-Postroom-Verdict: Authentication-Results: Received: " "the receiver's Authentication-Results is above its Received:, the verdict topmost"
like "$(flat "$RAW1")" 'Authentication-Results: mx\.example\.com;(iprev=[^;]*;)?dkim=pass header\.d=example\.test header\.s=s1' \
	"receiver (Exim's DKIM): dkim=pass header.d=example.test"
is "$(verdicts_of "$ID1")" "pass example.test null null false null" "stored: dkim=pass by example.test, no dmarc (not in the build), not spam"

# ---- 2. altered after signing: dkim=fail ----------------------------------------------
printf '%s\n' "$RAW1" | tr -d '\r' | awk '/^(Authentication-Results|X-Postroom-Verdict|Received):/ { skip = 1; next }
	skip && /^[ \t]/ { next } { skip = 0; print }' | sed 's/^Subject: exim dkim one/Subject: exim dkim two/' >"$TAP_TMP/altered.eml"
send_mx "$TAP_TMP/altered.eml" || fail "altered message accepted"
ID2=$(stored "exim dkim two") || fail "altered message stored"
RAW2=$(pctl mail raw "$ID2")
like "$(flat "$RAW2")" 'Authentication-Results: mx\.example\.com;(iprev=[^;]*;)?dkim=fail \([^)]*\) header\.d=example\.test' "altered after signing: dkim=fail"
is "$(verdicts_of "$ID2")" "fail  null null false null" "stored: dkim=fail, not spam (a DKIM failure alone is not)"

# ---- 3. p=reject, no signature ------------------------------------------------------
printf 'From: alice@example.test\r\nTo: bob@recv.test\r\nSubject: exim dkim three\r\nMessage-Id: <three@example.test>\r\n\r\nunsigned\r\n' >"$TAP_TMP/unsigned.eml"
send_mx "$TAP_TMP/unsigned.eml" || fail "unsigned message accepted"
ID3=$(stored "exim dkim three") || fail "unsigned message stored"
RAW3=$(pctl mail raw "$ID3")
like "$(flat "$RAW3")" 'Authentication-Results: mx\.example\.com;(iprev=[^;]*;)?dkim=none' "unsigned: dkim=none (added by the DATA ACL: Exim's authresults has none)"
unlike "$RAW3" 'dmarc=' "... and no dmarc= (Debian's Exim has no DMARC)"
is "$(verdicts_of "$ID3")" "none  null null false null" \
	"stored: dkim=none, no dmarc result, not spam (under Exim p=reject is not evaluated: contrib/exim/README.md)"

# ---- 4. forged Authentication-Results ---------------------------------------------------
printf 'Authentication-Results: mx.example.com; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\nAuthentication-Results: other.example; dkim=pass header.d=example.test\r\nFrom: alice@example.test\r\nTo: bob@recv.test\r\nSubject: exim dkim four\r\nMessage-Id: <four@example.test>\r\n\r\nforged\r\n' >"$TAP_TMP/forged.eml"
send_mx "$TAP_TMP/forged.eml" || fail "forged message accepted"
ID4=$(stored "exim dkim four") || fail "forged message stored"
RAW4=$(pctl mail raw "$ID4")
unlike "$RAW4" 'dkim=pass header.d=example.test; dmarc=pass' "the forged Authentication-Results with our authserv-id is removed"
unlike "$RAW4" 'other\.example' "... and so is a foreign one (Exim removes by name only)"
is "$(printf '%s\n' "$RAW4" | grep -ci '^Authentication-Results:')" 1 "... only the receiver's own remains"
is "$(verdicts_of "$ID4")" "none  null null false null" "stored: the real verdict (dkim=none), the forgery has no effect"
[ -n "${DKIM_KEEP:-}" ] && { rm -rf "$DKIM_KEEP"; cp -a "$TAP_TMP" "$DKIM_KEEP"; }
done_testing
