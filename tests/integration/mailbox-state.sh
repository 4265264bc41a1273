#!/usr/bin/env bash
# mailbox-state.sh - per-user mailbox state (issue 18 item 1,
# sql/015_mailbox.sql): memberships per (user, email) made by the storing
# path itself (primary + alias = one view, a sent copy = a view, late
# linking makes one), the state functions on sets (10,000 marked read in
# one call), the change counter (modseq) and "changes since N" with
# tombstones, no change skipped when a delivery commits late, legal hold,
# the app role's rights, storage usage under concurrent delivery and its
# fold, and the migration of mail stored before 015. Real PostgreSQL,
# postroomctl and postroom-deliver.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pg_login_roles || fail "login roles created"
pctl domain add example.com >/dev/null 2>&1
for u in alice bob; do pctl user add $u@example.com >/dev/null; done
pctl alias add alice.alias@example.com alice@example.com >/dev/null
uid() { psqlc "SELECT id FROM users WHERE address = '$1'"; }
ALICE=$(uid alice@example.com)
BOB=$(uid bob@example.com)
as() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$(pg_role_conninfo "$1")" -c "$2" 2>&1; }
psqlv() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$POSTROOM_DB" -c "$1" 2>&1; }

# send ID [SENDER] -- ARGS... - deliver a small message with Message-ID ID
send() {
	local id=$1 from=$2 f
	shift 2
	f=$(msg_file "$id.eml" <<M
From: $from
To: alice@example.com
Subject: message $id
Message-ID: <$id@example.org>

body of $id
M
)
	deliver_run "$f" -f "$from" "$@"
	[ "$D_RC" = 0 ] || diag "deliver $id: exit $D_RC $D_OUT $D_ERR"
}
members() { # EMAIL - user:received:sent of its memberships
	psqlc "SELECT string_agg(u.address || ':' || m.received || ':' || m.sent, ',' ORDER BY u.address)
	         FROM mailbox_entries m JOIN users u ON u.id = m.user_id WHERE m.email_id = '$1'"
}
modseq() { psqlc "SELECT postroom_mailbox_modseq('$1')"; }

# --- memberships -------------------------------------------------------------------
send both sender@example.org -- alice@example.com alice.alias@example.com
BOTH=$D_ID
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE email_id = '$BOTH' AND delivered AND user_id = '$ALICE'")" 2 \
	"primary and alias: two delivered recipient rows"
is "$(members "$BOTH")" "alice@example.com:true:false" "... and one membership (one view)"
send sent1 bob@example.com -a bob@example.com --sent -- outbound@example.net
SENT=$D_ID
is "$(members "$SENT")" "bob@example.com:false:true" "a sent copy without a recipient row is a view of its sender"
send tocarol sender@example.org -- carol@example.com bob@example.com
CAROLMAIL=$D_ID
is "$(members "$CAROLMAIL")" "bob@example.com:true:false" "mail for an address nobody owns yet: no membership for it"
pctl user add carol@example.com >/dev/null
CAROL=$(uid carol@example.com)
is "$(members "$CAROLMAIL")" "bob@example.com:true:false,carol@example.com:true:false" \
	"creating the user links the row and creates its membership"
send tobobagain bob@example.com -a bob@example.com --sent -- outbound@example.net
send tobobagain bob@example.com -- bob@example.com
is "$(members "$D_ID")" "bob@example.com:true:true" "the sent copy delivered to its sender too: one view, received and sent"
is "$(psqlc "SELECT stored_at = e.received_at AND m.size_bytes = e.size_bytes FROM mailbox_entries m
	JOIN emails e ON e.id = m.email_id WHERE m.email_id = '$BOTH'")" t \
	"a membership carries the email's size and stored time"

