#!/usr/bin/env bash
# e2e-exim.sh - contrib/exim/exim4.conf.postroom end to end: a private Exim
# 4.96 (tests/lib/exim.sh) runs the shipped configuration with only its
# paths, ports, sockets and smarthost rewritten (asserted), in front of a
# real PostgreSQL, postroom-authd, postroom-policyd and postroom-deliver;
# swaks is the client. It checks the envelope tables of MISSION.md on the
# MX, submission (STARTTLS), submissions (TLS) and another port; AUTH PLAIN
# and LOGIN with good, wrong, unscoped and revoked keys; inbound mail
# stored with linked recipients, a Bcc-only recipient, an attachment, a
# reply threaded, the signed SPF verdict honoured; the sent copy (unseen
# router) stored once with sent_by while the remote copy is relayed to a
# sink without X-Postroom-* headers; a DSN for a sent email through the MX
# stored as bounce-hard, linked, its recipient suppressed and the next
# submission to it refused 550 5.1.1 (issue 21); over-size mail refused at SIZE= and at
# end of data (CRLF size); postmaster (RFC 5321 4.5.1: a bare <Postmaster>,
# qualified by qualify_recipient, and postmaster@ the hosted domain nobody
# owns accepted and stored, a foreign postmaster still 554); PostgreSQL
# stopped: RCPT 451, a queued delivery
# deferred (deliver's 75) and stored exactly once after the queue run; a
# forged X-Postroom-Submission gives no sent_by; MX mode off.
#
# Deliveries: the daemon runs with -odq and the test runs the queue as root
# (exim -qff). A daemon under a -C configuration that is not in Exim's
# TRUSTED_CONFIG_LIST re-executes itself without root, so its immediate
# deliveries could not become the transport's user (postroom); root queue
# runs can, and make every delivery synchronous. Needs root, apt-get (the
# first run downloads Exim's packages), swaks, smtp-sink (Postfix), dnsmasq;
# creates the system user postroom (the transports' user) when missing.
# E2E_DEBUG=1 copies Exim's logs, the sink and policyd's log to
# /tmp/e2e-debug at exit.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/dns.sh"
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"
. "$POSTROOM_SRCDIR/tests/lib/authd.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

CONTRIB=$POSTROOM_SRCDIR/contrib/exim/exim4.conf.postroom
for t in swaks smtp-sink openssl; do
	command -v "$t" >/dev/null || { fail "$t is installed"; done_testing; }
done
exim_prepare || { fail "exim_prepare"; done_testing; }

# ---- PostgreSQL, users and keys ---------------------------------------------
pg_start && pg_fresh_db e2e_exim || { fail "PostgreSQL"; done_testing; }
pctl domain add example.com >/dev/null
for u in alice bob carol dave; do pctl user add "$u@example.com" >/dev/null; done
pctl alias add alice.alias@example.com alice@example.com >/dev/null
KEY=$(pctl --json key create alice@example.com --scope smtp | jq -r .key)
KEY_IMAP=$(pctl --json key create alice@example.com --scope imap | jq -r .key)
KEY_REV=$(pctl --json key create alice@example.com --scope smtp | jq -r .key)
REV_ID=$(pctl --json key list alice@example.com | jq -r --arg p "${KEY_REV:3:12}" '.[] | select(.prefix == $p) | .id')

# ---- ports, DNS (SPF), policyd, authd -----------------------------------------
P25=$(free_port) P587=$(free_port) P465=$(free_port) SINK=$(free_port)
dns_start '--txt-record=spf-ok.test,"v=spf1 ip4:127.0.0.1 -all"' \
	'--txt-record=spf-fail.test,"v=spf1 -all"' || { fail "dnsmasq"; done_testing; }
pd_conf "rules.mx_enabled = true" "rules.port_roles = \"$P25=mx $P587=submission $P465=submission\"" \
	"policyd.dns_server = \"$DNS_SERVER\"" "policyd.hostname = \"mail.example.com\"" \
	"policyd.quota_messages = 1000" "policyd.quota_recipients = 10000"
pd_start || { fail "policyd starts"; done_testing; }
AUTHD_SOCKET_MODE=0666	# Exim's SMTP processes run as Debian-exim
AUTHD_EXTRA=("ip_backoff_initial_ms = 0;" "ip_backoff_max_ms = 0;" "ip_lockout_failures = 0;" "ip_account_lockout_failures = 0;")
authd_start "$POSTROOM_CONF" || { fail "authd starts"; done_testing; }

