#!/usr/bin/env bash
# webhook-outbox.sh - postroom-webhookd (issue 19 part 2): events from the
# outbox POSTed to a real HTTP recorder (tests/lib/httprec.py) that answers
# 503 for a while, then 200: every event arrives, signed per Standard
# Webhooks (verified here with Python's hmac, both secrets of a rotation),
# with the same webhook-id on every attempt and a fresh timestamp; two
# workers never send an event twice while healthy (each event has one
# accepted request); the legacy format (deliver.notify_url: MISSION's body,
# Authorization: ApiKey) rides the same queue; a worker SIGKILLed mid-send
# leads to a resend by another worker once the lease runs out; 410 parks
# the delivery (postroomctl events failed) and postroomctl events retry
# requeues it. /metrics (webhook.metrics_listen): the parked count after a
# 410, the age of the oldest unsent delivery while the endpoint answers
# 503, /healthz. The events prune (migration 024) keeps pending and parked
# events, deletes delivered ones, and the read horizon stays exact. One
# worker with webhook.concurrency 4 has exactly four requests open at once.
# No wall-clock bound is asserted: waits are polls with generous limits.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in alice bob; do pctl user add $u@example.com >/dev/null; done
pctl alias add support@example.com bob@example.com >/dev/null
psqlc "CREATE ROLE ${POSTROOM_DB}_webhook_login LOGIN IN ROLE $(psqlc "SELECT rolname FROM schema_roles WHERE role = 'webhook'")" >/dev/null

STATUS=$TAP_TMP/status
echo 503 >"$STATUS"
http_rec_start --status-file "$STATUS" || { fail "recorder"; done_testing; }
SEC1=whsec_$(head -c 32 /dev/urandom | base64 -w0)
SEC2=whsec_$(head -c 24 /dev/urandom | base64 -w0)
WCONF=$TAP_TMP/webhookd.conf
cat "$POSTROOM_CONF" >"$WCONF"
cat >>"$WCONF" <<CONF
webhook = { conninfo = "$(pg_role_conninfo webhook)"; url = "$HTTP_REC_URL/hook";
	secrets = "$SEC1 $SEC2"; backoff_base = 1; backoff_max = 2; poll_interval = 100;
	timeout = 4; connect_timeout = 1; batch = 1; };
deliver = { notify_url = "$HTTP_REC_URL/legacy"; notify_key = "k3y-legacy"; };
CONF
chmod 600 "$WCONF"
# the same, with /metrics (one worker only: one port)
MPORT=$(free_port)
WCONF_M=$TAP_TMP/webhookd-metrics.conf
sed "s#^webhook = { #webhook = { metrics_listen = \"127.0.0.1:$MPORT\"; #" "$WCONF" >"$WCONF_M"
chmod 600 "$WCONF_M"

WPIDS=()
# worker N [CONF] - start postroom-webhookd number N (log in $TAP_TMP/wN.log)
worker() {
	"$POSTROOM_BUILDDIR/postroom-webhookd" -f -c "${2:-$WCONF}" >>"$TAP_TMP/w$1.log" 2>&1 &
	WPIDS[$1]=$!
	at_exit "kill ${WPIDS[$1]} 2>/dev/null; wait ${WPIDS[$1]} 2>/dev/null"
}
# wait_sql SQL [SECONDS] - poll until SQL prints t
wait_sql() {
	local i
	for i in $(seq $((${2:-60} * 5))); do
		[ "$(psqlc "$1")" = t ] && return 0
		sleep 0.2
	done
	return 1
}
# metric NAME ENDPOINT - the value of a webhookd gauge (empty: none)
metric() {
	curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v s="$1{endpoint=\"$2\"}" '$1 == s { print $2 }'
}
# wait_metric NAME ENDPOINT AWK-TEST [SECONDS] - poll until the value passes
wait_metric() {
	local i v
	for i in $(seq $((${4:-30} * 5))); do
		v=$(metric "$1" "$2")
		[ -n "$v" ] && awk -v v="$v" "BEGIN { exit !($3) }" && return 0
		sleep 0.2
	done
	echo "# $1{endpoint=\"$2\"} = ${v:-none}" >&2
	return 1
}
worker 1
worker 2
ok 'wait_sql "SELECT count(*) = 2 FROM webhook_endpoints" 30' \
	"the workers register their endpoints (webhook: standard, notify_url: legacy)"
is "$(psqlc "SELECT name || ' ' || format || ' ' || array_to_string(kinds, ',') FROM webhook_endpoints ORDER BY name")" \
	"notify_url legacy new,link
webhook standard new,sent,link,thread_merge" "formats and kinds of the endpoints"

