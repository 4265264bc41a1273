#!/usr/bin/env bash
# milter-postfix.sh - postroom-milter behind a real Postfix on loopback:
# every row of MISSION.md's envelope-rule tables as the SMTP client (swaks)
# sees it, on the MX service, submission (STARTTLS), submissions (implicit
# TLS) and another service; authentication through postroom-authd; the
# signed submission header end to end (verified on the delivered copy,
# absent from the relayed copy); the sent copy; the size limit at end of
# data; an attachment over the attachment limit (552 5.3.4, no DSN); the
# database stopped (451 4.3.0, never 250); defence in depth with
# a service deliberately loosened to relay for its clients; MX mode off.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"

TOOL="$POSTROOM_BUILDDIR/tests/milter/sighdr-tool"
[ -x "$TOOL" ] || make -C "$POSTROOM_BUILDDIR" tests/milter/sighdr-tool >/dev/null 2>&1

pg_start || { fail "PostgreSQL starts"; done_testing; }
pg_fresh_db milter || { fail "database created"; done_testing; }
pctl domain add example.com >/dev/null
pctl user add alice@example.com >/dev/null
pctl user add bob@example.com >/dev/null
pctl user add carol@example.com >/dev/null
pctl alias add alice.alias@example.com alice@example.com >/dev/null
milter_conf "security = { hmac_secret = \"$MILTER_SECRET\"; };"

# authentication: postroom-authd when it exists (never faked)
HAVE_AUTHD=0
if [ -x "$POSTROOM_BUILDDIR/postroom-authd" ] && [ -f "$POSTROOM_SRCDIR/tests/lib/authd.sh" ]; then
	. "$POSTROOM_SRCDIR/tests/lib/authd.sh"
	if authd_start "$POSTROOM_CONF" "$TAP_TMP/authd"; then
		KEY=$(pctl key create alice@example.com --scope smtp | awk '/^key:/ { print $2 }')
		# it must answer a real PLAIN attempt before the rows rely on it
		probe=$(timeout 15 python3 "$POSTROOM_SRCDIR/tests/lib/authd_client.py" "$AUTHD_SOCKET" \
			auth alice@example.com "$KEY" 2>&1)
		case $probe in
		OK*) HAVE_AUTHD=1 ;;
		*) diag "postroom-authd does not authenticate yet: $(printf '%s' "$probe" | tail -n 1)" ;;
		esac
	else
		diag "postroom-authd does not start"
	fi
fi
[ "$HAVE_AUTHD" = 1 ] || diag "postroom-authd not available: the authenticated rows are skipped"

MILTER_PORT=$(free_port)
OTHER=$(free_port)
LOOSE=$(free_port)
SINK=$(free_port)
SAVE="$TAP_TMP/saved"
SINKDIR="$TAP_TMP/sink"
mkdir -p "$SAVE" "$SINKDIR" && chmod 1777 "$SAVE" "$SINKDIR"

# postroom-deliver behind the pipe services (carol's mailbox, the sent
# copy), as the cluster's owner so that it reaches the test database
DUSER=$(milter_user)
DCONF="$TAP_TMP/deliver.conf"
cp "$POSTROOM_CONF" "$DCONF" && chown "$DUSER" "$DCONF" 2>/dev/null
HAVE_DELIVER=0
[ -x "$POSTROOM_BUILDDIR/postroom-deliver" ] && HAVE_DELIVER=1

# an outside MX that records what is relayed to it
smtp-sink -u nobody -d "$SINKDIR/%H%M%S." "127.0.0.1:$SINK" 20 >/dev/null 2>&1 &
SINK_PID=$!
at_exit "kill $SINK_PID"

PF_MAIN_EXTRA=(
	"smtpd_milters = inet:127.0.0.1:$MILTER_PORT"
	"milter_default_action = tempfail"
	"milter_protocol = 6"
	"relay_domains = example.com"
	"mynetworks = 192.0.2.1/32"
	"smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination"
	"message_size_limit = 1048576"
	"smtputf8_enable = yes"
	"transport_maps = inline:{bob@example.com=savemail:, example.com=postroom:, postroom.invalid=postroom-sent:, foreign.org=smtp:[127.0.0.1]:$SINK}"
	"savemail_destination_recipient_limit = 1"
	"postroom_destination_recipient_limit = 1"
	"postroom-sent_destination_recipient_limit = 1"
	"smtp_header_checks = regexp:$POSTROOM_SRCDIR/contrib/postfix/postroom_header_checks"
)
if [ "$HAVE_AUTHD" = 1 ]; then
	PF_MAIN_EXTRA+=("smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = dovecot"
		"smtpd_sasl_path = $AUTHD_SOCKET" "smtpd_tls_auth_only = yes")
