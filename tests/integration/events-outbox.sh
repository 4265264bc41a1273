#!/usr/bin/env bash
# events-outbox.sh - the outbox of issue 19 (sql/018_events.sql,
# postroomctl events): one event per user concerned, written in the
# transaction of the change (new, link, thread_merge, sent, the lifecycle
# kinds through migration 015's hook); NOTIFY postroom_events with the
# position next to the unchanged postroom_new_email; the read function
# never skips an event whose transaction commits after a later position
# was committed (transaction A held open, B committed, read, A committed,
# read: A's event comes), also under writers whose commits are delayed at
# random while postroomctl events --follow reads along (it ends with
# exactly the set committed); a reader waiting for an open writer never
# holds up a second writer (migration 028; 018's read did), keeps no lock
# when it gives up (lock_timeout, statement_timeout), waits for a writer
# still on 018's lock; a read in a transaction that wrote events is
# refused (PR104); READ COMMITTED only; retention in batches
# and "position expired: resync" (SQLSTATE PR101) from SQL and
# postroomctl; the app role reads through the function only; a 'new'
# or 'link' event's addresses and class looked up when read (031).
# No wall-clock bound is asserted: waits are polls with generous limits.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in alice bob carol; do pctl user add $u@example.com >/dev/null; done
pctl alias add support@example.com bob@example.com >/dev/null
uid() { psqlc "SELECT id FROM users WHERE address = '$1@example.com'"; }
ALICE=$(uid alice) BOB=$(uid bob) CAROL=$(uid carol)

# msg NAME FROM TO MID [IN-REPLY-TO] - a message file
msg() {
	{
		printf 'From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s>\n' "$2" "$3" "$1" "$4"
		[ -n "${5:-}" ] && printf 'In-Reply-To: <%s>\n' "$5"
		printf '\nbody of %s\n' "$1"
	} >"$TAP_TMP/$1.eml"
}
put() { deliver_run "$TAP_TMP/$1.eml" -f sender@example.org -- "${@:2}"; echo "$D_ID"; }
# ev SINCE [ARGS] - postroomctl events as "kind user addresses" lines
ev() {
	pctl events --since "$@" | jq -r '[.kind, .user, ((.addresses // []) | join(","))] | join(" ")'
}
top() { psqlc "SELECT COALESCE(max(position), 0) FROM events"; }

# --- kinds ------------------------------------------------------------------------
# a delivery to two of bob's addresses and to alice: one event per user;
# a later delivery to an address nobody owns yet, linked when dave appears
msg m1 x@example.org "bob@example.com, dave@example.com" m1@x
S0=$(top)
E1=$(put m1 bob@example.com support@example.com alice@example.com)
is "$(ev "$S0" | sort)" "new alice@example.com alice@example.com
new bob@example.com bob@example.com,support@example.com" \
	"a delivery: one 'new' event per user, with the addresses it was delivered to"
J=$(pctl events --since "$S0" | head -n 1)
is "$(echo "$J" | jq -r '[.email_id, .thread_id, (.position | type), (.id | length), (.time | test("^[0-9-]{10}T[0-9:.]+Z$"))] | map(tostring) | join(" ")')" \
	"$E1 $E1 number 36 true" "the JSON object: email and thread id, position, event id, RFC 3339 time"
S1=$(top)
put m1 dave@example.com alice@example.com >/dev/null
is "$(ev "$S1")" "" "delivered again to alice, who has it, and to an address nobody owns: no event"
pctl user add dave@example.com >/dev/null
is "$(ev "$S1")" "link dave@example.com dave@example.com" "the user created for it: a 'link' event"
S2=$(top)
put m1 carol@example.com >/dev/null
is "$(ev "$S2")" "new carol@example.com carol@example.com" "a later delivery of the stored email to a new user: 'new'"
S3=$(top)
put m1 bob@example.com >/dev/null
is "$(ev "$S3")" "" "redelivered to a user who has it: no event"

# two replies stored first (two threads), then their parent: one thread;
# everyone with mail in it is told, with the ids of the threads merged
msg r1 carol@example.com alice@example.com r1@x p1@x
msg r2 carol@example.com alice@example.com r2@x p1@x
msg p1 alice@example.com carol@example.com p1@x
R1=$(put r1 alice@example.com)
R2=$(put r2 alice@example.com)
S4=$(top)
P1=$(put p1 carol@example.com)
W=$(psqlc "SELECT thread_id FROM emails WHERE id = '$P1'")
LOSER=$([ "$W" = "$R1" ] && echo "$R2" || echo "$R1")
is "$(pctl events --since "$S4" | jq -r 'select(.kind == "thread_merge") | [.user, .email_id, .data.thread_id, (.data.merged | join(","))] | join(" ")' | sort)" \
	"alice@example.com $P1 $W $LOSER
