#!/usr/bin/env bash
# lmtpd-ops.sh - postroom-lmtpd in operation: the connection pool survives
# the database (stopped during a transaction: that transaction gets 451
# 4.3.0, nothing stored, the next one in the same session succeeds; a
# restart between transactions costs nothing; down at RCPT: 451); many
# concurrent sessions over a pool of two connections; a session thread
# serves the next connection; SIGHUP reloads;
# SIGTERM finishes the transaction in flight, answers the next MAIL and
# idle sessions with 421 4.3.2 and exits 0; notifications go out from the
# outbox through postroom-webhookd (an endpoint that hangs does not slow
# delivery; lmtpd makes no request itself).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/http.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in alice bob; do pctl user add $u@example.com >/dev/null; done
http_rec_start --hang || { fail "http recorder"; done_testing; }
LMTPD_TOP="deliver = { notify_url = \"$HTTP_REC_URL/api/internal/notifications/new-email\"; notify_key = \"k\"; notify_timeout = 5; };" \
LMTPD_EXTRA='pool_size = 2;' lmtpd_start || { fail "lmtpd started"; done_testing; }
S=$LMTPD_SOCKET
count() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1@example.org'"; }
msg() { printf 'From: dave@example.org\r\nTo: alice@example.com\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nbody %s\r\n' "$1" "$1" "$1" >"$TAP_TMP/$1.eml"; echo "$TAP_TMP/$1.eml"; }
send() { # send ID RCPT... - one transaction, replies on stdout
	local id=$1 f
	shift
	f=$(msg "$id")
	{ printf 'LHLO c\r\nMAIL FROM:<dave@example.org>\r\n'; for r in "$@"; do printf 'RCPT TO:<%s>\r\n' "$r"; done
	  printf 'DATA\r\n'; cat "$f"; printf '.\r\nQUIT\r\n'; } | lmtp "$S"
}

# --- notifications from the outbox -----------------------------------------------
# postroom-webhookd registers deliver.notify_url first (events before that
# are not queued for it)
"$POSTROOM_BUILDDIR/postroom-webhookd" -f -c "$LMTPD_CONF" >>"$TAP_TMP/webhookd.log" 2>&1 &
WHPID=$!
at_exit "kill $WHPID 2>/dev/null; wait $WHPID 2>/dev/null"
for i in $(seq 150); do
	[ "$(psqlc "SELECT count(*) FROM webhook_endpoints WHERE name = 'notify_url'")" = 1 ] && break
	sleep 0.2
done
out=$(send n1 alice@example.com)
like "$out" "Ok: stored" "delivered while the notification endpoint hangs"
ms=$(sed -n 's/.*<n1@example.org>.* ms=\([0-9]*\) .*/\1/p' "$LMTPD_LOG")
ok "[ -n '$ms' ] && [ '$ms' -lt 2000 ]" "... without waiting for it (${ms} ms in the server; the endpoint takes 5 s)"
http_rec_wait 1 30 && pass "postroom-webhookd sends the notification (deliver.notify_url)" ||
	fail "postroom-webhookd sends the notification (deliver.notify_url)"
# its next attempt comes only after the 5 s timeout and a backoff: a
# second request now would be lmtpd's own (gone since issue 19)
sleep 2
is "$(http_rec_count)" 1 "one request: postroom-lmtpd makes none itself"
kill "$WHPID" 2>/dev/null
wait "$WHPID" 2>/dev/null

# --- the database goes away during a transaction ---------------------------------
f=$(msg db1)
f2=$(msg db2)
cat >"$TAP_TMP/db.script" <<S
R
S LHLO c
R
S MAIL FROM:<dave@example.org>
R
S RCPT TO:<alice@example.com>
R
X touch $TAP_TMP/at-rcpt
W $TAP_TMP/db-down
S DATA
R
F $f
S .
R
X touch $TAP_TMP/failed
W $TAP_TMP/db-up
S MAIL FROM:<dave@example.org>
R
S RCPT TO:<alice@example.com>
R
S DATA
R
F $f2
S .
R
S QUIT
S
lmtp "$S" "$TAP_TMP/db.script" >"$TAP_TMP/db.out" &
cpid=$!
for i in $(seq 100); do [ -e "$TAP_TMP/at-rcpt" ] && break; sleep 0.1; done
pg_server_stop
touch "$TAP_TMP/db-down"
for i in $(seq 100); do [ -e "$TAP_TMP/failed" ] && break; sleep 0.1; done
pg_server_start
touch "$TAP_TMP/db-up"
wait $cpid
out=$(cat "$TAP_TMP/db.out")
like "$out" "451 4.3.0 <alice@example.com>: mail store unavailable" "database stopped during the transaction: 451 4.3.0"
like "$out" "Ok: stored" "... the next transaction in the same session is stored"
is "$(count db1) $(count db2)" "0 1" "... the failed one stored nothing"

# --- restarted between two transactions -----------------------------------------
send r1 alice@example.com >/dev/null
pg_server_stop
pg_server_start
out=$(send r2 alice@example.com)
like "$out" "Ok: stored" "a restart between transactions: the pool reconnects, the next one is stored"
pg_server_stop
out=$(send r3 alice@example.com)
like "$out" "451 4.3.0 <alice@example.com>: mail store unavailable" "database down at RCPT: 451 4.3.0"
like "$(curl -s -o /dev/null -w '%{http_code}' "http://$LMTPD_METRICS/healthz")" "^5" "... /healthz says unhealthy"
pg_server_start
out=$(send r3 alice@example.com)
like "$out" "Ok: stored" "... and back: stored"

