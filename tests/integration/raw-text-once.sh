#!/usr/bin/env bash
# raw-text-once.sh - each text part's bytes stored once (issue 20 item 1,
# sql/030_raw_text_once.sql, lib/raw_compact.c): a text part without
# transfer encoding (or in base64) whose charset is absent, UTF-8 or
# US-ASCII, and whose received bytes are its decoded text in text_body
# or html_body, is cut out of the stored raw message and rebuilt from
# that column, byte for byte, through postroom_email_raw, the view
# email_raw, postroomctl mail raw and an independent reassembly of
# postroom_email_raw_parts (python3). Quoted-printable, another charset,
# invalid UTF-8 and a NUL byte are not cut; a text part that does not
# reproduce keeps the whole message, attachments included. compact-raw
# cuts text parts of mail stored before. Real PostgreSQL and
# postroom-deliver. A text under 256 bytes is never cut.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null 2>&1
pctl user add alice@example.com >/dev/null

# the messages: NAME.eml in $TAP_TMP, exact bytes; NAME.hdr is the
# length of its header block with the blank line (where the body starts)
python3 - "$TAP_TMP" <<'PY'
import base64, os, sys
d = sys.argv[1]
def head(name, ctype, eol=b"\n", extra=b""):
    return eol.join([b"From: sender@example.org", b"To: alice@example.com",
                     b"Subject: " + name.encode(), b"Message-ID: <" + name.encode() + b"@x>",
                     b"MIME-Version: 1.0", b"Content-Type: " + ctype]) + eol + extra + eol
def write(name, hdr, body):
    open(os.path.join(d, name + ".eml"), "wb").write(hdr + body)
    open(os.path.join(d, name + ".hdr"), "w").write(str(len(hdr)))
text = "Grüße aus Köln, 漢字 and plain ASCII.\n".encode() * 300      # 43 bytes a line: 12,900 bytes, UTF-8
write("plain", head("plain", b"text/plain; charset=utf-8"), text)
write("plaincrlf", head("plaincrlf", b"text/plain; charset=UTF-8", b"\r\n"), text.replace(b"\n", b"\r\n"))
write("ascii", head("ascii", b"text/plain; charset=us-ascii", extra=b"Content-Transfer-Encoding: 7bit\n"),
      b"just ascii\n" * 500)
