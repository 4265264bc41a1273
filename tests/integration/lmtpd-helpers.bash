# lmtpd-helpers.bash - shared by tests/integration/lmtpd-*.sh and
# tests/mta/lmtpd-*.sh (sourced after tap.sh and pg.sh; not a test itself).
#
#   lmtpd_start [DIR]     start postroom-lmtpd in the foreground on a unix
#                         socket (and TCP when LMTPD_TCP=1) with the
#                         database of $POSTROOM_CONF plus the lines of
#                         LMTPD_EXTRA (inside "lmtpd = { }") and
#                         LMTPD_TOP (top level); exports LMTPD_SOCKET,
#                         LMTPD_PORT, LMTPD_CONF, LMTPD_LOG, LMTPD_PID,
#                         LMTPD_METRICS
#   lmtpd_stop [PID]      SIGTERM, wait (then SIGKILL)
#   lmtp ADDRESS [SCRIPT] the LMTP client (tests/integration/lmtpd-client.py)
#   lmtp_msg NAME <<EOF   a message with CRLF line endings (dot-stuffed
#                         as it is: write ".." yourself), path on stdout

LMTPD_BIN="$POSTROOM_BUILDDIR/postroom-lmtpd"

# the system python when there is one: a pyenv shim costs seconds per start
LMTP_PYTHON=$(command -v /usr/bin/python3 || command -v python3)
lmtp() { "$LMTP_PYTHON" "$POSTROOM_SRCDIR/tests/integration/lmtpd-client.py" "$@"; }

lmtp_msg() {
	sed 's/$/\r/' >"$TAP_TMP/$1"
	echo "$TAP_TMP/$1"
}

lmtpd_start() {
	local dir=${1:-$TAP_TMP/lmtpd} user=${PG_RUNAS:-} i mport
	declare -F free_port >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	chmod 755 "$dir"
	[ -z "$user" ] && user=$(id -un)
	mport=$(free_port) || return 1
	LMTPD_PORT=
	[ "${LMTPD_TCP:-0}" = 1 ] && { LMTPD_PORT=$(free_port) || return 1; }
	export LMTPD_SOCKET=$dir/lmtp LMTPD_CONF=$dir/lmtpd.conf LMTPD_LOG=$dir/lmtpd.log
	export LMTPD_METRICS=127.0.0.1:$mport LMTPD_PORT
	{
		cat "$POSTROOM_CONF"
		printf '%s\n' "${LMTPD_TOP:-}"
		echo "lmtpd = {"
		echo "  listen = \"unix:$LMTPD_SOCKET\";"
		[ -n "$LMTPD_PORT" ] && echo "  listen_inet = \"inet:127.0.0.1:$LMTPD_PORT\";"
		echo "  user = \"$user\";"
		echo "  socket_owner = \"$user\";"
		echo "  socket_group = \"\";"
		echo "  socket_mode = \"0666\";"
		echo "  metrics_listen = \"$LMTPD_METRICS\";"
		printf '  %s\n' "${LMTPD_EXTRA:-}"
		echo "};"
	} >"$LMTPD_CONF"
	chmod 600 "$LMTPD_CONF"
	[ "$(id -u)" -eq 0 ] && chown "$user" "$LMTPD_CONF"
	: >"$LMTPD_LOG"
	"$LMTPD_BIN" -f -c "$LMTPD_CONF" 2>>"$LMTPD_LOG" &
	export LMTPD_PID=$!
	at_exit lmtpd_stop "$LMTPD_PID"
	for i in $(seq 100); do
		if [ -S "$LMTPD_SOCKET" ] && grep -q 'lmtpd: ready' "$LMTPD_LOG"; then
			return 0
		fi
		kill -0 "$LMTPD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# lmtpd_start: postroom-lmtpd did not come up" >&2
	sed 's/^/#   log: /' "$LMTPD_LOG" >&2
	return 1
}

lmtpd_stop() {
	declare -F stop_pid >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	stop_pid "${1:-${LMTPD_PID:-}}"
}

lmtpd_metric() {
	local name=$1 v
	v=$(curl -s --max-time 5 "http://$LMTPD_METRICS/metrics" |
		awk -v n="$name" '$1 == n { print $2; exit }')
	echo "${v:-0}"
}
