#!/usr/bin/env bash
# lmtpd-protocol.sh - postroom-lmtpd speaks RFC 2033 LMTP against a real
# PostgreSQL: the LHLO extensions; one reply per accepted recipient after
# the final dot (an unknown recipient 550 5.1.1 at RCPT, the others 250,
# the message stored once with all of them); pipelined transactions;
# dot-unstuffing and a bare-LF dot that is data, not an end; exactly once
# (the same message twice); over-size (552 5.3.4 at MAIL SIZE= and after
# DATA); a connection dropped in the middle of DATA stores nothing; the
# trusted-client extensions (AUTH=, X-POSTROOM-SENT, the sent-copy marker
# under its old name milter.sent_recipient, still accepted,
# XFORWARD IDENT binding the signed verdict header) and their refusal from
# an untrusted TCP client; metrics and -t.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in alice bob carol; do pctl user add $u@example.com >/dev/null; done
pctl user add sender@example.com >/dev/null
secret=lmtpd-test-secret-0123456789abcdef012345
printf 'security = { hmac_secret = "%s"; };\nlimits = { message_size_max = 20000; };\nmilter = { sent_recipient = "sent-copy@postroom.invalid"; };\n' \
	"$secret" >>"$POSTROOM_CONF"
LMTPD_TCP=1 LMTPD_EXTRA='trusted_clients = "192.0.2.1";' lmtpd_start || { fail "lmtpd started"; done_testing; }
S=$LMTPD_SOCKET
count() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1'"; }
rcpts_of() { psqlc "SELECT string_agg(r.address || ':' || CASE WHEN r.delivered THEN 't' ELSE 'f' END, ' ' ORDER BY r.address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = '$1'"; }

run_status 0 "-t accepts the configuration" "$LMTPD_BIN" -t -c "$LMTPD_CONF"

# --- LHLO ---------------------------------------------------------------------
out=$(printf 'LHLO client.example\r\nQUIT\r\n' | lmtp "$S")
like "$out" "^220 .* LMTP postroom-lmtpd ready" "greeting"
for ext in PIPELINING ENHANCEDSTATUSCODES 8BITMIME SMTPUTF8 "SIZE 20000" "XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE"; do
	like "$out" "250[- ]$ext" "LHLO announces $ext"
done
like "$out" "221 2.0.0" "QUIT"
out=$(printf 'EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n' | lmtp "$S")
like "$out" "500 5.5.1 .*LHLO" "EHLO is refused: this is LMTP"
like "$out" "503 5.5.1 send LHLO first" "MAIL before LHLO is refused"

# --- several recipients, one unknown ------------------------------------------
m=$(lmtp_msg multi.eml <<'M'
From: dave@example.org
To: alice@example.com, bob@example.com
Subject: multi
Message-ID: <multi-1@example.org>

hello all
M
)
{ printf 'LHLO c\r\nMAIL FROM:<dave@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n'; cat "$m"; printf '.\r\nQUIT\r\n'; } >"$TAP_TMP/multi.in"
out=$(lmtp "$S" <"$TAP_TMP/multi.in")
like "$out" "550 5.1.1 <nobody@example.com>: recipient address unknown" "an unknown recipient: 550 5.1.1 at RCPT"
is "$(grep -c '^250 2.1.5' <<<"$out")" 2 "the two known recipients are accepted"
like "$out" "354 " "DATA: 354"
is "$(grep -c '^250 2.0.0 <.*> Ok: stored as' <<<"$out")" 2 "after the dot: one 250 per accepted recipient, no more"
like "$(grep 'stored as' <<<"$out" | head -1)" "<alice@example.com>" "... in RCPT order"
is "$(count multi-1@example.org)" 1 "the message is stored once"
is "$(rcpts_of multi-1@example.org)" "alice@example.com:t bob@example.com:f carol@example.com:t" \
	"both envelope recipients delivered (carol as bcc), the header-only bob not"
cmp -s "$m" <(pctl mail raw "$(psqlc "SELECT id FROM emails WHERE message_id = 'multi-1@example.org'")") &&
	pass "the raw message is the bytes of DATA" || fail "the raw message is the bytes of DATA"
out=$(printf 'LHLO c\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\nQUIT\r\n' | lmtp "$S")
like "$out" "554 5.5.1 no valid recipients" "DATA without an accepted recipient: 554 5.5.1"

# --- pipelining ---------------------------------------------------------------
m1=$(lmtp_msg p1.eml <<'M'
From: dave@example.org
Subject: p1
Message-ID: <p1@example.org>

first
..a stuffed dot
M
)
m2=$(lmtp_msg p2.eml <<'M'
From: dave@example.org
Subject: p2
Message-ID: <p2@example.org>

second
M
)
{ printf 'LHLO c\r\nMAIL FROM:<dave@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'
  cat "$m1"; printf '.\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'; cat "$m2"; printf '.\r\nQUIT\r\n'; } >"$TAP_TMP/pipe.in"