carol@example.com $P1 $W $LOSER" "a thread merge: one 'thread_merge' per user of the thread, with the threads merged"

# the sent copy and the lifecycle (migration 015's state functions)
S5=$(top)
psqlc "UPDATE emails SET sent_by_user_id = '$ALICE' WHERE id = '$P1'" >/dev/null
psqlc "SELECT postroom_mark_read('$BOB', ARRAY['$E1']::uuid[])" >/dev/null
psqlc "SELECT postroom_mark_flagged('$BOB', ARRAY['$E1']::uuid[])" >/dev/null
psqlc "SELECT postroom_trash('$BOB', ARRAY['$E1']::uuid[])" >/dev/null
psqlc "SELECT postroom_restore('$BOB', ARRAY['$E1']::uuid[])" >/dev/null
psqlc "SELECT postroom_mark_read('$BOB', ARRAY['$E1']::uuid[], false)" >/dev/null
is "$(ev "$S5" | cut -d' ' -f1,2 | tr '\n' ' ')" \
	"sent alice@example.com read bob@example.com flagged bob@example.com trash bob@example.com restore bob@example.com unread bob@example.com " \
	"sent copy and state changes: 'sent', 'read', 'flagged', 'trash', 'restore', 'unread'"
S6=$(top)
psqlc "SELECT postroom_delete('$ALICE', ARRAY['$R1', '$R2']::uuid[])" >/dev/null
is "$(pctl events --since "$S6" | jq -r '[.kind, .user, .email_id] | join(" ")' | sort | tr '\n' ' ')" \
	"$(printf '%s\n' "delete alice@example.com $R1" "delete alice@example.com $R2" \
		"expunge alice@example.com $R1" "expunge alice@example.com $R2" | sort | tr '\n' ' ')" \
	"delete for good: one 'delete' and, as nobody else has them, one 'expunge' per email"
is "$(pctl events --since 0 --user support@example.com | jq -r .user | sort -u)" "bob@example.com" \
	"--user (by an alias): only that user's events"
run_status 1 "--user of an unknown address: refused" pctl events --user nobody@example.com

# --- details looked up when read (migration 031) ------------------------------------
# the storing path writes kind, user and email; the readers add the
# addresses and class: the same values, never a wrong one once expunged
is "$(psqlc "SELECT count(*) FROM events WHERE kind IN ('new', 'link') AND (addresses IS NOT NULL OR data IS NOT NULL)")" 0 \
	"the rows of 'new' and 'link' events carry no addresses or data (looked up when read)"
is "$(pctl events --since "$S0" | jq -r 'select(.email_id == "'"$E1"'" and (.kind == "new" or .kind == "link")) | [.kind, .user, (.addresses | join(",")), .data.class] | join(" ")' | sort | tr '\n' ' ')" \
	"link dave@example.com dave@example.com ordinary new alice@example.com alice@example.com ordinary new bob@example.com bob@example.com,support@example.com ordinary new carol@example.com carol@example.com ordinary " \
	"read: each user's delivered addresses and the class of the email"
is "$(pctl events --since "$S3" | jq -c 'select(.kind == "new" and (.email_id == "'"$R1"'" or .email_id == "'"$R2"'")) | [.user, .addresses, .data]' | sort -u)" \
	'["alice@example.com",null,null]' \
	"read after the email was expunged: no addresses and no data, never a wrong class"
P=$(psqlc "SELECT min(position) FROM events WHERE kind = 'new' AND email_id = '$E1'")
psqlc "UPDATE events SET addresses = '{old@example.com}', data = '{\"class\": \"bounce-soft\"}' WHERE position = $P" >/dev/null
is "$(pctl events --since $((P - 1)) | head -n 1 | jq -c '[.addresses, .data]')" '[["old@example.com"],{"class":"bounce-soft"}]' \
	"a row that carries its own (written before 031): read as written"