# --- the state functions on sets, modseq -------------------------------------------
m0=$(modseq "$ALICE")
ok '[ "$m0" -gt 0 ]' "a user with mail has a modseq ($m0)"
is "$(psqlc "SELECT postroom_mark_read('$ALICE', ARRAY['$BOTH']::uuid[])")" 1 "mark read: 1 changed"
m1=$(modseq "$ALICE")
ok '[ "$m1" -gt "$m0" ]' "... modseq rises ($m0 -> $m1)"
is "$(psqlc "SELECT postroom_mark_read('$ALICE', ARRAY['$BOTH']::uuid[])")" 0 "marking it read again changes nothing"
is "$(modseq "$ALICE")" "$m1" "... and leaves modseq alone"
is "$(psqlc "SELECT is_read AND read_at IS NOT NULL FROM mailbox_entries WHERE user_id = '$ALICE' AND email_id = '$BOTH'")" t \
	"is_read and read_at set"
prev=$m1
for op in "postroom_mark_flagged('$ALICE', ARRAY['$BOTH']::uuid[])" "postroom_mark_flagged('$ALICE', ARRAY['$BOTH']::uuid[], false)" \
	"postroom_trash('$ALICE', ARRAY['$BOTH']::uuid[])" "postroom_restore('$ALICE', ARRAY['$BOTH']::uuid[])" \
	"postroom_mark_read('$ALICE', ARRAY['$BOTH']::uuid[], false)"; do
	n=$(psqlc "SELECT $op")
	cur=$(modseq "$ALICE")
	ok '[ "$n" = 1 ] && [ "$cur" -gt "$prev" ]' "${op%%(*}: 1 changed, modseq $prev -> $cur"
	prev=$cur
done
is "$(psqlc "SELECT postroom_mark_read('$ALICE', ARRAY['$BOTH', '$SENT', gen_random_uuid()]::uuid[])")" 1 \
	"unknown ids and other users' emails are ignored (the count tells)"
like "$(psqlv "SELECT postroom_mark_read(NULL, ARRAY['$BOTH']::uuid[])")" "22004" "a NULL user: error 22004"
like "$(psqlv "SELECT postroom_trash('$ALICE', NULL)")" "^0$" "a NULL set changes nothing"

# 10,000 emails for bob, stored through the trigger path (rows as deliver writes them)
psqlc "INSERT INTO emails (id, message_id, size_bytes, content_sha256)
	SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bulk' || i || '@x', 100 + i,
	       sha256(('bulk' || i)::bytea) FROM generate_series(1, 10000) i;
	INSERT INTO email_recipients (email_id, address, type, user_id, delivered)
	SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bob@example.com', 'to', '$BOB', true
	  FROM generate_series(1, 10000) i"
is "$(psqlc "SELECT count(*) FROM mailbox_entries WHERE user_id = '$BOB' AND email_id::text LIKE '00000000-0000-4000-8000-%'")" 10000 \
	"10,000 recipient rows inserted in one statement: 10,000 memberships"
b0=$(modseq "$BOB")
t0=$(date +%s%N)
is "$(psqlc "SELECT postroom_mark_read('$BOB', ARRAY(SELECT email_id FROM mailbox_entries WHERE user_id = '$BOB'))")" 10003 \
	"10,000 (and 3 more) marked read in one call"
diag "mark_read of 10,003 memberships: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
is "$(psqlc "SELECT count(*) FROM postroom_mailbox_changes('$BOB', $b0)")" 10003 "... each with a new modseq"
is "$(psqlc "SELECT postroom_trash('$BOB', ARRAY(SELECT email_id FROM mailbox_entries WHERE user_id = '$BOB' AND email_id::text LIKE '00000000-0000-4000-8000-%'))")" 10000 \
	"10,000 moved to the trash in one call"
is "$(psqlc "SELECT postroom_empty_trash('$BOB')")" 10000 "emptying the trash: 10,000 deleted for good in one call"
is "$(psqlc "SELECT count(*) FROM emails WHERE id::text LIKE '00000000-0000-4000-8000-%'")" 0 "... and expunged"

# --- changes since N ---------------------------------------------------------------
send c1 sender@example.org -- alice@example.com
C1=$D_ID
send c2 sender@example.org -- alice@example.com
C2=$D_ID
send c3 sender@example.org -- alice@example.com bob@example.com
C3=$D_ID
send c4 sender@example.org -- alice@example.com
C4=$D_ID
N=$(modseq "$ALICE")
psqlc "SELECT postroom_mark_read('$ALICE', ARRAY['$C1']::uuid[]), postroom_trash('$ALICE', ARRAY['$C2']::uuid[]),
	postroom_delete('$ALICE', ARRAY['$C3']::uuid[])" >/dev/null
