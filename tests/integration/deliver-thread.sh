#!/usr/bin/env bash
# deliver-thread.sh - threading: in order, child first (adoption), merge of
# two threads, References-only chains, forged References across strangers,
# the earliest eligible of several emails with one Message-Id, the early
# answer for a message naming nothing (033) and its plan, the References
# index without a pending list (034), and
# concurrent deliveries (children of one parent; parent and child at once).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in bob carol eve; do pctl user add $u@example.com >/dev/null; done

# msg NAME FROM TO MID [IN-REPLY-TO] [REFERENCES] - write a message file
msg() {
	{
		printf 'From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s>\n' "$2" "$3" "$1" "$4"
		[ -n "${5:-}" ] && printf 'In-Reply-To: <%s>\n' "$5"
		[ -n "${6:-}" ] && printf 'References: %s\n' "$6"
		printf '\nbody of %s\n' "$1"
	} >"$TAP_TMP/$1.eml"
}
# put NAME RCPT - deliver it; prints the email id
put() {
	deliver_run "$TAP_TMP/$1.eml" -f sender@example.org -- "$2"
	[ "$D_RC" = 0 ] || diag "deliver $1: exit $D_RC $D_OUT"
	echo "$D_ID"
}
thread_of() { psqlc "SELECT thread_id FROM emails WHERE id = '$1'"; }

# 033's early answer for a message that names nothing: on an empty table
# its probe (is this Message-Id named by a stored email?) must still be an
# index lookup, as its generic plan stays for the connection's life
LOG_AT=$(wc -c <"$PG_DIR/server.log")
out=$("$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -d postroom 2>&1 <<'SQL'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET plan_cache_mode = force_generic_plan;
INSERT INTO emails (message_id, from_address, size_bytes, content_sha256)
VALUES ('lone@x', 'carol@example.com', 1, sha256('lone@x'::bytea)) RETURNING id \gset
UPDATE emails SET thread_id = id WHERE id = :'id';
SELECT postroom_thread_email(:'id') = :'id';
SELECT postroom_thread_email(:'id') = :'id';
DELETE FROM emails WHERE id = :'id';
SQL
)
is "$out" "$(printf 't\nt')" "a message naming nothing, named by nothing: its own thread at once"
probe=$(tail -c +"$((LOG_AT + 1))" "$PG_DIR/server.log" | grep -A12 'c.reference_ids @> ARRAY\[me_mid\]' | grep -E 'Scan on emails c|Scan on emails_reference|Index Scan|Bitmap Index Scan' | sort -u)
like "$probe" "emails_(in_reply_to|reference_ids)_idx" "its probe's plan, made on an empty table, uses the indexes"
unlike "$probe" "Seq Scan on emails" "... and never scans emails"

# in order
msg a1 carol@example.com bob@example.com a1@x
msg a2 bob@example.com carol@example.com a2@x a1@x '<a1@x>'
A1=$(put a1 bob@example.com); A2=$(put a2 carol@example.com)
is "$(thread_of "$A1")" "$A1" "a first message is its own thread"
is "$(thread_of "$A2")" "$A1" "a reply joins its parent's thread (thread id = root id)"

# child before parent: adopted when the parent arrives
msg p2 carol@example.com bob@example.com p2@x
msg c2 bob@example.com carol@example.com c2@x p2@x '<p2@x>'
C2=$(put c2 carol@example.com)
is "$(thread_of "$C2")" "$C2" "a child without its parent starts a thread"
P2=$(put p2 bob@example.com)
is "$(thread_of "$P2")" "$(thread_of "$C2")" "the parent arriving later joins the child's thread (adoption)"
is "$(pctl --json thread show "$P2" | jq length)" "2" "postroomctl thread show lists both"

# merge: X in one thread, Z (reply to the missing M) in another; M connects them
msg x1 carol@example.com bob@example.com x1@x
msg x2 bob@example.com carol@example.com x2@x x1@x '<x1@x>'
msg z1 bob@example.com carol@example.com z1@x m1@x '<x1@x> <m1@x>'
msg m1 carol@example.com bob@example.com m1@x x1@x '<x1@x>'
X1=$(put x1 bob@example.com); X2=$(put x2 carol@example.com)
# z1's References name x1 too, so strip that to make it a separate thread first
sed -i 's/^References: .*/References: <m1@x>/' "$TAP_TMP/z1.eml"
Z1=$(put z1 carol@example.com)
is "$(thread_of "$Z1")" "$Z1" "a reply to a missing message is a thread of its own"
M1=$(put m1 bob@example.com)
is "$(thread_of "$M1")" "$X1" "the connecting message joins the older thread"
is "$(thread_of "$Z1")" "$X1" "the newer thread is merged into it (older root's id survives)"
is "$(thread_of "$X2")" "$X1" "members of the older thread keep their thread id"

