#!/usr/bin/env bash
# tests/fuzz/address.sh - build the address-parser libFuzzer target with
# clang (ASan+UBSan+fuzzer) and run it for a bounded time on the seeds.
# POSTROOM_FUZZ_SECONDS (default 30) bounds the run. Prints TAP.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

bin=$(fuzz_build fuzz-address lib/address.c lib/buf.c lib/xalloc.c lib/log.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_run "$bin" "$POSTROOM_SRCDIR/tests/fuzz/seeds/address" "address parser"
done_testing