fi
PF_SMTPD_OPTS_SUB=("milter_macro_daemon_name=ORIGINATING")
PF_SMTPD_OPTS_SUBS=("milter_macro_daemon_name=ORIGINATING")
PF_MASTER_EXTRA="127.0.0.1:$OTHER inet n - n - - smtpd
127.0.0.1:$LOOSE inet n - n - - smtpd
  -o syslog_name=postfix/loose
  -o milter_macro_daemon_name=LOOSE
  -o mynetworks=127.0.0.0/8
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o local_recipient_maps=
savemail unix - n n - - pipe
  user=nobody argv=/bin/sh -c { exec cat > $SAVE/\${queue_id}.\${recipient} }
postroom unix - n n - - pipe
  flags=hu user=$DUSER null_sender= argv=$POSTROOM_BUILDDIR/postroom-deliver -c $DCONF -f \${sender} -a \${sasl_username} -C \${client_address} -q \${queue_id} -- \${recipient}
postroom-sent unix - n n - - pipe
  flags=hu user=$DUSER null_sender= argv=$POSTROOM_BUILDDIR/postroom-deliver -c $DCONF --sent -f \${sender} -a \${sasl_username} -C \${client_address} -q \${queue_id} -- \${recipient}"
pf_start || { fail "Postfix starts"; done_testing; }
pass "Postfix starts with MX, submission, submissions, another and a loosened service"

# the MX service is recognised by its port ({daemon_port}, asked for with
# smfi_setsymlist), the others by milter_macro_daemon_name
milter_conf 'limits = { message_size_max = 65536; attachment_size_max = 1024; };' \
	"rules = { mx_enabled = true; port_roles = \"$PF_PORT_MX=mx ORIGINATING=submission LOOSE=mx\"; sent_recipient = \"sent@postroom.invalid\"; };" \
	"milter = { socket = \"@MILTER_SOCK@\"; user = \"$(milter_user)\"; };"
milter_start || { fail "postroom-milter starts"; done_testing; }
pass "postroom-milter starts"

TLS=(--tls)
TLSC=(--tls-on-connect)
AUTH=(--auth PLAIN --auth-user alice@example.com --auth-password "${KEY:-none}")

# ---- MX service, unauthenticated ---------------------------------------
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org alice@example.com)
like "$r" '^250 ' "MX, unauthenticated, hosted user: 250 ($r)"
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org alice+news@example.com)
like "$r" '^250 ' "MX, sub-address of a hosted user: 250 ($r)"
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org victim@foreign.org)
like "$r" '^554 5\.7\.1 .*Relay access denied$' "MX, foreign domain: 554 5.7.1 Relay access denied ($r)"
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org nobody@example.com)
is "$r" "550 5.1.1 User unknown" "MX, unknown user at a hosted domain: 550 5.1.1 User unknown"
for to in 'user%foreign.org@example.com' 'foreign.org!user@example.com' '@example.com:user@foreign.org' \
	'"user@foreign.org"@example.com' 'user@[127.0.0.1]' 'alice@sub.example.com'; do
	r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org "$to")
	like "$r" '^5[0-9][0-9] ' "MX, hostile $to: refused ($r)"
done

# a whole message: forged internal headers never reach the mailbox
r=$(smtp_reply DATA "$PF_PORT_MX" someone@foreign.org bob@example.com,carol@example.com \
	--header "X-Postroom-Submission: v=1; user=alice@example.com; ts=1; sig=00" \
	--header "X-Postroom-Verdict: v=1; spam=no; ts=1; sig=00" --header "Subject: forged")
