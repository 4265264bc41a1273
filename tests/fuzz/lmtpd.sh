#!/usr/bin/env bash
# tests/fuzz/lmtpd.sh - build the libFuzzer target of postroom-lmtpd's
# LMTP command parser and DATA reader (deliver/lmtpd_proto.c, the
# dot-unstuffing machine into lib/store_spool's writer; clang,
# ASan+UBSan+fuzzer) and run it for a bounded time (POSTROOM_FUZZ_SECONDS,
# default 15 here) seeded with tests/fuzz/seeds/lmtpd (LMTP sessions) and
# the corpus messages wrapped in one. The target reads two bytes (the
# piece sizes' seed) before the session. Prints TAP.
: "${POSTROOM_FUZZ_SECONDS:=15}"
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_CFLAGS="-I$POSTROOM_SRCDIR/deliver"
FUZZ_LIBS="$(pkg-config --libs libcrypto)"
export FUZZ_CFLAGS FUZZ_LIBS
bin=$(fuzz_build fuzz-lmtpd deliver/lmtpd_proto.c lib/store_spool.c lib/crypto.c lib/buf.c \
	lib/xalloc.c lib/log.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_seed_corpus_as lmtp "$TAP_TMP/seeds"
cp "$POSTROOM_SRCDIR"/tests/fuzz/seeds/lmtpd/* "$TAP_TMP/seeds/"
fuzz_run "$bin" "$TAP_TMP/seeds" "lmtpd command parser and DATA reader"
done_testing
