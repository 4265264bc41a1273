#!/usr/bin/env bash
# s3-blobs.sh - postroomctl blobs migrate and blobs gc (issue 20 section 2,
# ctl/ctl_blobs.c) against a real object store (Ceph's RADOS Gateway,
# tests/lib/s3.bash) and a real PostgreSQL, postroomctl logged in as the
# admin role. Mail stored with the PostgreSQL backend (postroom-deliver)
# moves to the bucket: rows flip to location 's3', the objects are there,
# `mail raw` gives every message back byte-exact; a migration killed with
# SIGKILL mid-run loses nothing and the next run finishes it; back to
# postgresql (the objects marked for gc) and to s3 again. gc: an orphan
# object (uploaded without a row) younger than the grace is kept, removed
# with --grace 0; an object a row names is never removed, nor a key not of
# postroom's layout; an expunged message's object is kept within the
# grace and removed after it; the listing is followed across pages.
# Backup and restore: a pg_dump taken before an expunge, the expunge, gc
# with the default grace, the dump restored into a new database: every
# message of it reads back byte-exact.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/s3.bash"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
BUCKET=postroom-blobs
NMSG=16

t0=$(date +%s)
s3_start || { fail "radosgw started"; done_testing; }
s3_bucket_create "$BUCKET" || { fail "bucket $BUCKET created"; done_testing; }
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pg_login_roles || fail "login roles"
pass "radosgw and PostgreSQL ready ($(($(date +%s) - t0)) s)"

s3_credentials_file "$TAP_TMP/s3.cred"
blobs_conf() {
	cat <<EOF
blobs = {
  backend = "postgresql"; endpoint = "$S3_ENDPOINT"; region = "$S3_REGION";
  bucket = "$BUCKET"; credentials_file = "$TAP_TMP/s3.cred"; timeout = 10;
  min_size = 1024;
};
EOF
}
blobs_conf >>"$POSTROOM_CONF"
# postroomctl blobs as the admin role (sql/027's grants)
ADMIN_CONF=$TAP_TMP/admin.conf
{
	echo "database = { conninfo = \"$(pg_role_conninfo admin)\"; };"
	blobs_conf
} >"$ADMIN_CONF"
chmod 600 "$ADMIN_CONF"
actl() { "$POSTROOM_BUILDDIR/postroomctl" -c "$ADMIN_CONF" "$@"; }
pctl domain add example.com >/dev/null && pctl user add alice@example.com >/dev/null ||
	fail "domain and user"

# the messages: m1..mN with a random base64 attachment of 20-60 KB each,
# small.eml (a 200-byte attachment: stays in PostgreSQL), plain.eml
python3 - "$TAP_TMP" "$NMSG" <<'PY'
import base64, os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(2020)
def msg(name, payload, eol=b"\n"):
    b64 = base64.b64encode(payload)
    body = eol.join(b64[i:i + 76] for i in range(0, len(b64), 76))
    m = eol.join([b"From: sender@example.org", b"To: alice@example.com",
                  b"Subject: " + name.encode(), b"Message-ID: <" + name.encode() + b"@s3>",
                  b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="b0"', b"",
                  b"--b0", b"Content-Type: text/plain", b"", b"hello " + name.encode(), b"",
                  b"--b0", b"Content-Type: application/octet-stream",
                  b'Content-Disposition: attachment; filename="' + name.encode() + b'.bin"',
                  b"Content-Transfer-Encoding: base64", b"", body, b"--b0--", b""])
    open(os.path.join(d, name + ".eml"), "wb").write(m)
for i in range(1, n + 1):
    msg("m%d" % i, bytes(rnd.getrandbits(8) for _ in range(rnd.randint(20000, 60000))),
        b"\r\n" if i % 5 == 0 else b"\n")
msg("small", bytes(rnd.getrandbits(8) for _ in range(200)))
open(os.path.join(d, "plain.eml"), "wb").write(
    b"From: sender@example.org\nTo: alice@example.com\nSubject: plain\nMessage-ID: <plain@s3>\n\nno attachment\n")
PY
NAMES=(small plain)
for i in $(seq "$NMSG"); do NAMES+=("m$i"); done
declare -A ID
t1=$(date +%s)
for n in "${NAMES[@]}"; do
	deliver_run "$TAP_TMP/$n.eml" -f sender@example.org -- alice@example.com
	[ "$D_RC" = 0 ] || diag "deliver $n: exit $D_RC $D_ERR"
	ID[$n]=$D_ID
