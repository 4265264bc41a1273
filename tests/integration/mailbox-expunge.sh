#!/usr/bin/env bash
# mailbox-expunge.sh - delete for good and expunge (issue 18 item 2,
# sql/015_mailbox.sql): an email goes with its last membership (raw,
# recipients, attachments, unreferenced blobs), header-only and orphaned
# rows do not keep it, a row waiting for its first owner does; thread ids
# stay stable after the first email of a thread is expunged; a message
# that comes back is stored again as new; postroom_att_lock_key is the
# store's stripe key (the C code waits on it); removing a user; and the
# race: concurrent postroom-deliver processes storing messages that share
# attachments while other sessions delete and expunge them, after which
# every reference resolves and no blob is unreferenced. Prints the expunge
# throughput (not asserted). Real PostgreSQL and postroom-deliver.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null 2>&1
for u in alice bob frank gina; do pctl user add $u@example.com >/dev/null; done
uid() { psqlc "SELECT id FROM users WHERE address = '$1'"; }
ALICE=$(uid alice@example.com)
BOB=$(uid bob@example.com)
psqlv() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$POSTROOM_DB" -c "$1" 2>&1; }

# mime FILE MID FROM TO [EXTRA-HEADER] [ATT...] - a message with attachments
# (ATT's content: its name, repeated)
mime() {
	local f=$TAP_TMP/$1 mid=$2 from=$3 to=$4 extra=$5 a
	shift 5
	{
		printf 'From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s>\n' "$from" "$to" "$mid" "$mid"
		[ -n "$extra" ] && printf '%s\n' "$extra"
		printf 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b0"\n\n--b0\n'
		printf 'Content-Type: text/plain\n\nbody of %s\n' "$mid"
		for a in "$@"; do
			printf -- '--b0\nContent-Type: application/octet-stream\n'
			printf 'Content-Disposition: attachment; filename="%s.bin"\nContent-Transfer-Encoding: base64\n\n' "$a"
			for _ in $(seq 40); do printf 'content of attachment %s\n' "$a"; done | base64
		done
		printf -- '--b0--\n'
	} >"$f"
	echo "$f"
}
# put FILE FROM RCPT... - deliver; D_ID is the email id
put() {
	local f=$1 from=$2
	shift 2
	deliver_run "$f" -f "$from" -- "$@"
	[ "$D_RC" = 0 ] || diag "deliver $f: exit $D_RC $D_OUT $D_ERR"
}
gone() { # EMAIL - how many rows of it are left in emails, email_raw, email_recipients, email_attachments
	psqlc "SELECT (SELECT count(*) FROM emails WHERE id = '$1') || ',' || (SELECT count(*) FROM email_raw WHERE email_id = '$1')
	       || ',' || (SELECT count(*) FROM email_recipients WHERE email_id = '$1')
	       || ',' || (SELECT count(*) FROM email_attachments WHERE email_id = '$1')"
}
blobs() { psqlc "SELECT count(*) FROM blobs"; }
del() { psqlc "SELECT postroom_delete('$1', ARRAY['$2']::uuid[])"; }

# --- the last membership -------------------------------------------------------------------
put "$(mime shared.eml shared@x sender@example.org 'alice@example.com, bob@example.com' '' s1 s2)" \
	sender@example.org alice@example.com bob@example.com
SHARED=$D_ID
is "$(gone "$SHARED")" "1,1,2,2" "a message for alice and bob, two attachments"
is "$(blobs)" 2 "... two blobs"
is "$(del "$ALICE" "$SHARED")" 1 "alice deletes it"
is "$(gone "$SHARED")" "1,1,2,2" "... bob still holds it: nothing expunged"
is "$(psqlc "SELECT count(*) FROM mailbox_tombstones WHERE user_id = '$ALICE' AND email_id = '$SHARED'")" 1 "... alice's tombstone"
is "$(del "$BOB" "$SHARED")" 1 "bob deletes it"
is "$(gone "$SHARED")" "0,0,0,0" "the last membership gone: email, raw, recipients, attachments expunged"
is "$(blobs)" 0 "... and its blobs freed"

