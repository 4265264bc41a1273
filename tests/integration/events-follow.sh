#!/usr/bin/env bash
# events-follow.sh - postroomctl events --follow under load and through a
# PostgreSQL restart (issue 19 part 1). Eight LMTP sessions store mail at
# once into postroom-lmtpd (group commit, out-of-order commits) while a
# follower reads along: it ends with exactly the set of events written, in
# position order, each once, and one 'new' event per membership. Then the
# server is restarted under the follower: it connects again by itself and
# prints the events written after the restart, nothing twice, nothing
# skipped. Waits are polls with generous limits, no wall-clock bound.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for i in $(seq 8); do pctl user add u$i@example.com >/dev/null; done
lmtpd_start || { fail "lmtpd started"; done_testing; }

"$POSTROOM_BUILDDIR/postroomctl" -c "$POSTROOM_CONF" events --since 0 --follow >"$TAP_TMP/follow.out" 2>"$TAP_TMP/follow.err" &
FP=$!
at_exit kill $FP

# wait_lines N - until the follower printed N lines (up to 60 s)
wait_lines() {
	local i
	for i in $(seq 600); do
		[ "$(wc -l <"$TAP_TMP/follow.out")" -ge "$1" ] && break
		sleep 0.1
	done
	sleep 0.3 # and not one more
}
# same_positions - the follower printed exactly the committed positions
same_positions() {
	psqlc "SELECT position FROM events ORDER BY 1" >"$TAP_TMP/want.pos"
	jq -r .position "$TAP_TMP/follow.out" >"$TAP_TMP/got.pos"
	cmp -s "$TAP_TMP/want.pos" "$TAP_TMP/got.pos"
}

# session S N - one LMTP session storing N messages, each for uS and the next user
session() {
	local s=$1 n=$2 m next=$(($1 % 8 + 1))
	{
		printf 'LHLO c\r\n'
		for m in $(seq "$n"); do
			printf 'MAIL FROM:<x@example.org>\r\nRCPT TO:<u%s@example.com>\r\n' "$s"
			printf 'RCPT TO:<u%s@example.com>\r\nDATA\r\n' "$next"
			printf 'From: x@example.org\r\nTo: u%s@example.com\r\nSubject: s%s m%s\r\n' "$s" "$s" "$m"
			printf 'Message-ID: <s%s.m%s@example.org>\r\n\r\nbody %s %s\r\n.\r\n' "$s" "$m" "$s" "$m"
		done
		printf 'QUIT\r\n'
	} | LMTP_TIMEOUT=60 lmtp "$LMTPD_SOCKET"
}
N=25
for s in $(seq 8); do
	session "$s" $N >"$TAP_TMP/s$s.out" &
	SP+=($!)
done
wait "${SP[@]}"
is "$(psqlc "SELECT count(*) FROM emails")" $((8 * N)) "8 concurrent LMTP sessions stored $((8 * N)) messages"
WANT=$(psqlc "SELECT count(*) FROM events")
is "$WANT" $((16 * N)) "one 'new' event per recipient user: $((16 * N))"
wait_lines "$WANT"
ok same_positions "the follower printed exactly the events written, in position order, each once"
jq -r 'select(.kind == "new") | .user_id + " " + .email_id' "$TAP_TMP/follow.out" | sort >"$TAP_TMP/got.pairs"
psqlc "SELECT user_id || ' ' || email_id FROM mailbox_entries ORDER BY 1" >"$TAP_TMP/want.pairs"
ok "cmp -s '$TAP_TMP/got.pairs' '$TAP_TMP/want.pairs'" "... one 'new' event for every membership"

# --- a PostgreSQL restart under --follow -------------------------------------------
pg_server_stop || fail "server stopped"
sleep 2
ok "kill -0 $FP" "the follower outlives the server"
pg_server_start || fail "server started again"
for i in 1 2 3; do
	printf 'From: x@example.org\nTo: u1@example.com\nSubject: after %s\nMessage-ID: <after%s@x>\n\nbody\n' $i $i \
		>"$TAP_TMP/a$i.eml"
	deliver_run "$TAP_TMP/a$i.eml" -f x@example.org -- u1@example.com
	[ "$D_RC" = 0 ] || diag "deliver after the restart: exit $D_RC $D_ERR"
done
wait_lines $((WANT + 3))
ok same_positions "after the restart: the new events, nothing twice, nothing skipped"
is "$(tail -n 3 "$TAP_TMP/follow.out" | jq -r .email_id | sort | tr '\n' ' ')" \
	"$(psqlc "SELECT id FROM emails WHERE message_id LIKE 'after%@x' ORDER BY 1" | tr '\n' ' ')" \
	"... the three messages delivered after the restart"
like "$(cat "$TAP_TMP/follow.err")" "connected again; reading after position $WANT" \
	"the follower says it connected again and where it resumed"

done_testing
