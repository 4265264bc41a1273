#!/usr/bin/env bash
# deliver-corpus.sh - every message of the corpus (tests/corpus) is delivered
# (exit 0) and stored with its raw bytes identical to the input minus a
# leading mbox From_ line; none crashes (under ASan/UBSan in tools/check).
# Messages that are equal once line endings are normalised to CRLF (the
# corpus has LF and CRLF twins) are one email: the second delivery finds
# the first. Expected hashes come from an independent Python computation;
# the delivery loop forks nothing but postroom-deliver, and the stored
# bytes are compared with `postroomctl mail raw` for every 12th message and
# every message stored as a skeleton (issue 20: its base64 attachments cut
# out, sql/025), and by SHA-256 of the view email_raw (the SQL rebuild,
# postroom_email_raw; one query) for all. Two delivery workers run side by
# side.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
corpus="$POSTROOM_SRCDIR/tests/corpus"
[ -f "$corpus/MANIFEST.tsv" ] || { fail "corpus at $corpus"; done_testing; }
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl user add rcpt@example.com >/dev/null

# two workers (the deliveries also race each other: LF/CRLF twins may be
# stored by either); each forks nothing but postroom-deliver
mapfile -t paths < <(awk -F'\t' 'NR > 1 { print $1 }' "$corpus/MANIFEST.tsv")
# Under ASan, LeakSanitizer's exit-time scan costs more than the delivery:
# every 4th message runs with it (the other suites run every delivery with
# it), the rest with ASan and UBSan alone.
asan_all=${ASAN_OPTIONS:-}
asan_noleak="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
worker() {
	local w=$1 i rc err id
	for ((i = w; i < ${#paths[@]}; i += 2)); do
		if ((i % 8 < 2)); then ASAN_OPTIONS=$asan_all; else ASAN_OPTIONS=$asan_noleak; fi
		export ASAN_OPTIONS
		"$POSTROOM_BUILDDIR/postroom-deliver" -v -c "$POSTROOM_CONF" -f corpus-sender@test.invalid \
			-q "C$i" -- rcpt@example.com <"$corpus/${paths[$i]}" >/dev/null 2>"$TAP_TMP/err.$w"
		rc=$?
		IFS= read -r -d '' err <"$TAP_TMP/err.$w"
		id=-
		[[ $err =~ \ email=([0-9a-f-]{36})\  ]] && id=${BASH_REMATCH[1]}
		[[ $err == *"parse problem"* ]] && echo "problem $i"
		echo "$i $rc $id"
		[ "$rc" -ne 0 ] && echo "# ${paths[$i]}: exit $rc: ${err:0:300}" >&2
	done >"$TAP_TMP/res.$w"
}
start=$(date +%s)
worker 0 & worker 1 &
wait
ids=() bad_rc=0 problems=0
while read -r i rc id; do
	[ "$i" = problem ] && { problems=$((problems + 1)); continue; }
	ids[$i]=$id
	{ [ "$rc" -ne 0 ] || [ "$id" = - ]; } && bad_rc=$((bad_rc + 1))
done < <(cat "$TAP_TMP/res.0" "$TAP_TMP/res.1")
diag "${#paths[@]} messages delivered in $(( $(date +%s) - start ))s, $problems with a parse problem"
is "${#paths[@]}" "306" "the manifest lists 306 messages"
is "$bad_rc" "0" "every corpus message delivered with exit 0"

# Independent expectations: raw = file minus a first line starting with
# "From "; identity = SHA-256 of that with every bare LF made CRLF.
printf '%s\n' "${paths[@]}" >"$TAP_TMP/paths"
python3 - "$corpus" "$TAP_TMP/paths" >"$TAP_TMP/expect" <<'PY'
import hashlib, re, sys
corpus, listing = sys.argv[1], sys.argv[2]
for p in open(listing).read().splitlines():
    data = open(corpus + "/" + p, "rb").read()
    if data.startswith(b"From "):
        nl = data.find(b"\n")
        data = b"" if nl < 0 else data[nl + 1:]
    ident = hashlib.sha256(re.sub(rb"(?<!\r)\n", b"\r\n", data)).hexdigest()
    print(hashlib.sha256(data).hexdigest(), ident)
PY
psqlc "SELECT email_id, encode(sha256(content), 'hex') FROM email_raw" >"$TAP_TMP/stored"
declare -A stored group_id group_raws group_size cut
while read -r id; do cut[$id]=1; done < <(psqlc "SELECT email_id FROM email_raw_base WHERE layout = 1")
while read -r raw ident; do group_size[$ident]=$(( ${group_size[$ident]:-0} + 1 )); done <"$TAP_TMP/expect"
while IFS='|' read -r id h; do stored[$id]=$h; done <"$TAP_TMP/stored"
i=0 bad_raw=0 bad_twin=0 twins=0 cmp_n=0 cmp_bad=0
while read -r raw ident; do
	id=${ids[$i]:-} path=${paths[$i]}
	if [ -n "${group_id[$ident]:-}" ]; then
		# the same message (line endings aside): one email, whichever came first
		twins=$((twins + 1))
		[ "$id" = "${group_id[$ident]}" ] ||
			{ bad_twin=$((bad_twin + 1)); diag "$path: not recognised as the same message"; }
		group_raws[$ident]+=" $raw"
	else
		group_id[$ident]=$id
		group_raws[$ident]=$raw
		# (twins are left out: the parallel workers decide which one is stored)
		if { [ $((i % 12)) -eq 0 ] || [ -n "${cut[$id]:-}" ]; } && [ "${group_size[$ident]}" = 1 ]; then
			cmp_n=$((cmp_n + 1))
			pctl mail raw "$id" >"$TAP_TMP/got"
			if [ "$(head -c 5 "$corpus/$path")" = "From " ]; then
				tail -n +2 "$corpus/$path" | cmp -s - "$TAP_TMP/got"
			else
				cmp -s "$corpus/$path" "$TAP_TMP/got"
			fi || { cmp_bad=$((cmp_bad + 1)); diag "$path: postroomctl mail raw differs"; }
		fi
	fi
	i=$((i + 1))
done <"$TAP_TMP/expect"
for ident in "${!group_id[@]}"; do
	id=${group_id[$ident]}
	[[ " ${group_raws[$ident]} " == *" ${stored[$id]:-none} "* ]] ||
		{ bad_raw=$((bad_raw + 1)); diag "email $id: stored raw is none of its inputs"; }
done
distinct=$(( ${#paths[@]} - twins ))
diag "$twins messages are LF/CRLF twins of an earlier one"
is "$bad_raw" "0" "every stored raw message has its input's SHA-256 (minus From_)"
is "$cmp_bad" "0" "postroomctl mail raw is byte-identical to the input ($cmp_n compared)"
is "$(psqlc "SELECT count(*) FROM email_raw_base WHERE layout = 0")" 0 "every raw message was examined at store time"
ok "[ ${#cut[@]} -gt 0 ]" "${#cut[@]} stored with their base64 attachments cut out (rebuilt by the SQL function and mail raw above)"
is "$bad_twin" "0" "a message equal to an earlier one once normalised to CRLF is not stored twice"
is "$(psqlc "SELECT count(*) FROM emails")" "$distinct" \
	"$distinct distinct emails (shared Message-Ids stay distinct)"
is "$(psqlc "SELECT count(*) FROM email_recipients WHERE lower(address) = 'rcpt@example.com' AND delivered AND user_id IS NOT NULL")" \
	"$distinct" "each is in the recipient's mailbox"
is "$(psqlc "SELECT count(*) FROM emails e JOIN email_raw r ON r.email_id = e.id WHERE e.size_bytes < octet_length(r.content)")" \
	"0" "size (CRLF) is never below the raw byte count"
want_mid=$(awk -F'\t' 'NR > 1 && $3 == "yes"' "$corpus/MANIFEST.tsv" | wc -l)
got_gen=$(psqlc "SELECT count(*) FROM emails WHERE message_id LIKE '%@postroom.generated'")
ok "[ $got_gen -ge $((distinct - want_mid)) ]" \
	"messages without a Message-ID got a generated one ($got_gen, manifest: $((306 - want_mid)) lack one)"
done_testing