# header-only and orphaned rows do not keep an email; a waiting row does
put "$(mime hdr.eml hdr@x sender@example.org 'alice@example.com' 'Cc: dave@example.com, bob@example.com' s1)" \
	sender@example.org alice@example.com
HDR=$D_ID
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE email_id = '$HDR' AND NOT delivered")" 2 \
	"a message with header-only rows (dave nobody's, bob a user)"
is "$(del "$ALICE" "$HDR")" 1 "alice deletes it"
is "$(gone "$HDR")" "0,0,0,0" "... expunged: header-only rows do not keep it"
put "$(mime wait.eml wait@x sender@example.org 'alice@example.com' '' s1)" \
	sender@example.org alice@example.com erin@example.com
WAIT=$D_ID
del "$ALICE" "$WAIT" >/dev/null
is "$(gone "$WAIT")" "1,1,2,1" "a delivered row waiting for its first owner (erin) keeps the email"
pctl user add erin@example.com >/dev/null
is "$(psqlc "SELECT count(*) FROM mailbox_entries WHERE email_id = '$WAIT'")" 1 "... and erin gets it when created"
is "$(psqlc "SELECT postroom_delete(u.id, ARRAY['$WAIT']::uuid[]) FROM users u WHERE address = 'erin@example.com'")" 1 \
	"erin deletes it"
is "$(gone "$WAIT")" "0,0,0,0" "... expunged"

# blobs freed only when unreferenced
put "$(mime b1.eml b1@x sender@example.org 'alice@example.com' '' common only1)" sender@example.org alice@example.com
B1=$D_ID
put "$(mime b2.eml b2@x sender@example.org 'alice@example.com' '' common only2)" sender@example.org alice@example.com
B2=$D_ID
is "$(blobs)" 3 "two messages sharing one of their attachments: three blobs"
del "$ALICE" "$B1" >/dev/null
is "$(blobs)" 2 "deleting the first frees only its own blob"
is "$(psqlc "SELECT count(*) FROM email_attachments a JOIN blobs b ON b.sha256 = a.sha256 WHERE a.email_id = '$B2'")" 2 \
	"... the second's attachments resolve"
del "$ALICE" "$B2" >/dev/null
is "$(blobs)" 0 "deleting the second frees the rest"

# --- redelivery after expunge -----------------------------------------------------------------
F=$(mime again.eml again@x sender@example.org 'alice@example.com' '' a1)
put "$F" sender@example.org alice@example.com
FIRST=$D_ID
del "$ALICE" "$FIRST" >/dev/null
is "$(gone "$FIRST")" "0,0,0,0" "a message expunged"
put "$F" sender@example.org alice@example.com
is "$D_RC" 0 "the same message delivered again"
ok '[ "$D_ID" != - ] && [ "$D_ID" != "$FIRST" ]' "... is stored again as new ($D_ID)"
is "$(psqlc "SELECT count(*) FROM mailbox_entries WHERE email_id = '$D_ID' AND user_id = '$ALICE'")" 1 "... in alice's mailbox"
is "$(blobs)" 1 "... with its blob"
del "$ALICE" "$D_ID" >/dev/null

# --- thread ids after an expunge -------------------------------------------------------------------
tmsg() { # NAME MID [IN-REPLY-TO] [REFERENCES]
	{
		printf 'From: x@example.org\nTo: alice@example.com\nSubject: %s\nMessage-ID: <%s>\n' "$1" "$2"
		[ -n "${3:-}" ] && printf 'In-Reply-To: <%s>\n' "$3"
		[ -n "${4:-}" ] && printf 'References: %s\n' "$4"
		printf '\nbody of %s\n' "$1"
	} >"$TAP_TMP/$1.eml"
	put "$TAP_TMP/$1.eml" x@example.org alice@example.com
	echo "$D_ID"
}
thread_of() { psqlc "SELECT thread_id FROM emails WHERE id = '$1'"; }
TA=$(tmsg ta ta@x)
TB=$(tmsg tb tb@x ta@x '<ta@x>')
TP=$(tmsg tp tp@x)
is "$(thread_of "$TB")" "$TA" "a reply joins the thread of its parent"
del "$ALICE" "$TA" >/dev/null
is "$(gone "$TA")" "0,0,0,0" "the thread's first email expunged"
is "$(thread_of "$TB")" "$TA" "the remaining member keeps the thread id (it names the expunged email)"
TC=$(tmsg tc tc@x tb@x '<ta@x> <tb@x>')
is "$(thread_of "$TC")" "$TA" "a new reply still joins that thread"
TM=$(tmsg tm tm@x tp@x '<tb@x> <tp@x>')
is "$(thread_of "$TM")" "$TA" "a merge with a younger thread: the older thread keeps its id, not its oldest member's"
is "$(thread_of "$TP")" "$TA" "... the younger thread's emails move to it"

