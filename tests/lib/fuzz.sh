# tests/lib/fuzz.sh - shared helpers for the libFuzzer suite (tests/fuzz/*.sh).
#   fuzz_build NAME SOURCES...   compile tests/fuzz/NAME.c with the given
#                                lib sources; prints the binary path
#   fuzz_seed_corpus DIR         copy every tests/corpus message listed in
#                                its MANIFEST.tsv into DIR (seed-N); a TAP
#                                line: all of them, and at least one
#   fuzz_seed_corpus_as FORM DIR the same in one process (no copy per
#                                message: cheap on a loaded machine), each
#                                message's first 16 KiB made into FORM:
#                                headers (its header block) or lmtp (two
#                                option bytes, then an LMTP session that
#                                sends it dot-stuffed with CRLF line ends)
#   fuzz_seed_golden KIND DIR    the golden transcripts tests/golden/KIND/*.in
#                                as inputs in DIR (golden-NAME): policyd's
#                                as they are (the bytes sent); authd's
#                                scripts played into the bytes the client
#                                sends (tests/lib/authd_client.py's own
#                                expansion, sample user and key); a TAP
#                                line: one input per transcript
#   fuzz_run BIN SEEDDIR DESC    run for $POSTROOM_FUZZ_SECONDS (default 30;
#                                a target script may set a lower default
#                                before sourcing this) on a copy of the
#                                seeds; pass when no crash (the TAP line
#                                gives the inputs run and the coverage)
: "${POSTROOM_FUZZ_SECONDS:=30}"

fuzz_build() {
	local name=$1; shift
	local out="$TAP_TMP/$name" srcs=() s
	for s in "$@"; do srcs+=("$POSTROOM_SRCDIR/$s"); done
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-D_GNU_SOURCE -DSYSCONFDIR='"/etc"' -I"$POSTROOM_SRCDIR/lib" -I"$POSTROOM_BUILDDIR" \
		${FUZZ_CFLAGS:-} "$POSTROOM_SRCDIR/tests/fuzz/$name.c" "${srcs[@]}" ${FUZZ_LIBS:-} \
		-o "$out" >"$TAP_TMP/$name.build.log" 2>&1 || { cat "$TAP_TMP/$name.build.log" >&2; return 1; }
	echo "$out"
}

fuzz_seed_corpus() {
	local dir=$1 corpus="$POSTROOM_SRCDIR/tests/corpus" path n=0 want
	mkdir -p "$dir"
	while IFS=$'\t' read -r path _; do
		[ "$path" = path ] && continue
		n=$((n + 1))
		cp "$corpus/$path" "$dir/seed-$n"
	done <"$corpus/MANIFEST.tsv"
	want=$(awk 'NR > 1' "$corpus/MANIFEST.tsv" 2>/dev/null | wc -l)
	ok "[ $n -gt 0 ] && [ $(ls "$dir" | wc -l) -eq $want ]" "seeded with every corpus message ($n of $want)"
}

fuzz_seed_corpus_as() {
	local form=$1 dir=$2 corpus="$POSTROOM_SRCDIR/tests/corpus" n want
	mkdir -p "$dir"
	n=$(python3 - "$form" "$corpus" "$dir" <<'PY'
import os, re, sys
form, corpus, out = sys.argv[1:4]
n = 0
for row in open(os.path.join(corpus, 'MANIFEST.tsv'), encoding='utf-8').read().splitlines()[1:]:
    path = row.split('\t')[0]
    data = open(os.path.join(corpus, path), 'rb').read(16384)
    if form == 'headers':
        data = re.split(rb'\r?\n\r?\n', data, maxsplit=1)[0][:4096] + b'\n\n'
    else:
        lines = data.replace(b'\r\n', b'\n').split(b'\n')
        body = b''.join((b'.' + l if l.startswith(b'.') else l) + b'\r\n' for l in lines)
        data = (b'\x01\x02LHLO mx.example\r\nMAIL FROM:<a@example.org>\r\n'
                b'RCPT TO:<alice@postroom.test>\r\nDATA\r\n' + body + b'.\r\nQUIT\r\n')
    n += 1
    open(os.path.join(out, 'seed-%d' % n), 'wb').write(data)
print(n)
PY
)
	want=$(awk 'NR > 1' "$corpus/MANIFEST.tsv" 2>/dev/null | wc -l)
	ok "[ ${n:-0} -gt 0 ] && [ ${n:-0} -eq $want ]" "seeded with every corpus message as $form (${n:-0} of $want)"
}

fuzz_seed_golden() {
	local kind=$1 dir=$2 in n=0 want
	mkdir -p "$dir"
	for in in "$POSTROOM_SRCDIR/tests/golden/$kind"/*.in; do
		[ -e "$in" ] || continue
		if [ "$kind" = authd ]; then
			U=user@example.test KEY=pr_fuzz_0123456789abcdefghijklmnopqrstuv \
				python3 - "$POSTROOM_SRCDIR/tests/lib" "$in" >"$dir/golden-$(basename "$in" .in)" <<'PY' || continue
import sys
sys.path.insert(0, sys.argv[1])
import authd_client
out = bytearray()
for raw in open(sys.argv[2], encoding='utf-8'):
    op, _, arg = raw.rstrip('\n').partition(' ')
    if op == 'C':
        out += authd_client.expand(arg).encode() + b'\n'
    elif op == 'X':  # a long line: capped just past the line limit
        size, _, rid = arg.partition(' ')
        out += ('AUTH\t%s\tPLAIN\tresp=' % rid + 'A' * min(int(size), 16400)).encode() + b'\n'
sys.stdout.buffer.write(bytes(out))
PY
		else
			cp "$in" "$dir/golden-$(basename "$in" .in)" || continue
		fi
		n=$((n + 1))
	done
	want=$(ls "$POSTROOM_SRCDIR/tests/golden/$kind"/*.in 2>/dev/null | wc -l)
	ok "[ $n -gt 0 ] && [ $n -eq $want ]" "seeded with every $kind golden transcript ($n of $want)"
}

fuzz_run() {
	local bin=$1 seeds=$2 desc=$3 corpus="$TAP_TMP/corpus.$$" execs cov
	mkdir -p "$corpus"
	cp -r "$seeds"/. "$corpus"/ 2>/dev/null
	if "$bin" -max_total_time="$POSTROOM_FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$TAP_TMP/" "$corpus" >"$TAP_TMP/fuzz.log" 2>&1; then
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$TAP_TMP/fuzz.log" | grep -o '[0-9]*$')
		cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$TAP_TMP/fuzz.log" | tail -1)
		pass "$desc: no crash in ${POSTROOM_FUZZ_SECONDS}s ($execs inputs, $cov)"
	else
		fail "$desc: fuzzer found a crash" "$(grep -A20 'ERROR\|==ERROR\|deadly signal' "$TAP_TMP/fuzz.log" | head -40)"
		ls "$TAP_TMP"/crash-* 2>/dev/null | head -3 | while read -r c; do diag "reproducer: $(od -c "$c" | head -5)"; done
	fi
}
