#!/usr/bin/env bash
# fault-notify.sh - a notification endpoint that hangs, behind the whole
# pipeline (tests/lib/pipeline.sh, Postfix from contrib/postfix, and
# postroom-webhookd sending deliver.notify_url from the events outbox):
# postroom-deliver makes no request of its own, so every delivery
# completes without waiting for the endpoint and the message is stored;
# postroom-webhookd's attempts are bounded by deliver.notify_timeout and
# retried; once the endpoint answers, MISSION's notification arrives
# exactly once per user.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"	# smtp_reply

T=8
STATUS=$TAP_TMP/endpoint-status
echo hang >"$STATUS"
PIPELINE_NOTIFY=1
PIPELINE_NOTIFY_ARGS="--status-file $STATUS"
PIPELINE_CONF_EXTRA=("deliver.notify_timeout = $T" "deliver.notify_connect_timeout = 1"
	"webhook.backoff_base = 1" "webhook.backoff_max = 2")
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
# no request from the pipe: a delivery takes only its own work, never the
# endpoint's timeout (6 s allowed for the work on a busy CI machine, 3x
# its usual time; a request inline would cost the full $T s)
for r in "alice@$D" "bob@$D"; do
	s=$(pipe_secs "$qid" "$r")
	ok '[ -n "$s" ] && awk -v s="$s" "BEGIN { exit !(s <= 6) }"' \
		"delivery to $r does not wait for the endpoint ($s s, at most 6; the endpoint hangs $T s)"
done
is "$(psqlc "SELECT count(*) FROM emails WHERE subject = 'hang-1'")" 1 "the message is stored, once"
is "$(psqlc "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.subject = 'hang-1' AND delivered")" 2 \
	"in alice's and bob's mailboxes"
ok 'http_rec_wait 1 30' "postroom-webhookd sends the notification (the endpoint never answers)"
ok 'pipeline_wait_sql "SELECT count(*) FROM webhook_deliveries WHERE endpoint = '"'notify_url'"' AND attempts >= 1 AND last_status = 0" 2 60' \
	"its attempts time out (deliver.notify_timeout) and stay queued for a retry"
echo 200 >"$STATUS"
ok 'pipeline_wait_sql "SELECT count(*) FROM webhook_deliveries" 0 90' "the endpoint answers: every notification is delivered"
EID=$(psqlc "SELECT id FROM emails WHERE subject = 'hang-1'")
is "$(jq -r 'select(.status == 200) | .body | fromjson | select(.email.id == "'"$EID"'") | .userIds[]' "$HTTP_REC_OUT" | sort | paste -sd' ')" \
	"$(psqlc "SELECT string_agg(id::text, ' ' ORDER BY id::text) FROM users WHERE address IN ('alice@$D', 'bob@$D')")" \
	"MISSION's body accepted exactly once per user (alice's and bob's)"
is "$(jq -r 'select(.status == 200) | .headers.Authorization' "$HTTP_REC_OUT" | sort -u)" "ApiKey $PIPELINE_NOTIFY_KEY" \
	"with Authorization: ApiKey <internal key>"
done_testing
