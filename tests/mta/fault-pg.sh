#!/usr/bin/env bash
# fault-pg.sh - PostgreSQL down behind the whole pipeline
# (tests/lib/pipeline.sh, Postfix from contrib/postfix): 200 messages
# accepted and queued while delivery to postroom is held
# (defer_transports), PostgreSQL stopped and delivery released: every
# delivery defers with 4.3.0; new mail meanwhile is refused with 4xx at
# RCPT, never accepted unchecked; PostgreSQL started and the queue
# flushed: exactly 200 stored, none twice, none bounced.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"	# smtp_reply
N=200

pipeline_start || { fail "pipeline starts"; done_testing; }
D=$PIPELINE_DOMAIN
# carol receives nothing before the database stops: no daemon has her cached
pctl user add "carol@$D" >/dev/null
# hold deliveries to postroom; retry deferred mail quickly once flushed
postconf -c "$PF_CONF" -e "defer_transports = postroom" "minimal_backoff_time = 2s" \
	"maximal_backoff_time = 4s" "queue_run_delay = 2s" && pf_restart
pass "pipeline started; delivery to postroom held (defer_transports = postroom)"

is "$(pipeline_send "$N" "alice@$D,bob@$D" fault-pg)" "$N" "$N messages to alice and bob accepted (250 at end of data)"
pipeline_wait_queue "$N" 60
is "$(pipeline_queue_count)" "$N" "all $N are in Postfix's queue"
# pairs FILTER: distinct "queue id, recipient" of the log lines FILTER keeps
pairs() { "$@" | sed -n 's/.*: \([0-9A-F]*\): to=<\([^>]*\)>.*/\1 \2/p' | sort -u | wc -l; }
held() { grep 'status=deferred (deferred transport)' "$PF_LOG"; }
# every recipient of every message through qmgr's hold ("deferred transport")
for i in $(seq 300); do
	[ "$(pairs held)" -ge $((2 * N)) ] && break
	sleep 0.2
done
is "$(pairs held)" "$((2 * N))" "all $((2 * N)) deliveries (2 recipients x $N) held"
is "$(psqlc "SELECT count(*) FROM emails")" 0 "none stored yet"

pipeline_pg_stop && pass "PostgreSQL stopped" || fail "PostgreSQL stopped"
# new mail while the database is down: 4xx at RCPT (milter and policyd)
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.example "carol@$D")
like "$r" '^4[0-9][0-9] 4\.3\.0 ' "database down: a new message is refused at RCPT with 4.3.0 ($r)"
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.example "victim@foreign.example")
like "$r" '^[45][0-9][0-9] ' "database down: a relay attempt is refused, never 250 ($r)"
r=$(smtp_reply RCPT "$PF_PORT_SUB" "alice@$D" friend@foreign.example --tls \
	--auth PLAIN --auth-user "alice@$D" --auth-password "$PIPELINE_KEY")
# (an uncached login fails: Postfix 3.7 turns authd's temp_fail into 535,
# see contrib/postfix/authd.main.cf; the client keeps its mail and retries)
like "$r" '^(4[0-9][0-9] |535 5\.7\.8 .*Temporary authentication failure)' \
	"database down: a submission is not accepted (4xx, or AUTH's temporary failure) ($r)"

# release the queue into postroom-deliver with the database down
start=$(wc -l <"$PF_LOG")
postconf -c "$PF_CONF" -e "defer_transports =" && pf_restart && pf_flush
since() { tail -n +"$((start + 1))" "$PF_LOG" | grep 'status=deferred' | grep -v '(deferred transport)'; }
for i in $(seq 300); do
	[ "$(pairs since)" -ge $((2 * N)) ] && break
	sleep 0.3
done
is "$(pairs since)" "$((2 * N))" "all $((2 * N)) deliveries deferred"
is "$(since | grep -vc 'dsn=4\.3\.0')" 0 "every deferral with dsn=4.3.0 ($(since | grep -c .) attempts logged)"
ok 'since | grep -q "relay=postroom.*dsn=4\.3\.0, status=deferred"' \
	"postroom-deliver itself deferred with 4.3.0 (not only Postfix's suspension of the transport)"
# (qmgr moves the deferred files round every 2 s: showq's count is a
# moving snapshot, so "still queued" is read from the log: nothing left)
is "$(grep -c ': removed$' "$PF_LOG")" 0 "all $N still queued: none removed from the queue"
is "$(grep -c 'status=sent' "$PF_LOG")" 0 "none delivered"
is "$(grep -c 'status=bounced' "$PF_LOG")" 0 "nothing bounced"

pipeline_pg_start && pass "PostgreSQL started" || fail "PostgreSQL started"
pf_flush
pipeline_wait_queue 0 150
left=$(pipeline_queue_count)
# stuck: one line on what holds the messages left (CI shows the lines
# right after "not ok"): each one's last log line, the deliveries still
# running, and what their database sessions wait for
stuck() {
	local q
	for q in $(pf_queue_ids); do
		printf '%s last: %s; ' "$q" "$(grep -F "$q" "$PF_LOG" | tail -n 1 | cut -d' ' -f5- | cut -c1-240)"
	done
	printf 'postroom-deliver running (seconds each): %s; ' "$(ps -eo comm=,etimes= | awk '$1 ~ /^postroom-deliv/ { printf "%s ", $2 }')"
	printf 'sessions: %s' "$(psqlc "SELECT string_agg(application_name || ' ' || state || ' ' || coalesce(wait_event_type || ':' || wait_event, '-') || ' ' || round(extract(epoch FROM now() - state_change)) || 's ' || left(query, 60), ' | ') FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>&1)"
}
if [ "$left" = 0 ]; then pass "the flushed queue empties"; else fail "the flushed queue empties" "got: $left left; $(stuck)" "expected: 0"; fi
[ "$left" = 0 ] || {
	postqueue -c "$PF_CONF" -p 2>&1 | sed 's/^/# queue: /'
	for q in $(pf_queue_ids); do
		grep -F "$q" "$PF_LOG" | tail -n 20 | sed 's/^/# log: /'
	done
}
is "$(psqlc "SELECT count(*) FROM emails")" "$N" "exactly $N emails stored"
is "$(psqlc "SELECT count(DISTINCT subject) || ' ' || count(DISTINCT content_sha256) FROM emails WHERE subject LIKE 'fault-pg-%'")" \
	"$N $N" "each of the $N messages once, none twice"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE delivered AND user_id IS NOT NULL")" "$((2 * N))" \
	"every message in alice's and bob's mailboxes ($((2 * N)) delivered rows)"
is "$(psqlc "SELECT count(*) FROM email_raw")" "$N" "$N raw messages kept"
is "$(grep -c 'status=bounced' "$PF_LOG")" 0 "still nothing bounced"
r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.example "alice@$D")
like "$r" '^250 ' "database back: new mail accepted again ($r)"
done_testing
