#!/usr/bin/env bash
# deliver-postfix.sh - postroom-deliver behind a real Postfix, with the
# pipe(8) service of postroom-deliver(8): delivered mail is stored once per
# recipient call, an unknown recipient bounces with 5.1.1, a message over
# limits.message_size_max bounces with the 5.3.4 of deliver's output (not
# the exit status's default), a stopped database defers and the retry
# delivers.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
command -v postfix >/dev/null && command -v swaks >/dev/null ||
	{ pass "# SKIP postfix or swaks not installed"; done_testing; }
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
chmod 711 "$PG_DIR"			# pipe(8) runs deliver as nobody
chmod 644 "$POSTROOM_CONF"		# trust authentication: no secret in it
printf 'limits = { message_size_max = 4096; };\n' >>"$POSTROOM_CONF"
pctl user add alice@example.com >/dev/null
pctl user add bob@example.com >/dev/null

PF_MAIN_EXTRA=(
	"virtual_mailbox_domains = example.com"
	"virtual_transport = postroom"
	"postroom_destination_recipient_limit = 1"
	"smtpd_reject_unlisted_recipient = no"
	"bounce_queue_lifetime = 0"
	"minimal_backoff_time = 1s"
	"maximal_backoff_time = 2s"
	"queue_run_delay = 1s"
)
PF_MASTER_EXTRA=(
	"postroom unix - n n - - pipe"
	"  flags=hu user=nobody null_sender="
	"  argv=$POSTROOM_BUILDDIR/postroom-deliver -c $POSTROOM_CONF -f \${sender} -a \${sasl_username} -C \${client_address} -q \${queue_id} -- \${recipient}"
)
pf_start || { fail "postfix started"; done_testing; }
pass "a private Postfix with the postroom pipe(8) service"

send() {	# MESSAGE-ID RCPT... (body on stdin)
	local mid=$1; shift
	local to
	to=$(IFS=,; echo "$*")
	swaks --server 127.0.0.1 --port "$PF_PORT_MX" --from sender@postroom.test --to "$to" \
		--header "Message-ID: <$mid>" --header "Subject: $mid" --body - >/dev/null 2>&1
}

echo "hello from postfix" | send pf-1@postroom.test alice@example.com bob@example.com nobody@example.com
pf_wait_log 'to=<bob@example.com>.*status=sent' 20 && pf_wait_log 'to=<alice@example.com>.*status=sent' 10
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id = 'pf-1@postroom.test'")" "1" \
	"three recipients, one call each: stored once"
is "$(psqlc "SELECT string_agg(address, ' ' ORDER BY address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = 'pf-1@postroom.test' AND delivered AND user_id IS NOT NULL")" \
	"alice@example.com bob@example.com" "alice and bob have it in their mailboxes"
pf_wait_log 'to=<nobody@example.com>.*status=bounced' 10
like "$(grep 'to=<nobody@example.com>' "$PF_LOG" | tail -n 1)" 'dsn=5\.1\.1.*status=bounced' \
	"the unknown recipient alone bounces with 5.1.1"
raw=$(pctl mail raw "$(psqlc "SELECT id FROM emails WHERE message_id = 'pf-1@postroom.test'")")
unlike "$raw" '^Delivered-To:' "no per-recipient line in the stored message"
like "$raw" 'hello from postfix' "the body is stored"

yes 'a line of a message far too big for the configured limit' | head -n 200 | send pf-big@postroom.test alice@example.com
pf_wait_log 'to=<alice@example.com>.*status=bounced' 20
like "$(grep 'to=<alice@example.com>.*status=bounced' "$PF_LOG" | tail -n 1)" \
	'dsn=5\.3\.4.*message too big' "too big: bounced with deliver's 5.3.4, not the default of its exit status"

pg_server_stop
echo "while the database is down" | send pf-down@postroom.test bob@example.com
pf_wait_log 'to=<bob@example.com>.*status=deferred' 20
like "$(grep 'to=<bob@example.com>.*status=deferred' "$PF_LOG" | tail -n 1)" 'dsn=4\.3\.0' \
	"database down: deferred with 4.3.0"
pg_server_start
pf_flush
for i in $(seq 60); do
	[ "$(psqlc "SELECT count(*) FROM emails WHERE message_id = 'pf-down@postroom.test'" 2>/dev/null)" = 1 ] && break
	sleep 0.5
done
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id = 'pf-down@postroom.test'")" "1" \
	"database back: Postfix's retry stores it once"
done_testing
