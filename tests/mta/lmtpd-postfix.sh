#!/usr/bin/env bash
# lmtpd-postfix.sh - a real Postfix delivering to postroom-lmtpd with
# virtual_transport = lmtp:unix:... and lmtp_send_xforward_command = yes
# (contrib/postfix/lmtp.main.cf): a message to several hosted users is one
# LMTP transaction, stored once, every recipient delivered; the queue id
# and client address arrive by XFORWARD; a submission authenticated through
# postroom-authd and signed by postroom-milter is stored with sent_by, and
# its sent copy (rules.sent_recipient) routed to the same LMTP socket is
# recognised as the marker: one email, nobody's inbox but bob's.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"

pg_start && pg_fresh_db lmtp || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null
for u in alice bob carol; do pctl user add $u@example.com >/dev/null; done
milter_conf "security = { hmac_secret = \"$MILTER_SECRET\"; };"

HAVE_AUTHD=0
if [ -x "$POSTROOM_BUILDDIR/postroom-authd" ]; then
	. "$POSTROOM_SRCDIR/tests/lib/authd.sh"
	authd_start "$POSTROOM_CONF" "$TAP_TMP/authd" && HAVE_AUTHD=1
	KEY=$(pctl key create alice@example.com --scope smtp | awk '/^key:/ { print $2 }')
fi
[ "$HAVE_AUTHD" = 1 ] || diag "postroom-authd not available: the submission rows are skipped"

MILTER_PORT=$(free_port)
milter_conf "rules = { mx_enabled = true; port_roles = \"@MX@=mx ORIGINATING=submission\"; sent_recipient = \"sent@postroom.invalid\"; };" \
	"milter = { socket = \"@MILTER_SOCK@\"; user = \"$(milter_user)\"; };"
lmtpd_start || { fail "postroom-lmtpd starts"; done_testing; }
chmod 711 "$TAP_TMP"

PF_MAIN_EXTRA=(
	"smtpd_milters = inet:127.0.0.1:$MILTER_PORT"
	"milter_default_action = tempfail"
	"milter_protocol = 6"
	"virtual_mailbox_domains = example.com"
	"virtual_mailbox_maps = static:postroom"
	"virtual_transport = lmtp:unix:$LMTPD_SOCKET"
	"lmtp_send_xforward_command = yes"
	"lmtp_destination_recipient_limit = 50"
	"transport_maps = inline:{postroom.invalid=lmtp:unix:$LMTPD_SOCKET}"
	"smtputf8_enable = yes"
)
if [ "$HAVE_AUTHD" = 1 ]; then
	PF_MAIN_EXTRA+=("smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = dovecot"
		"smtpd_sasl_path = $AUTHD_SOCKET" "smtpd_tls_auth_only = yes")
fi
PF_SMTPD_OPTS_SUB=("milter_macro_daemon_name=ORIGINATING")
pf_start || { fail "Postfix starts"; done_testing; }
sed -i "s|@MX@|$PF_PORT_MX|" "$POSTROOM_CONF"
milter_start || { fail "postroom-milter starts"; done_testing; }
pass "Postfix, postroom-milter and postroom-lmtpd start"
cp "$PF_LOG" /tmp/lmtpd-pf.log 2>/dev/null; at_exit "cp $PF_LOG /tmp/lmtpd-pf.log"

# --- inbound: one message, three hosted recipients ------------------------------
r=$(smtp_reply DATA "$PF_PORT_MX" dave@example.org alice@example.com,bob@example.com,carol@example.com \
	--header "Subject: to three" --header "Message-ID: <three@example.org>")
like "$r" '^250 ' "MX: a message to three hosted users is queued ($r)"
qid=$(printf '%s' "$r" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p')
pf_wait_log "$qid: removed" 30
like "$(grep "$qid" "$PF_LOG" | grep -c 'relay=.*status=sent')" '^3$' "Postfix: three recipients sent over LMTP"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id = 'three@example.org'")" 1 "stored once"
is "$(psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = 'three@example.org' AND r.delivered")" \
	3 "... with its three recipients delivered"
is "$(grep -c "queue=$qid " "$LMTPD_LOG")" 1 "one LMTP transaction for the three, with the queue id from XFORWARD IDENT"
like "$(grep "queue=$qid " "$LMTPD_LOG")" "client=127.0.0.1 " "... and the client address from XFORWARD ADDR"

# --- an unknown user: refused by the milter before Postfix accepts it ------------
r=$(smtp_reply RCPT "$PF_PORT_MX" dave@example.org nobody@example.com)
like "$r" '^550 5.1.1' "MX: an unknown user is refused at RCPT ($r)"

# --- an authenticated submission, signed by the milter ---------------------------
if [ "$HAVE_AUTHD" = 1 ]; then
	r=$(smtp_reply DATA "$PF_PORT_SUB" alice@example.com bob@example.com --tls \
		--auth PLAIN --auth-user alice@example.com --auth-password "$KEY" \
		--header "Subject: from alice")
	like "$r" '^250 ' "submission: alice's message is queued ($r)"
	qid=$(printf '%s' "$r" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p')
	pf_wait_log "$qid: removed" 30
	like "$(grep "$qid" "$PF_LOG" | grep 'to=<sent@postroom.invalid>')" 'status=sent' \
		"the sent copy (rules.sent_recipient) went over LMTP too"
	is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'from alice'")" 1 "stored once"
	is "$(psqlc "SELECT u.address FROM emails e JOIN users u ON u.id = e.sent_by_user_id WHERE e.subject = 'from alice'")" \
		"alice@example.com" "sent_by: alice, from the milter's signed submission header"
	is "$(psqlc "SELECT string_agg(r.address || ':' || CASE WHEN r.delivered THEN 't' ELSE 'f' END, ' ') FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.subject = 'from alice'")" \
		"bob@example.com:t" "bob has it; the marker is no recipient"
fi
done_testing