# --- postroom_att_lock_key is the store's stripe key ----------------------------------------------------
put "$(mime k0.eml k0@x sender@example.org alice@example.com '' ka kb kc)" sender@example.org alice@example.com
K0=$D_ID
for d in $(psqlc "SELECT encode(sha256, 'hex') FROM email_attachments WHERE email_id = '$K0' ORDER BY position"); do
	mkfifo "$TAP_TMP/k.fifo"
	"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" <"$TAP_TMP/k.fifo" >"$TAP_TMP/k.out" 2>&1 &
	kp=$!
	exec 7>"$TAP_TMP/k.fifo"
	printf "BEGIN;\nSELECT pg_advisory_xact_lock(postroom_att_lock_key(decode('%s', 'hex')));\nSELECT 'held';\n" "$d" >&7
	for _ in $(seq 100); do grep -q held "$TAP_TMP/k.out" && break; sleep 0.1; done
	f=$(mime "k$d.eml" "k$d@x" sender@example.org alice@example.com '' ka kb kc)
	"$DELIVER_BIN" -c "$POSTROOM_CONF" -f sender@example.org -- alice@example.com <"$f" >/dev/null 2>&1 &
	dp=$!
	waited=
	for _ in $(seq 100); do
		waited=$(psqlc "SELECT ((classid::bigint << 32) | objid::bigint) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
		[ -n "$waited" ] && break
		sleep 0.1
	done
	is "$waited" "$(psqlc "SELECT postroom_att_lock_key(decode('$d', 'hex'))")" \
		"postroom-deliver waits on postroom_att_lock_key(${d:0:12}...)"
	echo "COMMIT;" >&7
	exec 7>&-
	wait $kp
	wait $dp
	is "$?" 0 "... and stores once the lock is released"
	rm -f "$TAP_TMP/k.fifo"
done
psqlc "SELECT postroom_delete('$ALICE', ARRAY(SELECT email_id FROM mailbox_entries WHERE user_id = '$ALICE'))" >/dev/null
is "$(psqlc "SELECT count(*) FROM emails")" 0 "alice deletes everything: no email left"
is "$(blobs)" 0 "... no blob"

# --- removing a user -------------------------------------------------------------------------------------
FRANK=$(uid frank@example.com)
GINA=$(uid gina@example.com)
put "$(mime f1.eml f1@x sender@example.org frank@example.com '' f1)" sender@example.org frank@example.com
F1=$D_ID
put "$(mime f2.eml f2@x sender@example.org frank@example.com '' f2)" sender@example.org frank@example.com alice@example.com
F2=$D_ID
is "$(psqlc "SELECT postroom_user_remove('$FRANK')")" 2 "postroom_user_remove: frank's two memberships"
is "$(gone "$F1")" "0,0,0,0" "... his own mail expunged"
is "$(psqlc "SELECT count(*) FROM mailbox_entries WHERE email_id = '$F2'")" 1 "... mail alice also holds kept for her"
is "$(psqlc "SELECT count(*) FROM users WHERE id = '$FRANK'")" 0 "... the user removed"
put "$(mime g1.eml g1@x sender@example.org gina@example.com '' g1)" sender@example.org gina@example.com
G1=$D_ID
is "$(psqlc "SELECT postroom_user_remove('$GINA', 30)")" 1 "postroom_user_remove with 30 days to keep"
is "$(gone "$G1")" "1,1,1,1" "... the mail is kept"
is "$(psqlc "SELECT orphaned_at IS NOT NULL AND keep_until > now() + interval '29 days' FROM email_recipients WHERE email_id = '$G1'")" t \
	"... unlinked, kept until 30 days from now"
pctl user add gina@example.com >/dev/null
is "$(psqlc "SELECT count(*) FROM mailbox_entries m JOIN users u ON u.id = m.user_id WHERE u.address = 'gina@example.com'")" 0 \
	"a new gina@ does not get it"
is "$(psqlc "SELECT emails FROM postroom_expunge(ARRAY['$G1']::uuid[])")" 0 "postroom_expunge keeps it during the period"
psqlc "UPDATE email_recipients SET keep_until = now() - interval '1 second' WHERE email_id = '$G1'"
is "$(psqlc "SELECT emails || ':' || (bytes > 0) FROM postroom_expunge(ARRAY['$G1']::uuid[])")" "1:true" "... and expunges it after"
is "$(gone "$G1")" "0,0,0,0" "... all of it"
psqlc "UPDATE domains SET legal_hold = true"
put "$(mime h1.eml h1@x sender@example.org alice@example.com '' h1)" sender@example.org alice@example.com
H1=$D_ID
psqlc "ALTER TABLE users DISABLE TRIGGER users_legal_hold; UPDATE domains SET legal_hold = false;
	DELETE FROM mailbox_entries WHERE email_id = '$H1'; UPDATE domains SET legal_hold = true"
is "$(psqlc "SELECT emails FROM postroom_expunge(ARRAY['$H1']::uuid[])")" 0 \
	"a delivered row of a domain under legal hold keeps an email without memberships"
psqlc "UPDATE domains SET legal_hold = false; ALTER TABLE users ENABLE TRIGGER users_legal_hold"
is "$(psqlc "SELECT emails FROM postroom_expunge(ARRAY['$H1']::uuid[])")" 1 "... expunged once the hold is lifted"

# --- the race: delivering and expunging messages that share attachments --------------------------------
# 4 postroom-deliver processes store 10 messages each (each with 1-3 of 4
# shared attachments) for alice and bob, while 4 sessions delete random
# memberships of theirs through postroom_delete (retrying on 40P01/40001,
# counted). Then every reference must resolve and no blob be orphaned.
rm -f "$TAP_TMP/stop"
deliverer() {
	local s=$1 i f tries rc
	for i in $(seq 10); do
		f=$(mime "r$s.$i.eml" "r$s.$i@x" sender@example.org 'alice@example.com' '' \
			$(printf 'p%s ' $(( (s + i) % 4 )) $(( (s * i) % 4 )) $(( i % 2 + 2 ))))
		for tries in 1 2 3 4 5; do
			"$DELIVER_BIN" -c "$POSTROOM_CONF" -f sender@example.org -- alice@example.com bob@example.com <"$f" \
				>"$TAP_TMP/r$s.out" 2>&1
			rc=$?
			[ $rc = 0 ] && break
			echo "tempfail $rc $(tail -n 1 "$TAP_TMP/r$s.out")"
		done
		[ $rc = 0 ] || echo "LOST r$s.$i"
	done
}
deleter() {
	local n=0 retried=0 out user try
	while [ ! -e "$TAP_TMP/stop" ]; do
		user=$ALICE
		[ $((RANDOM % 2)) = 0 ] && user=$BOB
		for try in 1 2 3 4 5 6 7 8; do
			out=$(psqlv "SELECT postroom_delete('$user', ARRAY(SELECT email_id FROM mailbox_entries
				WHERE user_id = '$user' ORDER BY random() LIMIT 2))")
			case $out in
			*40P01* | *40001*) retried=$((retried + 1)) ;;
			[0-9]*) n=$((n + out)); break ;;
			*) echo "ERROR $out"; break ;;
			esac
		done
		case $out in *40P01* | *40001*) echo "UNRETRIED $out" ;; esac
	done
	echo "deleted $n retried $retried"
}
dpids=()
for s in 1 2 3 4; do deliverer $s >"$TAP_TMP/deliverer$s.log" 2>&1 & dpids+=($!); done
xpids=()
for s in 1 2 3 4; do deleter >"$TAP_TMP/deleter$s.log" 2>&1 & xpids+=($!); done
wait "${dpids[@]}"
touch "$TAP_TMP/stop"
wait "${xpids[@]}"
is "$(grep -h LOST "$TAP_TMP"/deliverer*.log)" "" "every one of 40 messages was stored (MTA-style retries: $(cat "$TAP_TMP"/deliverer*.log | grep -c tempfail))"
is "$(grep -h 'ERROR\|UNRETRIED' "$TAP_TMP"/deleter*.log)" "" "no delete failed, no deadlock left unretried"
diag "deleters: $(cat "$TAP_TMP"/deleter*.log | grep deleted | tr '\n' ';')"
ok '[ "$(cat "$TAP_TMP"/deleter*.log | sed -n "s/^deleted \([0-9]*\).*/\1/p" | paste -sd+ | bc)" -gt 0 ]' \
	"the deleters deleted memberships while the messages were being stored"
