#!/usr/bin/env bash
# blobstore-pg.sh - lib/blob_store_pg.c, the blob backend of PostgreSQL's
# blobs table, through tests/tools/blob-tool against a real PostgreSQL:
# put, get (to a file and to a buffer), exists byte-exact for a small and a
# 2 MB blob as deliver's own role (sql/012_roles.sql: SELECT, INSERT), put
# twice keeps one row, content changed behind postroom's back detected on
# read (SHA-256), a digest never stored, delete refused to deliver's role
# and done by the owner.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
TOOL="$POSTROOM_BUILDDIR/tests/tools/blob-tool"
[ -x "$TOOL" ] || { fail "blob-tool is built ($TOOL)"; done_testing; }
pg_start && pg_fresh_db blobs && pg_login_roles || { fail "database ready"; done_testing; }
OWNER=$POSTROOM_CONF
DELIVER=$TAP_TMP/deliver.conf
printf 'database = { conninfo = "%s"; };\nblobs = { backend = "postgresql"; };\n' \
	"$(pg_role_conninfo deliver)" >"$DELIVER"
tool() { "$TOOL" "$DELIVER" "$@"; }

head -c 1000 /dev/urandom >"$TAP_TMP/small"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$TAP_TMP/big"
small=$(sha256sum "$TAP_TMP/small" | cut -c1-64)
big=$(sha256sum "$TAP_TMP/big" | cut -c1-64)

is "$(tool exists "$small")" 0 "exists: 0 before put"
is "$(tool put "$TAP_TMP/small")" "$small" "put small as deliver's role"
is "$(tool put "$TAP_TMP/big")" "$big" "put 2 MB as deliver's role"
is "$(tool put "$TAP_TMP/small")" "$small" "put again: ok"
is "$(psqlc "SELECT count(*) FROM blobs")" 2 "one row per blob"
is "$(psqlc "SELECT size_bytes FROM blobs WHERE sha256 = decode('$big', 'hex')")" 2097152 \
	"size_bytes recorded"
is "$(tool exists "$big")" 1 "exists: 1 after put"
for b in small big; do
	d=${!b}
	tool get "$d" "$TAP_TMP/$b.out" && cmp -s "$TAP_TMP/$b" "$TAP_TMP/$b.out" &&
		pass "get $b to a file: byte-exact" || fail "get $b to a file: byte-exact"
	tool getbuf "$d" "$TAP_TMP/$b.buf" && cmp -s "$TAP_TMP/$b" "$TAP_TMP/$b.buf" &&
		pass "get $b to a buffer: byte-exact" || fail "get $b to a buffer: byte-exact"
done

missing=$(printf 'not stored' | sha256sum | cut -c1-64)
is "$(tool exists "$missing")" 0 "exists: 0 for a digest never stored"
tool get "$missing" "$TAP_TMP/x" 2>/dev/null
is "$?" 14 "get of a digest never stored: not found"

psqlc "UPDATE blobs SET content = content || '\\x00'::bytea WHERE sha256 = decode('$small', 'hex')"
tool get "$small" "$TAP_TMP/x" 2>"$TAP_TMP/err"
is "$?" 13 "content changed behind postroom's back: the SHA-256 mismatch is detected"
like "$(cat "$TAP_TMP/err")" "corrupt 4.3.0: .*does not match its SHA-256" "says why"

tool del "$big" 2>"$TAP_TMP/err"
rc=$?
ok "[ $rc -ne 0 ]" "delete refused to deliver's role (no DELETE grant)"
is "$(tool exists "$big")" 1 "still there after the refused delete"
"$TOOL" "$OWNER" del "$big" && is "$(tool exists "$big")" 0 "deleted by the owner" ||
	fail "deleted by the owner"
"$TOOL" "$OWNER" del "$big" 2>/dev/null
is "$?" 14 "delete of a blob no longer there: not found"
done_testing
