#!/bin/bash
# policyd-quota.sh - sending quotas against PostgreSQL: recipients counted
# at RCPT and messages at DATA per sasl_username, 450 4.7.1 over the
# limit, per-user overrides with postroomctl quota set|show, counts
# flushed in batches and surviving a restart, two daemons sharing one
# database, and exact counting under 20 concurrent connections.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

pg_start && pg_fresh_db policyd || { fail "PostgreSQL"; done_testing; }
pctl domain add postroom.test >/dev/null
for u in alice bob carol dave erin; do pctl user add $u@postroom.test >/dev/null; done
pd_conf "rules.mx_enabled = true" "policyd.spf = false" "policyd.quota_messages = 3" \
	"policyd.quota_recipients = 5" "policyd.quota_flush_interval = 200" "policyd.cache_ttl = 1"
pd_start || { fail "policyd starts"; done_testing; }

# sub STATE USER [RCPT]: one authenticated submission request
sub() {
	req protocol_state=$1 server_port=587 client_address=198.51.100.30 sender=$2@postroom.test \
		sasl_username=$2@postroom.test recipient=${3:-} queue_id=Q$RANDOM
}
# postroomctl with the daemon's configuration (its quota defaults)
pdctl() { "$POSTROOM_BUILDDIR/postroomctl" -c "$PD_CONF" "$@"; }
actions() { pd_req readsocket | sed -n 's/^action=//p' | tr '\n' '|'; }

got=$(for i in 1 2 3 4 5 6; do sub RCPT alice friend$i@elsewhere.example; done | actions)
is "$got" "DUNNO|DUNNO|DUNNO|DUNNO|DUNNO|450 4.7.1 Sending quota exceeded: at most 5 recipients per hour, try again later|" \
	"recipient quota 5: the sixth RCPT is deferred with 450 4.7.1"
got=$(for i in 1 2 3 4; do sub DATA alice; done | actions)
is "$got" "DUNNO|DUNNO|DUNNO|450 4.7.1 Sending quota exceeded: at most 3 messages per hour, try again later|" \
	"message quota 3: the fourth DATA is deferred"
is "$(sub MAIL alice | actions)" "450 4.7.1 Sending quota exceeded: at most 3 messages per hour, try again later|" \
	"at the limit, MAIL is deferred already"
is "$(sub RCPT bob x@elsewhere.example | actions)" "DUNNO|" "another user is not affected"
is "$(req protocol_state=RCPT server_port=25 client_address=198.51.100.31 sender=x@example.org \
	sasl_username= recipient=alice@postroom.test | actions)" "DUNNO|" "inbound (unauthenticated) mail is not counted"

sleep 0.6	# > one flush interval
is "$(psqlc "SELECT login, messages, recipients FROM quota_usage ORDER BY login" | tr '\n' ' ')" \
	"alice@postroom.test|3|5 bob@postroom.test|0|1 " "counts flushed to quota_usage (refusals not counted)"
show=$(pdctl --json quota show alice@postroom.test)
is "$(printf '%s' "$show" | jq -c '[.messages_per_hour, .messages_default, .messages_this_hour, .recipients_this_hour]')" \
	"[3,true,3,5]" "postroomctl quota show: defaults and this hour's usage"

# per-user overrides
run_status 0 "quota set bob --messages 1" pctl quota set bob@postroom.test --messages 1
run_status 0 "quota set carol --messages 0 (unlimited)" pctl quota set carol@postroom.test --messages 0
run_status 1 "quota set for an unknown user refused" pctl quota set nobody@postroom.test --messages 1
run_status 64 "quota set with a bad value refused" pctl quota set bob@postroom.test --messages -3
run_status 64 "quota set without a limit refused" pctl quota set bob@postroom.test
like "$(pdctl quota show bob@postroom.test)" "messages per hour: 1 \(this hour: 0\)" "show: the override"
sleep 1.1	# policyd.cache_ttl = 1: limits re-read
is "$(for i in 1 2; do sub DATA bob; done | actions)" \
	"DUNNO|450 4.7.1 Sending quota exceeded: at most 1 messages per hour, try again later|" "override of 1 message"
is "$(for i in 1 2 3 4 5 6; do sub DATA carol; done | actions)" "DUNNO|DUNNO|DUNNO|DUNNO|DUNNO|DUNNO|" \
	"override 0: unlimited"
run_status 0 "quota set carol --messages default" pctl quota set carol@postroom.test --messages default
like "$(pdctl quota show carol@postroom.test)" "messages per hour: 3 \(default\)" "back to the default"

# restart: the counts come back from the database
sleep 0.4
pd_stop
is "$PD_STATUS" 0 "clean stop (counters flushed)"
pd_start || fail "restart"
is "$(sub DATA alice | actions)" "450 4.7.1 Sending quota exceeded: at most 3 messages per hour, try again later|" \
	"after a restart alice is still over quota"

# a second daemon on the same database (another host)
first=$PD_PID
PD_PID=
pd_conf "rules.mx_enabled = true" "policyd.spf = false" "policyd.quota_messages = 3" \
	"policyd.quota_recipients = 5" "policyd.quota_flush_interval = 200"
pd_start || fail "second daemon"
second_addr=$PD_ADDR
is "$(for i in 1 2; do sub DATA dave; done | actions)" "DUNNO|DUNNO|" "host B: dave sends 2"
sleep 0.6
PD_TARGET=$second_addr
is "$(for i in 1 2; do sub DATA dave; done | PD_TARGET=$second_addr actions)" \
	"DUNNO|450 4.7.1 Sending quota exceeded: at most 3 messages per hour, try again later|" \
	"same host again after a flush: the shared count holds"
unset PD_TARGET
kill "$first" && wait "$first"

# 20 concurrent connections, 10 RCPTs each, limit 37 recipients
pctl quota set erin@postroom.test --recipients 37 >/dev/null
pids=()
for c in $(seq 20); do
	( for i in $(seq 10); do sub RCPT erin r$c-$i@elsewhere.example; done | actions >"$TAP_TMP/conc.$c" ) &
	pids+=($!)
done
wait "${pids[@]}"
is "$(cat "$TAP_TMP"/conc.* | tr '|' '\n' | grep -c '^DUNNO$')" 37 "200 RCPTs on 20 connections, limit 37: exactly 37 admitted"
sleep 0.6
is "$(psqlc "SELECT recipients FROM quota_usage WHERE login = 'erin@postroom.test'")" 37 "and 37 recorded"
pd_done