like "$r" '^250 ' "MX, unauthenticated message to bob: queued ($r)"
qid=$(printf '%s' "$r" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p')
for i in $(seq 50); do [ -s "$SAVE/$qid.bob@example.com" ] && break; sleep 0.1; done
ok '[ -s "$SAVE/$qid.bob@example.com" ]' "delivered to the mailbox transport"
ok '! grep -qi "^X-Postroom-Submission:" "$SAVE/$qid.bob@example.com"' "forged X-Postroom-Submission removed"
ok '! grep -qi "^X-Postroom-Verdict:" "$SAVE/$qid.bob@example.com"' "forged X-Postroom-Verdict removed"
ok 'grep -q "^Subject: forged" "$SAVE/$qid.bob@example.com"' "the rest of the message intact"
if [ "$HAVE_DELIVER" = 1 ]; then
	for i in $(seq 100); do pf_queue_empty && break; sleep 0.1; done
	is "$(psqlc "SELECT coalesce(sent_by_user_id::text, 'none') FROM emails WHERE subject = 'forged'")" none \
		"stored by postroom-deliver with no sent_by"
fi

# size, counted at end of data although no SIZE= was given
r=$(smtp_reply DATA "$PF_PORT_MX" someone@foreign.org alice@example.com \
	--body "$(head -c 70000 /dev/zero | tr '\0' 'x' | fold -w 998)")
is "$r" "552 5.3.4 Message size exceeds fixed limit" "MX, 70 KB message over a 64 KB limit: 552 5.3.4 at end of data"

# an attachment over limits.attachment_size_max (1024 bytes decoded): 552
# 5.3.4 at end of data, before Postfix has accepted anything, so no
# delivery status notification can go to a forged sender (backscatter)
att_msg() {	# att_msg FILE SUBJECT N: a message with an attachment of N bytes (base64)
	python3 - "$@" <<-'EOF'
	import base64, sys
	f, subj, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
	att = base64.encodebytes((b"0123456789abcdef" * (n // 16 + 1))[:n]).decode().replace("\n", "\r\n")
	open(f, "w", newline="").write(
	    "From: someone@foreign.org\r\nTo: alice@example.com\r\nSubject: %s\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; filename=a.bin\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n%s--b1--\r\n" % (subj, att))
	EOF
}
att_msg "$TAP_TMP/att-over.eml" att-over 1025
att_msg "$TAP_TMP/att-limit.eml" att-limit 1024
r=$(smtp_reply DATA "$PF_PORT_MX" someone@foreign.org alice@example.com --data "$TAP_TMP/att-over.eml")
is "$r" "552 5.3.4 attachment of 1025 bytes exceeds the limit of 1024 bytes" \
	"MX, an attachment 1 byte over attachment_size_max: 552 5.3.4 at end of data"
r=$(smtp_reply DATA "$PF_PORT_MX" someone@foreign.org alice@example.com --data "$TAP_TMP/att-limit.eml")
like "$r" '^250 ' "MX, an attachment of exactly attachment_size_max: queued ($r)"
for i in $(seq 100); do pf_queue_empty && break; sleep 0.1; done
ok pf_queue_empty "no bounce in the queue after the refused attachment (queue empty)"
like "$(cat "$PF_LOG")" 'milter-reject: END-OF-MESSAGE from [^ ]*: 5\.3\.4 attachment of 1025 bytes' \
	"Postfix logged the milter's refusal at end of message"
unlike "$(cat "$PF_LOG")" 'status=bounced|sender non-delivery notification' \
	"Postfix logged no bounce and no non-delivery notification"
if [ "$HAVE_DELIVER" = 1 ]; then
	is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'att-over'")" 0 "the refused message was not stored"
	is "$(psqlc "SELECT count(*) FROM email_attachments a JOIN emails e ON e.id = a.email_id WHERE e.subject = 'att-limit' AND a.size_bytes = 1024")" 1 \
		"the one at the limit was stored with its 1024-byte attachment"
fi

# ---- submission services and another service, unauthenticated -----------
r=$(smtp_reply MAIL "$PF_PORT_SUB" alice@example.com bob@example.com "${TLS[@]}")
is "$r" "530 5.7.0 Authentication required" "submission (STARTTLS), unauthenticated: 530 5.7.0 Authentication required"
r=$(smtp_reply MAIL "$PF_PORT_SUBS" alice@example.com bob@example.com "${TLSC[@]}")
is "$r" "530 5.7.0 Authentication required" "submissions (implicit TLS), unauthenticated: 530 5.7.0"
r=$(smtp_reply MAIL "$OTHER" someone@foreign.org alice@example.com)
is "$r" "530 5.7.0 Authentication required" "other service, unauthenticated: 530 5.7.0"

# ---- authenticated (postroom-authd) ---------------------------------------
if [ "$HAVE_AUTHD" = 1 ]; then
	r=$(smtp_reply RCPT "$PF_PORT_SUB" alice@example.com friend@foreign.org "${TLS[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "submission, authenticated, own address, foreign recipient: 250 ($r)"
	r=$(smtp_reply RCPT "$PF_PORT_SUBS" alice.alias@example.com friend@foreign.org "${TLSC[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "submissions, authenticated, own alias: 250 ($r)"
	r=$(smtp_reply RCPT "$PF_PORT_SUBS" '<>' friend@foreign.org "${TLSC[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "submissions, authenticated, null sender: 250 ($r)"
	r=$(smtp_reply MAIL "$PF_PORT_SUB" bob@example.com friend@foreign.org "${TLS[@]}" "${AUTH[@]}")
	is "$r" "553 5.7.1 Sender address not owned by user" "authenticated, another user's address: 553 5.7.1"
	r=$(smtp_reply RCPT "$PF_PORT_MX" alice@example.com friend@foreign.org "${TLS[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "MX port, authenticated: a submission, foreign recipient 250 ($r)"
	r=$(smtp_reply RCPT "$OTHER" alice@example.com friend@foreign.org "${TLS[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "other service, authenticated: 250 ($r)"

	# the signed header, end to end: bob's copy carries it, the relayed
	# copy does not, the sent copy goes to the store's sent route
	r=$(smtp_reply DATA "$PF_PORT_SUB" alice@example.com "bob@example.com,carol@example.com,friend@foreign.org" "${TLS[@]}" "${AUTH[@]}" \
		--header "X-Postroom-Submission: v=1; user=bob@example.com; ts=1; sig=00" --header "Subject: signed")
	like "$r" '^250 ' "authenticated message to bob and friend@foreign.org: queued ($r)"
	qid=$(printf '%s' "$r" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p')
	f="$SAVE/$qid.bob@example.com"
	for i in $(seq 100); do [ -s "$f" ] && ls "$SINKDIR"/* >/dev/null 2>&1 && pf_queue_empty && break; sleep 0.1; done
	is "$(grep -ci '^X-Postroom-Submission:' "$f")" 1 "bob's copy has exactly one X-Postroom-Submission"
	hv=$(sed -n 's/^X-Postroom-Submission: *//Ip' "$f" | head -n 1)
	mid=$(sed -n 's/^Message-I[Dd]: *//Ip' "$f" | head -n 1)
	v=$("$TOOL" verify "$MILTER_SECRET" X-Postroom-Submission "$hv" "$mid" "$qid")
	like "$v" $'^ok\n.*user=alice@example.com' "it verifies for this Message-Id and queue id: user=alice@example.com"
	like "$("$TOOL" verify "$MILTER_SECRET" X-Postroom-Submission "$hv" "$mid" 4QOTHER)" '^fail' \
		"copied to another queue id it does not verify"
	ok 'grep -q "postroom-sent.*sent@postroom.invalid\|to=<sent@postroom.invalid>.*relay=postroom-sent" "$PF_LOG"' \
		"sent copy routed by the added recipient sent@postroom.invalid to postroom-sent"
	if [ "$HAVE_DELIVER" = 1 ]; then
		alice_id=$(psqlc "SELECT id FROM users WHERE address = 'alice@example.com'")
		is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'signed'")" 1 \
			"postroom-deliver stored the message once (carol's copy and the sent copy)"
		is "$(psqlc "SELECT sent_by_user_id FROM emails WHERE subject = 'signed'")" "$alice_id" \
			"stored with sent_by = alice"
		is "$(psqlc "SELECT string_agg(lower(address) || ':' || delivered, ',' ORDER BY address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.subject = 'signed' AND delivered")" \
			"carol@example.com:true" "in carol's mailbox only (the sent copy marks no mailbox)"
	fi
	relayed=$(grep -l "^Subject: signed" "$SINKDIR"/* 2>/dev/null | head -n 1)
	ok '[ -n "$relayed" ]' "the foreign recipient's copy was relayed to the outside MX"
	ok '[ -n "$relayed" ] && ! grep -qi "^X-Postroom-" "$relayed"' \
		"the relayed copy carries no X-Postroom-* header (smtp_header_checks)"
fi

# ---- defence in depth: a service loosened to relay for 127.0.0.0/8 --------
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org alice@example.com)
like "$r" '^250 ' "loosened service: hosted user still 250 ($r)"
for to in 'victim@foreign.org' 'user%foreign.org@example.com' 'foreign.org!user@example.com' \
	'@example.com:user@foreign.org' '"user@foreign.org"@example.com' '"user%foreign.org"@example.com' \
	'user@[127.0.0.1]' 'alice@sub.example.com' 'alice@example.com.foreign.org'; do
	r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org "$to")
	is "$r" "554 5.7.1 Relay access denied" "loosened service, $to: the milter refuses (554 5.7.1)"
done
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org 'foreign.org!user')
like "$r" '^5[0-9][0-9] ' "loosened service, bare bang path: refused ($r)"
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org "$(printf 'a%.0s' $(seq 65))@example.com")
like "$r" '^5[0-9][0-9] ' "loosened service, 65-octet local part: refused ($r)"
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org nobody@example.com)
is "$r" "550 5.1.1 User unknown" "loosened service, unknown user: 550 5.1.1"
like "$(cat "$MILTER_LOG")" 'warning: [0-9A-Za-z]+: relay attempt refused: RCPT TO <victim@foreign.org> from 127\.0\.0\.1' \
	"relay attempt logged as a warning with queue id and client address"

# ---- the database stopped: 451 4.3.0 at RCPT, never 250 --------------------
pg_server_stop
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org alice@example.com)
like "$r" '^451 4\.3\.0 ' "database stopped: hosted user gets 451 4.3.0 ($r)"
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org alice@example.com)
like "$r" '^451 4\.3\.0 ' "database stopped, loosened service: 451 4.3.0, never 250 ($r)"
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org victim@foreign.org)
like "$r" '^4[0-9][0-9] ' "database stopped, foreign domain: tempfail, never 250 or 5xx by guess ($r)"
pg_server_start
for i in $(seq 50); do
	r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.org alice@example.com)
	case $r in 250*) break ;; esac
	sleep 0.2
done
like "$r" '^250 ' "database back: 250 again ($r)"

# ---- the milter down: Postfix tempfails (milter_default_action) -----------
milter_stop
r=$(smtp_reply RCPT "$LOOSE" someone@foreign.org victim@foreign.org)
like "$r" '^4[0-9][0-9] ' "milter down, loosened service: Postfix tempfails, never relays ($r)"

# ---- MX mode off: unauthenticated refused everywhere -----------------------
sed -i 's/mx_enabled = true;/mx_enabled = false;/' "$POSTROOM_CONF"
milter_start || fail "postroom-milter restarts with MX mode off"
r=$(smtp_reply MAIL "$PF_PORT_MX" someone@foreign.org alice@example.com)
is "$r" "530 5.7.0 Authentication required" "MX mode off, MX port, unauthenticated: 530 5.7.0"
r=$(smtp_reply MAIL "$LOOSE" someone@foreign.org alice@example.com)
is "$r" "530 5.7.0 Authentication required" "MX mode off, loosened service: 530 5.7.0"
if [ "$HAVE_AUTHD" = 1 ]; then
	r=$(smtp_reply RCPT "$PF_PORT_SUB" alice@example.com friend@foreign.org "${TLS[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "MX mode off, submission, authenticated: 250 ($r)"
	r=$(smtp_reply RCPT "$PF_PORT_MX" alice@example.com friend@foreign.org "${TLS[@]}" "${AUTH[@]}")
	like "$r" '^250 ' "MX mode off, MX port, authenticated: 250 ($r)"
fi
if [ "$HAVE_AUTHD" = 1 ]; then	# last: failures make authd block this client for a while
	r=$(smtp_reply MAIL "$PF_PORT_SUB" alice@example.com bob@example.com "${TLS[@]}" \
		--auth PLAIN --auth-user alice@example.com --auth-password pr_wrongwrongwrongwrongwrongwrongwrongwrong)
	like "$r" '^535 ' "wrong API key: 535 ($r)"
	r=$(smtp_reply MAIL "$PF_PORT_SUB" alice@example.com bob@example.com "${TLS[@]}")
	is "$r" "530 5.7.0 Authentication required" "and without a successful AUTH: 530 5.7.0"
fi
milter_stop_check
done_testing
