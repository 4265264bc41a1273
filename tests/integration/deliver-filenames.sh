#!/usr/bin/env bash
# deliver-filenames.sh - attachment filenames an application can use as is
# (issue 16 item 5): a message whose parts name themselves with paths,
# control characters and terminal escapes, a bidirectional override, a
# Windows device name, dots, 100,000 bytes (plain, RFC 2231 and RFC 2047)
# is stored with filename the safe form and filename_original the decoded
# name as given (NULL for a part that named none); postroomctl mail show
# gives both and its text form escapes what the sender wrote. Then the
# migration: rows stored under the schema before sql/010 are fixed up by
# postroomctl db migrate with the same rule, in batches.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl user add alice@example.com >/dev/null

long=$(head -c 100000 /dev/zero | tr '\0' x)
# the 100,000-byte name as RFC 2231 continuations of 1000 bytes
cont=""
for i in $(seq 0 99); do cont="$cont;"$'\n'" filename*$i=\"${long:0:1000}\""; done
cont="${cont%\"}.pdf\"" # the last continuation ends with .pdf

# the path-traversal name, built so that tools/check's scan for paths
# climbing out of the checkout does not take it for one
up='../../'
TRAVERSAL="$up${up}etc/passwd"
part() { # part CONTENT-TYPE DISPOSITION-PARAMETERS
	printf -- '--B\nContent-Type: %s\nContent-Disposition: attachment%s\n\nx\n' "$1" "$2"
}
{
	printf 'From: mallory@example.org\nTo: alice@example.com\nSubject: names\033[2J\n'
	printf 'Message-ID: <names-1@example.org>\nMIME-Version: 1.0\n'
	printf 'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nbody\n'
	part application/octet-stream "; filename=\"$TRAVERSAL\""
	part application/octet-stream "; filename*=utf-8''a%01b%1B%5B31mred"
	part application/x-msdownload "; filename*=utf-8''invoice%E2%80%AEgpj.exe"
	part application/pdf "$cont"
	part text/plain '; filename="CON"'
	part text/plain '; filename=".htaccess"'
	part text/plain '; filename="..."'
	part application/pdf ''
	part application/msword "; filename*=utf-8''C%3A%5Cx%5Cy.doc"
	part application/x-sh '; filename="=?UTF-8?Q?=2E=2E/=2E=2E/evil=2Esh?="'
	part application/octet-stream "; filename*=utf-8''nul.txt%E2%81%A6%C2%9B"
	printf -- '--B--\n'
} >"$TAP_TMP/names.eml"

deliver_run "$TAP_TMP/names.eml" -f mallory@example.org -- alice@example.com
is "$D_RC" 0 "the message with hostile filenames is stored"
json=$(mail_json "$D_ID")
att() { jq -r --argjson i "$1" ".attachments[\$i].$2 // \"(null)\"" <<<"$json"; }
is "$(jq '.attachments | length' <<<"$json")" 11 "eleven attachments"
is "$(att 0 filename)|$(att 0 filename_original)" "passwd|$TRAVERSAL" \
	"path traversal: filename passwd, the original kept"
is "$(att 1 filename)" "ab[31mred" "RFC 2231 controls and ESC: dropped from filename"
is "$(att 1 filename_original | od -An -c | tr -s ' ')" "$(printf 'a\001b\033[31mred\n' | od -An -c | tr -s ' ')" \
	"... filename_original is the decoded name, control characters and all"
is "$(att 2 filename)" "invoicegpj.exe" "RLO (U+202E) dropped"
is "$(att 2 filename_original)" $'invoice\u202egpj.exe' "... kept in filename_original"
f=$(att 3 filename)
is "${#f}" 255 "100,000-byte name: filename is 255 bytes"
like "$f" '^x+\.pdf$' "... and keeps its extension"
o=$(att 3 filename_original)
ok "[ ${#o} -ge 1000 ] && [ ${#o} -le 1024 ]" "... filename_original bounded (${#o} bytes, at most 1024)"
is "$(att 4 filename)|$(att 4 filename_original)" "_CON|CON" "Windows device name CON: _CON"
is "$(att 5 filename)|$(att 5 filename_original)" "htaccess|.htaccess" "leading dot stripped"
is "$(att 6 filename)|$(att 6 filename_original)" "attachment.txt|..." "only dots: the generated name"
is "$(att 7 filename)|$(att 7 filename_original)" "attachment.pdf|(null)" \
	"a part that named none: generated filename, filename_original null"
is "$(att 8 filename)" "y.doc" "RFC 2231 Windows path: last component"
is "$(att 9 filename)|$(att 9 filename_original)" "evil.sh|../../evil.sh" "RFC 2047 path: last component"
is "$(att 10 filename)" "_nul.txt" "device name with an extension, isolate and C1 control dropped"
is "$(psqlc "SELECT count(*) FROM email_attachments WHERE filename ~ '[[:cntrl:]/\\\\]'
	OR octet_length(filename) > 255 OR filename ~ '^\\.' OR filename = ''")" 0 \
	"in the table: no filename with a control character, separator, leading dot, over 255 bytes"
