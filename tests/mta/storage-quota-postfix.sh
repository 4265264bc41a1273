#!/usr/bin/env bash
# storage-quota-postfix.sh - the storage quota per user (issue 18 item 4)
# through a real Postfix set up from contrib/postfix (tests/lib/pipeline.sh:
# postroom-policyd in smtpd_relay_restrictions, postroom-milter, deliver
# behind pipe(8), every daemon as its own database role): a recipient under
# the limit gets the mail, one at the limit and one over it get 452 4.2.2
# Mailbox full, a two-recipient message where one recipient is full is
# refused for that one and stored for the other, SIZE= that would cross
# the limit is refused at RCPT, a message accepted that takes its user over
# the limit is stored (soft limit: nothing bounces after acceptance), and
# the milter refuses alone when policyd's check is off.
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
B=bob@$D

usage() { pctl --json storage-quota show "$1" | jq -r .usage; }
held() {
	psqlc "SELECT count(*) FROM mailbox_entries m JOIN users u ON u.id = m.user_id
		JOIN emails e ON e.id = m.email_id
		WHERE u.address = '$1' AND trim(both '<>' from e.message_id) = '$2'"
}
# send FROM RCPT[,RCPT] MSGID [BODYBYTES] [SIZE]: one message by SMTP to the
# MX port, with SIZE= the message's length (smtplib's own), or SIZE given
# ("none": no SIZE= at all); prints "RCPT CODE TEXT" for each refused
# recipient, then "data 250" (or "refused all" when every recipient was)
send() {
	"$PL_PYTHON" - "$PF_PORT_MX" "$@" <<'PY'
import smtplib, sys
port, frm, rcpts, mid = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4]
body = "x" * int(sys.argv[5]) if len(sys.argv) > 5 else "hello"
size = sys.argv[6] if len(sys.argv) > 6 else None
msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\n%s\r\n"
       % (frm, ", ".join(rcpts), mid, mid,
          "\r\n".join(body[i:i + 70] for i in range(0, len(body), 70))))
s = smtplib.SMTP("127.0.0.1", port, timeout=60)
s.ehlo("client.example")
opts = []
if size is not None:
    s.esmtp_features.pop("size", None)  # smtplib would add its own SIZE=
    opts = [] if size == "none" else ["SIZE=%s" % size]
try:
    refused = s.sendmail(frm, rcpts, msg, mail_options=opts)
    for r, (code, text) in sorted(refused.items()):
        print("%s %d %s" % (r, code, text.decode()))
    print("data 250")
except smtplib.SMTPRecipientsRefused as e:
    for r, (code, text) in sorted(e.recipients.items()):
        print("%s %d %s" % (r, code, text.decode()))
    print("refused all")
except smtplib.SMTPException as e:
    print("error %s" % e)
s.quit()
PY
}
wait_held() {
	pipeline_wait_sql "SELECT count(*) FROM mailbox_entries m JOIN users u ON u.id = m.user_id
		JOIN emails e ON e.id = m.email_id
		WHERE u.address = '$1' AND trim(both '<>' from e.message_id) = '$2'" 1 30 || true
}

# a message each for alice and bob, then alice at her limit and bob with
# 1,000,000 bytes of room
is "$(send sender@foreign.org "$A" a1@foreign.org 2000)" "data 250" "a first message for alice: accepted"
is "$(send sender@foreign.org "$B" b1@foreign.org 500)" "data 250" "a first message for bob: accepted"
wait_held "$A" a1@foreign.org
wait_held "$B" b1@foreign.org
UA=$(usage "$A")
UB=$(usage "$B")
ok '[ "$UA" -gt 2000 ] && [ "$UB" -gt 500 ]' "both stored and counted (alice $UA, bob $UB bytes)"
pctl storage-quota set "$A" "$UA" >/dev/null
pctl storage-quota set "$B" $((UB + 1000000)) >/dev/null

# under the limit: delivered
is "$(send sender@foreign.org "$B" b2@foreign.org 1000)" "data 250" "under the limit: accepted"
wait_held "$B" b2@foreign.org
is "$(held "$B" b2@foreign.org)" 1 "... and stored in bob's mailbox"