# --- 503 for a while, then 200 -------------------------------------------------------
for i in 1 2 3 4 5 6; do
	printf 'From: Sender %s <s%s@example.org>\nTo: bob@example.com\nSubject: hook %s\nMessage-ID: <h%s@x>\n\nbody %s\n' \
		$i $i $i $i $i >"$TAP_TMP/h$i.eml"
	deliver_run "$TAP_TMP/h$i.eml" -f s$i@example.org -- bob@example.com support@example.com alice@example.com
done
NEV=$(psqlc "SELECT count(*) FROM events")
is "$NEV" 12 "6 deliveries to 2 users: 12 events"
is "$(psqlc "SELECT count(*) FROM webhook_deliveries")" 24 "one delivery per event and endpoint"
ok 'http_rec_wait 30 60' "the endpoint answering 503: the workers keep retrying"
echo 200 >"$STATUS"
ok 'wait_sql "SELECT count(*) = 0 FROM webhook_deliveries" 60' "then it answers 200: every delivery is done"
sleep 0.5
REQ=$HTTP_REC_OUT
CHECK=$(python3 - "$REQ" "$SEC1" "$SEC2" <<'PY'
import base64, hashlib, hmac, json, re, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
keys = [base64.b64decode(s[len("whsec_"):]) for s in sys.argv[2:]]
bad_sig = 0; ts_by_id = {}; ok_ids = {}; n503 = 0; bodies = {}
for r in reqs:
    if r["path"] != "/hook":
        continue
    h = {k.lower(): v for k, v in r["headers"].items()}
    wid, ts, sig = h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]
    msg = ("%s.%s.%s" % (wid, ts, r["body"])).encode()
    want = ["v1," + base64.b64encode(hmac.new(k, msg, hashlib.sha256).digest()).decode() for k in keys]
    if sig.split(" ") != want:
        bad_sig += 1
    ts_by_id.setdefault(wid, set()).add(ts)
    if r["status"] == 200:
        ok_ids[wid] = ok_ids.get(wid, 0) + 1
        bodies[wid] = json.loads(r["body"])
    elif r["status"] == 503:
        n503 += 1
print("bad_signatures=%d" % bad_sig)
print("accepted_ids=%d" % len(ok_ids))
print("accepted_twice=%d" % sum(1 for v in ok_ids.values() if v > 1))
print("refused=%s" % ("some" if n503 > 0 else "none"))
print("fresh_timestamps=%s" % ("yes" if any(len(t) > 1 for t in ts_by_id.values()) else "no"))
rfc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
shape = all(b["type"] == "email.new" and b["version"] == 1 and b["kind"] == "new" and b["id"] == w
            and isinstance(b["position"], int) and b["subject"].startswith("hook ")
            and b["from"].startswith("s") and b["spam"] is False and rfc.match(b["received_at"])
            and b["message_id"] and b["thread_id"] and b["email_id"]
            and b["user"] in ("alice@example.com", "bob@example.com")
            and b["delivered_to"] == b["addresses"][0]
            for w, b in bodies.items())
print("bodies=%s" % ("ok" if shape else "bad"))
bob = sorted(",".join(b["addresses"]) for b in bodies.values() if b["user"] == "bob@example.com")
print("bob=%s" % (bob[0] if bob else ""))
legacy = [r for r in reqs if r["path"] == "/legacy" and r["status"] == 200]
lok = all(r["headers"].get("Authorization") == "ApiKey k3y-legacy"
          and set(json.loads(r["body"])) == {"userIds", "email"}
          and len(json.loads(r["body"])["userIds"]) == 1 for r in legacy)
print("legacy=%d %s" % (len(legacy), "ok" if lok else "bad"))
PY
)
diag "$(echo "$CHECK" | tr '\n' ' ')"
like "$CHECK" "bad_signatures=0" "every signature verifies with Python's hmac, both secrets (v1,A v1,B)"
like "$CHECK" "accepted_ids=$NEV" "every event arrived: one webhook-id per event"
like "$CHECK" "accepted_twice=0" "two healthy workers: no event accepted twice"
like "$CHECK" "refused=some" "the 503 answers were retried"
like "$CHECK" "fresh_timestamps=yes" "retries of one webhook-id carry fresh timestamps"
like "$CHECK" "bodies=ok" "the body: type, version, kind, position, user, delivered_to, ids, subject, from, spam, RFC 3339 received_at"
like "$CHECK" "bob=bob@example.com,support@example.com" "the addresses the user's copy was delivered to"
like "$CHECK" "legacy=$NEV ok" "deliver.notify_url: MISSION's body with Authorization: ApiKey, one per event, same retries"
is "$(python3 -c '
import json, sys
ids = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["path"] == "/hook":
        ids.setdefault(r["headers"]["webhook-id"], 0)