# References only (no In-Reply-To): nearest stored id, last to first
msg r1 carol@example.com bob@example.com r1@x
msg r2 bob@example.com carol@example.com r2@x '' '<r1@x>'
msg r3 carol@example.com bob@example.com r3@x '' '<r1@x> <r2@x> <missing@x>'
R1=$(put r1 bob@example.com); R2=$(put r2 carol@example.com); R3=$(put r3 bob@example.com)
is "$(thread_of "$R2") $(thread_of "$R3")" "$R1 $R1" "a References-only chain is one thread"
# 034: references go into the GIN index at once, never to its pending
# list, which every probe would read (gin_clean_pending_list: the pages
# it merged)
is "$(psqlc "SELECT gin_clean_pending_list('emails_reference_ids_idx'::regclass)")" "0" \
	"the References index keeps no pending list (fastupdate = off)"

# forged References: a stranger's message naming a1 does not join bob's thread
msg f1 mallory@evil.example eve@example.com f1@x a1@x '<a1@x>'
F1=$(put f1 eve@example.com)
is "$(thread_of "$F1")" "$F1" "no shared participant: a forged In-Reply-To/References joins nothing"
# and a reply by a participant does
msg f2 eve@example.com carol@example.com f2@x a1@x '<a1@x>'
F2=$(put f2 carol@example.com)
is "$(thread_of "$F2")" "$A1" "sharing a participant (carol) is enough to join"

# several stored emails with one Message-Id: the earliest eligible wins
msg d1 mallory@evil.example eve@example.com dup@x
msg d2 carol@example.com bob@example.com dup@x
printf 'other body\n' >>"$TAP_TMP/d2.eml"
msg d3 carol@example.com bob@example.com dup@x
printf 'third body\n' >>"$TAP_TMP/d3.eml"
msg d4 bob@example.com carol@example.com d4@x dup@x '<dup@x>'
D1=$(put d1 eve@example.com); D2=$(put d2 bob@example.com); D3=$(put d3 bob@example.com)
ok "[ '$D1' != '$D2' ] && [ '$D2' != '$D3' ]" "three distinct emails share Message-Id dup@x"
D4=$(put d4 carol@example.com)
is "$(thread_of "$D4")" "$D2" "the reply joins the earliest email with that id that shares a participant"

# concurrency: eight children of one parent at once
msg q0 carol@example.com bob@example.com q0@x
Q0=$(put q0 bob@example.com)
for i in 1 2 3 4 5 6 7 8; do
	msg q$i bob@example.com carol@example.com q$i@x q0@x '<q0@x>'
	"$DELIVER_BIN" -c "$POSTROOM_CONF" -f s@example.org -- carol@example.com <"$TAP_TMP/q$i.eml" \
		>"$TAP_TMP/q$i.out" 2>&1 &
done
wait
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id LIKE 'q_@x' AND thread_id = '$Q0'")" "9" \
	"eight children delivered at once all join the parent's thread"

# parent and child (and grandchild) at once, ten times
bad=0
for i in $(seq 10); do
	msg s$i-p carol@example.com bob@example.com s$i-p@x
	msg s$i-c bob@example.com carol@example.com s$i-c@x s$i-p@x "<s$i-p@x>"
	msg s$i-g carol@example.com bob@example.com s$i-g@x s$i-c@x "<s$i-p@x> <s$i-c@x>"
	for k in p c g; do
		"$DELIVER_BIN" -c "$POSTROOM_CONF" -f s@example.org -- bob@example.com <"$TAP_TMP/s$i-$k.eml" \
			>"$TAP_TMP/s$i-$k.out" 2>&1 &
	done
	wait
	n=$(psqlc "SELECT count(DISTINCT thread_id) FROM emails WHERE message_id LIKE 's$i-_@x'")
	[ "$n" = 1 ] || { bad=$((bad + 1)); diag "round $i: $n threads"; }
done
is "$bad" "0" "parent, child and grandchild delivered at once always end in one thread"
is "$(psqlc "SELECT count(*) FROM emails WHERE message_id LIKE 's%-_@x'")" "30" "all 30 stored"
is "$(psqlc "SELECT count(*) FROM emails e WHERE thread_id IS NULL OR NOT EXISTS (SELECT 1 FROM emails r WHERE r.id = e.thread_id)")" \
	"0" "every thread id names a stored email"

# a row written with thread_id NULL (a postroom-deliver older than
# migration 008) is still threaded: on its own, and as a reply
ins_null() {
	psqlc "INSERT INTO emails (message_id, in_reply_to, reference_ids, from_address, size_bytes, content_sha256)
	       VALUES ('$1', NULLIF('$2', ''), CASE WHEN '$2' = '' THEN '{}' ELSE ARRAY['$2'] END,
	               'carol@example.com', 1, sha256('$1'::bytea)) RETURNING id" | head -n 1
}
N1=$(ins_null n1@x '')
psqlc "SELECT postroom_thread_email('$N1')" >/dev/null
N2=$(ins_null n2@x n1@x)
psqlc "SELECT postroom_thread_email('$N2')" >/dev/null
is "$(thread_of "$N1")" "$N1" "an email stored with thread_id NULL becomes its own thread"
is "$(thread_of "$N2")" "$N1" "a reply stored with thread_id NULL joins its parent's thread"
# a new email is stored as its own thread before threading looks at it
is "$(psqlc "SELECT count(*) FROM emails WHERE thread_id IS NULL")" "0" "no email is left with thread_id NULL"
done_testing