# ---- postroom-deliver as the transport's user "postroom" ----------------------
getent passwd postroom >/dev/null ||
	useradd --system --no-create-home --shell /usr/sbin/nologin postroom ||
	{ fail "user postroom"; done_testing; }
chmod 711 "$PG_DIR"	# the transport's user reaches the cluster's socket
DCONF=$TAP_TMP/deliver.conf
{ cat "$POSTROOM_CONF"; echo "security = { hmac_secret = \"$PD_SECRET\"; };"; } >"$DCONF"
chown postroom "$DCONF" && chmod 600 "$DCONF"

# ---- the outside world: an SMTP sink on 127.0.0.2 (not one of Exim's own
# addresses, so Exim does not take it for itself) -------------------------------
SINKDIR=$TAP_TMP/sink
mkdir -p "$SINKDIR" && chmod 1777 "$SINKDIR"
smtp-sink -u nobody -d "$SINKDIR/%H%M%S." "127.0.0.2:$SINK" 20 >/dev/null 2>&1 &
SINK_PID=$!
at_exit "kill $SINK_PID"

# ---- TLS certificate -------------------------------------------------------------
XD=$TAP_TMP/exim
mkdir -p "$XD/spool" "$XD/log" && chown Debian-exim:Debian-exim "$XD/spool" "$XD/log"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mail.example.com \
	-keyout "$XD/key.pem" -out "$XD/cert.pem" >/dev/null 2>&1 || { fail "certificate"; done_testing; }
chown Debian-exim "$XD/key.pem" "$XD/cert.pem"

# ---- the shipped configuration, paths, ports and sockets rewritten -------------
CONF=$XD/exim.conf
sed -e "s|^POSTROOM_DELIVER = .*|POSTROOM_DELIVER = $POSTROOM_BUILDDIR/postroom-deliver|" \
	-e "s|^POSTROOM_CONFFILE = .*|POSTROOM_CONFFILE = $DCONF|" \
	-e "s|^POSTROOM_POLICYD = inet:.*|POSTROOM_POLICYD = inet:$PD_ADDR|" \
	-e "s|^POSTROOM_AUTHD_SOCKET = .*|POSTROOM_AUTHD_SOCKET = $AUTHD_SOCKET|" \
	-e "s|^POSTROOM_SMARTHOST =.*|POSTROOM_SMARTHOST = 127.0.0.2::$SINK|" \
	-e "s|^local_interfaces = .*|local_interfaces = 127.0.0.1|" \
	-e "s|^daemon_smtp_ports = 25 : 587 : 465\$|daemon_smtp_ports = $P25 : $P587 : $P465|" \
	-e "s|^tls_on_connect_ports = 465\$|tls_on_connect_ports = $P465|" \
	-e "s|^tls_certificate = .*|tls_certificate = $XD/cert.pem|" \
	-e "s|^tls_privatekey = .*|tls_privatekey = $XD/key.pem|" \
	-e "s|^exim_path = .*|exim_path = $EXIM_BIN|" \
	-e "s|^spool_directory = .*|spool_directory = $XD/spool|" \
	-e "s|^log_file_path = .*|log_file_path = $XD/log/%slog|" \
	"$CONTRIB" >"$CONF"
chown root:root "$CONF" && chmod 644 "$CONF"
changed=$(diff "$CONTRIB" "$CONF" | sed -n 's/^> \([A-Za-z_]*\) =.*/\1/p' | sort | tr '\n' ' ')
is "$changed" "POSTROOM_AUTHD_SOCKET POSTROOM_CONFFILE POSTROOM_DELIVER POSTROOM_POLICYD POSTROOM_SMARTHOST daemon_smtp_ports exim_path local_interfaces log_file_path spool_directory tls_certificate tls_on_connect_ports tls_privatekey " \
	"only paths, ports, sockets and the smarthost differ from the shipped file"
is "$(diff "$CONTRIB" "$CONF" | grep -c '^[<>]')" 26 "each of those lines changed once, nothing added or removed"
like "$(exim_run "$CONF" -bV 2>&1)" 'Exim version 4\.96' "Exim 4.96 accepts exim4.conf.postroom"