is "$(psqlc "SELECT addresses[1] || ' ' || (data->>'class') FROM postroom_event_details('new', '$BOB', '$E1', '{x@example.com}', '{\"class\": \"delay\"}')")" \
	"x@example.com delay" "postroom_event_details keeps given values"
is "$(psqlc "SELECT coalesce(addresses::text, 'null') || ' ' || coalesce(data::text, 'null') FROM postroom_event_details('read', '$BOB', '$E1', NULL, NULL)")" \
	"null null" "...and looks nothing up for other kinds"

# --- NOTIFY -----------------------------------------------------------------------
msg n1 x@example.org alice@example.com n1@x
"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "LISTEN postroom_events" -c "LISTEN postroom_new_email" \
	-c "SELECT pg_sleep(3)" >"$TAP_TMP/listen.out" 2>&1 &
LP=$!
sleep 1
N1=$(put n1 alice@example.com)
wait $LP
NP=$(psqlc "SELECT max(position) FROM events")
like "$(cat "$TAP_TMP/listen.out")" "\"postroom_events\" with payload \"$NP\"" \
	"NOTIFY postroom_events carries the new position"
like "$(cat "$TAP_TMP/listen.out")" "\"postroom_new_email\" with payload \"$N1\"" \
	"NOTIFY postroom_new_email (the email id) unchanged"

# --- out-of-order commits -----------------------------------------------------------
# sess_start NAME - a psql session fed through a FIFO (fd in SESS_NAME)
sess_start() {
	mkfifo "$TAP_TMP/$1.in"
	"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" <"$TAP_TMP/$1.in" >"$TAP_TMP/$1.out" 2>&1 &
	at_exit kill $!
	exec {fd}>"$TAP_TMP/$1.in"
	eval "SESS_$1=$fd"
}
# sess NAME SQL - send SQL, wait (up to 60 s) until it has run
sess() {
	local fd mark=done-$RANDOM-$RANDOM i
	eval "fd=\$SESS_$1"
	printf '%s\n\\echo %s\n' "$2" "$mark" >&"$fd"
	for i in $(seq 600); do grep -q "^$mark\$" "$TAP_TMP/$1.out" && return 0; sleep 0.1; done
	return 1
}
sess_start A
sess_start B
T0=$(top)
sess A "BEGIN; SELECT postroom_mailbox_changed('read', '$ALICE', ARRAY['$N1']::uuid[]);"
PA=$(psqlc "SELECT last_value FROM events_position_seq")
sess B "BEGIN; SELECT postroom_mailbox_changed('read', '$CAROL', ARRAY['$E1']::uuid[]); COMMIT;"
PB=$(top)
ok "[ $PB -gt $PA ]" "B committed a later position ($PB) than A holds ($PA)"
is "$(psqlc "SELECT string_agg(position::text, ' ') FROM events WHERE position > $T0")" "$PB" \
	"(a plain 'position > since' query now sees B without A: the gap the read must not skip)"