print(len(ids))' "$REQ")" "$NEV" "a retry keeps the webhook-id: as many ids as events"
is "$(psqlc "SELECT string_agg(DISTINCT id::text, ',' ORDER BY id::text) FROM events")" \
	"$(python3 -c '
import json, sys
print(",".join(sorted({json.loads(l)["headers"]["webhook-id"] for l in open(sys.argv[1]) if json.loads(l)["path"] == "/hook"})))' "$REQ")" \
	"the webhook-ids are the events' ids"

# --- a worker killed mid-send: resent by another -----------------------------------
kill "${WPIDS[2]}" && wait "${WPIDS[2]}" 2>/dev/null
echo hang >"$STATUS"
N0=$(http_rec_count)
printf 'From: k@example.org\nTo: alice@example.com\nSubject: killed\nMessage-ID: <k1@x>\n\nk\n' >"$TAP_TMP/k.eml"
deliver_run "$TAP_TMP/k.eml" -f k@example.org -- alice@example.com
KID=$(psqlc "SELECT id FROM events ORDER BY position DESC LIMIT 1")
ok 'http_rec_wait $((N0 + 1)) 30' "the only worker sends the event; the endpoint does not answer"
kill -KILL "${WPIDS[1]}"
wait "${WPIDS[1]}" 2>/dev/null
is "$(psqlc "SELECT count(*) || ' ' || COALESCE(max(last_status)::text, 'none') FROM webhook_deliveries WHERE endpoint = 'webhook' AND event_id = '$KID'")" \
	"1 none" "SIGKILLed mid-send: the delivery is still queued, no answer recorded"
echo 200 >"$STATUS"
worker 3 "$WCONF_M"
ok 'wait_sql "SELECT count(*) = 0 FROM webhook_deliveries WHERE event_id = '"'$KID'"'" 60' \
	"another worker resends it once the lease has run out"
is "$(python3 -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["path"] == "/hook" and json.loads(l)["headers"]["webhook-id"] == sys.argv[2] and json.loads(l)["status"] == 200))' "$REQ" "$KID")" \
	1 "the resend is accepted, same webhook-id"

# --- 410 parks; retry requeues ------------------------------------------------------
echo 410 >"$STATUS"
printf 'From: g@example.org\nTo: alice@example.com\nSubject: gone\nMessage-ID: <g1@x>\n\ng\n' >"$TAP_TMP/g.eml"
deliver_run "$TAP_TMP/g.eml" -f g@example.org -- alice@example.com
GID=$(psqlc "SELECT id FROM events ORDER BY position DESC LIMIT 1")
ok 'wait_sql "SELECT count(*) = 2 FROM webhook_deliveries WHERE event_id = '"'$GID'"' AND parked_at IS NOT NULL AND last_status = 410" 30' \
	"410: parked at once (both endpoints)"
is "$(psqlc "SELECT attempts FROM webhook_deliveries WHERE event_id = '$GID' AND endpoint = 'webhook'")" 1 "a parked delivery is not retried"
ok 'wait_metric postroom_webhook_parked webhook "v == 1" && wait_metric postroom_webhook_parked notify_url "v == 1"' \
	"/metrics: postroom_webhook_parked is 1 per endpoint after the 410"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/healthz")" 200 "/healthz: 200 while the database answers"
echo 200 >"$STATUS"
is "$(pctl events failed | jq -r 'select(.id == "'"$GID"'") | [.endpoint, .last_status] | join(" ")' | sort | paste -sd,)" \
	"notify_url 410,webhook 410" "postroomctl events failed lists them"

# --- the prune keeps what is not yet handled (migration 024) -----------------------
# after the parked event: one delivered (R), then one pending (Q, 503)
printf 'From: r@example.org\nTo: alice@example.com\nSubject: done\nMessage-ID: <r1@x>\n\nr\n' >"$TAP_TMP/r.eml"
deliver_run "$TAP_TMP/r.eml" -f r@example.org -- alice@example.com
RPOS=$(psqlc "SELECT max(position) FROM events")
ok 'wait_sql "SELECT count(*) = 0 FROM webhook_deliveries WHERE position = $RPOS" 30' "an event after the parked one is delivered"
echo 503 >"$STATUS"
printf 'From: q@example.org\nTo: alice@example.com\nSubject: pending\nMessage-ID: <q1@x>\n\nq\n' >"$TAP_TMP/q.eml"
deliver_run "$TAP_TMP/q.eml" -f q@example.org -- alice@example.com
QID=$(psqlc "SELECT id FROM events ORDER BY position DESC LIMIT 1")
ok 'wait_sql "SELECT attempts >= 1 AND parked_at IS NULL FROM webhook_deliveries WHERE event_id = '"'$QID'"' AND endpoint = '"'webhook'"'" 30' \
	"the next event is refused (503): pending"