exim_daemon_listen "$CONF" "$P25" -odq || { fail "Exim daemon starts"; done_testing; }
pass "Exim daemon on MX $P25, submission $P587, submissions $P465"
MAINLOG=$XD/log/mainlog
[ -n "${E2E_DEBUG:-}" ] && at_exit "rm -rf /tmp/e2e-debug; mkdir -p /tmp/e2e-debug; cp -r $XD/log $SINKDIR $TAP_TMP/policyd.log /tmp/e2e-debug/"
runq() { exim_run "$CONF" -qff; }

# ---- client helpers ------------------------------------------------------------
# sw PORT ARGS...: swaks against Exim, its whole transcript
sw() {
	local port=$1; shift
	swaks --server 127.0.0.1 --port "$port" --helo client.test --timeout 30 "$@" 2>&1
}
# reply STAGE PORT FROM TO ARGS...: the server's answer to STAGE (MAIL, RCPT,
# DATA): its first refusal, else its last reply of that stage
reply() {
	local stage=$1 port=$2 from=$3 to=$4 q=()
	shift 4
	case $stage in MAIL) q=(--quit-after FROM) ;; RCPT) q=(--quit-after RCPT) ;; esac
	sw "$port" --from "$from" --to "$to" "${q[@]}" "$@" |
		awk '/^<(\*\*|~\*) / { sub(/^<[~*]\* +/, ""); print; exit }
		     /^<[-~]  / { sub(/^<[-~] +/, ""); last = $0 }
		     /^ [-~]> QUIT/ { print last; exit }'
}
TLS=(--tls)
TLSC=(--tls-on-connect)
AUTH=(--auth PLAIN --auth-user alice@example.com --auth-password "$KEY")
# bs PORT ADDR LOGIN LINES...: an SMTP session with `exim -bs` as root, as
# the daemon would see it on PORT from ADDR (logged in as LOGIN): -oMi,
# -oMa, -oMai; for a port of no role (2525) and a client other than
# 127.0.0.1 (which SPF always allows)
bs() {
	local port=$1 addr=$2 login=$3 a=()
	shift 3
	[ -n "$login" ] && a=(-oMai "$login" -oMaa postroom_plain)
	printf '%s\r\n' "$@" | exim_run "$CONF" -odq -bs -oMa "$addr" -oMi "127.0.0.1.$port" "${a[@]}" 2>&1 | tr -d '\r'
}
other() { bs 2525 "$@"; }
# email_field SUBJECT SQL-EXPR: one value of the email with that subject
email_field() { psqlc "SELECT $2 FROM emails WHERE subject = '$1'"; }
rcpts() {
	psqlc "SELECT string_agg(r.address || ':' || r.type || ':' || r.delivered || ':' || (r.user_id IS NOT NULL), ' ' ORDER BY r.address)
	       FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.subject = '$1'"
}
alice_id=$(psqlc "SELECT id FROM users WHERE address = 'alice@example.com'")

# ---- AUTH: only inside TLS; PLAIN and LOGIN against postroom-authd ----------
out=$(sw "$P587" --quit-after EHLO)
unlike "$out" '250-AUTH' "submission without TLS: AUTH not offered"
out=$(sw "$P587" "${TLS[@]}" --quit-after EHLO)
like "$out" '250-AUTH PLAIN LOGIN' "submission after STARTTLS: AUTH PLAIN LOGIN offered"
authr() {	# MECH KEY: the reply to AUTH on submission (STARTTLS)
	local mech=$1 key=$2
	sw "$P587" "${TLS[@]}" --auth "$mech" --auth-user alice@example.com --auth-password "$key" \
		--quit-after AUTH | sed -n 's/^<[-~*]* \{1,\}\(23[0-9]\|5[0-9][0-9]\|4[0-9][0-9]\) /\1 /p' | tail -n 1
}
like "$(authr PLAIN "$KEY")" '^235 ' "AUTH PLAIN, good key: 235"
like "$(authr LOGIN "$KEY")" '^235 ' "AUTH LOGIN, good key: 235"
like "$(authr PLAIN "$(key_wrong "$KEY")")" '^535 ' "AUTH PLAIN, wrong key: 535"
like "$(authr LOGIN "$(key_wrong "$KEY")")" '^535 ' "AUTH LOGIN, wrong key: 535"
like "$(authr PLAIN "$KEY_IMAP")" '^535 ' "AUTH PLAIN, key without the smtp scope: 535"
like "$(authr LOGIN "$KEY_IMAP")" '^535 ' "AUTH LOGIN, key without the smtp scope: 535"
like "$(authr PLAIN "$KEY_REV")" '^235 ' "key about to be revoked: 235"
pctl key revoke "$REV_ID" >/dev/null
like "$(authr PLAIN "$KEY_REV")" '^535 ' "AUTH PLAIN, revoked key: 535 at once"
like "$(authr LOGIN "$KEY_REV")" '^535 ' "AUTH LOGIN, revoked key: 535"

