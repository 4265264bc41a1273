# tap.sh - minimal TAP helpers for postroom's shell tests.
# Each assertion prints "ok N - desc" or "not ok N - desc"; tests/run counts
# them. Source it first in every tests/integration/*.sh script.

TAP_N=0
TAP_FAILED=0

# ok COND DESC - pass when the shell condition COND (a string to eval) is true
ok() {
	local cond=$1 desc=$2
	TAP_N=$((TAP_N + 1))
	if eval "$cond"; then
		echo "ok $TAP_N - $desc"
	else
		echo "not ok $TAP_N - $desc"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

# pass/fail DESC - record an outcome decided by the caller
pass() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $1"; }
fail() {
	TAP_N=$((TAP_N + 1)); echo "not ok $TAP_N - $1"
	TAP_FAILED=$((TAP_FAILED + 1))
	[ $# -gt 1 ] && printf '#   %s\n' "${@:2}"
	return 0
}

# is GOT EXPECTED DESC - string equality
is() {
	if [ "$1" = "$2" ]; then pass "$3"
	else fail "$3" "got:      '$1'" "expected: '$2'"; fi
}

# like GOT REGEX DESC - extended-regex match
like() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then pass "$3"
	else fail "$3" "got:      '$1'" "expected to match: $2"; fi
}

# unlike GOT REGEX DESC
unlike() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then fail "$3" "got: '$1'" "must not match: $2"
	else pass "$3"; fi
}

# run_status EXPECTED DESC CMD... - run CMD, compare its exit status
run_status() {
	local want=$1 desc=$2; shift 2
	"$@" >"$TAP_TMP/out" 2>"$TAP_TMP/err"
	local got=$?
	if [ "$got" = "$want" ]; then pass "$desc"
	else fail "$desc" "exit $got, expected $want" "stderr: $(head -c 500 "$TAP_TMP/err")"; fi
}

# diag MSG - a comment line
diag() { printf '# %s\n' "$*"; }

# done_testing - exit non-zero when anything failed
done_testing() {
	echo "# $TAP_N tests, $TAP_FAILED failed"
	[ "$TAP_FAILED" -eq 0 ]
	exit $?
}

TAP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/postroom-tap.XXXXXX")
chmod 755 "$TAP_TMP"
tap_cleanup_hooks=()
# at_exit CMD - run CMD when the script exits, in reverse order
at_exit() { tap_cleanup_hooks=("$*" "${tap_cleanup_hooks[@]}"); }
tap_run_cleanup() {
	local h
	for h in "${tap_cleanup_hooks[@]}"; do eval "$h" >/dev/null 2>&1; done
	rm -rf "$TAP_TMP"
}
trap tap_run_cleanup EXIT
trap 'exit 130' INT TERM

: "${POSTROOM_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${POSTROOM_BUILDDIR:=$POSTROOM_SRCDIR/build}"
export POSTROOM_SRCDIR POSTROOM_BUILDDIR
