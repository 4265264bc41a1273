#!/usr/bin/env bash
# tests/fuzz/deliver.sh - build deliver's parse-and-build-rows libFuzzer
# target (clang, ASan+UBSan+fuzzer) and run it for a bounded time
# (POSTROOM_FUZZ_SECONDS, default 30) seeded with every message of the
# in-tree corpus (tests/corpus/MANIFEST.tsv); no seeds is a failure, not a
# run from scratch. Prints TAP.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/fuzz.sh"

FUZZ_CFLAGS="$(pkg-config --cflags gmime-3.0 libpq)"
FUZZ_LIBS="$(pkg-config --libs gmime-3.0 libpq libcrypto libconfig expat)"
export FUZZ_CFLAGS FUZZ_LIBS
bin=$(fuzz_build fuzz-deliver lib/store_spool.c lib/mime_parse.c lib/store_mail.c lib/db.c \
	lib/address.c lib/sighdr.c lib/verdict.c lib/crypto.c lib/buf.c lib/xalloc.c lib/log.c \
	lib/mime_scan.c lib/filename_safe.c lib/mail_class.c lib/verp.c lib/raw_compact.c \
	lib/blob_store.c lib/blob_store_pg.c lib/blob_store_s3.c lib/blob_store_s3_list.c lib/curl_dl.c lib/conf.c lib/conf_params.c) ||
	{ fail "fuzz target builds"; done_testing; }
pass "fuzz target builds with clang -fsanitize=fuzzer,address,undefined"
# seeds: the corpus messages (flat copies; MANIFEST and notes left out)
fuzz_seed_corpus "$TAP_TMP/seeds"
fuzz_run "$bin" "$TAP_TMP/seeds" "deliver parse-and-build-rows"
done_testing
