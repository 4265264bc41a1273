#!/usr/bin/env bash
# bounce-postfix.sh - bounces, auto-replies and complaints (issue 21)
# through a real Postfix set up from contrib/postfix (tests/lib/pipeline.sh:
# milter, policyd, deliver behind pipe(8), every daemon as its own role):
# - alice submits (587, AUTH) to a remote address; Postfix relays it to
#   the "remote" MX, a second private Postfix (tests/lib/postfix.sh) that
#   relays remote.example with relay_recipient_maps listing only
#   somebody@: it refuses nobody@ at RCPT with 550 5.1.1 (User unknown in
#   relay recipient table) and, on that refusal, the first Postfix itself
#   writes the DSN (null sender, multipart/report) and delivers it to alice
#   through deliver;
#   it is stored as bounce-hard, linked to alice's sent copy (the milter's
#   sent recipient) and to that address, which lands on alice's
#   suppression list;
# - alice's next submission to it is refused at RCPT with 550 5.1.1
#   naming the suppression (milter and policyd), another address is not;
# - through the MX port, as other sites send them: a delayed DSN (delay,
#   nothing suppressed), an RFC 3834 auto-reply, an ARF complaint (its
#   recipient suppressed) and a mailing-list message with Auto-Submitted
#   (ordinary, never an auto-reply);
# - with milter.verp on, alice's submission goes out from
#   alice+verp-TOKEN@domain; the remote bounces it itself with the
#   Message-ID dropped: its DSN is linked by the VERP address alone, the
#   address suppressed, the next send refused; a DSN to a forged VERP
#   address is stored but linked to nothing;
# - a private Exim as the remote (tests/lib/exim.sh): its own DSN for an
#   address it fails in routing is classified, linked and suppressed.
# Needs root, postfix, swaks, jq.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh" # smtp_reply

pipeline_start || { fail "pipeline starts"; done_testing; }
pass "pipeline starts (Postfix from contrib/postfix, milter, policyd, deliver)"
D=$PIPELINE_DOMAIN
A=alice@$D
KEY=$PIPELINE_KEY
TLS=(--tls)
AUTH=(--auth PLAIN --auth-user "$A" --auth-password "$KEY")
ALICE_ID=$(psqlc "SELECT id FROM users WHERE address = '$A'")
# every foreign domain: the MX of remote.example, a second private Postfix
# knowing one user (somebody@); others are refused at RCPT (550 5.1.1)
# (pf_start sets PF_*: the pipeline's are kept and put back)
S_PF=$(declare -p PF_DIR PF_CONF PF_LOG PF_PORT_MX PF_PORT_SUB PF_PORT_SUBS PF_MASTER_PID)
PF_DOMAIN=remote.example
PF_MAIN_EXTRA=("relay_recipient_maps = inline:{ somebody@remote.example=ok }")
pf_start "$TAP_TMP/remote" || { fail "the remote Postfix starts"; done_testing; }
R_PF_CONF=$PF_CONF R_PF_LOG=$PF_LOG R_PORT_MX=$PF_PORT_MX
at_exit "PF_CONF=$R_PF_CONF PF_MASTER_PID=$PF_MASTER_PID pf_stop"
eval "$S_PF"
r=$(smtp_reply RCPT "$R_PORT_MX" someone@elsewhere.example nobody@remote.example)
like "$r" '^550 5\.1\.1 .*User unknown' "the remote Postfix refuses nobody@remote.example itself ($r)"
postconf -c "$PF_CONF" -e "default_transport = smtp:[127.0.0.1]:$R_PORT_MX" && pipeline_postfix_reload

email_of() { psqlc "SELECT id FROM emails WHERE trim(both '<>' from message_id) = '$1' ORDER BY received_at LIMIT 1"; }
class_of() { psqlc "SELECT COALESCE((SELECT class FROM email_reports WHERE email_id = '$1'), 'ordinary')"; }
supp() { psqlc "SELECT count(*) FROM suppressions WHERE user_id = '$ALICE_ID' AND address = '$1'"; }