b64 = base64.b64encode(text)
write("b64text", head("b64text", b"text/plain; charset=utf-8", extra=b"Content-Transfer-Encoding: base64\n"),
      b"\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + b"\n")
write("short255", head("short255", b"text/plain; charset=utf-8"), b"x" * 254 + b"\n")
write("short256", head("short256", b"text/plain; charset=utf-8"), b"x" * 255 + b"\n")
write("latin1", head("latin1", b"text/plain; charset=iso-8859-1", extra=b"Content-Transfer-Encoding: 8bit\n"),
      b"caf\xe9 au lait\n" * 400)
write("qptext", head("qptext", b"text/plain; charset=utf-8", extra=b"Content-Transfer-Encoding: quoted-printable\n"),
      b"caf=C3=A9 au lait=\n and more\n" * 300)
write("badutf8", head("badutf8", b"text/plain; charset=utf-8"), b"bad \xff\xfe bytes\n" * 300)
write("nul", head("nul", b"text/plain; charset=utf-8"), b"a NUL \x00 here\n" * 300)
# alternative: text then html, each 7bit; the html one is html_body
alt = (b"--a0\nContent-Type: text/plain; charset=utf-8\n\n" + text
       + b"\n--a0\nContent-Type: text/html; charset=utf-8\n\n<p>" + text + b"</p>\n--a0--\n")
write("alt", head("alt", b'multipart/alternative; boundary="a0"'), alt)
# two inline text parts in a mixed: text_body is the first, a line
# break, the second
t1, t2 = b"first part\n" * 200, "zweiter Teil – ü\n".encode() * 100
two = (b"--m0\nContent-Type: text/plain\n\n" + t1 + b"\n--m0\nContent-Type: text/plain; charset=utf-8\n\n"
       + t2 + b"\n--m0--\n")
write("twotext", head("twotext", b'multipart/mixed; boundary="m0"'), two)
open(os.path.join(d, "twotext.off"), "w").write("%d %d" % (len(t1), len(t2)))
# a base64 attachment that re-encodes beside a text part that does not
att = base64.b64encode(bytes(range(256)) * 40)
mixed = (b"--x0\nContent-Type: text/plain; charset=utf-8\n\n" + b"bad \xff text\n" * 30 + b"\n--x0\n"
         b"Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"a.bin\"\n"
         b"Content-Transfer-Encoding: base64\n\n" + b"\n".join(att[i:i + 76] for i in range(0, len(att), 76))
         + b"\n--x0--\n")
write("badmix", head("badmix", b'multipart/mixed; boundary="x0"'), mixed)
# part-heavy: 20,000 inline text parts of 300 bytes, each cut (the
# rebuilds must stay linear: 20,000 references into a 6 MB text_body)
many = b"".join(b"--p0\nContent-Type: text/plain\n\n" + (b"%05d " % i) + b"z" * 293 + b"\n\n"
                for i in range(20000)) + b"--p0--\n"
write("many", head("many", b'multipart/mixed; boundary="p0"'), many)
PY

declare -A ID
put() {
	deliver_run "$TAP_TMP/$1.eml" -f sender@example.org -- alice@example.com
	[ "$D_RC" = 0 ] || diag "deliver $1: exit $D_RC $D_ERR"
	ID[$1]=$D_ID
}
# refs NAME - layout, then source:src_off:src_len:line_len of each reference
refs() {
	psqlc "SELECT b.layout || COALESCE(' ' || (SELECT string_agg(r.source || ':' || COALESCE(r.src_off::text, '-')
		|| ':' || COALESCE(r.src_len::text, '-') || ':' || r.line_len, ' ' ORDER BY r.ordinal)
		FROM email_raw_refs r WHERE r.email_id = b.email_id), '')
		FROM email_raw_base b WHERE b.email_id = '${ID[$1]}'"
}
# exact NAME - postroom_email_raw, the view, mail raw and a reassembly
# of postroom_email_raw_parts here all give the file's bytes
exact() {
	local n=$1 id=${ID[$1]} want
	want=$(sha256sum <"$TAP_TMP/$n.eml" | cut -c1-64)
	[ "$(psqlc "SELECT encode(sha256(postroom_email_raw('$id')), 'hex')")" = "$want" ] || return 1
	[ "$(psqlc "SELECT encode(sha256(content), 'hex') FROM email_raw WHERE email_id = '$id'")" = "$want" ] || return 1
	pctl mail raw "$id" >"$TAP_TMP/got.$n" && cmp -s "$TAP_TMP/got.$n" "$TAP_TMP/$n.eml" || return 1
	psqlc "SELECT COALESCE(encode(content, 'hex'), '-'), COALESCE(encode(sha256, 'hex'), '-'),
		COALESCE(line_len, 0), COALESCE(crlf, false) FROM postroom_email_raw_parts('$id') ORDER BY ordinal" \
		| tr '|' ' ' >"$TAP_TMP/$n.parts"
	python3 - "$TAP_TMP/$n.parts" "$TAP_TMP/$n.eml" <<'PY'
import base64, hashlib, sys
out = []
for line in open(sys.argv[1]):
    content, digest, line_len, crlf = line.split()
    data = bytes.fromhex(content)
    if int(line_len) == 0:
        out.append(data)
        continue
    assert hashlib.sha256(data).hexdigest() == digest, "sha256 of a reference"
    enc = base64.b64encode(data)
    n = int(line_len)
    out.append((b"\r\n" if crlf == "t" else b"\n").join(enc[i:i + n] for i in range(0, len(enc), n)))
sys.exit(0 if b"".join(out) == open(sys.argv[2], "rb").read() else 1)
PY
}
skel_len() { psqlc "SELECT octet_length(content) FROM email_raw_base WHERE email_id = '${ID[$1]}'"; }

for n in plain plaincrlf ascii b64text short255 short256 latin1 qptext badutf8 nul alt twotext badmix; do put $n; done

is "$(refs plain)" "1 1:0:12900:0" "UTF-8 text without transfer encoding: cut, its 12,900 bytes are text_body's"
is "$(skel_len plain)" "$(cat "$TAP_TMP/plain.hdr")" "... the skeleton is the header block alone"
is "$(refs plaincrlf)" "1 1:0:13200:0" "CRLF lines (13,200 bytes): cut as they are"
is "$(refs ascii)" "1 1:0:5500:0" "US-ASCII, 7bit: cut"
is "$(refs b64text)" "1 1:0:12900:76" "UTF-8 text in base64, 76-character lines: cut, rebuilt by encoding text_body's bytes"
is "$(psqlc "SELECT encode(sha256(convert_to(text_body, 'UTF8')), 'hex') FROM emails WHERE id = '${ID[b64text]}'")" \
	"$(psqlc "SELECT encode(sha256(convert_to(text_body, 'UTF8')), 'hex') FROM emails WHERE id = '${ID[plain]}'")" \
	"... its text_body is the decoded text (the same as plain's)"
