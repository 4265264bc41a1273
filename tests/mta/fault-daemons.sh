#!/usr/bin/env bash
# fault-daemons.sh - postroom-milter, postroom-policyd or postroom-authd
# killed (SIGKILL) behind the whole pipeline (tests/lib/pipeline.sh,
# Postfix from contrib/postfix): Postfix answers the client 4xx
# (milter_default_action = tempfail, smtpd_policy_service_default_action,
# no AUTH without authd) rather than accepting unchecked mail or bouncing
# it; nothing is queued or stored meanwhile; restarted, mail flows again.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"	# smtp_reply

pipeline_start || { fail "pipeline starts"; done_testing; }
D=$PIPELINE_DOMAIN
A=alice@$D
SUBMIT=(--tls --auth PLAIN --auth-user "$A" --auth-password "$PIPELINE_KEY")
pass "pipeline started"

# inbound MSG-ID: a whole message from outside to alice on the MX port
inbound() {
	smtp_reply DATA "$PF_PORT_MX" someone@foreign.example "$A" \
		--header "Message-ID: <$1@foreign.example>" --header "Subject: $1"
}
# submitted MSG-ID: alice on 587 (STARTTLS, AUTH) to bob and outside
submitted() {
	smtp_reply DATA "$PF_PORT_SUB" "$A" "bob@$D,friend@foreign.example" "${SUBMIT[@]}" \
		--header "Message-ID: <$1@$D>" --header "Subject: $1"
}
stored() { psqlc "SELECT count(*) FROM emails WHERE trim(both '<>' from message_id) LIKE '$1@%'"; }

like "$(inbound before-mx)" '^250 ' "all daemons up: inbound mail queued"
like "$(submitted before-sub)" '^250 ' "all daemons up: submission queued"
pipeline_wait_sql "SELECT count(*) FROM emails" 2 30
is "$(psqlc "SELECT count(*) FROM emails")" 2 "and stored"

# down NAME: kill -9 the daemon, check that nothing gets in, restart it
for name in milter policyd authd; do
	pipeline_daemon_kill "$name" KILL
	ok '! _pl_pid_is "$(cat "$PIPELINE_DIR/pids/$name.pid")" "postroom-$name"' "postroom-$name killed with SIGKILL"
	q0=$(pipeline_queue_count)
	r=$(inbound "$name-down-mx")
	if [ "$name" = authd ]; then
		like "$r" '^250 ' "authd down: the MX service (no AUTH) still takes inbound mail ($r)"
	else
		like "$r" '^4[0-9][0-9] ' "$name down: inbound mail on the MX port gets 4xx ($r)"
		r=$(smtp_reply RCPT "$PF_PORT_MX" someone@foreign.example victim@foreign.example)
		like "$r" '^4[0-9][0-9] ' "$name down: a relay attempt gets 4xx, never 250 ($r)"
	fi
	r=$(submitted "$name-down-sub")
	like "$r" '^4[0-9][0-9] ' "$name down: a submission on 587 gets 4xx ($r)"
	[ "$name" = authd ] && r=$(grep -E '^<[~*-]\*? +[0-9]{3} ' "$TAP_TMP/swaks.out" | grep -A0 -E ' (4|5)[0-9][0-9] ' | head -n 1) &&
		diag "authd down, AUTH answered: $r"
	sleep 1
	if [ "$name" = authd ]; then
		pipeline_wait_sql "SELECT count(*) FROM emails WHERE subject = 'authd-down-mx'" 1 30
		is "$(stored "$name-down-sub")" 0 "$name down: the submission is neither queued nor stored"
	else
		is "$(pipeline_queue_count)" "$q0" "$name down: nothing was queued"
		is "$(stored "$name-down")" 0 "$name down: nothing stored"
	fi
	pipeline_daemon_start "$name" && pass "postroom-$name restarted" || fail "postroom-$name restarted"
	like "$(inbound "$name-up-mx")" '^250 ' "$name back: inbound mail queued again"
	like "$(submitted "$name-up-sub")" '^250 ' "$name back: submission queued again"
	pipeline_wait_sql "SELECT count(*) FROM emails WHERE subject IN ('$name-up-mx', '$name-up-sub')" 2 30
	is "$(psqlc "SELECT count(*) FROM emails WHERE subject IN ('$name-up-mx', '$name-up-sub')")" 2 "$name back: both stored"
done
is "$(grep -c 'status=bounced' "$PF_LOG")" 0 "nothing bounced"
ok 'grep -q "milter-reject.*451 4\.7\.1" "$PF_LOG"' "the milter's absence shows as 451 4.7.1 in the mail log"
ok 'grep -q "451 4\.3\.0 .*policy service unavailable" "$PF_LOG"' "policyd's absence shows as 451 4.3.0 policy service unavailable"
done_testing
