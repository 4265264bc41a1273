# policyd-lib.bash - shared set-up of the postroom-policyd tests (sourced,
# not run: tests/run runs only *.sh). Source after tap.sh, pg.sh, ports.sh.
#
#   pd_conf LINES...  write $PD_CONF: the database of pg_fresh_db, a test
#                     secret, and the rules/policyd lines given as
#                     "section.name = value" (grouped per section)
#   pd_start          run postroom-policyd -f on a free port (PD_ADDR) and
#                     a unix socket (PD_SOCK); stopped with at_exit
#   pd_stop           SIGTERM it and wait
#   pd_req [STYLE]    send stdin with policyd-client.py, print the replies
#   pd_done           pd_stop, check exit 0 and no sanitizer report, done_testing
#   req K=V...        print one request (request=smtpd_access_policy first)

PD_CLIENT=$POSTROOM_SRCDIR/tests/integration/policyd-client.py
PD_SECRET="test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

pd_conf() {
	local l sec name val
	declare -A groups=()
	PD_PORT=$(free_port) || return 1
	PD_SOCK=$TAP_TMP/policyd.sock
	PD_CONF=$TAP_TMP/pd-daemon.conf
	groups[policyd]="listen = \"inet:127.0.0.1:$PD_PORT, unix:$PD_SOCK\"; user = \"${PG_RUNAS:-}\"; socket_mode = \"0666\";"
	groups[security]="hmac_secret = \"$PD_SECRET\";"
	groups[rules]=""
	for l in "$@"; do
		sec=${l%%.*}
		l=${l#*.}
		groups[$sec]="${groups[$sec]:-} $l;"
	done
	cp "$POSTROOM_CONF" "$PD_CONF"
	for sec in "${!groups[@]}"; do
		printf '%s = { %s };\n' "$sec" "${groups[$sec]}" >>"$PD_CONF"
	done
	chmod 600 "$PD_CONF"
	[ -n "${PG_RUNAS:-}" ] && chown "$PG_RUNAS" "$PD_CONF"
	PD_ADDR=127.0.0.1:$PD_PORT
	export PD_CONF PD_ADDR PD_SOCK PD_PORT
}

pd_start() {
	"$POSTROOM_BUILDDIR/postroom-policyd" -f -c "$PD_CONF" ${PD_DEBUG:+-d} \
		2>>"$TAP_TMP/policyd.log" &
	PD_PID=$!
	at_exit pd_stop
	wait_port "$PD_PORT" "$PD_PID" && return 0
	echo "# pd_start: policyd did not come up:" >&2
	sed 's/^/#   /' "$TAP_TMP/policyd.log" >&2
	return 1
}

pd_stop() {
	[ -n "${PD_PID:-}" ] || return 0
	kill "$PD_PID" 2>/dev/null
	wait "$PD_PID" 2>/dev/null
	PD_STATUS=$?
	PD_PID=
	return 0
}

# pd_done: stop the daemon, check it exited 0 with no sanitizer report
# (the ASan/UBSan build), end the test
pd_done() {
	pd_stop
	is "${PD_STATUS:-0}" 0 "policyd exited 0"
	if grep -qE 'Sanitizer|runtime error:' "$TAP_TMP/policyd.log"; then
		fail "no sanitizer report" "$(grep -E -A20 'Sanitizer|runtime error:' "$TAP_TMP/policyd.log" | head -n 40)"
	else
		pass "no sanitizer report"
	fi
	done_testing
}

pd_req() {
	local target=${PD_TARGET:-$PD_ADDR} style=${1:-readsocket} nc_args
	if [ "$style" = persistent ]; then
		python3 "$PD_CLIENT" "$target" --style persistent
		return
	fi
	# netcat-openbsd starts much faster than python: -N half-closes after
	# stdin (readsocket); without it nc reads until the server closes
	case $target in
	/*) nc_args=(-U "$target") ;;
	*) nc_args=("${target%:*}" "${target##*:}") ;;
	esac
	[ "$style" = readsocket ] && nc_args=(-N "${nc_args[@]}")
	{ nc -w 30 "${nc_args[@]}"; echo "<closed>"; } |
		sed -E 's/ts=[0-9]+/ts=<ts>/; s/sig=[0-9a-f]{64}/sig=<sig>/'
}

req() {
	local kv
	echo "request=smtpd_access_policy"
	for kv in "$@"; do echo "$kv"; done
	echo
}

# action K=V...: the action of one request, readsocket style
action() {
	req "$@" | pd_req readsocket | sed -n 's/^action=//p'
}