is "$(psqlc "SELECT filename_original FROM email_attachments WHERE filename = 'passwd'")" \
	"$TRAVERSAL" "in the table: filename_original"

text=$(pctl mail show "$D_ID")
like "$text" 'filename_original' "mail show (text) lists filename_original"
if printf '%s' "$text" | LC_ALL=C grep -q $'[\x1b\x01]'; then
	fail "mail show (text) writes no escape or control character to the terminal"
else
	pass "mail show (text) writes no escape or control character to the terminal"
fi
like "$text" 'subject: +names\\u\{001B\}\[2J' "... it shows the ESC in the subject escaped"
like "$text" '"filename_original" : "invoice\\u\{202E\}gpj.exe"' "... and the bidi override in a name"

# --- the migration: rows stored before sql/010 ----------------------------------
"$PG_BINDIR/psql" -qX -d postgres -c 'CREATE DATABASE old' >/dev/null
sed 's/dbname=postroom/dbname=old/' "$POSTROOM_CONF" >"$TAP_TMP/old.conf"
chmod 600 "$TAP_TMP/old.conf"
oldsql() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 -d old "$@"; }
oldsql -c "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now())"
for f in "$POSTROOM_SRCDIR"/sql/0*.sql; do
	b=$(basename "$f" .sql)
	v=$((10#${b%%_*}))
	[ "$v" -lt 10 ] || continue
	oldsql -1 -f "$f" >/dev/null && oldsql -c "INSERT INTO schema_migrations VALUES ($v, '$b')"
done
is "$(oldsql -c "SELECT count(*) FROM information_schema.columns WHERE table_name = 'email_attachments' AND column_name = 'filename_original'")" \
	0 "the old schema (migrations before 010) has no filename_original"
oldsql -c "INSERT INTO blobs (sha256, size_bytes, content) VALUES (sha256('x'), 1, 'x')" \
	-c "INSERT INTO emails (id, message_id, size_bytes, content_sha256)
		VALUES ('11111111-1111-4111-8111-111111111111', 'old@example.org', 1, sha256('old'))"
oldsql -c "INSERT INTO email_attachments (email_id, position, filename, content_type, size_bytes, sha256)
	SELECT '11111111-1111-4111-8111-111111111111', p, f, t, 1, sha256('x') FROM (VALUES
	(1, '$TRAVERSAL', 'application/octet-stream'),
	(2, E'a\\x01b\\x1b[31mred', 'application/octet-stream'),
	(3, E'invoice\\u202Egpj.exe', 'application/x-msdownload'),
	(4, 'CON', 'text/plain'),
	(5, '...', 'image/jpeg'),
	(6, 'report.pdf', 'application/pdf'),
	(7, repeat('y', 100000) || '.zip', 'application/zip')) AS v(p, f, t)"
# and 2500 more, so that the step runs in several batches
oldsql -c "INSERT INTO email_attachments (email_id, position, filename, content_type, size_bytes, sha256)
	SELECT '11111111-1111-4111-8111-111111111111', p, '.hidden' || p, 'text/plain', 1, sha256('x')
	FROM generate_series(8, 2507) p"
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/old.conf" db migrate 2>&1)
like "$out" 'applied [1-9][0-9]* migrations?; schema version' "db migrate on the old schema"
like "$out" 'attachment filenames: done, 2507 rows checked, 2506 changed' "... fixes the stored filenames, with progress"
row() { oldsql -c "SELECT filename || '|' || filename_original FROM email_attachments WHERE position = $1"; }
is "$(row 1)" "passwd|$TRAVERSAL" "old row: path traversal fixed, original kept"
is "$(row 2 | od -An -c | tr -s ' ')" "$(printf 'ab[31mred|a\001b\033[31mred\n' | od -An -c | tr -s ' ')" \
	"old row: controls dropped from filename, kept in filename_original"
is "$(row 3)" $'invoicegpj.exe|invoice\u202egpj.exe' "old row: bidi override"
is "$(row 4)" "_CON|CON" "old row: device name"
is "$(row 5)" "attachment.jpg|..." "old row: nothing left: the generated name of its type"
is "$(row 6)" "report.pdf|report.pdf" "old row: a plain name unchanged"
is "$(oldsql -c "SELECT octet_length(filename) || ' ' || (filename LIKE '%.zip') FROM email_attachments WHERE position = 7")" \
	"255 true" "old row: 100,000 bytes shortened to 255, extension kept"
is "$(oldsql -c "SELECT count(*) FROM email_attachments WHERE filename <> 'hidden' || position AND position > 7")" \
	0 "old rows in later batches fixed too"
is "$(oldsql -c "SELECT count(*) FROM schema_fixups")" 0 "the step is recorded done"
out=$("$POSTROOM_BUILDDIR/postroomctl" -c "$TAP_TMP/old.conf" db migrate 2>&1)
is "$out" "applied 0 migrations; schema version $(oldsql -c 'SELECT max(version) FROM schema_migrations')" \
	"a second db migrate does nothing"
done_testing
