#!/bin/bash
# harness-postfix.sh - smoke test of tests/lib/postfix.sh: a private Postfix
# on loopback high ports accepts mail for postroom.test and discards it,
# offers STARTTLS (submission) and implicit TLS (submissions), stops cleanly
# and leaves /etc/postfix untouched. Needs root, postfix, swaks, openssl.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"

etc_sum() { find /etc/postfix -printf '%p %s %T@ %m %u %g\n' 2>/dev/null | sort | md5sum; }
etc_before=$(etc_sum)

# the hooks callers use: an extra main.cf setting and an smtpd -o option
PF_MAIN_EXTRA=("smtpd_banner = \$myhostname ESMTP postroom-harness")
PF_SMTPD_OPTS_MX=(smtpd_client_connection_count_limit=20)
if pf_start; then pass "pf_start"; else fail "pf_start"; done_testing; fi
like "$(postconf -c "$PF_CONF" -h smtpd_banner)" 'postroom-harness' "PF_MAIN_EXTRA applied"
like "$(cat "$PF_CONF/master.cf")" "-o smtpd_client_connection_count_limit=20" "PF_SMTPD_OPTS_MX applied"

swaks_out=$(swaks --server "127.0.0.1:$PF_PORT_MX" --helo client.test \
	--from sender@example.org --to someone@postroom.test \
	--header "Subject: harness" --body "hello" 2>&1)
like "$swaks_out" '<- +220 mx\.postroom\.test ESMTP postroom-harness' "banner from the private instance"
like "$swaks_out" '<- +250 2\.0\.0 Ok: queued as' "MX port queues the message"
queue_id=$(printf '%s\n' "$swaks_out" | sed -n 's/.*queued as \([0-9A-F]*\).*/\1/p')
if pf_wait_log "$queue_id: to=<someone@postroom.test>.*status=sent"; then
	pass "maillog shows the message sent"
else
	fail "maillog shows the message sent" "$(tail -n 20 "$PF_LOG")"
fi
like "$(grep "$queue_id: to=" "$PF_LOG")" 'postfix/discard\[' "delivered by the discard transport"
for i in $(seq 50); do pf_queue_empty && break; sleep 0.1; done
ok pf_queue_empty "queue is empty afterwards"

sub_out=$(swaks --server "127.0.0.1:$PF_PORT_SUB" --tls --helo client.test \
	--from sender@example.org --to other@postroom.test 2>&1)
like "$sub_out" 'TLS started' "STARTTLS on the submission port"
like "$sub_out" '<~ +250 2\.0\.0 Ok: queued' "submission queues over TLS"
plain_out=$(swaks --server "127.0.0.1:$PF_PORT_SUB" --helo client.test \
	--from sender@example.org --to other@postroom.test 2>&1)
like "$plain_out" '530 5\.7\.0 Must issue a STARTTLS' "submission refuses MAIL without TLS"

subs_out=$(swaks --server "127.0.0.1:$PF_PORT_SUBS" --tlsc --helo client.test \
	--from sender@example.org --to third@postroom.test 2>&1)
like "$subs_out" 'TLS started' "implicit TLS on the submissions port"
like "$subs_out" '<~ +250 2\.0\.0 Ok: queued' "submissions queues over TLS"
pf_wait_log 'to=<third@postroom.test>.*status=sent' ||
	fail "third message delivered" "$(tail -n 20 "$PF_LOG")"

master=$PF_MASTER_PID
ok '[ -n "$master" ] && kill -0 "$master"' "master is running"
pf_stop
is "$(ps -eo pid=,sid= | awk -v s="$master" '$2 == s' | wc -l)" 0 "no process of the instance remains"
ok '! kill -0 "$master" 2>/dev/null' "master is gone"
is "$(etc_sum)" "$etc_before" "/etc/postfix not modified"

done_testing