# ---- envelope rules, MX mode on ------------------------------------------------
r=$(reply RCPT "$P25" someone@spf-ok.test alice@example.com)
like "$r" '^250 ' "MX, unauthenticated, hosted user: 250 ($r)"
r=$(reply RCPT "$P25" someone@spf-ok.test alice+news@example.com)
like "$r" '^250 ' "MX, sub-address of a hosted user: 250 ($r)"
r=$(reply RCPT "$P25" someone@spf-ok.test alice.alias@example.com)
like "$r" '^250 ' "MX, alias of a hosted user: 250 ($r)"
r=$(reply RCPT "$P25" someone@spf-ok.test victim@foreign.test)
is "$r" "554 5.7.1 Relay access denied" "MX, unauthenticated, foreign domain: 554 5.7.1 (relay attempt)"
r=$(reply RCPT "$P25" someone@spf-ok.test nobody@example.com)
is "$r" "550 5.1.1 User unknown" "MX, unknown user at a hosted domain: 550 5.1.1"
for to in 'user%foreign.test@example.com' '"user@foreign.test"@example.com' 'alice@sub.example.com'; do
	r=$(reply RCPT "$P25" someone@spf-ok.test "$to")
	like "$r" '^5[0-9][0-9] ' "MX, hostile $to: refused ($r)"
done
like "$(grep 'relay' "$TAP_TMP/policyd.log" | grep -c 'victim@foreign.test')" '^[1-9]' \
	"the relay attempt is logged by policyd"
r=$(reply MAIL "$P587" alice@example.com bob@example.com "${TLS[@]}")
is "$r" "530 5.7.0 Authentication required" "submission (STARTTLS), unauthenticated: 530 5.7.0 at MAIL"
r=$(reply MAIL "$P465" alice@example.com bob@example.com "${TLSC[@]}")
is "$r" "530 5.7.0 Authentication required" "submissions (TLS), unauthenticated: 530 5.7.0 at MAIL"
out=$(other 127.0.0.1 "" "EHLO client.test" "MAIL FROM:<someone@spf-ok.test>" "RCPT TO:<alice@example.com>" QUIT)
like "$out" '^530 5\.7\.0 Authentication required' "another port, unauthenticated: 530 5.7.0"
unlike "$out" '^250 Accepted' "another port, unauthenticated: no recipient accepted"

