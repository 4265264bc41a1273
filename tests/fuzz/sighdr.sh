#!/usr/bin/env bash
# tests/fuzz/sighdr.sh - build the libFuzzer target of the signed-header
# verifier (lib/sighdr.c; clang, ASan+UBSan+fuzzer) and run it for a
# bounded time (POSTROOM_FUZZ_SECONDS, default 15 here) seeded with
# tests/fuzz/seeds/sighdr: header values, each after one byte of options
# (header name, binding). Prints TAP.
: "${POSTROOM_FUZZ_SECONDS:=15}"
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_LIBS="$(pkg-config --libs libcrypto)"
export FUZZ_LIBS
bin=$(fuzz_build fuzz-sighdr lib/sighdr.c lib/crypto.c lib/buf.c lib/xalloc.c lib/log.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_run "$bin" "$POSTROOM_SRCDIR/tests/fuzz/seeds/sighdr" "signed-header verifier"
done_testing