r=$(smtp_reply DATA "$PF_PORT_SUB" "$A" nobody@remote.example "${TLS[@]}" "${AUTH[@]}" \
	--header "From: Alice <$A>" --header "Subject: hello there" --header "Message-ID: <bp-sent-1@$D>" \
	--body "hello")
like "$r" '^250 ' "alice's submission to nobody@remote.example is queued ($r)"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-sent-1@$D' AND sent_by_user_id = '$ALICE_ID'" 1 30
SENT=$(email_of "bp-sent-1@$D")
ok '[ -n "$SENT" ]' "the sent copy is stored with sent_by = alice"
pf_wait_log 'to=<nobody@remote.example>.*status=bounced' 60
rc=$?
is "$rc" 0 "Postfix bounces it (the remote MX refused the recipient)"
[ "$rc" -eq 0 ] || grep -E 'nobody@remote|smtp\[' "$PF_LOG" | tail -n 5 | sed 's/^/# /'
like "$(grep -E 'to=<nobody@remote\.example>.*status=bounced' "$PF_LOG" | head -n 1)" \
	'said: 550 5\.1\.1 <nobody@remote\.example>: Recipient address rejected: User unknown in relay recipient table' \
	"... on the remote Postfix's own 550 5.1.1 reply"
ok "grep -E 'NOQUEUE: reject: RCPT from .*<nobody@remote\.example>' '$R_PF_LOG' | grep -vq 'helo=<client\.example>'" \
	"the remote Postfix logged its refusal of the first Postfix's RCPT"
pipeline_wait_sql "SELECT count(*) FROM email_reports r JOIN email_report_links l ON l.report_email_id = r.email_id WHERE l.sent_email_id = '$SENT'" 1 30
DSN=$(psqlc "SELECT report_email_id FROM email_report_links WHERE sent_email_id = '$SENT' LIMIT 1")
ok '[ -n "$DSN" ]' "Postfix's DSN is stored and linked to the sent email"
is "$(class_of "$DSN")" bounce-hard "the DSN's class: bounce-hard"
is "$(psqlc "SELECT address || ' ' || kind FROM email_report_links WHERE report_email_id = '$DSN'")" \
	"nobody@remote.example hard" "linked to the recipient it reports on"
like "$(psqlc "SELECT status || ' ' || diagnostic FROM email_report_recipients WHERE email_id = '$DSN'")" '^5\.1\.1 smtp; 550 5\.1\.1 ' \
	"with the DSN's status and Diagnostic-Code"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE email_id = '$DSN' AND user_id = '$ALICE_ID' AND delivered")" 1 \
	"the DSN is in alice's mailbox"
is "$(supp nobody@remote.example)" 1 "nobody@remote.example is on alice's suppression list"
is "$(pctl --json mail show "$SENT" | jq -r '.reports[0].class + " " + .reports[0].address')" \
	"bounce-hard nobody@remote.example" "postroomctl --json mail show on the sent email lists the bounce"

r=$(smtp_reply RCPT "$PF_PORT_SUB" "$A" nobody@remote.example "${TLS[@]}" "${AUTH[@]}")
like "$r" '^550 5\.1\.1 .*suppress' "the next submission to it is refused at RCPT: $r"
r=$(smtp_reply RCPT "$PF_PORT_SUB" "$A" somebody@remote.example "${TLS[@]}" "${AUTH[@]}")
like "$r" '^250 ' "another address is accepted ($r)"
# the milter alone refuses too: policyd's restriction taken out
postconf -c "$PF_CONF" -e "smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination" &&
	pipeline_postfix_reload
r=$(smtp_reply RCPT "$PF_PORT_SUB" "$A" nobody@remote.example "${TLS[@]}" "${AUTH[@]}")
like "$r" '^550 5\.1\.1 .*suppress' "without policyd, the milter refuses it: $r"

# mx MSGFILE: deliver a message from another site to alice on the MX port
mx() {
	swaks --server 127.0.0.1 --port "$PF_PORT_MX" --ehlo mx.remote.example --from "$1" --to "$A" \
		--data "$2" --timeout 20 >"$TAP_TMP/swaks.out" 2>&1
}
cat >"$TAP_TMP/delay.eml" <<EOF2
From: MAILER-DAEMON@mx.remote.example
To: $A
Subject: Delayed Mail (still being retried)
Message-ID: <bp-delay-1@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="d1"