send c5 sender@example.org -- alice@example.com
C5=$D_ID
changes=$(psqlc "SELECT string_agg(email_id || ':' || destroyed || ':' || COALESCE(is_read::text, '-') || ':' ||
	(deleted_at IS NOT NULL), ',' ORDER BY modseq) FROM postroom_mailbox_changes('$ALICE', $N)")
is "$changes" "$C1:false:true:false,$C2:false:false:true,$C3:true:-:false,$C5:false:false:false" \
	"changes since N: exactly read, trashed, deleted (a tombstone) and a new one, in modseq order"
is "$(psqlc "SELECT count(*) FROM postroom_mailbox_changes('$ALICE', $(modseq "$ALICE"))")" 0 \
	"changes since the current modseq: none"
is "$(psqlc "SELECT count(*) FROM mailbox_entries WHERE email_id = '$C3'")" 1 "bob still holds the email alice deleted"
like "$(psqlv "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM postroom_mailbox_changes('$ALICE', 0)")" "PR002" \
	"changes under REPEATABLE READ: refused (PR002)"

# --- a delivery that commits late is not skipped ----------------------------------------
# session A stores a message for alice through the trigger path and stays
# open: it has drawn a modseq value; session B stores a later one and
# commits. A reader asking for changes must not answer with B's value
# while A's smaller one is still to come.
N=$(modseq "$ALICE")
mkfifo "$TAP_TMP/a.fifo"
"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" <"$TAP_TMP/a.fifo" >"$TAP_TMP/a.out" 2>&1 &
APID=$!
exec 7>"$TAP_TMP/a.fifo"
cat >&7 <<SQL
BEGIN;
INSERT INTO emails (id, message_id, size_bytes, content_sha256)
VALUES ('10000000-0000-4000-8000-00000000000a', 'late-a@x', 10, sha256('late-a'::bytea));
INSERT INTO email_recipients (email_id, address, type, user_id, delivered)
VALUES ('10000000-0000-4000-8000-00000000000a', 'alice@example.com', 'to', '$ALICE', true);
SELECT 'A holds ' || modseq FROM mailbox_entries WHERE email_id = '10000000-0000-4000-8000-00000000000a';
SQL
for _ in $(seq 100); do grep -q 'A holds' "$TAP_TMP/a.out" && break; sleep 0.1; done
MA=$(sed -n 's/^A holds //p' "$TAP_TMP/a.out")
send late-b sender@example.org -- alice@example.com
LB=$D_ID
MB=$(psqlc "SELECT modseq FROM mailbox_entries WHERE email_id = '$LB' AND user_id = '$ALICE'")
ok '[ -n "$MA" ] && [ "$MB" -gt "$MA" ]' "B committed a modseq ($MB) above A's uncommitted one ($MA)"
is "$(psqlc "SELECT string_agg(email_id::text, ',') FROM mailbox_entries WHERE user_id = '$ALICE' AND modseq > $N")" "$LB" \
	"a plain SELECT now sees only B: a client would resume after $MB and skip A (what the protocol prevents)"
"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" -c "SELECT string_agg(email_id || ':' || modseq, ',' ORDER BY modseq)
	FROM postroom_mailbox_changes('$ALICE', $N)" >"$TAP_TMP/r.out" 2>&1 &
RPID=$!
sleep 1.5
ok '[ ! -s "$TAP_TMP/r.out" ] && kill -0 $RPID 2>/dev/null' "postroom_mailbox_changes waits while A is open"
is "$(psqlc "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'")" 1 "... on the user's advisory lock"
echo "COMMIT;" >&7
exec 7>&-
wait $APID
wait $RPID
is "$(cat "$TAP_TMP/r.out")" "10000000-0000-4000-8000-00000000000a:$MA,$LB:$MB" \
	"... then returns A's change and B's: nothing skipped"

