#!/usr/bin/env bash
# tests/fuzz/deliver.sh - build deliver's parse-and-build-rows libFuzzer
# target (clang, ASan+UBSan+fuzzer) and run it for a bounded time
# (POSTROOM_FUZZ_SECONDS, default 30) seeded with every message of the
# in-tree corpus (tests/corpus/MANIFEST.tsv); no seeds is a failure, not a
# run from scratch. Prints TAP.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

corpus="$POSTROOM_SRCDIR/tests/corpus"
FUZZ_CFLAGS="$(pkg-config --cflags gmime-3.0 libpq)"
FUZZ_LIBS="$(pkg-config --libs gmime-3.0 libpq libcrypto)"
export FUZZ_CFLAGS FUZZ_LIBS
bin=$(fuzz_build fuzz-deliver lib/store_spool.c lib/mime_parse.c lib/store_mail.c lib/db.c \
	lib/address.c lib/sighdr.c lib/verdict.c lib/crypto.c lib/buf.c lib/xalloc.c lib/log.c \
	lib/mime_scan.c lib/filename_safe.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
# seeds: the corpus messages (flat copies; MANIFEST and notes left out)
mkdir -p "$TAP_TMP/seeds"
n=0
while IFS=$'\t' read -r path _; do
	[ "$path" = path ] && continue
	n=$((n + 1))
	cp "$corpus/$path" "$TAP_TMP/seeds/seed-$n"
done <"$corpus/MANIFEST.tsv"
want=$(awk 'NR > 1' "$corpus/MANIFEST.tsv" 2>/dev/null | wc -l)
got=$(ls "$TAP_TMP/seeds" | wc -l)
ok "[ $got -gt 0 ] && [ $got -eq $want ]" "seeded with every corpus message ($got of $want)"
fuzz_run "$bin" "$TAP_TMP/seeds" "deliver parse-and-build-rows"
done_testing