--d1
Content-Type: text/plain

Still trying.

--d1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; slow@remote.example
Action: delayed
Status: 4.4.1

--d1
Content-Type: text/rfc822-headers

Message-ID: <bp-sent-1@$D>
From: Alice <$A>
To: slow@remote.example

--d1--
.
EOF2
mx "<>" "$TAP_TMP/delay.eml"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-delay-1@mx.remote.example'" 1 30
is "$(class_of "$(email_of bp-delay-1@mx.remote.example)")" delay "a delayed DSN: delay"
is "$(supp slow@remote.example)" 0 "...which suppresses nothing"

cat >"$TAP_TMP/auto.eml" <<EOF2
From: Nobody Else <other@remote.example>
To: $A
Subject: Automatic reply: hello there
Message-ID: <bp-auto-1@remote.example>
In-Reply-To: <bp-sent-1@$D>
Auto-Submitted: auto-replied

I am out of the office.
.
EOF2
mx "<>" "$TAP_TMP/auto.eml"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-auto-1@remote.example'" 1 30
AUTO=$(email_of bp-auto-1@remote.example)
is "$(class_of "$AUTO")" auto-reply "Auto-Submitted: auto-replied: auto-reply"
is "$(psqlc "SELECT count(*) FROM email_report_links WHERE report_email_id = '$AUTO' AND sent_email_id = '$SENT'")" 1 \
	"linked to the sent email through In-Reply-To"

cat >"$TAP_TMP/arf.eml" <<EOF2
From: fbl@isp.example
To: $A
Subject: FW: hello there
Message-ID: <bp-arf-1@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="a1"

--a1
Content-Type: text/plain

An abuse report.

--a1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: fbl/1.0
Version: 1
Original-Rcpt-To: <nobody@remote.example>

--a1
Content-Type: message/rfc822

From: Alice <$A>
To: nobody@remote.example
Message-ID: <bp-sent-1@$D>
Subject: hello there

hello
--a1--
.
EOF2
mx fbl@isp.example "$TAP_TMP/arf.eml"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-arf-1@isp.example'" 1 30
is "$(class_of "$(email_of bp-arf-1@isp.example)")" complaint "an ARF report: complaint"
is "$(psqlc "SELECT count(*) FROM email_report_links l JOIN email_reports r ON r.email_id = l.report_email_id WHERE l.sent_email_id = '$SENT' AND r.class = 'complaint' AND l.address = 'nobody@remote.example'")" 1 \
	"the complaint is linked to the sent email and its recipient"

cat >"$TAP_TMP/list.eml" <<EOF2
From: Dev List <dev@lists.example>
To: $A
Subject: [dev] digest
Message-ID: <bp-list-1@lists.example>
List-Id: <dev.lists.example>
Precedence: list
Auto-Submitted: auto-generated

This week on the list.
.
EOF2
mx dev-bounces@lists.example "$TAP_TMP/list.eml"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-list-1@lists.example'" 1 30
is "$(class_of "$(email_of bp-list-1@lists.example)")" ordinary "a mailing-list message: ordinary, never an auto-reply"
# VERP (milter.verp, lib/verp.c, sql/026): the milter restarted with it
# on; the remote now accepts gone@remote.example and bounces it itself
# (a pipe(8) transport exiting EX_NOUSER), after dropping the Message-ID
# (its cleanup puts its own in): its DSN, sent by the remote's SMTP
# client to the MX port (the milter's and policyd's recipient checks,
# deliver's lookup), names no Message-Id of alice's, so only the
# envelope recipient can link it
PIPELINE_CONF_EXTRA=("milter.verp = true")
_pl_conf && pipeline_daemon_kill milter && pipeline_daemon_start milter
is "$?" 0 "the milter restarts with milter.verp = true"
postconf -c "$R_PF_CONF" -e "relay_recipient_maps = inline:{ somebody@remote.example=ok, gone@remote.example=ok }" \
	"transport_maps = inline:{ gone@remote.example=gone }" \
	'header_checks = regexp:{ {/^Message-ID:/ IGNORE} }' \
	"default_transport = smtp:[127.0.0.1]:$PF_PORT_MX" &&
	postconf -c "$R_PF_CONF" -M "gone/unix=gone unix - n n - - pipe user=nobody argv=/bin/sh -c {exit 67}" &&
	postfix -c "$R_PF_CONF" reload >/dev/null 2>&1