# --- legal hold -----------------------------------------------------------------------
psqlc "UPDATE users SET legal_hold = true WHERE id = '$ALICE'"
like "$(psqlv "SELECT postroom_delete('$ALICE', ARRAY['$C1']::uuid[])")" "PR001.*legal hold" \
	"a user under legal hold: postroom_delete refused with PR001"
like "$(psqlv "SELECT postroom_empty_trash('$ALICE')")" "PR001" "... and postroom_empty_trash"
like "$(psqlv "SELECT postroom_user_remove('$ALICE')")" "PR001" "... and postroom_user_remove"
like "$(psqlv "DELETE FROM users WHERE id = '$ALICE'")" "PR001" "... and a plain DELETE of the user"
is "$(psqlc "SELECT postroom_mark_read('$ALICE', ARRAY['$C4']::uuid[])")" 1 "... while reading and flagging still work"
psqlc "UPDATE users SET legal_hold = false WHERE id = '$ALICE'; UPDATE domains SET legal_hold = true WHERE name = 'example.com'"
like "$(psqlv "SELECT postroom_delete('$ALICE', ARRAY['$C1']::uuid[])")" "PR001" "a domain under legal hold: refused too"
psqlc "UPDATE domains SET legal_hold = false"
is "$(psqlc "SELECT postroom_delete('$ALICE', ARRAY['$C1']::uuid[])")" 1 "hold lifted: deleted"

# --- the app role ---------------------------------------------------------------------------
is "$(as app "SELECT postroom_mark_flagged('$ALICE', ARRAY['$C4']::uuid[]), postroom_trash('$ALICE', ARRAY['$C4']::uuid[]),
	postroom_restore('$ALICE', ARRAY['$C4']::uuid[]), postroom_delete('$ALICE', ARRAY['$C4']::uuid[])")" "1|1|1|1" \
	"the app role calls the state functions"
like "$(as app "UPDATE mailbox_entries SET is_read = true")" "permission denied" "... but cannot UPDATE mailbox_entries"
like "$(as app "DELETE FROM mailbox_entries")" "permission denied" "... nor DELETE from it"
like "$(as app "DELETE FROM emails")" "permission denied" "... nor delete emails"
like "$(as app "SELECT postroom_user_remove('$BOB')")" "permission denied" "... nor remove a user"

# --- storage usage ----------------------------------------------------------------------------
usage() { psqlc "SELECT postroom_storage_usage('$1')"; }
held() { psqlc "SELECT COALESCE(sum(size_bytes), 0) FROM mailbox_entries WHERE user_id = '$1'"; }
is "$(usage "$ALICE")" "$(held "$ALICE")" "alice's usage = the sizes of the emails she holds"
is "$(usage "$BOB")" "$(held "$BOB")" "bob's too (a sent copy delivered to him counted once)"
pids=()
for s in 1 2 3 4 5 6 7 8; do
	(
		for i in 1 2 3 4; do
			printf 'From: s%s@example.org\nTo: alice@example.com\nSubject: conc %s.%s\nMessage-ID: <conc%s.%s@example.org>\n\n%s\n' \
				"$s" "$s" "$i" "$s" "$i" "$(head -c $((200 * s + i)) /dev/zero | tr '\0' x)" |
				"$DELIVER_BIN" -c "$POSTROOM_CONF" -f s$s@example.org -- alice@example.com alice.alias@example.com ||
				echo "deliver failed $s.$i"
		done
	) >"$TAP_TMP/conc$s.out" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
is "$(cat "$TAP_TMP"/conc*.out)" "" "8 concurrent sessions stored 32 messages for alice (primary + alias each)"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id LIKE 'conc%'")" 32 "... all of them"
is "$(usage "$ALICE")" "$(held "$ALICE")" "usage after concurrent delivery = sum of sizes, once per user"
is "$(psqlc "SELECT count(*) FROM storage_usage_delta WHERE user_id = '$ALICE' AND bytes <= 0")" \
	"$(psqlc "SELECT count(*) FROM storage_usage_delta WHERE user_id = '$ALICE' AND bytes < 0")" "no empty delta rows"