out=$(lmtp "$S" <"$TAP_TMP/pipe.in")
codes=$(grep -o '^[0-9][0-9][0-9][ -]' <<<"$out" | tr -d ' -' | tr '\n' ' ')
is "$codes" "220 250 250 250 250 250 250 250 250 250 250 354 250 250 250 250 250 354 250 221 " \
	"two pipelined transactions in one write: every reply, in order"
is "$(count p1@example.org) $(count p2@example.org)" "1 1" "both messages stored"
like "$(pctl mail raw "$(psqlc "SELECT id FROM emails WHERE message_id = 'p1@example.org'")")" \
	$'\n\\.a stuffed dot\r' "a leading dot is unstuffed"

# --- the end of data is CRLF.CRLF only ------------------------------------------
printf 'From: dave@example.org\r\nSubject: lf\r\nMessage-ID: <lf@example.org>\r\n\r\nline one\n.\nline three\r\n' >"$TAP_TMP/lf.eml"
{ printf 'LHLO c\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n'; cat "$TAP_TMP/lf.eml"; printf '.\r\nQUIT\r\n'; } >"$TAP_TMP/lf.in"
out=$(lmtp "$S" <"$TAP_TMP/lf.in")
is "$(grep -c 'stored as' <<<"$out")" 1 "a bare-LF dot line does not end the data"
cmp -s "$TAP_TMP/lf.eml" <(pctl mail raw "$(psqlc "SELECT id FROM emails WHERE message_id = 'lf@example.org'")") &&
	pass "... it is stored as data, byte for byte" || fail "... it is stored as data, byte for byte"

# --- exactly once ---------------------------------------------------------------
out=$(lmtp "$S" <"$TAP_TMP/multi.in")
like "$out" "stored as .* \\(already stored\\)" "the same message again: 250, already stored"
is "$(count multi-1@example.org)" 1 "still one email"
id1=$(psqlc "SELECT id FROM emails WHERE message_id = 'multi-1@example.org'")
like "$out" "stored as $id1" "... the reply names the stored email"

# --- over-size ----------------------------------------------------------------
out=$(printf 'LHLO c\r\nMAIL FROM:<d@example.org> SIZE=30000\r\nQUIT\r\n' | lmtp "$S")
like "$out" "552 5.3.4 message size exceeds the limit of 20000 bytes" "MAIL SIZE= over the limit: 552 5.3.4"
{ printf 'From: dave@example.org\r\nSubject: big\r\nMessage-ID: <big@example.org>\r\n\r\n'
  for i in $(seq 400); do printf '%s\r\n' "0123456789012345678901234567890123456789012345678901234567890123456789"; done; } >"$TAP_TMP/big.eml"
{ printf 'LHLO c\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'; cat "$TAP_TMP/big.eml"; printf '.\r\nNOOP\r\nQUIT\r\n'; } >"$TAP_TMP/big.in"
out=$(lmtp "$S" <"$TAP_TMP/big.in")
is "$(grep -c '^552 5.3.4 message too big' <<<"$out")" 2 "a message over the limit: 552 5.3.4 for each recipient"
like "$out" "250 2.0.0 Ok" "... and the session goes on"
is "$(count big@example.org)" 0 "nothing stored"

# --- a connection lost in the middle of DATA ----------------------------------
{ printf 'LHLO c\r\nMAIL FROM:<d@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n'
  printf 'From: dave@example.org\r\nSubject: cut\r\nMessage-ID: <cut@example.org>\r\n\r\nhalf a messa'; } >"$TAP_TMP/cut.data"
printf 'F %s\nZ 0.3\nC\n' "$TAP_TMP/cut.data" >"$TAP_TMP/cut.script"
lmtp "$S" "$TAP_TMP/cut.script" >/dev/null
sleep 0.5
is "$(count cut@example.org)" 0 "a connection dropped mid-DATA stores nothing"
like "$(cat "$LMTPD_LOG")" "connection lost during DATA" "... and says so in the log"

# --- trusted extensions over the unix socket ----------------------------------
m=$(lmtp_msg auth.eml <<'M'
From: sender@example.com
To: bob@example.com
Subject: auth
Message-ID: <auth@example.com>

sent by sender
M
)
{ printf 'LHLO c\r\nMAIL FROM:<sender@example.com> AUTH=sender+40example.com\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'; cat "$m"; printf '.\r\nQUIT\r\n'; } | lmtp "$S" >/dev/null
is "$(psqlc "SELECT u.address FROM emails e JOIN users u ON u.id = e.sent_by_user_id WHERE e.message_id = 'auth@example.com'")" \
	"sender@example.com" "AUTH=<xtext> from the unix socket sets sent_by"
