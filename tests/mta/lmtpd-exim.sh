#!/usr/bin/env bash
# lmtpd-exim.sh - a real Exim delivering to postroom-lmtpd through the
# router and lmtp transport of contrib/exim/postroom-lmtp.transport: a
# message to two hosted users is one LMTP transaction, stored once with
# both delivered; an unknown user at the hosted domain gets lmtpd's
# 550 5.1.1 and Exim bounces that recipient alone; Exim adds no
# per-recipient headers to what is stored.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
EXIM_DOMAIN=example.com
. "$POSTROOM_SRCDIR/tests/lib/exim.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"

if exim_prepare; then pass "exim_prepare"; else fail "exim_prepare"; done_testing; fi
pg_start && pg_fresh_db lmtp_exim || { fail "database ready"; done_testing; }
for u in alice bob; do pctl user add $u@example.com >/dev/null; done
lmtpd_start || { fail "postroom-lmtpd starts"; done_testing; }
chmod 711 "$TAP_TMP"

conf=$(exim_conf_minimal "$TAP_TMP/exim")
sed "s|/run/postroom/lmtp|$LMTPD_SOCKET|" "$POSTROOM_SRCDIR/contrib/exim/postroom-lmtp.transport" >"$TAP_TMP/snippet"
awk '/^# --- in "begin routers"/ { on = 1; next } /^# --- in "begin transports"/ { exit } on' "$TAP_TMP/snippet" >"$TAP_TMP/router"
awk 'on; /^# --- in "begin transports"/ { on = 1 }' "$TAP_TMP/snippet" >"$TAP_TMP/transport"
awk -v r="$TAP_TMP/router" '/^blackhole:/ { while ((getline l < r) > 0) print l; print "" } { print }' "$conf" >"$TAP_TMP/exim.conf.new"
cat "$TAP_TMP/transport" >>"$TAP_TMP/exim.conf.new"
cat "$TAP_TMP/exim.conf.new" >"$conf"
like "$(exim_run "$conf" -bV 2>&1)" 'Transports:.*lmtp' "Exim accepts the contrib router and lmtp transport"
if exim_daemon "$conf"; then pass "exim_daemon"; else fail "exim_daemon"; done_testing; fi
MAINLOG="$TAP_TMP/exim/log/mainlog"

send() {
	swaks --server "127.0.0.1:$EXIM_PORT" --helo client.test --from dave@example.org --to "$1" \
		--header "Subject: $2" --header "Message-ID: <$2@example.org>" --body "body of $2" >"$TAP_TMP/swaks.out" 2>&1
}
wait_log() { for i in $(seq 100); do grep -q "$1" "$MAINLOG" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

send alice@example.com,bob@example.com,nobody@example.com exim1
like "$(cat "$TAP_TMP/swaks.out")" "<~? *250 .*id=|<- *250 OK id=" "Exim accepted the message"
id=$(sed -n 's/.*250 OK id=\([^ ]*\).*/\1/p' "$TAP_TMP/swaks.out" | head -1)
wait_log "$id Completed"
is "$(grep "$id" "$MAINLOG" | grep -c ' => .*T=postroom_lmtp')" 1 \
	"Exim: one LMTP delivery line for the two known recipients (batched)"
like "$(grep "$id" "$MAINLOG" | grep ' \*\* nobody@example.com')" "550 5.1.1" \
	"... the unknown recipient bounced with lmtpd's 550 5.1.1"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id = 'exim1@example.org'")" 1 "stored once"
is "$(psqlc "SELECT string_agg(r.address || ':' || CASE WHEN r.delivered THEN 't' ELSE 'f' END, ' ' ORDER BY r.address) FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = 'exim1@example.org' AND r.delivered")" \
	"alice@example.com:t bob@example.com:t" "... alice and bob delivered"
like "$(grep 'exim1@example.org' "$LMTPD_LOG")" "rcpts=alice@example.com,bob@example.com .*result=delivered" \
	"lmtpd: one transaction with both recipients"
raw=$(pctl mail raw "$(psqlc "SELECT id FROM emails WHERE message_id = 'exim1@example.org'")")
unlike "$raw" "^(Envelope-to|Delivery-date|Return-path):" "Exim added no per-recipient headers to the stored message"
like "$raw" "body of exim1" "the raw message is stored"
done_testing
