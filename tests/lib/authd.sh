# authd.sh - run postroom-authd for a test (source after tap.sh and pg.sh).
#
# authd_start CONF [DIR]  write DIR/authd.conf (default DIR: $TAP_TMP/authd):
#                  the database/apikey/security groups of CONF (normally
#                  $POSTROOM_CONF from pg_fresh_db; it must not have an
#                  authd group) plus an authd group listening on
#                  unix:DIR/auth, running as the PostgreSQL test user (so
#                  the privilege drop is exercised and the private cluster's
#                  socket stays reachable), the socket owned by postfix
#                  (mode 0660; set AUTHD_SOCKET_MODE=0666 for Exim), metrics
#                  on a free 127.0.0.1 port, and the lines of AUTHD_EXTRA
#                  (array or newline-separated "name = value;" items) last.
#                  Starts `postroom-authd -f -c DIR/authd.conf` as a
#                  background job, waits until the socket answers and
#                  LISTEN is active, registers authd_stop with at_exit.
#                  Exports AUTHD_SOCKET, AUTHD_CONF, AUTHD_PID, AUTHD_LOG,
#                  AUTHD_METRICS (host:port). Returns 1 (log on stderr) if
#                  it does not come up within 10 s.
# authd_stop [PID]  SIGTERM and wait (default: $AUTHD_PID)
# authd_metric NAME[{labels}]  the value of one series from /metrics
#                  (0 when absent), e.g. authd_metric postroom_authd_bcrypt_total
# key_wrong KEY    KEY with its last character changed: the same prefix,
#                  a wrong secret (never KEY itself, whatever its last
#                  character: "x" would equal it one time in 62)
# authd_client ARGS...  tests/lib/authd_client.py (see its usage); e.g.
#                  authd_client "$AUTHD_SOCKET" auth user@x.test "$KEY"
#
# The milter and policyd tests use it for `smtpd_sasl_type = dovecot`:
#   pg_start; pg_fresh_db t; authd_start "$POSTROOM_CONF" "$TAP_TMP/authd"
#   PF_MAIN_EXTRA=("smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = dovecot"
#                  "smtpd_sasl_path = $AUTHD_SOCKET")

AUTHD_CLIENT_PY="$POSTROOM_SRCDIR/tests/lib/authd_client.py"
# the system interpreter: a pyenv shim costs half a second per call
AUTHD_PYTHON=${AUTHD_PYTHON:-$([ -x /usr/bin/python3 ] && echo /usr/bin/python3 || command -v python3)}

authd_client() { "$AUTHD_PYTHON" "$AUTHD_CLIENT_PY" "$@"; }

key_wrong() {
	if [ "${1: -1}" = x ]; then echo "${1%?}y"; else echo "${1%?}x"; fi
}

# _authd_lines NAME: the array or string variable NAME, one item a line
_authd_lines() {
	local decl
	decl=$(declare -p "$1" 2>/dev/null) || return 0
	if [[ $decl == "declare -a"* ]]; then
		local -n _authd_ref=$1
		[ ${#_authd_ref[@]} -gt 0 ] && printf '%s\n' "${_authd_ref[@]}"
	else
		printf '%s\n' "${!1}"
	fi
	return 0
}

authd_start() {
	local base=$1 dir=${2:-$TAP_TMP/authd} user=${PG_RUNAS:-} owner= i port
	declare -F free_port >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
	chmod 755 "$dir"
	[ -z "$user" ] && user=$(id -un)
	id postfix >/dev/null 2>&1 && owner=postfix
	port=$(free_port) || return 1
	export AUTHD_SOCKET=$dir/auth AUTHD_CONF=$dir/authd.conf AUTHD_LOG=$dir/authd.log
	export AUTHD_METRICS=127.0.0.1:$port
	{
		grep -v '^[[:space:]]*authd[[:space:]]*=' "$base"
		echo "authd = {"
		echo "  listen = \"unix:$AUTHD_SOCKET\";"
		echo "  user = \"$user\";"
		echo "  socket_owner = \"$owner\";"
		echo "  socket_group = \"\";"
		echo "  socket_mode = \"${AUTHD_SOCKET_MODE:-0660}\";"
		echo "  metrics_listen = \"$AUTHD_METRICS\";"
		_authd_lines AUTHD_EXTRA | sed 's/^/  /'
		echo "};"
	} >"$AUTHD_CONF"
	chmod 600 "$AUTHD_CONF"
	[ "$(id -u)" -eq 0 ] && chown "$user" "$AUTHD_CONF"
	: >"$AUTHD_LOG"
	"$POSTROOM_BUILDDIR/postroom-authd" -f -c "$AUTHD_CONF" 2>>"$AUTHD_LOG" &
	export AUTHD_PID=$!
	at_exit authd_stop "$AUTHD_PID"
	for i in $(seq 100); do
		if [ -S "$AUTHD_SOCKET" ] && grep -q 'LISTEN postroom_keys' "$AUTHD_LOG"; then
			return 0
		fi
		kill -0 "$AUTHD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# authd_start: postroom-authd did not come up" >&2
	sed 's/^/#   log: /' "$AUTHD_LOG" >&2
	return 1
}

authd_stop() {
	declare -F stop_pid >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	stop_pid "${1:-${AUTHD_PID:-}}"
}

authd_metric() {
	local name=$1 v
	v=$(curl -s --max-time 5 "http://$AUTHD_METRICS/metrics" |
		awk -v n="$name" '$1 == n { print $2; exit }')
	echo "${v:-0}"
}

# authd_log_clean [LOG...]: true when no sanitizer report (ASan, LSan,
# UBSan) is in the logs (default $AUTHD_LOG); call after authd_stop so
# that leak reports at exit are in
authd_log_clean() {
	local f
	for f in "${@:-$AUTHD_LOG}"; do
		grep -Eq 'Sanitizer|runtime error:' "$f" && { sed 's/^/#   /' "$f" | grep -E -A12 'Sanitizer|runtime error' | head -40 >&2; return 1; }
	done
	return 0
}