r=$(smtp_reply DATA "$PF_PORT_SUB" "$A" gone@remote.example "${TLS[@]}" "${AUTH[@]}" \
	--header "From: Alice <$A>" --header "Subject: verp" --header "Message-Id: <bp-verp-1@$D>" \
	--body "hello gone")
like "$r" '^250 ' "alice's submission to gone@remote.example is queued ($r)"
pf_wait_log "from=<alice\\+verp-[0-9a-f]{32}@$D>" 30
VERP=$(grep -oE "from=<alice\\+verp-[0-9a-f]{32}@$D>" "$PF_LOG" | head -n 1 | sed 's/^from=<//; s/>$//')
like "$VERP" "^alice\\+verp-$(psqlc "SELECT postroom_verp_hash('bp-verp-1@$D')")[0-9a-f]{16}@" \
	"the envelope sender is alice's VERP address, its hash the database's ($VERP)"
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-verp-1@$D' AND sent_by_user_id = '$ALICE_ID'" 1 30
SENT2=$(email_of "bp-verp-1@$D")
pipeline_wait_sql "SELECT count(*) FROM email_report_links WHERE sent_email_id = '$SENT2'" 1 30
DSN2=$(psqlc "SELECT report_email_id FROM email_report_links WHERE sent_email_id = '$SENT2' LIMIT 1")
ok '[ -n "$DSN2" ]' "the remote's DSN to the VERP address is linked to the sent email"
[ -n "$DSN2" ] || grep -E 'gone@|verp' "$PF_LOG" "$R_PF_LOG" | tail -n 8 | sed 's/^/# /'
ok "! grep -q 'message-id=<bp-verp-1@' '$R_PF_LOG' && grep -Eq 'cleanup\[.*message-id=<[^>]*@mx\.remote\.example>' '$R_PF_LOG'" \
	"...whose returned message carries the remote's own Message-Id only (its header_checks)"
is "$(psqlc "SELECT class || ' ' || original_message_id FROM email_reports WHERE email_id = '$DSN2'")" \
	"bounce-hard bp-verp-1@$D" "...a hard bounce whose original is the one the VERP address names"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE email_id = '$DSN2' AND user_id = '$ALICE_ID' AND delivered")" 1 \
	"...stored in alice's mailbox (the VERP address is her subaddress)"
is "$(psqlc "SELECT address || ' ' || kind FROM email_report_links WHERE report_email_id = '$DSN2'")" \
	"gone@remote.example hard" "...linked to the recipient it reports on"
is "$(supp gone@remote.example)" 1 "gone@remote.example is on alice's suppression list"
r=$(smtp_reply RCPT "$PF_PORT_SUB" "$A" gone@remote.example "${TLS[@]}" "${AUTH[@]}")
like "$r" '^550 5\.1\.1 .*suppress' "the next submission to it is refused at RCPT: $r"

# a forged token (the hash of a real sent email, a MAC made up): stored
# for alice as a bounce, linked to nothing, suppressing nothing
FORGED="alice+verp-$(psqlc "SELECT postroom_verp_hash('bp-sent-1@$D')")0123456789abcdef@$D"
cat >"$TAP_TMP/forged.eml" <<EOF2
From: MAILER-DAEMON@mx.remote.example
To: $FORGED
Subject: Undelivered Mail Returned to Sender
Message-ID: <bp-forged-1@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="f1"

--f1
Content-Type: text/plain

Your mail was not delivered.

--f1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; somebody@remote.example
Action: failed
Status: 5.1.1

--f1--
.
EOF2
swaks --server 127.0.0.1 --port "$PF_PORT_MX" --ehlo mx.remote.example --from "<>" --to "$FORGED" \
	--data "$TAP_TMP/forged.eml" --timeout 20 >"$TAP_TMP/swaks.out" 2>&1
pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-forged-1@mx.remote.example'" 1 30
FORGED_ID=$(email_of bp-forged-1@mx.remote.example)
is "$(class_of "$FORGED_ID")" bounce-hard "a DSN to a forged VERP address is stored as a bounce"
is "$(psqlc "SELECT count(*) FROM email_report_links WHERE report_email_id = '$FORGED_ID'")" 0 \
	"...and linked to nothing"
is "$(supp somebody@remote.example)" 0 "...suppressing nothing"
# Exim as the remote that bounces (issue 21 "Exim's path"): a private
# Exim (tests/lib/exim.sh) is the MX of exim.example, accepts
# gone@exim.example and fails it in routing (:fail:); its own DSN goes
# back by SMTP to the MX port, to alice's VERP address
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"
EXIM_DOMAIN=exim.example
if exim_prepare >"$TAP_TMP/exim-prepare.log" 2>&1 && EXIM_CONF=$(exim_conf_minimal "$TAP_TMP/exim") &&
	sed -i "/^begin routers/,\$d" "$EXIM_CONF" && cat >>"$EXIM_CONF" <<EOF2 && exim_daemon "$EXIM_CONF"; then
begin routers

gone:
  driver = redirect
  domains = +local_domains
  local_parts = gone
  allow_fail
  data = :fail: mailbox gone

back:
  driver = manualroute
  domains = ! +local_domains
  route_list = * 127.0.0.1
  self = send
  transport = to_postroom

blackhole:
  driver = redirect
  data = :blackhole:

begin transports

to_postroom:
  driver = smtp
  port = $PF_PORT_MX
  allow_localhost
  hosts_try_fastopen =
EOF2
	pass "a private Exim is the MX of exim.example"
	# exim.example's MX (the sent-copy route of transport_maps kept)
	postconf -c "$PF_CONF" -e "transport_maps = inline:{ exim.example=smtp:[127.0.0.1]:$EXIM_PORT }, $(postconf -c "$PF_CONF" -h transport_maps)" &&
		pipeline_postfix_reload
	r=$(smtp_reply DATA "$PF_PORT_SUB" "$A" gone@exim.example "${TLS[@]}" "${AUTH[@]}" \
		--header "From: Alice <$A>" --header "Subject: exim" --header "Message-Id: <bp-exim-1@$D>" \
		--body "hello exim")
	like "$r" '^250 ' "alice's submission to gone@exim.example is queued ($r)"
	pipeline_wait_sql "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) = 'bp-exim-1@$D' AND sent_by_user_id = '$ALICE_ID'" 1 30
	SENT3=$(email_of "bp-exim-1@$D")
	pipeline_wait_sql "SELECT count(*) FROM email_report_links WHERE sent_email_id = '$SENT3'" 1 30
	DSN3=$(psqlc "SELECT report_email_id FROM email_report_links WHERE sent_email_id = '$SENT3' LIMIT 1")
	ok '[ -n "$DSN3" ]' "Exim's DSN is stored and linked to the sent email"
	[ -n "$DSN3" ] || psqlc "SELECT e.subject, COALESCE(r.class, 'ordinary'), r.original_message_id, r.rule, (SELECT string_agg(address || ' ' || kind, ',') FROM email_report_recipients WHERE email_id = e.id) FROM emails e LEFT JOIN email_reports r ON r.email_id = e.id ORDER BY e.received_at DESC LIMIT 2" | sed 's/^/# /'
	is "$(psqlc "SELECT class || ' ' || (SELECT string_agg(address || ' ' || kind, ',') FROM email_report_links WHERE report_email_id = '$DSN3') FROM email_reports WHERE email_id = '$DSN3'")" \
		"bounce-hard gone@exim.example hard" "...a hard bounce, linked to the recipient it reports on"
	is "$(supp gone@exim.example)" 1 "gone@exim.example is on alice's suppression list"
else
	fail "a private Exim is the MX of exim.example"
	sed 's/^/# /' "$TAP_TMP/exim-prepare.log" | tail -n 5
fi
done_testing
