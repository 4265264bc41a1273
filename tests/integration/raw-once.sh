#!/usr/bin/env bash
# raw-once.sh - each attachment's bytes stored once (issue 20 item 1,
# sql/025_raw_once.sql, lib/raw_compact.c): a base64 attachment whose
# re-encoding reproduces the received text is cut out of the stored raw
# message (LF and CRLF, 76- and 64-character lines, one long line), and
# the raw message rebuilds byte for byte through the SQL function
# postroom_email_raw, the view email_raw and postroomctl mail raw. Any
# difference keeps the whole message: irregular line lengths, mixed line
# endings, trailing white space, non-canonical base64, quoted-printable,
# one bad attachment beside a good one. A shared attachment survives one
# user's expunge; postroomctl mail compact-raw converts mail stored the
# old way (batched, resumable, verified); a corrupted blob makes mail raw
# fail. Real PostgreSQL and postroom-deliver.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null 2>&1
for u in alice bob carol; do pctl user add $u@example.com >/dev/null; done
uid() { psqlc "SELECT id FROM users WHERE address = '$1'"; }

# the messages: NAME.eml in $TAP_TMP (python: exact bytes)
python3 - "$TAP_TMP" <<'PY'
import base64, os, random, sys
d = sys.argv[1]
rnd = random.Random(20)
def data(n):
    return bytes(rnd.getrandbits(8) for _ in range(n))
def wrap(b64, n, eol):
    return eol.join(b64[i:i + n] for i in range(0, len(b64), n))
def part(body, eol, name, cte=b"base64"):
    return eol.join([b"--b0", b"Content-Type: application/octet-stream",
                     b'Content-Disposition: attachment; filename="' + name + b'"',
                     b"Content-Transfer-Encoding: " + cte, b"", body, b""])
def msg(name, parts, eol=b"\n", mid=None):
    head = eol.join([b"From: sender@example.org", b"To: alice@example.com",
                     b"Subject: " + name.encode(), b"Message-ID: <" + (mid or name).encode() + b"@x>",
                     b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="b0"', b"",
                     b"--b0", b"Content-Type: text/plain", b"", b"hello", b""])
    open(os.path.join(d, name + ".eml"), "wb").write(head + b"".join(parts) + b"--b0--" + eol)
def b64(n, width=76, eol=b"\n", payload=None):
    return wrap(base64.b64encode(payload if payload is not None else data(n)), width, eol)
shared = data(50000)
msg("big", [part(b64(200 * 1024), b"\n", b"big.bin")])
msg("crlf", [part(b64(30000, eol=b"\r\n"), b"\r\n", b"c.bin")], eol=b"\r\n")
msg("l64", [part(b64(20000, 64), b"\n", b"l64.bin")])
msg("oneline", [part(b64(5000, 100000), b"\n", b"one.bin")])
msg("two", [part(b64(9000), b"\n", b"a.bin"), part(b"caf=C3=A9 qp=\nline", b"\n", b"q.txt", b"quoted-printable"),
            part(b64(7001, 72), b"\n", b"b.bin")])
lines = b64(20000).split(b"\n")
msg("irregular", [part(b"\n".join(lines[:10]) + b"\n" + lines[10][:40] + b"\n" + lines[10][40:] + b"\n"
                       + b"\n".join(lines[11:]), b"\n", b"i.bin")])
mixed = b"".join(l + (b"\r\n" if i % 2 else b"\n") for i, l in enumerate(lines[:-1])) + lines[-1]
msg("mixed", [part(mixed, b"\n", b"m.bin")])
msg("trailing", [part(b"\n".join(lines[:5]) + b"\n" + lines[5] + b" \n" + b"\n".join(lines[6:]), b"\n", b"t.bin")])
nc = base64.b64encode(data(3001))          # 3001 = 3k + 1: ends "XY==", Y's low 4 bits unused
alpha = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
nc = nc[:-3] + bytes([alpha[alpha.index(nc[-3:-2]) + 1]]) + b"=="
msg("noncanon", [part(wrap(nc, 76, b"\n"), b"\n", b"n.bin")])
msg("qp", [part(b"only =3D quoted-printable=\ntext", b"\n", b"q.txt", b"quoted-printable")])
msg("onebad", [part(b64(9000), b"\n", b"good.bin"), part(b"\n".join(lines[:5]) + b"\n" + lines[5] + b"\t\n" + b"\n".join(lines[6:]), b"\n", b"bad.bin")])
msg("shared1", [part(b64(0, payload=shared), b"\n", b"s.bin")], mid="s1")
msg("shared2", [part(b64(0, payload=shared, width=64), b"\n", b"s.bin")], mid="s2")
PY

declare -A ID
# put NAME RCPT... - deliver NAME.eml; ID[NAME] is its email id
put() {
	local n=$1
	shift
	deliver_run "$TAP_TMP/$n.eml" -f sender@example.org -- "$@"
	[ "$D_RC" = 0 ] || diag "deliver $n: exit $D_RC $D_ERR"
	ID[$n]=$D_ID
}
# state NAME - layout, number of attachment references, number of text
# references (each message's "hello" text part has 5 bytes: a text under
# 256 bytes is never cut, raw-text-once.sh)
state() { psqlc "SELECT b.layout || ',' || (SELECT count(*) FROM email_raw_refs r WHERE r.email_id = b.email_id AND r.source = 0) || ',' || (SELECT count(*) FROM email_raw_refs r WHERE r.email_id = b.email_id AND r.source <> 0) FROM email_raw_base b WHERE b.email_id = '${ID[$1]}'"; }
# exact NAME - the three readers give the file's bytes
exact() {
	local n=$1 id=${ID[$1]} want got_fn got_view
	want=$(sha256sum <"$TAP_TMP/$n.eml" | cut -c1-64)
	got_fn=$(psqlc "SELECT encode(sha256(postroom_email_raw('$id')), 'hex')")
	got_view=$(psqlc "SELECT encode(sha256(content), 'hex') FROM email_raw WHERE email_id = '$id'")
	pctl mail raw "$id" >"$TAP_TMP/got.$n" || return 1
	[ "$got_fn" = "$want" ] && [ "$got_view" = "$want" ] && cmp -s "$TAP_TMP/got.$n" "$TAP_TMP/$n.eml"
}

