#!/usr/bin/env bash
# tests/fuzz/authd.sh - build the libFuzzer target of postroom-authd's
# Dovecot auth-client parser (authd/proto.c: lines, fields, AUTH, CONT,
# base64, PLAIN and LOGIN; clang, ASan+UBSan+fuzzer) and run it for a
# bounded time (POSTROOM_FUZZ_SECONDS, default 15 here) seeded with the
# golden transcripts (tests/golden/authd, as the bytes the client sends)
# and tests/fuzz/seeds/authd. Prints TAP.
: "${POSTROOM_FUZZ_SECONDS:=15}"
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_CFLAGS="-I$POSTROOM_SRCDIR/authd"
export FUZZ_CFLAGS
bin=$(fuzz_build fuzz-authd authd/proto.c lib/buf.c lib/xalloc.c lib/log.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_seed_golden authd "$TAP_TMP/seeds"
cp "$POSTROOM_SRCDIR"/tests/fuzz/seeds/authd/* "$TAP_TMP/seeds/"
fuzz_run "$bin" "$TAP_TMP/seeds" "authd auth-client parser"
done_testing