done
ok "[ \"\$(psqlc 'SELECT count(*) FROM emails')\" = $((NMSG + 2)) ]" \
	"$((NMSG + 2)) messages stored with the PostgreSQL backend ($(($(date +%s) - t1)) s)"
BIG=$(psqlc "SELECT count(*) FROM blobs WHERE size_bytes >= 1024")
is "$BIG" "$NMSG" "$NMSG blobs of at least blobs.min_size, all in the table"

# exact CONF NAME... - postroomctl -c CONF mail raw gives each file's bytes
# (prints the names that differ)
exact() {
	local conf=$1 n bad=
	shift
	for n in "$@"; do
		"$POSTROOM_BUILDDIR/postroomctl" -c "$conf" mail raw "${ID[$n]}" >"$TAP_TMP/raw.out" \
			2>"$TAP_TMP/raw.err" && cmp -s "$TAP_TMP/raw.out" "$TAP_TMP/$n.eml" || bad+=" $n"
	done
	echo "${bad# }"
}
# objects_of_rows - how many s3 rows lack their object in the bucket
objects_missing() {
	local k miss=0
	for k in $(psqlc "SELECT postroom_blob_key(sha256) FROM blobs WHERE location = 's3'"); do
		[ "$(s3_curl -o /dev/null -w '%{http_code}' -I "$S3_ENDPOINT/$BUCKET/$k")" = 200 ] ||
			miss=$((miss + 1))
	done
	echo $miss
}
s3count() { psqlc "SELECT count(*) FROM blobs WHERE location = 's3'"; }
is "$(exact "$POSTROOM_CONF" "${NAMES[@]}")" "" "mail raw: every message byte-exact before"

# ---- migrate to s3, killed mid-run, resumed ----------------------------------------
# Where it is killed is made certain, not left to timing (16 small blobs
# can all move between two looks): another session holds the attachment
# stripe lock (postroom_att_lock_key) of the first blob, in migrate's
# order, from the third on whose key no earlier blob shares. migrate
# moves the ones before it, uploads that one and waits for the lock to
# flip its row; it is killed there.
STOP=$(psqlc "SELECT n || ' ' || k FROM (SELECT row_number() OVER (ORDER BY sha256) AS n,
		postroom_att_lock_key(sha256) AS k, sha256 FROM blobs
		WHERE location = 'postgresql' AND size_bytes >= 1024) b
	WHERE n >= 3 AND NOT EXISTS (SELECT 1 FROM blobs e WHERE e.location = 'postgresql'
		AND e.size_bytes >= 1024 AND e.sha256 < b.sha256 AND postroom_att_lock_key(e.sha256) = b.k)
	ORDER BY n LIMIT 1")
read -r STOP_AT STOP_KEY <<<"$STOP"
"$PG_BINDIR/psql" -qXAt -d "$POSTROOM_DB" \
	-c "SELECT pg_advisory_lock($STOP_KEY), pg_sleep(300)" >/dev/null 2>&1 &