for n in big crlf l64 oneline two irregular mixed trailing noncanon qp onebad; do put $n alice@example.com; done
is "$(state big)" "1,1,0" "a 200 KB base64 attachment is cut out of the stored raw message"
ok "exact big" "... and the raw message rebuilds byte for byte (SQL function, view, mail raw)"
is "$(psqlc "SELECT octet_length(content) < 2000 FROM email_raw_base WHERE email_id = '${ID[big]}'")" t \
	"... the skeleton keeps the headers only"
is "$(state crlf)" "1,1,0" "CRLF lines: cut"
is "$(psqlc "SELECT crlf || ',' || line_len FROM email_raw_refs WHERE email_id = '${ID[crlf]}' AND source = 0")" "true,76" "... layout CRLF, 76"
is "$(state l64)" "1,1,0" "64-character lines: cut"
is "$(state oneline)" "1,1,0" "one long line: cut"
is "$(state two)" "1,2,0" "two base64 attachments cut, the quoted-printable one stays"
for n in big crlf l64 oneline two; do ok "exact $n" "$n rebuilds byte for byte"; done
for n in irregular mixed trailing noncanon qp onebad; do
	is "$(state $n)" "2,0,0" "$n: stored whole"
	ok "exact $n" "... $n reads back byte for byte"
done

# a shared attachment: one email for alice and bob, and another email
# with the same attachment for carol
put shared1 alice@example.com bob@example.com
put shared2 carol@example.com
is "$(state shared1),$(state shared2)" "1,1,0,1,1,0" "two emails sharing an attachment: both cut"
is "$(psqlc "SELECT count(DISTINCT sha256) FROM email_attachments WHERE email_id IN ('${ID[shared1]}', '${ID[shared2]}')")" 1 \
	"... one blob"
psqlc "SELECT postroom_delete('$(uid alice@example.com)', ARRAY['${ID[shared1]}']::uuid[])" >/dev/null
ok "exact shared1" "alice expunged it: it still rebuilds for bob"
psqlc "SELECT postroom_delete('$(uid bob@example.com)', ARRAY['${ID[shared1]}']::uuid[])" >/dev/null
is "$(psqlc "SELECT count(*) FROM emails WHERE id = '${ID[shared1]}'")" 0 "bob's delete expunges it"
ok "exact shared2" "... carol's email with the same attachment still rebuilds"
psqlc "SELECT postroom_delete('$(uid carol@example.com)', ARRAY['${ID[shared2]}']::uuid[])" >/dev/null
is "$(psqlc "SELECT count(*) FROM email_raw_refs WHERE email_id IN ('${ID[shared1]}', '${ID[shared2]}')")|$(psqlc "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM email_attachments a WHERE a.sha256 = b.sha256)")" \
	"0|0" "the last one expunged: references gone, no unreferenced blob left"

# compact-raw: the mail stored as before migration 025 (whole, layout 0)
before=$(psqlc "SELECT string_agg(email_id || encode(sha256(content), 'hex'), ',' ORDER BY email_id) FROM email_raw")
cut=$(psqlc "SELECT count(*) FROM email_raw_base WHERE layout = 1")
psqlc "UPDATE email_raw_base SET content = postroom_email_raw(email_id), layout = 0; DELETE FROM email_raw_refs" >/dev/null
total=$(psqlc "SELECT count(*) FROM email_raw_base WHERE layout = 0")
is "$(psqlc "SELECT string_agg(email_id || encode(sha256(content), 'hex'), ',' ORDER BY email_id) FROM email_raw_base")" \
	"$before" "set back to whole messages ($total, $cut of them were cut)"
out=$(pctl mail compact-raw --batch 3 2>&1)
like "$out" "^compact-raw: $total examined, $cut compacted, $((total - cut)) kept whole \\(0 not reproduced\\)" \
	"compact-raw converts them in batches: $out"
is "$(psqlc "SELECT count(*) FROM email_raw_base WHERE layout = 1")|$(psqlc "SELECT count(*) FROM email_raw_base WHERE layout = 0")" \
	"$cut|0" "... the same ones cut as at store time, none left unexamined"
is "$(psqlc "SELECT string_agg(email_id || encode(sha256(content), 'hex'), ',' ORDER BY email_id) FROM email_raw")" \
	"$before" "... every raw message reads back the same"
for n in big two crlf noncanon; do ok "exact $n" "... $n byte for byte after compact-raw"; done
like "$(pctl mail compact-raw)" "^compact-raw: 0 examined" "a second run has nothing left to do (resumable)"

# a blob that does not match its SHA-256 is refused on read-back
psqlc "UPDATE blobs SET content = overlay(content PLACING '\\x00'::bytea FROM 10 FOR 1)
	WHERE sha256 = (SELECT a.sha256 FROM email_attachments a WHERE a.email_id = '${ID[big]}')" >/dev/null
pctl mail raw "${ID[big]}" >/dev/null 2>"$TAP_TMP/err"
rc=$?
ok "[ $rc -ne 0 ]" "mail raw of an email whose blob was altered fails (exit $rc)"
like "$(cat "$TAP_TMP/err")" "does not match its SHA-256" "... saying so"
done_testing