before=$(usage "$ALICE")
nd=$(psqlc "SELECT count(*) FROM storage_usage_delta")
is "$(psqlc "SELECT postroom_storage_fold()")" "$nd" "the fold folds every delta row"
is "$(psqlc "SELECT count(*) FROM storage_usage_delta")" 0 "... none left"
is "$(usage "$ALICE")" "$before" "... and keeps alice's total"
is "$(usage "$BOB")" "$(held "$BOB")" "... and bob's"
psqlc "SELECT postroom_delete('$ALICE', ARRAY(SELECT email_id FROM mailbox_entries WHERE user_id = '$ALICE' LIMIT 5))" >/dev/null
is "$(usage "$ALICE")" "$(held "$ALICE")" "deleting lowers the usage"

# --- ctl's JSON reads the per-user state ------------------------------------------------------
psqlc "SELECT postroom_mark_read('$CAROL', ARRAY['$CAROLMAIL']::uuid[])" >/dev/null
is "$(pctl --json mail show "$CAROLMAIL" | jq -c '[.recipients[] | {(.address): .is_read}] | add')" \
	'{"alice@example.com":false,"carol@example.com":true,"bob@example.com":true}' \
	"mail show --json: a recipient's is_read is its user's state (header-only row: false)"

# --- the events hook: every change calls postroom_mailbox_changed ----------------------------
psqlc "CREATE TABLE hook_log (n serial, kind text, u uuid, es uuid[]);
	CREATE OR REPLACE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[]) RETURNS void
	LANGUAGE plpgsql AS \$\$ BEGIN INSERT INTO hook_log (kind, u, es) VALUES (p_kind, p_user, p_emails); END \$\$"
send hook1 sender@example.org -- bob@example.com hank@example.com
H1=$D_ID
send hook2 bob@example.com -a bob@example.com --sent -- outbound@example.net
H2=$D_ID
pctl user add hank@example.com >/dev/null
HANK=$(uid hank@example.com)
psqlc "SELECT postroom_mark_read('$BOB', ARRAY['$H1']::uuid[]), postroom_mark_read('$BOB', ARRAY['$H1']::uuid[], false),
	postroom_mark_flagged('$BOB', ARRAY['$H1']::uuid[]), postroom_mark_flagged('$BOB', ARRAY['$H1']::uuid[], false),
	postroom_trash('$BOB', ARRAY['$H1']::uuid[]), postroom_restore('$BOB', ARRAY['$H1']::uuid[]),
	postroom_delete('$BOB', ARRAY['$H1']::uuid[]), postroom_delete('$HANK', ARRAY['$H1']::uuid[])" >/dev/null
is "$(psqlc "SELECT string_agg(kind || ':' || CASE u WHEN '$BOB' THEN 'bob' WHEN '$HANK' THEN 'hank' ELSE u::text END
	|| ':' || CASE es WHEN ARRAY['$H1']::uuid[] THEN 'h1' WHEN ARRAY['$H2']::uuid[] THEN 'h2' ELSE es::text END, ' ' ORDER BY kind = 'expunge', CASE WHEN kind = 'expunge' THEN (u = '$HANK')::int ELSE n END) FROM hook_log")" \
	"new:bob:h1 sent:bob:h2 link:hank:h1 read:bob:h1 unread:bob:h1 flagged:bob:h1 unflagged:bob:h1 trash:bob:h1 restore:bob:h1 delete:bob:h1 delete:hank:h1 expunge:bob:h1 expunge:hank:h1" \
	"the hook gets every change, with its kind, user and emails (expunge: each user who had it)"
psqlc "CREATE OR REPLACE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[]) RETURNS void
	LANGUAGE plpgsql AS \$\$ BEGIN END \$\$; DROP TABLE hook_log"

