#!/usr/bin/env bash
# mimecheck-corpus.sh - the session's attachment check (lib/mime_check,
# as postroom-milter and postroom-mimecheck run it) agrees with deliver's
# parse (lib/mime_parse, printed by tests/tools/mime-parse-tool) on every
# message of the corpus (tests/corpus/MANIFEST.tsv): with the limit one
# byte under the message's largest attachment it is refused with that
# size, with the limit at it the message passes. The same again with the
# message split as Exim's DATA ACL has it (header lines as an argument, the
# body in a spool -D file whose first line is its name). And the premise of
# the check's shortcut holds: no decoded attachment is larger than its
# message (CRLF size).
. "$(dirname "$0")/../lib/tap.sh"
corpus="$POSTROOM_SRCDIR/tests/corpus"
TOOL="$POSTROOM_BUILDDIR/tests/tools/mime-parse-tool"
CHECK="$POSTROOM_BUILDDIR/postroom-mimecheck"
[ -x "$TOOL" ] || make -C "$POSTROOM_BUILDDIR" tests/tools/mime-parse-tool >/dev/null 2>&1
[ -f "$corpus/MANIFEST.tsv" ] || { fail "corpus at $corpus"; done_testing; }
[ -x "$CHECK" ] && [ -x "$TOOL" ] || { fail "postroom-mimecheck and mime-parse-tool built"; done_testing; }

# the Exim form of each message: spool/input/ID-D and the header block;
# one row per message: index, CRLF size, path
mkdir -p "$TAP_TMP/spool/input" "$TAP_TMP/hdr"
mapfile -t rows < <(python3 - "$corpus" "$TAP_TMP" <<'EOF'
import sys, re
corpus, tmp = sys.argv[1], sys.argv[2]
paths = [l.split("\t")[0] for l in open(corpus + "/MANIFEST.tsv").read().splitlines()[1:]]
for i, p in enumerate(paths):
    data = open(corpus + "/" + p, "rb").read()
    m = re.search(rb"\r?\n\r?\n", data)
    head, body = (data[:m.start() + 1], data[m.end():]) if m else (data, b"")
    if head.endswith(b"\r"):
        head = head[:-1]
    if not head.endswith(b"\n"):
        head += b"\n"
    mid = "1corp%d-000000-AA" % i
    open("%s/spool/input/%s-D" % (tmp, mid), "wb").write(mid.encode() + b"-D\n" + body)
    open("%s/hdr/%d" % (tmp, i), "wb").write(head.replace(b"\0", b""))
    print(i, len(data) + data.count(b"\n") - data.count(b"\r\n"), p)
EOF
)
total=${#rows[@]} checked=0 with_att=0 big_headers=0 bad=0 bad_split=0 bad_premise=0 errors=0
check() {	# check CONF ARGS...: "rc output"
	local out rc
	out=$("$CHECK" -c "$1" "${@:2}" 2>"$TAP_TMP/err")
	rc=$?
	echo "$rc $out"
}
for row in "${rows[@]}"; do
	read -r i crlf path <<<"$row"
	f="$corpus/$path"
	largest=$("$TOOL" "$f" 2>/dev/null | awk '$1 == "largest" { print $2 }')
	[ -n "$largest" ] || { errors=$((errors + 1)); diag "mime-parse-tool failed on $path"; continue; }
	checked=$((checked + 1))
	[ "$largest" -gt 1024 ] && with_att=$((with_att + 1))
	[ "$largest" -le "$crlf" ] || { bad_premise=$((bad_premise + 1)); diag "$path: attachment $largest > message $crlf"; }
	# limits.attachment_size_max is at least 1024: below that, one limit
	maxes=(1024)
	[ "$largest" -gt 1024 ] && maxes=($((largest - 1)) "$largest")
	for max in "${maxes[@]}"; do
		printf 'limits = { attachment_size_max = %d; };\n' "$max" >"$TAP_TMP/c.conf"
		if [ "$largest" -gt "$max" ]; then
			want="1 attachment of $largest bytes exceeds the limit of $max bytes"
		else
			want="0 "
		fi
		got=$(check "$TAP_TMP/c.conf" "$f")
		[ "$got" = "$want" ] || { bad=$((bad + 1)); diag "$path max=$max: got '$got', want '$want'"; }
		# the Exim form once (the first limit); header blocks over the
		# ACL's 120,000 bytes are not passed (contrib/exim)
		[ "$max" = "${maxes[0]}" ] || continue
		if [ "$(stat -c %s "$TAP_TMP/hdr/$i")" -gt 120000 ]; then
			big_headers=$((big_headers + 1))
			continue
		fi
		got=$(check "$TAP_TMP/c.conf" -e "$TAP_TMP/spool" "1corp$i-000000-AA" "$(cat "$TAP_TMP/hdr/$i")")
		[ "$got" = "$want" ] || { bad_split=$((bad_split + 1)); diag "$path max=$max (Exim form): got '$got', want '$want'"; }
	done
done
is "$checked" "$total" "mime-parse-tool read every corpus message ($checked of $total)"
ok '[ $with_att -gt 20 ]' "the corpus has messages with attachments over 1024 bytes to check ($with_att)"
is "$bad" 0 "postroom-mimecheck MESSAGE agrees with deliver's parse at both limits, every message"
is "$bad_split" 0 "postroom-mimecheck -e (Exim's headers and -D file) agrees too ($big_headers with headers over 120,000 bytes left out)"
is "$bad_premise" 0 "no decoded attachment larger than its message (the shortcut's premise)"
printf 'limits = { attachment_size_max = 1024; };\n' >"$TAP_TMP/c.conf"
like "$(check "$TAP_TMP/c.conf" -e "$TAP_TMP/spool" 1nosuch-000000-AA 'Subject: x')" '^66 ' \
	"-e with no spool file: exit 66 (the ACL defers)"
like "$(check "$TAP_TMP/nosuch.conf" "$corpus/${rows[0]##* }")" '^78 ' "no configuration file: exit 78"
done_testing