ok 'wait_metric postroom_webhook_oldest_unsent_seconds webhook "v > 0"' \
	"/metrics: postroom_webhook_oldest_unsent_seconds > 0 while the endpoint answers 503"
is "$(metric postroom_webhook_parked webhook)" 1 "/metrics: the parked count is still 1"
NALL=$(psqlc "SELECT count(*) FROM events")
like "$(pctl events prune --keep 0)" "^pruned $((NALL - 2)) events" "events prune --keep 0: every delivered event goes"
is "$(psqlc "SELECT string_agg(id::text, ',' ORDER BY position) FROM events")" "$GID,$QID" \
	"the parked and the pending event survive the prune"
HZ=$(psqlc "SELECT pruned_through FROM events_horizon")
is "$HZ" "$RPOS" "the horizon is the highest position pruned (past the kept parked event)"
like "$(pctl events --since $((HZ - 1)) 2>&1)" "expired: resync" "a reader below the horizon: position expired, resync"
is "$(pctl events --since "$HZ" | jq -r .id | paste -sd,)" "$QID" \
	"a reader at the horizon reads on: the pending event, never the kept older one twice"
echo 200 >"$STATUS"
is "$(pctl events retry "$GID")" "requeued 2 deliveries" "postroomctl events retry ID requeues them"
ok 'wait_sql "SELECT count(*) = 0 FROM webhook_deliveries" 30' "then they are sent"
like "$(pctl events prune --keep 0)" "^pruned 2 events" "once delivered, the kept events go in the next prune"
ok 'wait_metric postroom_webhook_parked webhook "v == 0" && wait_metric postroom_webhook_oldest_unsent_seconds webhook "v == 0"' \
	"/metrics: nothing parked, nothing unsent"

# --- several requests in flight (webhook.concurrency) ---------------------------------
# one worker, batch 10, concurrency 4, the endpoint not answering: exactly
# 4 requests are open at once; when they time out they are retried, and
# once the endpoint answers every event arrives
kill "${WPIDS[3]}" && wait "${WPIDS[3]}" 2>/dev/null
WCONF_C=$TAP_TMP/webhookd-conc.conf
sed 's/batch = 1;/batch = 10; concurrency = 4;/; s/ timeout = 4;/ timeout = 8;/' "$WCONF" >"$WCONF_C"
chmod 600 "$WCONF_C"
echo hang >"$STATUS"
N0=$(http_rec_count)
for i in 1 2 3; do
	printf 'From: c@example.org\nTo: bob@example.com\nSubject: conc %s\nMessage-ID: <c%s@x>\n\nc\n' $i $i >"$TAP_TMP/c$i.eml"
	deliver_run "$TAP_TMP/c$i.eml" -f c@example.org -- bob@example.com alice@example.com
done
is "$(psqlc "SELECT count(*) FROM webhook_deliveries WHERE endpoint = 'webhook'")" 6 "6 events queued for the webhook"
worker 4 "$WCONF_C"
ok 'http_rec_wait $((N0 + 4)) 30' "webhook.concurrency 4: four requests sent..."
# (one at a time, the second would come only after the first timed out,
# and that failure is recorded: webhook.timeout is 8 s here)
is "$(psqlc "SELECT count(*) FROM webhook_deliveries WHERE endpoint = 'webhook' AND last_error IS NOT NULL")" 0 \
	"... without waiting for an answer (none has timed out yet)"
sleep 2
is "$(($(http_rec_count) - N0))" 4 "... and no fifth while those four are open"
echo 200 >"$STATUS"
ok 'wait_sql "SELECT count(*) = 0 FROM webhook_deliveries" 60' "they time out, are retried, and every delivery is done"
is "$(psqlc "SELECT ev.id FROM events ev JOIN emails e ON e.id = ev.email_id WHERE e.subject LIKE 'conc %'" | python3 -c '
import json, sys
ok = {json.loads(l)["headers"]["webhook-id"] for l in open(sys.argv[1]) if json.loads(l)["path"] == "/hook" and json.loads(l)["status"] == 200}
print(sum(1 for i in sys.stdin.read().split() if i in ok))' "$REQ")" 6 "... each of the 6 events accepted"

# --- roles ------------------------------------------------------------------------
like "$("$PG_BINDIR/psql" -qXAt -d "$(pg_role_conninfo webhook)" -c "DELETE FROM webhook_deliveries" 2>&1)" \
	"permission denied" "the webhook role changes deliveries through the functions only"
done_testing
