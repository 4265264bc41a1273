#!/usr/bin/env bash
# blobstore-s3.sh - lib/blob_store_s3.c against a real object store (Ceph's
# RADOS Gateway, tests/lib/s3.bash), through tests/tools/blob-tool: put,
# get (to a file and to a buffer), exists and delete byte-exact for a small
# and a 20 MB object, the key layout seen from the server, an object whose
# bytes do not match its digest detected on read, wrong keys and a missing
# bucket as operator mistakes (4.3.5, loud log line), an open credentials
# file refused, a silent server and a stopped server as temporary errors
# (4.3.0) within the time-out (bounds with 3x slack: the machine is shared).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/s3.bash"
TOOL="$POSTROOM_BUILDDIR/tests/tools/blob-tool"
[ -x "$TOOL" ] || { fail "blob-tool is built ($TOOL)"; done_testing; }
BUCKET=postroom-blobs

t0=$(date +%s)
if ! s3_start; then
	fail "radosgw started"
	done_testing
fi
s3_bucket_create "$BUCKET" || { fail "bucket $BUCKET created"; done_testing; }
pass "radosgw started and bucket created ($(($(date +%s) - t0)) s)"

s3_credentials_file "$TAP_TMP/s3.cred"
# the configuration of the tests; the fault cases edit a copy with sed
CONF=$TAP_TMP/ok.conf
cat >"$CONF" <<EOF
blobs = {
  backend = "s3"; endpoint = "$S3_ENDPOINT"; region = "$S3_REGION";
  bucket = "$BUCKET"; credentials_file = "$TAP_TMP/s3.cred"; timeout = 3;
};
EOF
tool() { "$TOOL" "$CONF" "$@"; }

head -c 1000 /dev/urandom >"$TAP_TMP/small"
head -c $((20 * 1024 * 1024)) /dev/urandom >"$TAP_TMP/big"
small=$(sha256sum "$TAP_TMP/small" | cut -c1-64)
big=$(sha256sum "$TAP_TMP/big" | cut -c1-64)

# ---- put, get, exists, delete --------------------------------------------
is "$(tool exists "$small")" 0 "exists: 0 before put"
is "$(tool put "$TAP_TMP/small" 2>"$TAP_TMP/err")" "$small" "put small: prints its SHA-256"
is "$(tool exists "$small")" 1 "exists: 1 after put"
tool get "$small" "$TAP_TMP/small.out" && cmp -s "$TAP_TMP/small" "$TAP_TMP/small.out" &&
	pass "get small to a file: byte-exact" || fail "get small to a file: byte-exact"
tool getbuf "$small" "$TAP_TMP/small.buf" && cmp -s "$TAP_TMP/small" "$TAP_TMP/small.buf" &&
	pass "get small to a buffer: byte-exact" || fail "get small to a buffer: byte-exact"
key=${small:0:2}/${small:2:2}/$small
s3_curl -o "$TAP_TMP/small.raw" "$S3_ENDPOINT/$BUCKET/$key"
cmp -s "$TAP_TMP/small" "$TAP_TMP/small.raw" && pass "object key is ab/cd/SHA256 in the bucket" ||
	fail "object key is ab/cd/SHA256 in the bucket"
is "$(tool put "$TAP_TMP/small")" "$small" "put again: ok (already there)"

s=$(date +%s)
is "$(tool put "$TAP_TMP/big" 2>"$TAP_TMP/err")" "$big" "put 20 MB" || diag "$(cat "$TAP_TMP/err")"
tool get "$big" "$TAP_TMP/big.out" && cmp -s "$TAP_TMP/big" "$TAP_TMP/big.out" &&
	pass "get 20 MB to a file: byte-exact" || fail "get 20 MB to a file: byte-exact"
tool getbuf "$big" "$TAP_TMP/big.buf" && cmp -s "$TAP_TMP/big" "$TAP_TMP/big.buf" &&
	pass "get 20 MB to a buffer: byte-exact" || fail "get 20 MB to a buffer: byte-exact"
diag "20 MB put + 2 gets: $(($(date +%s) - s)) s"

missing=$(printf 'not stored' | sha256sum | cut -c1-64)
is "$(tool exists "$missing")" 0 "exists: 0 for a digest never stored"
tool get "$missing" "$TAP_TMP/x" 2>/dev/null
is "$?" 14 "get of a digest never stored: not found"

tool del "$big" && is "$(tool exists "$big")" 0 "delete: gone afterwards" ||
	fail "delete: gone afterwards"

# ---- SHA-256 mismatch on read ---------------------------------------------
head -c 1000 /dev/urandom >"$TAP_TMP/evil"
evil=$(sha256sum "$TAP_TMP/evil" | cut -c1-64)
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
	--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: $evil" \
	-T "$TAP_TMP/evil" "$S3_ENDPOINT/$BUCKET/$key")