is "$(psqlc "SELECT count(*) FROM email_attachments a WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = a.sha256)")" 0 \
	"every attachment's digest resolves to a blob"
is "$(psqlc "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM email_attachments a WHERE a.sha256 = b.sha256)")" 0 \
	"no blob is unreferenced"
is "$(psqlc "SELECT count(*) FROM emails e WHERE NOT postroom_email_alive(e.id)")" 0 "no dead email left behind"
psqlc "SELECT postroom_delete(u, ARRAY(SELECT email_id FROM mailbox_entries WHERE user_id = u)) FROM unnest(ARRAY['$ALICE', '$BOB']::uuid[]) u" >/dev/null
is "$(psqlc "SELECT (SELECT count(*) FROM emails) + (SELECT count(*) FROM blobs)")" 0 "deleting the rest leaves no email and no blob"

# --- expunge throughput (printed, not asserted) -----------------------------------------------------------
psqlc "INSERT INTO blobs (sha256, size_bytes, content)
	SELECT sha256(('tp' || i)::bytea), 1000, convert_to(repeat('x', 1000), 'UTF8') FROM generate_series(1, 20) i;
	INSERT INTO emails (id, message_id, size_bytes, content_sha256)
	SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'tp' || i || '@x', 3000, sha256(('tpm' || i)::bytea)
	  FROM generate_series(1, 5000) i;
	INSERT INTO email_raw (email_id, content)
	SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, convert_to(repeat('r', 2000), 'UTF8')
	  FROM generate_series(1, 5000) i;
	INSERT INTO email_recipients (email_id, address, type, user_id, delivered)
	SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'alice@example.com', 'to', '$ALICE', true
	  FROM generate_series(1, 5000) i;
	INSERT INTO email_attachments (email_id, position, filename, content_type, size_bytes, sha256)
	SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, p, 'f' || p, 'application/octet-stream', 1000,
	       sha256(('tp' || ((i + p) % 20 + 1))::bytea)
	  FROM generate_series(1, 5000) i, generate_series(1, 2) p"
t0=$(date +%s%N)
for b in $(seq 0 9); do
	psqlc "SELECT postroom_delete('$ALICE', ARRAY(SELECT ('20000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid
		FROM generate_series($b * 500 + 1, $b * 500 + 500) i))" >/dev/null
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(psqlc "SELECT (SELECT count(*) FROM emails) + (SELECT count(*) FROM blobs)")" 0 \
	"5,000 emails sharing 20 attachments deleted in 10 calls: all expunged, every blob freed"
diag "expunge throughput: 5000 emails (2 shared attachments each, 500 per postroom_delete call) in $ms ms = $(( 5000 * 1000 / (ms > 0 ? ms : 1) )) emails/s"

done_testing