# --- the migration of mail stored before 015 ---------------------------------------------------
"$PG_BINDIR/psql" -qX -d postgres -c "CREATE DATABASE pre15" >/dev/null
{
	echo "SET client_min_messages = warning;"
	echo "SELECT set_config('postroom.role_prefix', 'pre_', false);"
	echo "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());"
	for f in "$POSTROOM_SRCDIR"/sql/0*.sql; do
		v=$(basename "$f" | sed 's/^0*\([0-9]*\)_.*/\1/')
		[ "$v" -ge 15 ] && continue
		cat "$f"
		echo ";"
		echo "INSERT INTO schema_migrations (version, name) VALUES ($v, '$(basename "$f")');"
	done
	cat <<'SQL'
INSERT INTO domains (name) VALUES ('example.com');
INSERT INTO users (id, address) VALUES ('a0000000-0000-4000-8000-000000000001', 'ann@example.com'),
    ('a0000000-0000-4000-8000-000000000002', 'ben@example.com');
INSERT INTO user_addresses (user_id, address) VALUES ('a0000000-0000-4000-8000-000000000001', 'ann.alias@example.com');
INSERT INTO emails (id, message_id, size_bytes, content_sha256, sent_by_user_id) VALUES
    ('e0000000-0000-4000-8000-000000000001', 'old1@x', 111, sha256('old1'::bytea), NULL),
    ('e0000000-0000-4000-8000-000000000002', 'old2@x', 222, sha256('old2'::bytea), 'a0000000-0000-4000-8000-000000000002'),
    ('e0000000-0000-4000-8000-000000000003', 'old3@x', 333, sha256('old3'::bytea), 'a0000000-0000-4000-8000-000000000001');
INSERT INTO email_recipients (email_id, address, type, user_id, delivered, is_read) VALUES
    ('e0000000-0000-4000-8000-000000000001', 'ann@example.com', 'to', 'a0000000-0000-4000-8000-000000000001', true, false),
    ('e0000000-0000-4000-8000-000000000001', 'ann.alias@example.com', 'cc', 'a0000000-0000-4000-8000-000000000001', true, true),
    ('e0000000-0000-4000-8000-000000000001', 'ben@example.com', 'cc', 'a0000000-0000-4000-8000-000000000002', false, false),
    ('e0000000-0000-4000-8000-000000000002', 'ann@example.com', 'to', 'a0000000-0000-4000-8000-000000000001', true, false),
    ('e0000000-0000-4000-8000-000000000003', 'ann@example.com', 'to', 'a0000000-0000-4000-8000-000000000001', true, true),
    ('e0000000-0000-4000-8000-000000000003', 'nobody@example.com', 'to', NULL, true, false);
SQL
} >"$TAP_TMP/pre15.sql"
if "$PG_BINDIR/psql" -qX -v ON_ERROR_STOP=1 -d pre15 -f "$TAP_TMP/pre15.sql" >"$TAP_TMP/pre15.out" 2>&1; then
	sed "s/dbname=postroom/dbname=pre15/" "$POSTROOM_CONF" >"$TAP_TMP/pre15.conf"
	"$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/pre15.conf" db migrate >"$TAP_TMP/pre15.migrate" 2>&1
	is "$?" 0 "db migrate applies 015 to a database with mail"
	P="$PG_BINDIR/psql -qXAt -d pre15 -c"
	is "$($P "SELECT string_agg(right(user_id::text, 1) || '/' || right(email_id::text, 1) || ':' || received || sent || is_read
		|| ':' || size_bytes, ',' ORDER BY user_id, email_id) FROM mailbox_entries")" \
		"1/1:truefalsetrue:111,1/2:truefalsefalse:222,1/3:truetruetrue:333,2/2:falsetruefalse:222" \
		"memberships: delivered linked rows (primary + alias = one, is_read carried), sent copies; none for header rows"
	is "$($P "SELECT count(DISTINCT modseq) = count(*) AND min(modseq) > 0 FROM mailbox_entries")" t "each with its own modseq"
	is "$($P "SELECT string_agg(right(user_id::text, 1) || ':' || bytes, ',' ORDER BY user_id) FROM storage_usage")" "1:666,2:222" \
		"storage usage computed"
	is "$($P "SELECT count(*) FROM information_schema.columns WHERE table_name = 'email_recipients' AND column_name = 'is_read'")" 0 \
		"email_recipients.is_read dropped"
else
	fail "a database at schema version 14 with mail" "$(tail -5 "$TAP_TMP/pre15.out")"
fi

done_testing
