#!/usr/bin/env bash
# fault-notify.sh - a notification endpoint that hangs, behind the whole
# pipeline (tests/lib/pipeline.sh, Postfix from contrib/postfix): every
# delivery still completes within its timeout (deliver.notify_timeout; a
# timed-out request is not retried) and the message is stored; and the MTA retrying a message that was already stored (its
# postroom-deliver killed after the commit, while it waited for the
# endpoint) stores it once.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"	# smtp_reply

T=5
PIPELINE_NOTIFY=1
PIPELINE_NOTIFY_ARGS=--hang
PIPELINE_CONF_EXTRA=("deliver.notify_timeout = $T" "deliver.notify_connect_timeout = 1")
pipeline_start || { fail "pipeline starts"; done_testing; }
D=$PIPELINE_DOMAIN
pass "pipeline started; the notification endpoint never answers; deliver.notify_timeout = $T"

# mx ID RCPTS: a message from outside; prints Postfix's queue id
mx() {
	smtp_reply DATA "$PF_PORT_MX" someone@foreign.example "$2" \
		--header "Message-ID: <$1@foreign.example>" --header "Subject: $1" |
		sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p'
}
# pipe_secs QID RCPT: seconds the pipe command took (the last of delays=)
pipe_secs() {
	grep "$1: to=<$2>.*status=sent" "$PF_LOG" | tail -n 1 | sed -n 's/.*delays=[^/]*\/[^/]*\/[^/]*\/\([0-9.]*\),.*/\1/p'
}

qid=$(mx hang-1 "alice@$D,bob@$D")
like "$qid" '^[0-9A-F]+$' "a message to alice and bob is queued ($qid)"
pf_wait_log "$qid: to=<alice@$D>.*status=sent" 30 && pf_wait_log "$qid: to=<bob@$D>.*status=sent" 30
# deliver.notify_timeout bounds one request, and a timed-out request is
# not retried (lib/store_notify.c): a hanging endpoint delays a delivery
# by one timeout, plus the delivery's own work (4 s allowed: CI machines
# are busy; a retry would cost another full timeout and fail this)
for r in "alice@$D" "bob@$D"; do
	s=$(pipe_secs "$qid" "$r")
	ok '[ -n "$s" ] && awk -v s="$s" -v t="$T" "BEGIN { exit !(s <= t + 4) }"' \
		"delivery to $r completes within notify_timeout ($s s, at most $T + 4)"
done
ok 'http_rec_wait 1 5' "the endpoint did receive the notification (and never answered)"
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'hang-1'")" 1 "the message is stored, once"
is "$(psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.subject = 'hang-1' AND delivered")" 2 \
	"in alice's and bob's mailboxes"

# the MTA retries a message already stored: postroom-deliver is killed
# after its commit, while it waits for the endpoint; Postfix defers and
# delivers again
qid=$(mx retry-1 "bob@$D")
like "$qid" '^[0-9A-F]+$' "a message to bob is queued ($qid)"
pid=
for i in $(seq 300); do
	if [ "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'retry-1'")" = 1 ]; then
		pid=$(ps -eo pid=,args= | grep -F -- "$PIPELINE_CONF" | grep -F -- "-q $qid " |
			awk '$2 ~ /postroom-deliver$/ { print $1; exit }')
		break
	fi
	sleep 0.05
done
ok '[ -n "$pid" ] && kill -KILL "$pid"' "postroom-deliver killed after its commit, while notifying"
pf_wait_log "$qid: to=<bob@$D>.*status=deferred" 20
like "$(grep "$qid: to=<bob@$D>" "$PF_LOG" | tail -n 1)" 'status=deferred' "Postfix defers that delivery"
pf_flush
pf_wait_log "$qid: to=<bob@$D>.*status=sent" 60
like "$(grep "$qid: to=<bob@$D>" "$PF_LOG" | tail -n 1)" 'status=sent' "the retry succeeds"
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'retry-1'")" 1 "the retried message is stored once"
is "$(psqlc "SELECT count(*) FROM email_raw r JOIN emails e ON e.id = r.email_id WHERE e.subject = 'retry-1'")" 1 "one raw copy"
is "$(psqlc "SELECT count(*) || ':' || bool_and(delivered) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.subject = 'retry-1'")" \
	"1:true" "one recipient row, in bob's mailbox"
done_testing
