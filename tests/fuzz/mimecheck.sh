#!/usr/bin/env bash
# tests/fuzz/mimecheck.sh - build the session attachment check's libFuzzer
# target (lib/mime_check over lib/mime_parse with limits: clang,
# ASan+UBSan+fuzzer) and run it for a bounded time (POSTROOM_FUZZ_SECONDS,
# default 30) seeded with every message of the in-tree corpus
# (tests/corpus/MANIFEST.tsv). The bounce classifier (lib/mail_class) runs
# on each parse too. Prints TAP.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_CFLAGS="$(pkg-config --cflags gmime-3.0)"
FUZZ_LIBS="$(pkg-config --libs gmime-3.0 libcrypto)"
export FUZZ_CFLAGS FUZZ_LIBS
# mime_check, mime_parse and its boundary scanner, then what they call
srcs=(lib/mime_check.c lib/mime_parse.c lib/mail_class.c lib/mime_scan.c lib/store_spool.c lib/filename_safe.c
	lib/verdict.c lib/sighdr.c lib/crypto.c lib/buf.c lib/xalloc.c lib/log.c)
bin=$(fuzz_build fuzz-mimecheck "${srcs[@]}") ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
fuzz_seed_corpus "$TAP_TMP/seeds"
fuzz_run "$bin" "$TAP_TMP/seeds" "session attachment check"
done_testing