m=$(lmtp_msg sent.eml <<'M'
From: sender@example.com
To: carol@example.com
Subject: sent copy
Message-ID: <sent@example.com>

a submission
M
)
{ printf 'LHLO c\r\nMAIL FROM:<sender@example.com> AUTH=sender+40example.com\r\nRCPT TO:<route@postroom.invalid> X-POSTROOM-SENT\r\nDATA\r\n'; cat "$m"; printf '.\r\nQUIT\r\n'; } | lmtp "$S" >"$TAP_TMP/sent.out"
like "$(cat "$TAP_TMP/sent.out")" "250 2.0.0 <route@postroom.invalid> Ok: stored" "X-POSTROOM-SENT: the marker gets its 250"
is "$(psqlc "SELECT u.address || ' ' || (SELECT count(*) FROM email_recipients r WHERE r.email_id = e.id AND r.delivered) || ' ' || (SELECT count(*) FROM email_recipients r WHERE r.email_id = e.id AND r.address LIKE 'route%') FROM emails e JOIN users u ON u.id = e.sent_by_user_id WHERE e.message_id = 'sent@example.com'")" \
	"sender@example.com 0 0" "... stored with sent_by, nobody's inbox, the marker not a recipient"
{ printf 'LHLO c\r\nMAIL FROM:<sender@example.com> AUTH=sender+40example.com\r\nRCPT TO:<sent-copy@postroom.invalid>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n'; cat "$m"; printf '.\r\nQUIT\r\n'; } | lmtp "$S" >"$TAP_TMP/sent2.out"
is "$(grep -c 'Ok: stored' "$TAP_TMP/sent2.out")" 2 "milter.sent_recipient is a marker too, next to a real recipient"
is "$(count sent@example.com) $(rcpts_of sent@example.com)" "1 carol@example.com:t" \
	"... one email: carol now has it, the marker is no recipient"

# --- XFORWARD IDENT binds the verdict header ------------------------------------
sign() { "$POSTROOM_BUILDDIR/tests/unit/deliver-sighdr-sign" "$secret" X-Postroom-Verdict "$@"; }
verdict_msg() {
	{ printf 'X-Postroom-Verdict: %s\n' "$(sign qid=QV1 spam=yes reason=spf=fail spf=fail)"
	  printf 'Received: from c (c [192.0.2.7]) by mx.example.com (Postfix) with ESMTP id QV1\n'
	  printf 'From: m@example.net\nSubject: %s\nMessage-ID: <%s@example.net>\n\nx\n' "$1" "$1"; } | sed 's/$/\r/' >"$TAP_TMP/$1.eml"
	{ printf 'LHLO c\r\nXFORWARD ADDR=192.0.2.7 IDENT=%s\r\nMAIL FROM:<m@example.net>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n' "$2"
	  cat "$TAP_TMP/$1.eml"; printf '.\r\nQUIT\r\n'; } | lmtp "$3"
}
verdict_msg v1 QV1 "$S" >/dev/null
is "$(psqlc "SELECT spam || ' ' || spam_reason FROM emails WHERE message_id = 'v1@example.net'")" "true spf=fail" \
	"XFORWARD IDENT=<the queue id> makes the signed verdict count"
verdict_msg v2 QV2 "$S" >/dev/null
is "$(psqlc "SELECT spam FROM emails WHERE message_id = 'v2@example.net'")" "f" "... another queue id: the verdict does not count"
like "$(cat "$LMTPD_LOG")" "queue=QV1 .*client=192.0.2.7" "the log line carries the queue id and client of XFORWARD"

# --- an untrusted TCP client ----------------------------------------------------
T=127.0.0.1:$LMTPD_PORT
out=$(printf 'LHLO c\r\nXFORWARD ADDR=1.2.3.4\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<route@postroom.invalid> X-POSTROOM-SENT\r\nQUIT\r\n' | lmtp "$T")
unlike "$out" "250[- ]XFORWARD" "TCP from an untrusted address: no XFORWARD in LHLO" 
like "$out" "550 5.7.0 XFORWARD is not accepted" "... XFORWARD refused"
like "$out" "555 5.5.4 X-POSTROOM-SENT is not accepted" "... X-POSTROOM-SENT refused with 555 5.5.4"
m=$(lmtp_msg tcpauth.eml <<'M'
From: sender@example.com
Subject: tcp auth
Message-ID: <tcpauth@example.com>

x
M
)
{ printf 'LHLO c\r\nMAIL FROM:<sender@example.com> AUTH=sender+40example.com\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'; cat "$m"; printf '.\r\nQUIT\r\n'; } | lmtp "$T" >"$TAP_TMP/tcp.out"
like "$(cat "$TAP_TMP/tcp.out")" "Ok: stored" "... delivers ordinary mail"
is "$(psqlc "SELECT coalesce(sent_by_user_id::text, 'none') FROM emails WHERE message_id = 'tcpauth@example.com'")" "none" \
	"... and its AUTH= is ignored"

# --- metrics ------------------------------------------------------------------
delivered=$(lmtpd_metric 'postroom_lmtpd_messages_total{result="delivered"}')
ok "[ ${delivered%%.*} -ge 8 ]" "metrics: delivered transactions counted ($delivered)"
is "$(lmtpd_metric 'postroom_lmtpd_messages_total{result="bounced"}')" 1 "metrics: one bounced transaction"
like "$(curl -s "http://$LMTPD_METRICS/metrics")" "postroom_lmtpd_processing_seconds_bucket" "metrics: the processing-duration histogram"
like "$(curl -s "http://$LMTPD_METRICS/metrics")" "postroom_lmtpd_bytes_total [1-9]" "metrics: bytes received"
like "$(curl -s "http://$LMTPD_METRICS/healthz")" "ok|OK" "/healthz"
done_testing
