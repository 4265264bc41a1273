#!/usr/bin/env bash
# tests/fuzz/policyd.sh - build the libFuzzer target of postroom-policyd's
# request framing and parsing (policyd/request.c, Postfix's LF and Exim's
# CRLF form; clang, ASan+UBSan+fuzzer) and run it for a bounded time
# (POSTROOM_FUZZ_SECONDS, default 15 here) seeded with the golden
# transcripts (tests/golden/policyd) and tests/fuzz/seeds/policyd. The
# target reads a first byte of options (limits, form): each seed gets
# one in front. Prints TAP.
: "${POSTROOM_FUZZ_SECONDS:=15}"
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_CFLAGS="-I$POSTROOM_SRCDIR/policyd"
export FUZZ_CFLAGS
bin=$(fuzz_build fuzz-policyd policyd/request.c lib/xalloc.c lib/log.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_seed_golden policyd "$TAP_TMP/golden"
mkdir -p "$TAP_TMP/seeds"
for f in "$TAP_TMP"/golden/* "$POSTROOM_SRCDIR"/tests/fuzz/seeds/policyd/*; do
	# option byte 0x01: the default limits, as sent; 0x09: CRLF
	{ printf '\001'; cat "$f"; } >"$TAP_TMP/seeds/$(basename "$f")"
	{ printf '\011'; cat "$f"; } >"$TAP_TMP/seeds/$(basename "$f")-crlf"
done
fuzz_run "$bin" "$TAP_TMP/seeds" "policyd request parser"
done_testing
