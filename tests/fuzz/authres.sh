#!/usr/bin/env bash
# tests/fuzz/authres.sh - build the libFuzzer target of the
# Authentication-Results parser and the trusted-zone walk of lib/verdict.c
# (with lib/sighdr.c under it; clang, ASan+UBSan+fuzzer) and run it for a
# bounded time (POSTROOM_FUZZ_SECONDS, default 15 here) seeded with
# tests/fuzz/seeds/authres (header blocks) and the header blocks of the
# corpus messages. Prints TAP.
: "${POSTROOM_FUZZ_SECONDS:=15}"
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_LIBS="$(pkg-config --libs libcrypto)"
export FUZZ_LIBS
bin=$(fuzz_build fuzz-authres lib/verdict.c lib/sighdr.c lib/crypto.c lib/buf.c lib/xalloc.c \
	lib/log.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_seed_corpus_as headers "$TAP_TMP/seeds"
cp "$POSTROOM_SRCDIR"/tests/fuzz/seeds/authres/* "$TAP_TMP/seeds/"
fuzz_run "$bin" "$TAP_TMP/seeds" "Authentication-Results parser"
done_testing
