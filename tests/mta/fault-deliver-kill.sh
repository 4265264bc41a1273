#!/usr/bin/env bash
# fault-deliver-kill.sh - postroom-deliver killed with SIGKILL in the middle
# of storing a 40 MB message, behind the whole pipeline
# (tests/lib/pipeline.sh, Postfix from contrib/postfix): the process is
# killed while its database session holds an open transaction that has
# written (pg_stat_activity.backend_xid), Postfix defers the delivery, no
# table of the store has a row more than before, and the retry stores the
# message once, whole.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"

pipeline_start || { fail "pipeline starts"; done_testing; }
D=$PIPELINE_DOMAIN
pass "pipeline started"

# send40 NAME: a 40 MB message (two 15 MB attachments, base64: each under
# limits.attachment_size_max) to alice on the MX port; prints the queue id
send40() {
	"$PL_PYTHON" - "$PF_PORT_MX" "alice@$D" "$1" <<'PY'
import base64, os, smtplib, sys
port, rcpt, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def part(i):
    data = base64.encodebytes(os.urandom(15 * 1024 * 1024)).replace(b"\n", b"\r\n")
    return (b"--b\r\nContent-Type: application/octet-stream; name=big%d.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" % i) + data
msg = (("From: sender@foreign.example\r\nTo: %s\r\nSubject: %s\r\n"
        "Message-ID: <%s@foreign.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        "Content-Type: text/plain\r\n\r\nforty megabytes\r\n") % (rcpt, name, name)).encode() \
    + part(1) + part(2) + b"--b--\r\n"
s = smtplib.SMTP("127.0.0.1", port, timeout=300)
s.ehlo("client.example")
s.mail("sender@foreign.example")
s.rcpt(rcpt)
code, reply = s.data(msg)
s.quit()
print(reply.decode().rsplit(" ", 1)[-1] if code == 250 else "refused %d" % code)
PY
}

# deliver_pid QID: the postroom-deliver process of this queue id
deliver_pid() {
	ps -eo pid=,args= | grep -F -- "$PIPELINE_CONF" | grep -F -- "-q $1 " |
		grep -v grep | awk '$2 ~ /postroom-deliver$/ { print $1; exit }'
}
writing() {	# sessions of postroom with an open transaction that has written
	psqlc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'postroom' AND backend_xid IS NOT NULL"
}

killed=0
for attempt in 1 2 3; do
	before=$(pipeline_row_counts)
	name=kill-$attempt
	qid=$(send40 "$name")
	like "$qid" '^[0-9A-F]+$' "attempt $attempt: the 40 MB message is queued ($qid)"
	pid='' query=''
	for i in $(seq 1200); do
		pid=$(deliver_pid "$qid")
		if [ -n "$pid" ] && [ "$(writing)" -ge 1 ]; then
			query=$(psqlc "SELECT left(query, 60) FROM pg_stat_activity WHERE application_name = 'postroom' AND backend_xid IS NOT NULL LIMIT 1")
			kill -KILL "$pid" && break
		fi
		grep -Eq "$qid: to=<.*status=(sent|bounced)" "$PF_LOG" && { pid=; break; }
		sleep 0.05
	done
	if [ -z "$pid" ]; then
		diag "attempt $attempt: the delivery ended before it could be killed inside its transaction"
		continue
	fi
	diag "attempt $attempt: killed postroom-deliver $pid while running: $query"
	pf_wait_log "$qid: .*status=deferred" 30
	like "$(grep "$qid: to=<alice@$D>" "$PF_LOG" | tail -n 1)" 'status=deferred.*signal 9' \
		"Postfix defers the delivery whose process died (signal 9)"
	for i in $(seq 100); do [ "$(writing)" = 0 ] && break; sleep 0.1; done
	stored=$(psqlc "SELECT count(*) FROM emails WHERE subject = '$name'")
	if [ "$stored" != 0 ]; then
		diag "attempt $attempt: the kill came after the commit (stored already); trying again"
		continue
	fi
	killed=1
	is "$(pipeline_row_counts)" "$before" "no partial rows: every table has the rows it had before"
	break
done
ok '[ "$killed" = 1 ]' "postroom-deliver was killed inside its transaction"

if [ "$killed" = 1 ]; then
	pf_flush
	pf_wait_log "$qid: to=<alice@$D>.*status=sent" 90
	like "$(grep "$qid: to=<alice@$D>" "$PF_LOG" | tail -n 1)" 'status=sent' "the retry delivers it"
	is "$(psqlc "SELECT count(*) FROM emails WHERE subject = '$name'")" 1 "stored once"
	eid=$(psqlc "SELECT id FROM emails WHERE subject = '$name'")
	is "$(psqlc "SELECT count(*) || ' ' || sum(size_bytes) FROM email_attachments WHERE email_id = '$eid'")" \
		"2 $((30 * 1024 * 1024))" "with its two 15 MB attachments, whole"
	is "$(psqlc "SELECT count(*) FROM email_raw WHERE email_id = '$eid' AND length(content) > 40000000")" 1 \
		"and its 40 MB raw message"
	is "$(psqlc "SELECT count(*) FROM email_recipients WHERE email_id = '$eid' AND delivered")" 1 \
		"in alice's mailbox"
	is "$(grep -c 'status=bounced' "$PF_LOG")" 0 "nothing bounced"
fi
done_testing
