#!/usr/bin/env bash
# deliver-thread-merge.sh - a message joins the threads of ALL the stored
# messages it names (In-Reply-To and the last 64 References) and of all the
# stored messages that name it, each only when they share a participant;
# the thread whose first email is the oldest keeps its id, so the end
# state is the same for every order of arrival: every permutation of three
# and of four related messages, a reply naming messages of two other
# users' threads, bursts of concurrent deliveries, and the bound on
# References (10,000 ids cost no more than 64).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
for u in bob carol dave frank grace heidi; do pctl user add $u@example.com >/dev/null; done

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
	[ "$D_RC" = 0 ] || diag "deliver $1: exit $D_RC $D_OUT $D_ERR" >&2
	echo "$D_ID"
}
thread_of() { psqlc "SELECT thread_id FROM emails WHERE id = '$1'"; }
# perms "" "A B C" - every order of the words, one per line
perms() {
	local x rest
	[ -z "$2" ] && { echo "${1# }"; return; }
	for x in $2; do
		rest=$(echo " $2 " | sed "s/ $x / /; s/^ *//; s/ *$//")
		perms "$1 $x" "$rest"
	done
}
# round TAG ORDER - deliver the messages TAG-<name> in ORDER (names from
# the spec arrays FROM_ TO_ RCPT_ IRT_ REFS_); check they end in one thread
# whose id is the id of the first delivered (the oldest email: a thread id
# is the id of its first email, and merging keeps the older root's).
# Sets ROUND_ERR to a description of what is wrong, empty when all is well.
round() {
	local tag=$1 n refs r ids=() first= got
	for n in $2; do
		refs=
		for r in ${REFS_[$n]}; do refs="$refs <$tag-$r@x>"; done
		msg "$tag-$n" "${FROM_[$n]}" "${TO_[$n]}" "$tag-$n@x" \
			"${IRT_[$n]:+$tag-${IRT_[$n]}@x}" "${refs# }"
		ids+=("$(put "$tag-$n" "${RCPT_[$n]}")")
	done
	first=${ids[0]}
	got=$(psqlc "SELECT string_agg(DISTINCT thread_id::text, ' ') FROM emails
	             WHERE message_id LIKE '$tag-%@x'")
	ROUND_ERR=
	[ "$got" = "$first" ] || ROUND_ERR="order $2: threads '$got', expected '$first' (first delivered)"
}
declare -A FROM_ TO_ RCPT_ IRT_ REFS_
# spec NAME FROM TO IRT REFS - a message of the permutation tests
spec() { FROM_[$1]=$2 TO_[$1]=$3 RCPT_[$1]=$3 IRT_[$1]=$4 REFS_[$1]=$5; }

# 1. A and B unrelated (same participants), J: In-Reply-To A, References B A.
# Whatever the order, the three end in one thread: the id of the first of
# them to arrive (A or B: J merges their threads; J first: A and B adopt it).
spec A carol@example.com bob@example.com "" ""
spec B carol@example.com bob@example.com "" ""
spec J bob@example.com carol@example.com A "B A"
i=0
while read -r order; do
	i=$((i + 1))
	round "p3-$i" "$order"
	is "$ROUND_ERR" "" "three messages in the order $order: one thread, the first one's id"
done < <(perms "" "A B J")

# 2. four: A; B unrelated to A; C replies to A; D replies to C and names B
# and A in References. Every one of the 24 orders gives one thread.
spec A carol@example.com bob@example.com "" ""
spec B bob@example.com carol@example.com "" ""
spec C bob@example.com carol@example.com A "A"
spec D carol@example.com bob@example.com C "B A C"
bad=0 i=0
while read -r order; do
	i=$((i + 1))
	round "p4-$i" "$order"
	[ -z "$ROUND_ERR" ] || { bad=$((bad + 1)); diag "$ROUND_ERR"; }
done < <(perms "" "A B C D")
is "$i" "24" "24 orders of four messages tried"
is "$bad" "0" "four related messages end in one thread (the first one's id) in every order"

# 3. no cross-user grafting. dave/frank have a thread Y, grace/heidi a
# thread Z; J between bob and carol names both: it joins neither, and Y and
# Z stay apart - in both orders (J first: Y and Z must not adopt it).
for o in threads-first reply-first; do
	msg "$o-y1" dave@example.com frank@example.com "$o-y1@x"
	msg "$o-y2" frank@example.com dave@example.com "$o-y2@x" "$o-y1@x" "<$o-y1@x>"
	msg "$o-z1" grace@example.com heidi@example.com "$o-z1@x"
	msg "$o-z2" heidi@example.com grace@example.com "$o-z2@x" "$o-z1@x" "<$o-z1@x>"
	msg "$o-j" bob@example.com carol@example.com "$o-j@x" "$o-y2@x" \
		"<$o-z1@x> <$o-y1@x> <$o-z2@x> <$o-y2@x>"
	[ $o = reply-first ] && J=$(put "$o-j" carol@example.com)
	Y1=$(put "$o-y1" frank@example.com); Y2=$(put "$o-y2" dave@example.com)
	Z1=$(put "$o-z1" heidi@example.com); Z2=$(put "$o-z2" grace@example.com)
	[ $o = threads-first ] && J=$(put "$o-j" carol@example.com)
	is "$(thread_of "$J")" "$J" "$o: a reply naming strangers' messages joins none of their threads"
	is "$(thread_of "$Y1") $(thread_of "$Y2") $(thread_of "$Z1") $(thread_of "$Z2")" \
		"$Y1 $Y1 $Z1 $Z1" "$o: the two strangers' threads stay apart"
done
# ... and with a participant in common with one of them (dave), it joins
# that one only: each merge is scoped by participants
msg s-y1 dave@example.com frank@example.com s-y1@x
msg s-z1 grace@example.com heidi@example.com s-z1@x
msg s-j bob@example.com dave@example.com s-j@x s-z1@x "<s-y1@x> <s-z1@x>"
Y1=$(put s-y1 frank@example.com); Z1=$(put s-z1 heidi@example.com); J=$(put s-j dave@example.com)
is "$(thread_of "$J") $(thread_of "$Z1")" "$Y1 $Z1" \
	"a reply sharing a participant with one of two named threads joins that one only"

# 4. concurrency: four roots and eight replies, each naming two roots
# (r1-r2, r2-r3, r3-r4, r4-r1), all at once (odd rounds) or the replies at
# once after the roots (even rounds); the merges must converge on one
# thread, without a deadlock or a lost message
bad=0 errs=0
for r in 1 2 3 4 5; do
	for k in 1 2 3 4; do
		msg "c$r-r$k" carol@example.com bob@example.com "c$r-r$k@x"
	done
	for k in 1 2 3 4 5 6 7 8; do
		a=$((k % 4 + 1)) b=$(((k + 1) % 4 + 1))
		msg "c$r-m$k" bob@example.com carol@example.com "c$r-m$k@x" "c$r-r$a@x" \
			"<c$r-r$b@x> <c$r-r$a@x>"
	done
	pids=()
	if [ $((r % 2)) = 0 ]; then # even rounds: the roots first, then the replies at once
		for k in 1 2 3 4; do put "c$r-r$k" bob@example.com >/dev/null; done
		rm -f "$TAP_TMP"/c$r-r?.eml
	fi
	for f in "$TAP_TMP"/c$r-*.eml; do
		"$DELIVER_BIN" -c "$POSTROOM_CONF" -f s@example.org -- bob@example.com carol@example.com \
			<"$f" >"${f%.eml}.out" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || errs=$((errs + 1)); done
	n=$(psqlc "SELECT count(DISTINCT thread_id) FROM emails WHERE message_id LIKE 'c$r-%@x'")
	[ "$n" = 1 ] || { bad=$((bad + 1)); diag "round $r: $n threads"; }
done
is "$errs" "0" "every concurrent delivery succeeded"
is "$bad" "0" "four roots and eight replies delivered at once always end in one thread"
is "$(psqlc "SELECT count(*), count(DISTINCT message_id) FROM emails WHERE message_id LIKE 'c_-%@x'")" \
	"60|60" "all 60 stored, each once"
is "$(cat "$TAP_TMP"/c*.out | grep -ci deadlock)" "0" "no deadlock reported"
is "$(psqlc "SELECT count(*) FROM emails e WHERE message_id LIKE 'c_-%@x' AND thread_id <>
             (SELECT f.id FROM emails f WHERE f.thread_id = e.thread_id ORDER BY received_at, id LIMIT 1)")" \
	"0" "each thread id is the id of the thread's oldest email"

# 5. the bound: only the last 64 References count. A message naming 10,000
# ids is stored quickly and joins a parent named among the last 64 ...
msg b-p carol@example.com bob@example.com b-p@x
msg b-far carol@example.com bob@example.com b-far@x
BP=$(put b-p bob@example.com); BFAR=$(put b-far bob@example.com)
{
	printf 'From: bob@example.com\nTo: carol@example.com\nSubject: many\nMessage-ID: <b-j@x>\n'
	printf 'References: <b-far@x>'
	for i in $(seq 9998); do printf '\n <b-missing-%d@x>' "$i"; done
	printf '\n <b-p@x>\n\nbody\n'
} >"$TAP_TMP/b-j.eml"
t0=$(date +%s%N)
BJ=$(put b-j carol@example.com)
ms=$((($(date +%s%N) - t0) / 1000000))
diag "a message with 10,000 References ids stored in $ms ms"
ok "[ $ms -lt 5000 ]" "a message naming 10,000 ids is stored in under 5 s"
is "$(thread_of "$BJ") $(thread_of "$BFAR")" "$BP $BFAR" \
	"it joins the parent among its last 64 References, not the one named 10,000th from the end"
# ... and the database function keeps the bound whatever a row holds (an
# older postroom-deliver or another writer): 10,000 reference_ids in a row
ins_refs() {
	psqlc "INSERT INTO emails (message_id, reference_ids, from_address, size_bytes, content_sha256)
	       VALUES ('$1', $2, 'carol@example.com', 1, sha256('$1'::bytea)) RETURNING id" | head -n 1
}
P1=$(ins_refs q-p1@x "'{}'"); psqlc "SELECT postroom_thread_email('$P1')" >/dev/null
P64=$(ins_refs q-p64@x "'{}'"); psqlc "SELECT postroom_thread_email('$P64')" >/dev/null
R64=$(ins_refs q-r64@x "ARRAY['q-p1@x'] || ARRAY(SELECT 'q-missing-' || i || '@x' FROM generate_series(1, 9935) i)
	|| ARRAY['q-p64@x'] || ARRAY(SELECT 'q-tail-' || i || '@x' FROM generate_series(1, 63) i)")
is "$(psqlc "SELECT cardinality(reference_ids), array_position(reference_ids, 'q-p64@x') FROM emails WHERE id = '$R64'")" \
	"10000|9937" "a row with 10,000 reference_ids, q-p64 the 64th from the end"
FAR=$(ins_refs q-far@x "ARRAY['q-p1@x'] || ARRAY(SELECT 'q-missing-' || i || '@x' FROM generate_series(1, 9999) i)")
psqlc "SELECT postroom_thread_email('$FAR')" >/dev/null
is "$(thread_of "$FAR")" "$FAR" "a row naming a stored message only 10,000th from the end joins nothing"
t0=$(date +%s%N)
out=$(psqlc "SELECT postroom_thread_email('$R64')" 2>&1)
ms=$((($(date +%s%N) - t0) / 1000000))
diag "threading a row with 10,000 reference_ids took $ms ms: $out"
ok "[ $ms -lt 5000 ]" "threading a row naming 10,000 ids takes under 5 s"
is "$(thread_of "$R64") $(thread_of "$P1")" "$P64 $P1" \
	"the function reads only the last 64 reference_ids"
# a child stored first is adopted only when the parent is among its last 64
C2=$(ins_refs q-c@x "ARRAY['q-p2@x'] || ARRAY(SELECT 'q-m-' || i || '@x' FROM generate_series(1, 100) i)")
psqlc "SELECT postroom_thread_email('$C2')" >/dev/null
P2=$(ins_refs q-p2@x "'{}'"); psqlc "SELECT postroom_thread_email('$P2')" >/dev/null
C3=$(ins_refs q-c3@x "ARRAY['q-p3@x'] || ARRAY(SELECT 'q-m-' || i || '@x' FROM generate_series(1, 63) i)")
psqlc "SELECT postroom_thread_email('$C3')" >/dev/null
P3=$(ins_refs q-p3@x "'{}'"); psqlc "SELECT postroom_thread_email('$P3')" >/dev/null
is "$(thread_of "$P2") $(thread_of "$P3")" "$P2 $C3" \
	"a parent adopts a child naming it among the last 64 only"
# 6. lock order: a thread found only after waiting (y was merged into the
# older x meanwhile) whose lock key is lower than one already held is not
# waited for: M2 holds x's lock and then wants y's, which A holds; waiting
# for x would close a cycle (a deadlock, found after deadlock_timeout).
# A fails at once with serialization_failure (the store retries it), M2
# goes on, and A's retry joins x's thread.
ins_thread() {
	psqlc "INSERT INTO emails (message_id, reference_ids, from_address, size_bytes, content_sha256)
	       VALUES ('$1', '{}', 'carol@example.com', 1, sha256('$1'::bytea)) RETURNING id" | head -n 1
}
tkey() { psqlc "SELECT hashtextextended('postroom-thread:' || '$1', 0)"; }
i=0
while :; do # x older than y, and x's thread lock key below y's
	i=$((i + 1))
	X=$(ins_thread "lx$i@x"); Y=$(ins_thread "ly$i@x")
	psqlc "UPDATE emails SET thread_id = id WHERE id IN ('$X', '$Y')" >/dev/null
	[ "$(tkey "$X")" -lt "$(tkey "$Y")" ] && break
done
KX=$(tkey "$X") KY=$(tkey "$Y")
# M1 holds y's lock until A waits for it, then merges y into x; M2 holds
# x's lock, and once the merge is visible (A, woken, finds x) wants y's
psql -qXAt -d "$POSTROOM_DB" -c "BEGIN" -c "SELECT pg_advisory_xact_lock($KY)" \
	-c "DO \$\$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)
	    LOOP PERFORM pg_sleep(0.05); END LOOP; END \$\$" \
	-c "UPDATE emails SET thread_id = '$X' WHERE thread_id = '$Y'" -c "COMMIT" >"$TAP_TMP/m1.out" 2>&1 &
m1=$!
psql -qXAt -d "$POSTROOM_DB" -v ON_ERROR_STOP=1 -c "BEGIN" -c "SELECT pg_advisory_xact_lock($KX)" \
	-c "DO \$\$ BEGIN WHILE (SELECT thread_id FROM emails WHERE id = '$Y') <> '$X'
	    LOOP PERFORM pg_sleep(0.05); END LOOP; END \$\$" \
	-c "SELECT pg_sleep(0.5)" -c "SELECT pg_advisory_xact_lock($KY)" -c "COMMIT" >"$TAP_TMP/m2.out" 2>&1 &
m2=$!
for k in $(seq 100); do # until both hold their lock
	[ "$(psqlc "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 2 ] && break
	sleep 0.1
done
reply_a="INSERT INTO emails (message_id, in_reply_to, reference_ids, from_address, size_bytes, content_sha256)
	VALUES ('la$i@x', 'ly$i@x', '{}', 'carol@example.com', 1, sha256('la$i'::bytea))
	RETURNING postroom_thread_email(id)"
out=$(psql -qXAt -d "$POSTROOM_DB" -c '\set VERBOSITY verbose' -c "$reply_a" 2>&1)
wait $m1; wait $m2; rc2=$?
like "$out" "ERROR: +40001:" "a thread lock below one held is tried, not waited for: A fails with 40001"
is "$rc2:$(cat "$TAP_TMP/m1.out" "$TAP_TMP/m2.out")" "0:" "the other transactions finish, no deadlock"
is "$(psqlc "$reply_a")" "$X" "A's retry joins the older thread x"
done_testing
