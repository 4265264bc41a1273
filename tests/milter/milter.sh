# milter.sh - run postroom-milter for one test script (source after tap.sh
# and pg.sh, after pg_fresh_db).
#
#   milter_conf LINES     append libconfig LINES to $POSTROOM_CONF (the
#                         sections rules, milter and security are not
#                         written by pg.sh); call before milter_start
#   milter_start          start postroom-milter -f on inet:PORT@127.0.0.1 (PORT:
#                         $MILTER_PORT when set, else a free one; with
#                         MILTER_UNIX=PATH a unix socket instead),
#                         wait until it accepts connections; exports
#                         MILTER_PORT, MILTER_SOCK (miltertest form),
#                         MILTER_PID, MILTER_LOG; stopped at exit
#   milter_stop           SIGTERM, wait for the exit
#   milter_stop_check     the same, and two TAP lines: exit status 0, no
#                         sanitizer report in its log
#   mt_run SCRIPT.lua     run a miltertest script from tests/milter with
#                         MILTER_SOCK in its environment; its "ok - ..." /
#                         "not ok - ..." lines are TAP lines of this test
#
# The milter runs as the PostgreSQL cluster's owner when the test runs as
# root (so that it can reach the cluster's socket directory after dropping
# privileges): it is a real privilege drop, not a root process.

MILTER_SECRET=${MILTER_SECRET:-test-secret-0123456789abcdef0123456789}

milter_conf() { printf '%s\n' "$@" >>"$POSTROOM_CONF"; }

milter_start() {
	declare -F free_port >/dev/null || . "$POSTROOM_SRCDIR/tests/lib/ports.sh"
	if [ -n "${MILTER_UNIX:-}" ]; then
		MILTER_SOCK="unix:$MILTER_UNIX"
	else
		MILTER_PORT=${MILTER_PORT:-$(free_port)} || return 1
		MILTER_SOCK="inet:$MILTER_PORT@127.0.0.1"
	fi
	MILTER_LOG="$TAP_TMP/milter.log"
	export MILTER_PORT MILTER_SOCK MILTER_LOG
	sed -i "s|@MILTER_SOCK@|$MILTER_SOCK|" "$POSTROOM_CONF"
	"$POSTROOM_BUILDDIR/postroom-milter" -f -c "$POSTROOM_CONF" >>"$MILTER_LOG" 2>&1 &
	MILTER_PID=$!
	export MILTER_PID
	at_exit milter_stop
	local i
	for i in $(seq 100); do
		if [ -n "${MILTER_UNIX:-}" ]; then
			[ -S "$MILTER_UNIX" ] && grep -q "started on" "$MILTER_LOG" && return 0
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$MILTER_PORT") 2>/dev/null && return 0
		fi
		kill -0 "$MILTER_PID" 2>/dev/null || { sed 's/^/# milter: /' "$MILTER_LOG" >&2; return 1; }
		sleep 0.1
	done
	sed 's/^/# milter: /' "$MILTER_LOG" >&2
	return 1
}

milter_stop() {
	[ -n "${MILTER_PID:-}" ] || return 0
	kill -TERM "$MILTER_PID" 2>/dev/null
	local i
	for i in $(seq 50); do
		kill -0 "$MILTER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$MILTER_PID" 2>/dev/null
	wait "$MILTER_PID" 2>/dev/null
	MILTER_PID=
	return 0
}

# milter_stop_check - stop the milter and record that it exited cleanly
# (status 0) without any sanitizer report (ASan, LSan, UBSan builds)
milter_stop_check() {
	local pid=$MILTER_PID st
	kill -TERM "$pid" 2>/dev/null
	wait "$pid"
	st=$?
	MILTER_PID=
	is "$st" 0 "postroom-milter exits with status 0 on SIGTERM"
	if grep -qE 'Sanitizer|runtime error:' "$MILTER_LOG"; then
		fail "no sanitizer report from postroom-milter" "$(grep -m 5 -E 'Sanitizer|runtime error:|#[0-9] ' "$MILTER_LOG")"
	else
		pass "no sanitizer report from postroom-milter"
	fi
}

# milter_user - the user the milter drops to in tests
milter_user() { echo "${PG_RUNAS:-$(id -un)}"; }

mt_run() {
	local script=$1 out rc l
	out=$(MILTER_SOCK=$MILTER_SOCK MT_LIB="$POSTROOM_SRCDIR/tests/milter/common.lua" \
		miltertest -s "$POSTROOM_SRCDIR/tests/milter/$script" 2>&1)
	rc=$?
	while IFS= read -r l; do
		case $l in
		"ok - "*) pass "${l#ok - }" ;;
		"not ok - "*) fail "${l#not ok - }" ;;
		*) [ -n "$l" ] && printf '# %s\n' "$l" ;;
		esac
	done < <(printf '%s\n' "$out")
	[ "$rc" -eq 0 ] && pass "$script ran to the end" ||
		fail "$script ran to the end (miltertest exit $rc)"
}

# smtp_reply STAGE PORT FROM TO [SWAKS-OPTION...] - run one swaks session
# to 127.0.0.1:PORT and print the server's reply (code, enhanced code, text)
# to the command of STAGE: MAIL, RCPT or DATA (the reply to the final dot).
# A session refused earlier prints that earlier reply instead. The whole
# transcript is kept in $TAP_TMP/swaks.out.
smtp_reply() {
	local stage=$1 port=$2 from=$3 to=$4 quit
	shift 4
	case $stage in MAIL) quit=(--quit-after MAIL) ;; RCPT) quit=(--quit-after RCPT) ;; *) quit=() ;; esac
	swaks --server 127.0.0.1 --port "$port" --from "$from" --to "$to" --ehlo client.example \
		--timeout 20 "${quit[@]}" "$@" >"$TAP_TMP/swaks.out" 2>&1
	awk -v stage="$stage" '
		/^ [-~]> / { cmd = substr($0, 5); next }
		/^<[-~*][-~* ] / {
			line = substr($0, 5)
			if (line ~ /^[0-9][0-9][0-9]-/) next	# continuation of a multi-line reply
			last = line
			if ((stage == "MAIL" && cmd ~ /^MAIL FROM/) || (stage == "RCPT" && cmd ~ /^RCPT TO/) ||
			    (stage == "DATA" && cmd == ".")) { print line; found = 1; exit }
			if (line ~ /^[45]/ && cmd !~ /^(QUIT|EHLO|HELO)/) { print line; found = 1; exit }
		}
		END { if (!found) print (last == "" ? "no reply" : last) }' "$TAP_TMP/swaks.out"
}