LOCKER=$!
for i in $(seq 100); do
	[ "$(psqlc "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" -ge 1 ] && break
	sleep 0.1
done
# (the program itself in the background: $! is its pid)
"$POSTROOM_BUILDDIR/postroomctl" -c "$ADMIN_CONF" blobs migrate --to s3 --batch 1 \
	>"$TAP_TMP/mig1.out" 2>"$TAP_TMP/mig1.err" &
MIG=$!
for i in $(seq 600); do # until it waits for the lock (at most 60 s)
	[ "$(psqlc "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")" -ge 1 ] && break
	kill -0 $MIG 2>/dev/null || break
	sleep 0.1
done
kill -KILL $MIG 2>/dev/null
wait $MIG 2>/dev/null
psqlc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_advisory_lock($STOP_KEY)%'
	AND pid <> pg_backend_pid()" >/dev/null
wait $LOCKER 2>/dev/null
moved=$(s3count)
is "$moved" "$((STOP_AT - 1))" \
	"migrate --to s3 killed (SIGKILL) mid-run, waiting to flip blob $STOP_AT: the $((STOP_AT - 1)) before it flipped, none after"
is "$(objects_missing)" 0 "after the kill: every s3 row's object is in the bucket"
is "$(exact "$ADMIN_CONF" "${NAMES[@]}")" "" "after the kill: every message byte-exact"
actl blobs migrate --to s3 --batch 5 >"$TAP_TMP/mig2.out" 2>"$TAP_TMP/mig2.err"
is "$?" 0 "migrate --to s3 run again: exit 0"
like "$(cat "$TAP_TMP/mig2.out")" "^blobs migrate: $((NMSG - moved)) of $((NMSG - moved)) blobs moved to s3" \
	"the second run moves the rest ($(cat "$TAP_TMP/mig2.out"))"
like "$(cat "$TAP_TMP/mig2.err")" "moved \(" "progress lines on stderr"
is "$(s3count)" "$NMSG" "every blob of at least blobs.min_size is in s3"
is "$(psqlc "SELECT count(*) FROM blobs WHERE location = 'postgresql' AND size_bytes < 1024 AND content IS NOT NULL")" \
	1 "the small blob stays in the table"
is "$(psqlc "SELECT count(*) FROM blobs WHERE location = 's3' AND content IS NOT NULL")" 0 \
	"s3 rows hold no bytes"
is "$(objects_missing)" 0 "every s3 row's object is in the bucket"
k=$(psqlc "SELECT postroom_blob_key(b.sha256) FROM blobs b JOIN email_attachments a ON a.sha256 = b.sha256 WHERE a.email_id = '${ID[m3]}'")
s3_curl -o "$TAP_TMP/obj" "$S3_ENDPOINT/$BUCKET/$k"
is "$(sha256sum <"$TAP_TMP/obj" | cut -c1-64)" "${k:6}" "an object's bytes match its key's SHA-256"
is "$(exact "$ADMIN_CONF" "${NAMES[@]}")" "" "mail raw: every message byte-exact from s3"
actl blobs migrate --to s3 >"$TAP_TMP/mig3.out" 2>&1
like "$(cat "$TAP_TMP/mig3.out")" "0 of 0 blobs moved" "a third run has nothing left to do"

# ---- back to postgresql and to s3 again ---------------------------------------------
actl blobs migrate --to postgresql --batch 7 >"$TAP_TMP/mig4.out" 2>"$TAP_TMP/mig4.err"
is "$?" 0 "migrate --to postgresql: exit 0 ($(cat "$TAP_TMP/mig4.out"))"
is "$(s3count)" 0 "every row back in the table"
is "$(psqlc "SELECT count(*) FROM blobs WHERE sha256(content) <> sha256")" 0 \
	"the table's bytes match their SHA-256"
is "$(psqlc 'SELECT count(*) FROM blob_objects_freed')" "$NMSG" \
	"each object left in the bucket is marked for gc"
is "$(exact "$POSTROOM_CONF" "${NAMES[@]}")" "" "mail raw: every message byte-exact from the table"
actl blobs gc >"$TAP_TMP/gc0.out" 2>&1
like "$(cat "$TAP_TMP/gc0.out")" "deleted 0 " "gc with the default grace deletes none of them"
actl blobs migrate --to s3 >"$TAP_TMP/mig5.out" 2>&1
is "$?" 0 "migrate --to s3 again: exit 0"
is "$(s3count)" "$NMSG" "every blob in s3 again"

# ---- gc: orphans, rows, foreign keys --------------------------------------------------
head -c 5000 /dev/urandom >"$TAP_TMP/orphan"
osha=$(sha256sum <"$TAP_TMP/orphan" | cut -c1-64)
okey=${osha:0:2}/${osha:2:2}/$osha
put_obj() { # put_obj FILE KEY - upload as the store would (signed content SHA-256)
	curl -s -o /dev/null -w '%{http_code}' --max-time 30 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
		--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: $(sha256sum <"$1" | cut -c1-64)" \
		-T "$1" "$S3_ENDPOINT/$BUCKET/$2"
}
is "$(put_obj "$TAP_TMP/orphan" "$okey")" 200 "an orphan object uploaded (no row: a store that never committed)"
is "$(put_obj "$TAP_TMP/orphan" "notes/readme.txt")" 200 "an object that is not postroom's uploaded"
present() { [ "$(s3_curl -o /dev/null -w '%{http_code}' -I "$S3_ENDPOINT/$BUCKET/$1")" = 200 ]; }
actl blobs gc >"$TAP_TMP/gc1.out" 2>&1
is "$?" 0 "gc (default grace 7 days): exit 0"
ok "present $okey" "gc: the orphan younger than the grace is kept"
like "$(cat "$TAP_TMP/gc1.out")" "listed \(1 not postroom's" "gc: the foreign key is counted, left alone"

# ---- backup, expunge, gc, restore ----------------------------------------------------------
"$PG_BINDIR/pg_dump" -Fc -d "$POSTROOM_DB" -f "$TAP_TMP/before.dump" || fail "pg_dump"
xkey=$(psqlc "SELECT postroom_blob_key(a.sha256) FROM email_attachments a WHERE a.email_id = '${ID[m7]}'")
pctl mail delete "${ID[m7]}" --user alice@example.com >/dev/null || fail "mail delete m7"
is "$(psqlc "SELECT count(*) FROM emails WHERE id = '${ID[m7]}'")" 0 "m7 expunged"
is "$(psqlc "SELECT count(*) FROM blob_objects_freed WHERE postroom_blob_key(sha256) = '$xkey'")" 1 \
	"its object is marked for collection"
actl --json blobs gc >"$TAP_TMP/gc2.out" 2>"$TAP_TMP/gc2.err"
ok "present $xkey" "gc (default grace): the expunged message's object is kept"
is "$(jq -c '[.deleted, .foreign, .errors, .younger + .freed_recently >= 2]' "$TAP_TMP/gc2.out")" \
	"[0,1,0,true]" "gc --json: nothing deleted, the foreign key counted, the young ones kept"
sleep 1.1 # LastModified has a one-second resolution
actl blobs gc --grace 0 --dry-run >"$TAP_TMP/gc3.out" 2>&1
like "$(cat "$TAP_TMP/gc3.out")" "would delete ${xkey:6}" "gc --grace 0 --dry-run: would delete it"
ok "present $xkey && present $okey" "--dry-run deletes nothing"

"$PG_BINDIR/psql" -qX -d postgres -c "CREATE DATABASE restored" >/dev/null &&
	"$PG_BINDIR/pg_restore" -d restored "$TAP_TMP/before.dump" 2>"$TAP_TMP/restore.err" ||
	fail "restore into a new database" "$(head -3 "$TAP_TMP/restore.err")"
sed "s/dbname=$POSTROOM_DB\"/dbname=restored\"/" "$POSTROOM_CONF" >"$TAP_TMP/restored.conf"
chmod 600 "$TAP_TMP/restored.conf"
is "$("$PG_BINDIR/psql" -qXAt -d restored -c 'SELECT count(*) FROM emails')" $((NMSG + 2)) \
	"the restored database has every message of the dump, m7 too"
is "$(exact "$TAP_TMP/restored.conf" "${NAMES[@]}")" "" \
	"restored: every message reads back byte-exact (m7 from the object gc kept)"

# ---- gc past the grace ---------------------------------------------------------------------
actl blobs gc --grace 0 --page 4 >"$TAP_TMP/gc4.out" 2>&1
is "$?" 0 "gc --grace 0 --page 4: exit 0 ($(cat "$TAP_TMP/gc4.out"))"
like "$(cat "$TAP_TMP/gc4.out")" "^blobs gc: $((NMSG + 1)) objects listed \(1 not postroom's" \
	"gc --page 4: every object seen across the pages (ListObjectsV2 continuation)"
ok "! present $okey" "gc --grace 0: the orphan is removed"
ok "! present $xkey" "gc --grace 0: the expunged message's object is removed"
ok "present notes/readme.txt" "gc --grace 0: the key not of postroom's layout is left alone"
is "$(objects_missing)" 0 "gc --grace 0: no object a row names is removed"
is "$(psqlc 'SELECT count(*) FROM blob_objects_freed')" 0 \
	"the freed marks are gone (collected, or their rows back in s3)"
LEFT=()
for n in "${NAMES[@]}"; do [ "$n" = m7 ] || LEFT+=("$n"); done
is "$(exact "$ADMIN_CONF" "${LEFT[@]}")" "" "every message left still byte-exact"

diag "whole test: $(($(date +%s) - t0)) s"
done_testing