# at the limit, over the limit: 452 4.2.2 at RCPT
r=$(smtp_reply RCPT "$PF_PORT_MX" sender@foreign.org "$A")
like "$r" '^452 4\.2\.2 .*Mailbox full$' "at the limit: $r"
pctl storage-quota set "$A" $((UA - 100)) >/dev/null
r=$(smtp_reply RCPT "$PF_PORT_MX" sender@foreign.org "$A")
like "$r" '^452 4\.2\.2 .*Mailbox full$' "over the limit: $r"
pctl storage-quota set "$A" "$UA" >/dev/null

# two recipients, alice full: she gets 452, bob gets the mail
got=$(send sender@foreign.org "$A,$B" two@foreign.org 300)
like "$got" "^$A 452 4\.2\.2 .*Mailbox full" "two recipients: the full one refused with 452 4.2.2"
like "$got" "data 250\$" "... the message accepted for the other"
wait_held "$B" two@foreign.org
is "$(held "$B" two@foreign.org)" 1 "... stored in bob's mailbox"
is "$(held "$A" two@foreign.org)" 0 "... not in alice's"

# SIZE= that would cross bob's limit: refused at RCPT; below it accepted
room=$(($(pctl --json storage-quota show "$B" | jq '.limit - .usage')))
got=$(send sender@foreign.org "$B" sz1@foreign.org 100 $((room + 1)))
like "$got" "^$B 452 4\.2\.2 .*Mailbox full" "SIZE= one byte over bob's room ($((room + 1))): 452 at RCPT"
is "$(send sender@foreign.org "$B" sz2@foreign.org 100 "$room")" "data 250" "SIZE= exactly his room: accepted"

# the soft limit: a message accepted is stored even when it takes bob over
wait_held "$B" sz2@foreign.org
pctl storage-quota set "$B" $(($(usage "$B") + 2000)) >/dev/null
is "$(send sender@foreign.org "$B" soft@foreign.org 6000 none)" "data 250" \
	"no SIZE=, 2000 bytes of room, a 6000-byte message: accepted"
wait_held "$B" soft@foreign.org
is "$(held "$B" soft@foreign.org)" 1 "... stored although it takes bob over his limit"
ok '[ "$(usage "$B")" -gt "$(pctl --json storage-quota show "$B" | jq .limit)" ]' "... bob is over his limit now"
r=$(smtp_reply RCPT "$PF_PORT_MX" sender@foreign.org "$B")
like "$r" '^452 4\.2\.2 .*Mailbox full$' "... and the next message to him gets 452 ($r)"
is "$(grep -c 'status=bounced' "$PF_LOG")" 0 "nothing bounced"

# the milter alone (policyd's check off): its own reply, 452 4.2.2 Mailbox full
pipeline_daemon_kill policyd
sed 's/^rules = { /rules = { storage_quota = false; /' "$PIPELINE_CONF" >"$PIPELINE_DIR/policyd-off.conf"
chown "$PIPELINE_USER" "$PIPELINE_DIR/policyd-off.conf" && chmod 600 "$PIPELINE_DIR/policyd-off.conf"
"$POSTROOM_BUILDDIR/postroom-policyd" -f -c "$PIPELINE_DIR/policyd-off.conf" \
	>>"$PIPELINE_DIR/logs/policyd.log" 2>&1 </dev/null &
echo $! >"$PIPELINE_DIR/pids/policyd.pid"
for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PIPELINE_PD_PORT") 2>/dev/null && break; sleep 0.1; done
r=$(smtp_reply RCPT "$PF_PORT_MX" sender@foreign.org "$A")
is "$r" "452 4.2.2 Mailbox full" "policyd's check off: the milter answers 452 4.2.2 Mailbox full itself"
like "$(cat "$PIPELINE_DIR/logs/milter.log")" "reject: RCPT TO <$A> .*: 452 4\.2\.2 Mailbox full" \
	"... logged by the milter"
pctl storage-quota set "$B" default >/dev/null
is "$(send sender@foreign.org "$A,$B" two-milter@foreign.org 100 | tr '\n' '|')" \
	"$A 452 4.2.2 Mailbox full|data 250|" "... two recipients through the milter: 452 for alice, 250 for the message"
wait_held "$B" two-milter@foreign.org
is "$(held "$B" two-milter@foreign.org)" 1 "... stored for bob"
denied=$(grep -il "permission denied" "$PIPELINE_DIR"/logs/*.log "$PF_LOG" 2>/dev/null)
is "$denied" "" "no permission error in any log (the rules role runs the check)"
done_testing