# --- many sessions over two connections ---------------------------------------
for c in $(seq 12); do
	{ printf 'LHLO c\r\n'
	  for k in 1 2 3; do
		printf 'MAIL FROM:<dave@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n'
		cat "$(msg "conc-$c-$k")"; printf '.\r\n'
	  done; printf 'QUIT\r\n'; } >"$TAP_TMP/conc.in.$c"
done
pids=
for c in $(seq 12); do lmtp "$S" <"$TAP_TMP/conc.in.$c" >"$TAP_TMP/conc.$c" & pids="$pids $!"; done
wait $pids
is "$(cat "$TAP_TMP"/conc.[0-9]* | grep -c 'Ok: stored')" 72 "12 concurrent sessions x 3 messages x 2 recipients over a pool of 2: every reply 250"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id LIKE 'conc-%'")" 36 "... 36 emails stored"
is "$(lmtpd_metric postroom_lmtpd_sessions_active | cut -d. -f1)" 0 "active sessions back to 0"

# --- a message whose parse recurses deeply ----------------------------------------
# The corpus's header bomb (thousands of encoded words in To:) takes GMime
# ~2,500 frames deep; a session thread with a small stack crashed the whole
# daemon on it (every session in flight died). Pipe mode stores it.
bomb="$POSTROOM_SRCDIR/tests/corpus/jstedfast_MimeKit/messages/stack-overflow.txt"
if [ -f "$bomb" ]; then
	{ printf 'LHLO c\r\nMAIL FROM:<test@test.com>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n'
	  sed -e 's/\r$//' -e 's/^\./../' -e 's/$/\r/' "$bomb"; printf '.\r\nQUIT\r\n'; } >"$TAP_TMP/bomb.in"
	like "$(lmtp "$S" <"$TAP_TMP/bomb.in")" "250 2.0.0 <alice@example.com> Ok: stored" \
		"the corpus header bomb is stored (GMime's deep recursion fits the session stack)"
	ok 'kill -0 "$LMTPD_PID"' "... and the daemon is still running"
	like "$(printf 'LHLO c\r\nQUIT\r\n' | lmtp "$S")" "221 2.0.0" "... and answers the next session"
else
	fail "corpus header bomb at $bomb"
fi

# --- SIGHUP ----------------------------------------------------------------------
printf 'limits = { message_size_max = 123456; };\n' >>"$LMTPD_CONF"
kill -HUP "$LMTPD_PID"
sleep 0.5
like "$(printf 'LHLO c\r\nQUIT\r\n' | lmtp "$S")" "250 SIZE 123456" "SIGHUP: a new message_size_max is in force"

# --- a session thread serves the next connection ----------------------------------
# (lmtpd_session.c: a thread whose session ended waits for the next one.)
# The daemon's threads while a session is open, then while a later one is:
# the same threads, none started for the second
hold() { # hold SECONDS - an open session (LHLO answered) for that long
	"$LMTP_PYTHON" -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.recv(512)
s.sendall(b"LHLO t\r\n"); time.sleep(0.2); s.recv(4096)
time.sleep(float(sys.argv[2])); s.sendall(b"QUIT\r\n"); s.recv(512); s.close()' "$S" "$1"
}
tids() { ls "/proc/$LMTPD_PID/task" | sort -n | tr '\n' ' '; }
hold 1 & sleep 0.7; T1=$(tids); wait $!
sleep 0.5
hold 1 & sleep 0.7; T2=$(tids); wait $!
is "$T2" "$T1" "a later connection is served by the thread of an earlier one (no thread started)"
ok '[ "$(wc -w <<<"$T1")" -ge 2 ]' "... (threads seen: $T1)"

# --- SIGTERM ---------------------------------------------------------------------
f=$(msg term1)
cat >"$TAP_TMP/idle.script" <<S
R
S LHLO c
R
W $TAP_TMP/never
S
cat >"$TAP_TMP/term.script" <<S
R
S LHLO c
R
S MAIL FROM:<dave@example.org>
R
S RCPT TO:<alice@example.com>
R
X kill -TERM $LMTPD_PID
Z 1.5
S DATA
R
F $f
S .
R
S MAIL FROM:<dave@example.org>
R
S
lmtp "$S" "$TAP_TMP/idle.script" >"$TAP_TMP/idle.out" &
ipid=$!
sleep 0.3
lmtp "$S" "$TAP_TMP/term.script" >"$TAP_TMP/term.out"
out=$(cat "$TAP_TMP/term.out")
like "$out" "Ok: stored" "SIGTERM: the transaction in flight is finished"
is "$(count term1)" 1 "... and stored"
like "$out" "421 4.3.2 .* shutting down" "... a new MAIL gets 421 4.3.2"
wait $ipid
like "$(cat "$TAP_TMP/idle.out")" "421 4.3.2" "... an idle session gets 421 4.3.2"
for i in $(seq 100); do kill -0 "$LMTPD_PID" 2>/dev/null || break; sleep 0.1; done
wait "$LMTPD_PID"
is "$?" 0 "... and the server exits 0"
like "$(cat "$LMTPD_LOG")" "lmtpd: stopped" "... saying so"
done_testing
