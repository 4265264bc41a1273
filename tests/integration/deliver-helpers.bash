# deliver-helpers.bash - shared by tests/integration/deliver-*.sh (sourced
# after tap.sh and pg.sh; not a test itself).
#
#   deliver_run FILE ARGS...   run postroom-deliver -v -c $POSTROOM_CONF ARGS
#                              with FILE on stdin; sets D_RC (exit status),
#                              D_OUT (stdout), D_ERR (stderr), D_ID (email id
#                              from the log line, "-" when none)
#   mail_json ID               postroomctl --json mail show ID
#   msg_file NAME <<EOF        write a message to $TAP_TMP/NAME, return its path

DELIVER_BIN="$POSTROOM_BUILDDIR/postroom-deliver"

deliver_run() {
	local f=$1
	shift
	"$DELIVER_BIN" -v -c "$POSTROOM_CONF" "$@" <"$f" >"$TAP_TMP/d.out" 2>"$TAP_TMP/d.err"
	D_RC=$?
	D_OUT=$(cat "$TAP_TMP/d.out")
	D_ERR=$(cat "$TAP_TMP/d.err")
	D_ID=$(sed -n 's/.* email=\([0-9a-f-]*\) .*/\1/p' "$TAP_TMP/d.err" | tail -n 1)
	[ -n "$D_ID" ] || D_ID=-
}

mail_json() { pctl --json mail show "$1"; }

msg_file() {
	cat >"$TAP_TMP/$1"
	echo "$TAP_TMP/$1"
}
