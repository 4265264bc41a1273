#!/usr/bin/env bash
# tests/long/fuzz.sh - every libFuzzer target of tests/fuzz, each for
# POSTROOM_LONG_FUZZ_SECONDS (default 600) instead of the 15-30 s that fit in
# CI: the same targets, seeds and checks as the fuzz suite, passed through
# (their TAP lines). Run by `tools/check --long`, never by CI.
set -u
POSTROOM_SRCDIR=${POSTROOM_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export POSTROOM_SRCDIR
export POSTROOM_FUZZ_SECONDS=${POSTROOM_LONG_FUZZ_SECONDS:-600}
status=0 n=0
for t in "$POSTROOM_SRCDIR"/tests/fuzz/*.sh; do
	n=$((n + 1))
	echo "# ${t#"$POSTROOM_SRCDIR"/}, ${POSTROOM_FUZZ_SECONDS}s"
	bash "$t" || status=1
done
[ "$n" -gt 0 ] || { echo "not ok 1 - no fuzz target in tests/fuzz"; exit 1; }
exit "$status"
