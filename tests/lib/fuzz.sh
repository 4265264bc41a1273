# tests/lib/fuzz.sh - shared helpers for the libFuzzer suite (tests/fuzz/*.sh).
#   fuzz_build NAME SOURCES...   compile tests/fuzz/NAME.c with the given
#                                lib sources; prints the binary path
#   fuzz_seed_corpus DIR         copy every tests/corpus message listed in
#                                its MANIFEST.tsv into DIR (seed-N); a TAP
#                                line: all of them, and at least one
#   fuzz_run BIN SEEDDIR DESC    run for $POSTROOM_FUZZ_SECONDS (default 30)
#                                on a copy of the seeds; pass when no crash
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

fuzz_run() {
	local bin=$1 seeds=$2 desc=$3 corpus="$TAP_TMP/corpus.$$"
	mkdir -p "$corpus"
	cp -r "$seeds"/. "$corpus"/ 2>/dev/null
	if "$bin" -max_total_time="$POSTROOM_FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$TAP_TMP/" "$corpus" >"$TAP_TMP/fuzz.log" 2>&1; then
		pass "$desc: no crash in ${POSTROOM_FUZZ_SECONDS}s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$TAP_TMP/fuzz.log" | grep -o '[0-9]*$') inputs)"
	else
		fail "$desc: fuzzer found a crash" "$(grep -A20 'ERROR\|==ERROR\|deadly signal' "$TAP_TMP/fuzz.log" | head -40)"
		ls "$TAP_TMP"/crash-* 2>/dev/null | head -3 | while read -r c; do diag "reproducer: $(od -c "$c" | head -5)"; done
	fi
}