r=$(reply RCPT "$P587" alice@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
like "$r" '^250 ' "submission, authenticated, foreign recipient: 250 ($r)"
r=$(reply RCPT "$P465" alice.alias@example.com friend@foreign.test "${TLSC[@]}" "${AUTH[@]}")
like "$r" '^250 ' "submissions, authenticated, own alias as sender: 250 ($r)"
r=$(reply RCPT "$P465" '<>' friend@foreign.test "${TLSC[@]}" "${AUTH[@]}")
like "$r" '^250 ' "submissions, authenticated, null sender: 250 ($r)"
r=$(reply MAIL "$P587" bob@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
is "$r" "553 5.7.1 Sender address not owned by user" "authenticated, another user's address: 553 5.7.1"
r=$(reply RCPT "$P25" alice@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
like "$r" '^250 ' "MX port, authenticated: a submission, foreign recipient 250 ($r)"
out=$(other 127.0.0.1 alice@example.com "EHLO client.test" "MAIL FROM:<alice@example.com>" "RCPT TO:<friend@foreign.test>" QUIT)
like "$out" '^250 Accepted' "another port, authenticated: 250"

# ---- inbound mail stored ------------------------------------------------------------
printf 'attached text\n' >"$TAP_TMP/note.txt"
r=$(reply DATA "$P25" someone@spf-ok.test alice@example.com,bob@example.com,carol@example.com \
	--header "To: Alice <alice@example.com>" --header "Cc: bob@example.com" \
	--header "Subject: inbound one" --header "Message-Id: <in1@spf-ok.test>" \
	--header "X-Postroom-Submission: v=1; user=dave@example.com; ts=1; sig=00" \
	--header "X-Postroom-Verdict: v=1; spam=no; ts=1; sig=00" \
	--attach "$TAP_TMP/note.txt")
like "$r" '^250 OK id=' "MX, message to alice, bob and Bcc carol: accepted ($r)"
runq
is "$(email_field 'inbound one' 'count(*)')" 1 "stored once for three recipients"
is "$(rcpts 'inbound one')" "alice@example.com:to:true:true bob@example.com:cc:true:true carol@example.com:bcc:true:true" \
	"recipients linked to their users, all delivered; carol (envelope only) as bcc"
is "$(psqlc "SELECT a.filename FROM email_attachments a JOIN emails e ON e.id = a.email_id WHERE e.subject = 'inbound one'")" \
	"note.txt" "the attachment is stored"
raw=$(pctl mail raw "$(email_field 'inbound one' id)")
unlike "$raw" 'sig=00' "forged X-Postroom-* headers removed before storage"
unlike "$raw" 'X-Postroom-Submission' "no X-Postroom-Submission stored"
like "$(head -n 1 <<<"$raw")" '^X-Postroom-Verdict: v=1; spam=no; .*qid=[0-9A-Za-z-]+; ts=[0-9]+; sig=[0-9a-f]{64}$' \
	"policyd's signed verdict is the topmost header"
like "$raw" 'Received: from ' "Exim's Received: header kept"
unlike "$raw" '^From ' "no mbox From line (message_prefix empty)"
is "$(email_field 'inbound one' 'coalesce(sent_by_user_id::text, $$none$$) || spam')" "nonefalse" \
	"no sent_by (forged X-Postroom-Submission ignored), not spam (SPF pass)"

out=$(bs "$P25" 198.51.100.7 "" "EHLO client.test" "MAIL FROM:<someone@spf-fail.test>" "RCPT TO:<alice@example.com>" \
	DATA "Subject: spf fails" "" "hello" . QUIT)
like "$out" '^250 OK id=' "MX, SPF-failing sender: accepted, to be tagged"
runq
is "$(email_field 'spf fails' 'spam::text || $$ $$ || coalesce(spam_reason, $$-$$)')" "true spf=fail" \
	"stored as spam: policyd's signed verdict, added by the DATA ACL, verified by deliver"

r=$(reply DATA "$P25" bob@example.com alice@example.com --header "From: bob@example.com" \
	--header "Subject: Re: inbound one" --header "In-Reply-To: <in1@spf-ok.test>" \
	--header "References: <in1@spf-ok.test>")
like "$r" '^250 OK id=' "a reply to the first message: accepted ($r)"
runq
parent_thread=$(email_field 'inbound one' 'coalesce(thread_id, id)')
is "$(email_field 'Re: inbound one' thread_id)" "$parent_thread" "the reply is in the parent's thread"

# ---- postmaster (RFC 5321 4.5.1, issue 17 item 6) ---------------------------------
# example.com has no user or alias postmaster@example.com and no
# rules.postmaster_address: accepted all the same, stored unlinked
r=$(reply RCPT "$P25" reporter@spf-ok.test Postmaster)
like "$r" '^250 ' "MX, bare <Postmaster>: 250, qualified by qualify_recipient ($r)"
r=$(reply RCPT "$P25" reporter@spf-ok.test PostMaster@example.com)
like "$r" '^250 ' "MX, PostMaster@example.com, nobody's: 250, not 550 5.1.1 ($r)"
r=$(reply RCPT "$P25" reporter@spf-ok.test postmaster@foreign.test)
is "$r" "554 5.7.1 Relay access denied" "MX, postmaster@foreign.test: still 554 5.7.1 (relay attempt)"
r=$(reply DATA "$P25" reporter@spf-ok.test Postmaster --header "Subject: exim postmaster bare")
like "$r" '^250 OK id=' "MX, a report to the bare <Postmaster>: accepted ($r)"
r=$(reply DATA "$P25" reporter@spf-ok.test postmaster@example.com --header "Subject: exim postmaster domain")
like "$r" '^250 OK id=' "MX, a report to postmaster@example.com: accepted ($r)"
runq
like "$(rcpts 'exim postmaster bare')" '(^| )[Pp]ostmaster@example\.com:bcc:true:false$' \
	"the bare <Postmaster> is stored as postmaster@example.com (qualify_recipient), delivered, unlinked"
is "$(rcpts 'exim postmaster domain')" "postmaster@example.com:to:true:false" \
	"postmaster@example.com is stored, delivered, unlinked (deliver did not refuse it with 67)"

# ---- sent mail: unseen route --sent, remote copy relayed --------------------------
r=$(reply DATA "$P587" alice@example.com bob@example.com,friend@foreign.test,other@foreign.test "${TLS[@]}" "${AUTH[@]}" \
	--header "Subject: sent one" --header "X-Postroom-Verdict: v=1; spam=yes; ts=1; sig=00")
like "$r" '^250 OK id=' "authenticated message to bob and two foreign recipients: accepted ($r)"
runq
is "$(email_field 'sent one' 'count(*)')" 1 "stored once (bob's copy and the sent copy)"
is "$(email_field 'sent one' sent_by_user_id)" "$alice_id" "stored with sent_by = alice"
is "$(rcpts 'sent one' | tr ' ' '\n' | grep ':true:' | tr '\n' ' ')" "bob@example.com:to:true:true " \
	"in bob's mailbox only (the sent copy and the foreign recipients mark none)"
like "$(grep -c 'T=postroom_sent' "$MAINLOG")" '^[1-9]' "the unseen router postroom_sent delivered the copy"
relayed=$(grep -l '^Subject: sent one' "$SINKDIR"/* 2>/dev/null | head -n 1)
ok '[ -n "$relayed" ]' "the foreign recipients' copy was relayed to the smarthost"
ok '[ -n "$relayed" ] && ! grep -qi "^X-Postroom-" "$relayed"' "the relayed copy carries no X-Postroom-* header"
is "$(grep -c '^Subject: sent one' "$SINKDIR"/* 2>/dev/null | awk -F: '{ s += $NF } END { print s + 0 }')" 1 \
	"one relayed copy for both foreign recipients"

r=$(reply DATA "$P465" alice@example.com friend@foreign.test "${TLSC[@]}" "${AUTH[@]}" --header "Subject: sent two")
like "$r" '^250 OK id=' "authenticated message to a foreign recipient only: accepted ($r)"
runq
is "$(email_field 'sent two' 'sent_by_user_id::text || $$/$$ || (SELECT count(*) FROM email_recipients r WHERE r.email_id = emails.id AND delivered)')" \
	"$alice_id/0" "stored with sent_by = alice, in no mailbox"

# ---- a bounce of it through Exim's MX: stored, linked, suppressed (issue 21) --
mid=$(email_field 'sent two' message_id)
mid="<${mid#<}" && mid="${mid%>}>"
cat >"$TAP_TMP/dsn.eml" <<EOF2
From: MAILER-DAEMON@mx.foreign.test (Mail Delivery System)
To: alice@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn.exim.1@mx.foreign.test>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BX"

--BX
Content-Type: text/plain

Your message could not be delivered.

--BX
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.foreign.test

Final-Recipient: rfc822; friend@foreign.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <friend@foreign.test>: User unknown

--BX
Content-Type: text/rfc822-headers

From: alice@example.com
To: friend@foreign.test
Subject: sent two
Message-ID: $mid

--BX--
EOF2
r=$(reply DATA "$P25" "<>" alice@example.com --data "$TAP_TMP/dsn.eml")
like "$r" '^250 OK id=' "a DSN for it (null sender) on the MX: accepted ($r)"
runq
dsn=$(psqlc "SELECT id FROM emails WHERE message_id LIKE '%dsn.exim.1@mx.foreign.test%'")
is "$(psqlc "SELECT class FROM email_reports WHERE email_id = '${dsn:-00000000-0000-0000-0000-000000000000}'")" bounce-hard \
	"stored through Exim's postroom transport as bounce-hard"
is "$(psqlc "SELECT l.address || ' ' || l.kind FROM email_report_links l JOIN emails e ON e.id = l.sent_email_id WHERE e.subject = 'sent two'")" \
	"friend@foreign.test hard" "linked to the sent email and its recipient"
is "$(psqlc "SELECT count(*) FROM suppressions WHERE user_id = '$alice_id' AND address = 'friend@foreign.test'")" 1 \
	"friend@foreign.test is on alice's suppression list"
r=$(reply RCPT "$P587" alice@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
like "$r" '^550.5\.1\.1 .*suppress' "alice's next submission to it: refused at RCPT by policyd through Exim ($r)"
# the checks below send to it again
pctl suppression remove friend@foreign.test --user alice@example.com >/dev/null

# ---- remote_smtp strips X-Postroom-* by itself (second layer) -------------------
# A copy of the configuration without the ACL's remove_header queues an
# authenticated message that keeps its forged headers; the queue run of the
# shipped configuration relays it, so only the transport's headers_remove
# can take them out.
NOSTRIP=$XD/nostrip.conf
grep -v '^  warn    remove_header = X-Postroom-Submission : X-Postroom-Verdict$' "$CONF" >"$NOSTRIP"
chown root:root "$NOSTRIP" && chmod 644 "$NOSTRIP"
is "$(diff "$CONF" "$NOSTRIP" | grep -c '^<')" 1 "variant without the ACL's remove_header (one line less)"
out=$(printf '%s\r\n' "EHLO client.test" "MAIL FROM:<alice@example.com>" "RCPT TO:<friend@foreign.test>" DATA \
	"Subject: strip at transport" "X-Postroom-Submission: v=1; user=alice@example.com; ts=1; sig=00" \
	"X-Postroom-Verdict: v=1; spam=no; ts=1; sig=00" "" "hi" . QUIT |
	exim_run "$NOSTRIP" -odq -bs -oMa 127.0.0.1 -oMi "127.0.0.1.$P587" -oMai alice@example.com -oMaa postroom_plain 2>&1 |
	tr -d '\r')
like "$out" '^250 OK id=' "authenticated message with forged headers queued by the variant"
id=$(sed -n 's/^250 OK id=//p' <<<"$out")
is "$(grep -Ec '^[0-9]{3}[A-Z* ] X-Postroom-(Submission|Verdict):' "$XD/spool/input/$id-H" 2>/dev/null)" 2 \
	"both forged headers are in the queued message"
runq
relayed=$(grep -l '^Subject: strip at transport' "$SINKDIR"/* 2>/dev/null | head -n 1)
ok '[ -n "$relayed" ]' "relayed to the smarthost by the shipped configuration"
ok '[ -n "$relayed" ] && ! grep -qi "^X-Postroom-" "$relayed"' "remote_smtp's headers_remove took them out"

# ---- a forged X-Postroom-Submission from an unauthenticated sender ---------------
r=$(reply DATA "$P25" someone@spf-ok.test bob@example.com --header "Subject: forged submission" \
	--header "X-Postroom-Submission: v=1; user=alice@example.com; ts=$(date +%s); sig=$(printf '0%.0s' $(seq 64))")
like "$r" '^250 OK id=' "MX, unauthenticated message with a forged X-Postroom-Submission: accepted ($r)"
runq
is "$(email_field 'forged submission' 'coalesce(sent_by_user_id::text, $$none$$)')" none "no sent_by"
unlike "$(pctl mail raw "$(email_field 'forged submission' id)")" 'X-Postroom-Submission' "the forged header is not stored"
is "$(grep -c "R=postroom_sent" <(grep "$(sed -n 's/^250 OK id=//p' <<<"$r")" "$MAINLOG"))" 0 "no sent copy routed"

# ---- sizes ---------------------------------------------------------------------------
size_mail() {	# SIZE: the reply to MAIL FROM with SIZE=
	python3 - "$P25" "$1" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), "client.test", timeout=30)
s.ehlo("client.test")
print(s.has_extn("size") and s.esmtp_features["size"])
code, msg = s.mail("someone@spf-ok.test", ["SIZE=" + sys.argv[2]])
print(code, msg.decode())
s.quit()
PY
}
out=$(size_mail 52428801)
like "$out" '^52428800' "EHLO advertises SIZE 52428800"
like "$out" '552 .*' "MAIL FROM with SIZE=52428801: 552 ($(echo "$out" | tail -n 1))"
like "$(size_mail 1000 | tail -n 1)" '^250 ' "MAIL FROM with SIZE=1000: 250"
# 912,000 lines of 56 characters: 51,984,000 bytes with LF (under Exim's own
# limit), 52,896,000 with CRLF (over postroom's): the DATA ACL refuses it
out=$(python3 - "$P25" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), "client.test", timeout=120)
s.ehlo("client.test")
s.mail("someone@spf-ok.test")
s.rcpt("alice@example.com")
body = ("x" * 56 + "\r\n") * 912000
msg = "Subject: too big\r\n\r\n" + body
try:
    code, text = s.data(msg.encode())
except smtplib.SMTPResponseException as e:
    code, text = e.smtp_code, e.smtp_error
print(code, text.decode())
PY
)
is "$out" "552 5.3.4 Message size exceeds fixed limit" "over the CRLF size at end of data: 552 5.3.4"
is "$(email_field 'too big' 'count(*)')" 0 "nothing stored"

# ---- PostgreSQL stopped -----------------------------------------------------------
r=$(reply DATA "$P25" someone@spf-ok.test alice@example.com --header "Subject: while down")
like "$r" '^250 OK id=' "a message queued before PostgreSQL stops ($r)"
qid=$(sed -n 's/^250 OK id=//p' <<<"$r")
pg_server_stop
r=$(reply RCPT "$P25" someone@spf-ok.test dave@example.com)
like "$r" '^451 4\.3\.0 ' "PostgreSQL stopped: RCPT 451 4.3.0, policyd fails closed ($r)"
r=$(reply RCPT "$P25" someone@spf-ok.test victim@foreign.test)
like "$r" '^[45][0-9][0-9] ' "PostgreSQL stopped: a relay attempt is never accepted ($r)"
runq
like "$(grep "$qid == alice@example.com" "$MAINLOG")" 'T=postroom_deliver defer .*returned 75' \
	"the queued delivery is deferred (deliver's 75 is in temp_errors)"
like "$(grep "$qid <alice@example.com>: postroom_deliver transport output" "$MAINLOG")" 'output: 4\.3\.0 ' \
	"deliver's reason (4.3.0) in Exim's log (log_defer_output)"
ok 'exim_run "$CONF" -bp | grep -q "$qid"' "and stays in Exim's queue"
pg_server_start
runq
runq
is "$(email_field 'while down' 'count(*)')" 1 "PostgreSQL back, queue run: stored exactly once"
ok '! exim_run "$CONF" -bp | grep -q "$qid"' "the queue is empty of it"
like "$(grep "$qid => alice <alice@example.com>" "$MAINLOG")" 'R=postroom T=postroom_deliver' "Exim logs the delivery"

# ---- MX mode off (policyd reloads on SIGHUP) --------------------------------------
sed -i 's/mx_enabled = true;/mx_enabled = false;/' "$PD_CONF"
kill -HUP "$PD_PID"
for i in $(seq 50); do
	r=$(reply MAIL "$P25" someone@spf-ok.test alice@example.com)
	[ "$r" = "530 5.7.0 Authentication required" ] && break
	sleep 0.1
done
is "$r" "530 5.7.0 Authentication required" "MX mode off, MX port, unauthenticated: 530 5.7.0"
r=$(reply RCPT "$P25" alice@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
like "$r" '^250 ' "MX mode off, MX port, authenticated: 250 ($r)"
r=$(reply RCPT "$P587" alice@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
like "$r" '^250 ' "MX mode off, submission, authenticated: 250 ($r)"

# ---- policyd stopped: fail closed --------------------------------------------------
pd_stop
r=$(reply RCPT "$P587" alice@example.com friend@foreign.test "${TLS[@]}" "${AUTH[@]}")
is "$r" "451 4.3.0 policy service unavailable" "policyd down, authenticated submission: 451 4.3.0"
r=$(reply MAIL "$P25" someone@spf-ok.test alice@example.com)
is "$r" "451 4.3.0 policy service unavailable" "policyd down, MX: 451 4.3.0, never 250"

exim_daemon_stop
authd_stop
ok 'authd_log_clean' "no sanitizer report from authd"
ok '! grep -Eq "Sanitizer|runtime error:" "$TAP_TMP/policyd.log"' "no sanitizer report from policyd"
ok '! grep -q "panic" "$XD/log/paniclog" 2>/dev/null' "Exim's panic log is empty"
done_testing