is "$(refs short255)" "2" "a text of 255 bytes stays (a reference would cost as much)"
is "$(refs short256)" "1 1:0:256:0" "... one of 256 bytes is cut"
for n in latin1 qptext; do is "$(refs $n)" "2" "$n: not cut (stored whole)"; done
is "$(refs badutf8)" "2" "invalid UTF-8 (text_body has U+FFFD): does not reproduce, stored whole"
is "$(refs nul)" "2" "a NUL byte (text_body has U+FFFD): does not reproduce, stored whole"
is "$(refs badmix)" "2" "a text part that does not reproduce keeps the good attachment beside it too"
is "$(refs alt)" "1 1:0:12900:0 2:0:12907:0" "alternative: the text/plain part from text_body, the text/html part (<p>, </p> around it) from html_body"
read -r l1 l2 <"$TAP_TMP/twotext.off"
is "$(refs twotext)" "1 1:0:$l1:0 1:$((l1 + 1)):$l2:0" \
	"two inline text parts: the second at its offset in text_body (after the first and a line break)"
for n in plain plaincrlf ascii b64text short255 short256 latin1 qptext badutf8 nul alt twotext badmix; do
	ok "exact $n" "$n: byte for byte (postroom_email_raw, the view, mail raw, the parts reassembled here)"
done

put many
is "$(psqlc "SELECT count(*) || ' ' || min(src_len) || ' ' || max(src_len) FROM email_raw_refs WHERE email_id = '${ID[many]}' AND source = 1")" \
	"20000 300 300" "20,000 text parts of 300 bytes: 20,000 references"
start=$(date +%s%N)
ok "exact many" "... byte for byte"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
ok "[ $ms -le 20000 ]" "... all four rebuilds in at most 20 s ($ms ms)"
# linear in the message, not in parts x size: 255 ms here; 2,420 ms when
# each piece decompressed the skeleton again up to it
t0=$(date +%s%N); psqlc "SELECT octet_length(postroom_email_raw('${ID[many]}'))" >/dev/null
t1=$(date +%s%N); pctl mail raw "${ID[many]}" >/dev/null
t2=$(date +%s%N)
ok "[ $(( (t1 - t0) / 1000000 )) -le 1500 ]" "... postroom_email_raw in at most 1.5 s ($(( (t1 - t0) / 1000000 )) ms)"
ok "[ $(( (t2 - t1) / 1000000 )) -le 1500 ]" "... mail raw in at most 1.5 s ($(( (t2 - t1) / 1000000 )) ms)"
psqlc "DELETE FROM email_raw WHERE email_id = '${ID[many]}'" >/dev/null

# compact-raw cuts the text parts of mail stored whole before 025
before=$(psqlc "SELECT string_agg(email_id || encode(sha256(content), 'hex'), ',' ORDER BY email_id) FROM email_raw")
psqlc "UPDATE email_raw_base SET content = postroom_email_raw(email_id), layout = 0; DELETE FROM email_raw_refs" >/dev/null
like "$(pctl mail compact-raw 2>&1)" "^compact-raw: 13 examined, 7 compacted, 6 kept whole \\(0 not reproduced\\)" \
	"compact-raw: the seven text-only cuts again, six kept whole"
is "$(refs twotext)" "1 1:0:$l1:0 1:$((l1 + 1)):$l2:0" "... the same references as at store time"
is "$(psqlc "SELECT string_agg(email_id || encode(sha256(content), 'hex'), ',' ORDER BY email_id) FROM email_raw")" \
	"$before" "... every raw message reads back the same"

# a text reference whose text is gone is an error, never wrong bytes
psqlc "ALTER TABLE emails DISABLE TRIGGER USER" >/dev/null 2>&1
psqlc "UPDATE emails SET text_body = left(text_body, 10) WHERE id = '${ID[plain]}'" >/dev/null
pctl mail raw "${ID[plain]}" >/dev/null 2>"$TAP_TMP/err"
rc=$?
is "$rc" 70 "mail raw of an email whose text_body was cut short fails (exit 70)"
like "$(psqlc "SELECT postroom_email_raw('${ID[plain]}')" 2>&1)" "a referenced text is missing" \
	"... and postroom_email_raw raises"
done_testing