# a reader that gives up (lock_timeout, then statement_timeout: a cancel)
# keeps no session lock: one left would stop A's backend for good
R=$("$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "SET lock_timeout = '1s'" \
	-c "SELECT position FROM postroom_events_read($T0)" -c "RESET lock_timeout" \
	-c "SET statement_timeout = '1s'" -c "SELECT position FROM postroom_events_read($T0)" \
	-c "RESET statement_timeout" \
	-c "SELECT 'held ' || count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()" 2>&1)
like "$R" "lock timeout" "a read while A is open never returns B alone (here: it waited, then lock_timeout)"
like "$R" "canceling statement due to statement timeout" "... (and then statement_timeout)"
like "$R" "held 0" "the reader that gave up holds no lock"
psqlc "SELECT string_agg(position::text, ' ' ORDER BY position) FROM postroom_events_read($T0)" \
	>"$TAP_TMP/r.out" 2>&1 &
RP=$!
sleep 1
ok "kill -0 $RP" "a reader waits for A"
sess A "COMMIT;"
wait $RP
is "$(cat "$TAP_TMP/r.out")" "$PA $PB" "A committed: the read returns A's event, then B's"
is "$(psqlc "SELECT count(*) FROM postroom_events_read($PB)")" 0 "and nothing more after B"
# an aborted A: the reader waits, then goes on without it
T1=$(top)
sess A "BEGIN; SELECT postroom_mailbox_changed('read', '$ALICE', ARRAY['$N1']::uuid[]);"
sess B "BEGIN; SELECT postroom_mailbox_changed('read', '$CAROL', ARRAY['$E1']::uuid[]); COMMIT;"
PB=$(top)
psqlc "SELECT string_agg(position::text, ' ') FROM postroom_events_read($T1)" >"$TAP_TMP/r.out" 2>&1 &
RP=$!
sleep 1
sess A "ROLLBACK;"
wait $RP
is "$(cat "$TAP_TMP/r.out")" "$PB" "A rolled back: the read returns B only"
# writers do not wait for each other, nor for a reader's past reads
sess A "BEGIN; SELECT postroom_mailbox_changed('read', '$ALICE', ARRAY['$N1']::uuid[]);"
R=$("$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "SET lock_timeout = '5s'" \
	-c "BEGIN" -c "SELECT postroom_mailbox_changed('read', '$CAROL', ARRAY['$E1']::uuid[])" -c "COMMIT" 2>&1)
is "$R" "" "a second writer commits while the first holds its position"
sess A "COMMIT;"
# ... nor for a reader that waits for the first (018's read queued an
# exclusive lock that every new writer then waited behind until A ended)
T2=$(top)
sess A "BEGIN; SELECT postroom_mailbox_changed('read', '$ALICE', ARRAY['$N1']::uuid[]);"
PA=$(psqlc "SELECT last_value FROM events_position_seq")
psqlc "SELECT string_agg(position::text, ' ' ORDER BY position) FROM postroom_events_read($T2)" \
	>"$TAP_TMP/r.out" 2>&1 &
RP=$!
sleep 1
ok "kill -0 $RP" "a reader waits for A"
R=$("$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "SET lock_timeout = '10s'" -c "SET statement_timeout = '30s'" \
	-c "BEGIN" -c "SELECT postroom_mailbox_changed('read', '$CAROL', ARRAY['$E1']::uuid[])" -c "COMMIT" 2>&1)
is "$R" "" "a second writer commits while a reader waits for the first (lock_timeout 10 s)"
ok "kill -0 $RP" "... and the reader still waits for A"
sess A "COMMIT;"
wait $RP
PB=$(top)
like "$(cat "$TAP_TMP/r.out")" "^$PA( $PB)?\$" "A committed: the read returns A's event (B's when taken before the read)"
is "$(psqlc "SELECT string_agg(position::text, ' ' ORDER BY position) FROM postroom_events_read($T2)")" \
	"$PA $PB" "... and the next read both"
# two writers open: the reader waits for both, whichever ends first
T3=$(top)
sess A "BEGIN; SELECT postroom_mailbox_changed('read', '$ALICE', ARRAY['$N1']::uuid[]);"
sess B "BEGIN; SELECT postroom_mailbox_changed('read', '$CAROL', ARRAY['$E1']::uuid[]);"
psqlc "SELECT string_agg(position::text, ' ' ORDER BY position) FROM postroom_events_read($T3)" \
	>"$TAP_TMP/r.out" 2>&1 &
RP=$!
sleep 1
sess A "COMMIT;"
sleep 1
ok "kill -0 $RP" "two writers open, one commits: the reader still waits for the other"
sess B "COMMIT;"
wait $RP
is "$(cat "$TAP_TMP/r.out")" "$(psqlc "SELECT string_agg(position::text, ' ' ORDER BY position) FROM events WHERE position > $T3")" \
	"... then returns both events"
# a reader in a transaction that wrote events: refused (it would see its own)
R=$("$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -v VERBOSITY=verbose -c "BEGIN" \
	-c "SELECT postroom_mailbox_changed('read', '$CAROL', ARRAY['$E1']::uuid[])" \
	-c "SELECT count(*) FROM postroom_events_read($T2)" -c "ROLLBACK" 2>&1)
like "$R" "PR104.*transaction that wrote events" "a read in a transaction that wrote events: refused (PR104)"
# a writer still on 018's function while 028 is applied (the old shared
# lock K and a position): the reader waits for it too
sess A "BEGIN; SELECT pg_advisory_xact_lock_shared(-1518556285451084410), nextval('events_position_seq');"
psqlc "SELECT postroom_events_head()" >"$TAP_TMP/r.out" 2>&1 &
RP=$!
sleep 1
ok "kill -0 $RP" "a reader waits for a writer holding 018's lock"
sess A "COMMIT;"
wait $RP
ok "[ $(cat "$TAP_TMP/r.out") -ge $((PB + 1)) ]" "... then reads past its position"

R=$("$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -v VERBOSITY=verbose \
	-c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM postroom_events_read(0)" 2>&1)
like "$R" "PR102.*READ COMMITTED" "REPEATABLE READ refused (SQLSTATE PR102)"

# --- random-delay writers, postroomctl events --follow reading along ----------------------
F0=$(top)
"$POSTROOM_BUILDDIR/postroomctl" -c "$POSTROOM_CONF" events --since "$F0" --follow >"$TAP_TMP/follow.out" 2>"$TAP_TMP/follow.err" &
FP=$!
at_exit kill $FP
WRITERS=6 TX=40
for w in $(seq $WRITERS); do
	for i in $(seq $TX); do
		echo "BEGIN;"
		echo "SELECT postroom_mailbox_changed('read', '$BOB', ARRAY[gen_random_uuid()]);"
		[ $((RANDOM % 3)) = 0 ] && echo "SELECT postroom_mailbox_changed('flagged', '$CAROL', ARRAY[gen_random_uuid(), gen_random_uuid()]);"
		echo "SELECT pg_sleep(random() * 0.03);"
		[ $((RANDOM % 5)) = 0 ] && echo "ROLLBACK;" || echo "COMMIT;"
	done >"$TAP_TMP/w$w.sql"
	"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -f "$TAP_TMP/w$w.sql" >/dev/null 2>&1 &
	WP+=($!)
done
wait "${WP[@]}"
WANT=$(psqlc "SELECT count(*) FROM events WHERE position > $F0")
for _ in $(seq 600); do [ "$(wc -l <"$TAP_TMP/follow.out")" -ge "$WANT" ] && break; sleep 0.1; done
sleep 0.5
psqlc "SELECT position FROM events WHERE position > $F0 ORDER BY 1" >"$TAP_TMP/want.pos"
jq -r .position "$TAP_TMP/follow.out" >"$TAP_TMP/got.pos"
ok "[ $WANT -gt $((WRITERS * TX / 2)) ]" "the writers committed $WANT events (some aborted)"
ok "cmp -s '$TAP_TMP/want.pos' '$TAP_TMP/got.pos'" \
	"--follow printed exactly the events committed, in position order, each once"
kill $FP 2>/dev/null

# --- retention ----------------------------------------------------------------------
psqlc "UPDATE events SET created_at = now() - interval '8 days' WHERE position <= $S5" >/dev/null
OLD=$(psqlc "SELECT count(*) FROM events WHERE position <= $S5")
H=$(psqlc "SELECT max(position) FROM events WHERE position <= $S5")
KEPT=$(psqlc "SELECT min(position) FROM events WHERE position > $S5")
R=$(pctl events prune --batch 3)
is "$R" "pruned $OLD events older than 7 days" "events prune: the events older than 7 days, in batches"
is "$(psqlc "SELECT min(position) FROM events")" "$KEPT" "the newer ones are kept"
run_status 1 "postroomctl events --since an expired position: refused" pctl events --since $((H - 1))
like "$(cat "$TAP_TMP/err")" "position $((H - 1)) expired: resync" "... with 'position expired: resync'"
R=$("$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -v VERBOSITY=verbose \
	-c "SELECT count(*) FROM postroom_events_read($((H - 1)))" 2>&1)
like "$R" "PR101.*position $((H - 1)) expired: resync" "the SQL function: SQLSTATE PR101"
is "$(psqlc "SELECT min(position) FROM postroom_events_read($H)")" "$KEPT" \
	"reading from the horizon itself is fine"
is "$(pctl events | head -n 1 | jq .position)" "$KEPT" "without --since: from the oldest kept"

# --- roles ----------------------------------------------------------------------------
pg_login_roles
APP="$(pg_role_conninfo app)"
is "$("$PG_BINDIR/psql" -qXAt "$APP" -c "SELECT count(*) > 0 FROM postroom_events_read(NULL)" 2>&1)" t \
	"the app role reads through postroom_events_read"
like "$("$PG_BINDIR/psql" -qXAt "$APP" -c "SELECT count(*) FROM events" 2>&1)" "permission denied" \
	"... and not the table"
like "$("$PG_BINDIR/psql" -qXAt "$APP" -c "INSERT INTO events (kind, user_id) VALUES ('new', '$BOB')" 2>&1)" \
	"permission denied" "... nor write an event"

done_testing