is "$code" 200 "other bytes written under the small object's key (behind postroom's back)"
tool get "$small" "$TAP_TMP/small.bad" 2>"$TAP_TMP/err"
is "$?" 13 "get: the SHA-256 mismatch is detected (corrupt)"
like "$(cat "$TAP_TMP/err")" "corrupt 4.3.0: .*does not match its SHA-256" "get: says why"
tool getbuf "$small" "$TAP_TMP/small.bad" 2>/dev/null
is "$?" 13 "get to a buffer: the mismatch is detected too"
# a body that does not match the digest postroom gives is refused by the
# server itself (x-amz-content-sha256 is signed)
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$S3_REGION:s3" \
	--user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: $small" \
	-T "$TAP_TMP/evil" "$S3_ENDPOINT/$BUCKET/$key")
is "$code" 400 "the server refuses a body that does not match its signed SHA-256"

# ---- operator mistakes: 4.3.5 ---------------------------------------------
printf 'aws_access_key_id = %s\naws_secret_access_key = wrong%s\n' "$S3_ACCESS_KEY" \
	"$S3_SECRET_KEY" >"$TAP_TMP/wrong.cred"
chmod 600 "$TAP_TMP/wrong.cred"
sed "s|$TAP_TMP/s3.cred|$TAP_TMP/wrong.cred|" "$CONF" >"$TAP_TMP/wrong.conf"
"$TOOL" "$TAP_TMP/wrong.conf" put "$TAP_TMP/small" >/dev/null 2>"$TAP_TMP/err"
is "$?" 12 "wrong secret key: configuration error"
like "$(cat "$TAP_TMP/err")" "CONFIGURATION ERROR.*HTTP 403 SignatureDoesNotMatch" \
	"wrong secret key: loud log line with the server's answer"
like "$(cat "$TAP_TMP/err")" "configuration 4.3.5" "wrong secret key: defers 4.3.5"
unlike "$(cat "$TAP_TMP/err")" "$S3_SECRET_KEY" "no key in the log"

sed "s|\"$BUCKET\"|\"postroom-missing\"|" "$CONF" >"$TAP_TMP/nobucket.conf"
"$TOOL" "$TAP_TMP/nobucket.conf" put "$TAP_TMP/small" >/dev/null 2>"$TAP_TMP/err"
is "$?" 12 "missing bucket: configuration error"
like "$(cat "$TAP_TMP/err")" "CONFIGURATION ERROR.*NoSuchBucket" "missing bucket: loud log line"
"$TOOL" "$TAP_TMP/nobucket.conf" get "$small" "$TAP_TMP/x" >/dev/null 2>"$TAP_TMP/err"
is "$?" 12 "missing bucket on get: configuration error, not 'not found'"

cp "$TAP_TMP/s3.cred" "$TAP_TMP/open.cred"
chmod 644 "$TAP_TMP/open.cred"
sed "s|$TAP_TMP/s3.cred|$TAP_TMP/open.cred|" "$CONF" >"$TAP_TMP/open.conf"
"$TOOL" "$TAP_TMP/open.conf" exists "$small" >/dev/null 2>"$TAP_TMP/err"
is "$?" 12 "credentials file readable by others: refused"
like "$(cat "$TAP_TMP/err")" "o-rwx" "credentials file readable by others: says chmod o-rwx"

# ---- the object store slow or down: 4.3.0 within the time-out --------------
silent=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
conns = []
t = time.time()
while time.time() - t < 60:
    c, _ = s.accept(); conns.append(c)
' "$silent" &
SILENT_PID=$!
at_exit "kill $SILENT_PID"
wait_port "$silent" "$SILENT_PID"
sed "s|$S3_ENDPOINT|http://127.0.0.1:$silent|" "$CONF" >"$TAP_TMP/silent.conf"
s=$(date +%s)
"$TOOL" "$TAP_TMP/silent.conf" put "$TAP_TMP/small" >/dev/null 2>"$TAP_TMP/err"
rc=$? secs=$(($(date +%s) - s))
is "$rc" 11 "a server that never answers: temporary error"
like "$(cat "$TAP_TMP/err")" "temporary 4.3.0: object store unreachable or slow" "says so (4.3.0)"
ok "[ $secs -le 9 ]" "within the 3 s time-out (took $secs s; bound 9 s)"

s3_rgw_stop
s=$(date +%s)
"$TOOL" "$CONF" put "$TAP_TMP/big" >/dev/null 2>"$TAP_TMP/err"
rc=$? secs=$(($(date +%s) - s))
is "$rc" 11 "radosgw stopped: put is a temporary error"
like "$(cat "$TAP_TMP/err")" "temporary 4.3.0" "radosgw stopped: defers 4.3.0"
ok "[ $secs -le 9 ]" "within the 3 s time-out (took $secs s; bound 9 s)"
"$TOOL" "$CONF" get "$small" "$TAP_TMP/x" >/dev/null 2>&1
is "$?" 11 "radosgw stopped: get is a temporary error"

diag "whole test: $(($(date +%s) - t0)) s"
done_testing
