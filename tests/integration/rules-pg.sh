#!/bin/bash
# rules-pg.sh - lib/rules_pg.c, the one PostgreSQL backend of the envelope
# rules (postroom-milter and postroom-policyd), against a real PostgreSQL:
# hosted domains and addresses; users, aliases and domains changed at run
# time seen at once through LISTEN/NOTIFY although answers are cached for
# an hour; an empty domain table is a failure, never "foreign"; the health
# flag; the pool for a program's own SQL; and the database stopped and
# started again in both offline modes: 0 (the milter's: nothing cached is
# trusted) and 1 (policyd's: the last domain set and cached answers are
# still served, only what must be asked fails).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
TOOL=$POSTROOM_BUILDDIR/tests/tools/rules-pg-tool

pg_start || { fail "PostgreSQL"; done_testing; }
CONNINFO="host=$PGHOST port=$PGPORT user=$PGUSER dbname=rulespg"
mkfifo "$TAP_TMP/in" "$TAP_TMP/out"

# tool_start OFFLINE - the backend in the background, answers cached an
# hour; commands through fd 7, answers on fd 8
tool_start() {
	"$TOOL" "$CONNINFO" "$1" 3600 3600 <"$TAP_TMP/in" >"$TAP_TMP/out" 2>>"$TAP_TMP/tool.log" &
	TOOL_PID=$!
	exec 7>"$TAP_TMP/in" 8<"$TAP_TMP/out"
	at_exit tool_stop
}
# tool_stop - end of input: the tool frees the backend and exits
tool_stop() {
	[ -n "${TOOL_PID:-}" ] || return 0
	exec 7>&- 8<&-
	wait "$TOOL_PID"
	TOOL_STATUS=$?
	TOOL_PID=
}
ask() {
	local r
	echo "$*" >&7
	read -r -t 10 r <&8 || r="<no answer>"
	echo "$r"
}
# wait_for WANT COMMAND... - ask until the answer is WANT (at most 10 s)
wait_for() {
	local want=$1 i
	shift
	for i in $(seq 100); do
		[ "$(ask "$@")" = "$want" ] && return 0
		sleep 0.1
	done
	return 1
}

# run_mode OFFLINE - the whole story on a fresh database
run_mode() {
	local m="offline_answers $1"

	pg_fresh_db rulespg || { fail "$m: fresh database"; return; }
	pctl domain add example.com >/dev/null
	pctl user add alice@example.com >/dev/null
	tool_start "$1"
	is "$(ask domain example.com)" FOUND "$m: a hosted domain, loaded at start"
	is "$(ask domain foreign.org)" NOT_FOUND "$m: a foreign domain"
	is "$(ask exists alice@example.com)" FOUND "$m: a user's address"
	is "$(ask exists bob@example.com)" NOT_FOUND "$m: an unknown address (cached for an hour)"
	is "$(ask owned alice@example.com alice@example.com)" FOUND "$m: alice owns her address"
	is "$(ask owned sales@example.com alice@example.com)" NOT_FOUND "$m: not sales@ (yet)"
	is "$(ask healthy 1)" ok "$m: healthy"
	is "$(ask count)" 1 "$m: one hosted domain counted"
	is "$(ask "exec SELECT count(*) FROM users")" 1 "$m: a program's own SQL on the pool"

	pctl user add bob@example.com >/dev/null
	wait_for FOUND exists bob@example.com
	is "$(ask exists bob@example.com)" FOUND "$m: a user created: found at once, despite the cached unknown"
	pctl alias add sales@example.com alice@example.com >/dev/null
	wait_for FOUND owned sales@example.com alice@example.com
	is "$(ask owned sales@example.com alice@example.com)" FOUND "$m: an alias created: owned at once"
	pctl domain add example.org >/dev/null
	wait_for FOUND domain example.org
	is "$(ask domain example.org)" FOUND "$m: a domain added: hosted at once"
	pctl domain remove example.org >/dev/null
	wait_for NOT_FOUND domain example.org
	is "$(ask domain example.org)" NOT_FOUND "$m: a domain removed: foreign at once"
	pctl domain remove example.com >/dev/null
	wait_for ERROR domain example.com
	is "$(ask domain example.com)" ERROR "$m: the last domain removed: a failure, never 'not hosted'"
	is "$(ask domain foreign.org)" ERROR "$m: no domain: a foreign one is a failure too"
	is "$(ask healthy 1)" "MX mode on and no hosted domain" "$m: unhealthy in MX mode"
	is "$(ask healthy 0)" ok "$m: healthy without MX mode"
	pctl domain add example.com >/dev/null
	wait_for FOUND domain example.com
	is "$(ask domain example.com)" FOUND "$m: the domain back"

	is "$(ask exists alice@example.com)" FOUND "$m: alice found (cached now)"
	pg_server_stop
	wait_for "database unreachable" healthy 0
	is "$(ask healthy 0)" "database unreachable" "$m: database stopped: unhealthy"
	if [ "$1" = 0 ]; then
		is "$(ask domain example.com)" ERROR "$m: database stopped: no domain set trusted"
		is "$(ask domain foreign.org)" ERROR "$m: database stopped: foreign is a failure too"
		is "$(ask exists alice@example.com)" ERROR "$m: database stopped: a cached answer not trusted"
	else
		is "$(ask domain example.com)" FOUND "$m: database stopped: the last domain set served"
		is "$(ask domain foreign.org)" NOT_FOUND "$m: database stopped: foreign still foreign"
		is "$(ask exists alice@example.com)" FOUND "$m: database stopped: a cached answer served"
	fi
	is "$(ask exists carol@example.com)" ERROR "$m: database stopped: an uncached address fails"
	like "$(ask exec SELECT 1)" '^ERROR ' "$m: database stopped: the pool's SQL fails"
	pg_server_start 7>&- 8<&- # the server must not hold the tool's input open
	wait_for ok healthy 1
	is "$(ask healthy 1)" ok "$m: database back: healthy"
	is "$(ask domain example.com)" FOUND "$m: database back: hosted"
	wait_for NOT_FOUND exists carol@example.com
	is "$(ask exists carol@example.com)" NOT_FOUND "$m: database back: asked again"
	is "$(ask exec SELECT 1)" 1 "$m: database back: the pool's SQL runs"
	tool_stop
	is "$TOOL_STATUS" 0 "$m: stops cleanly"
}

run_mode 0
run_mode 1
unlike "$(cat "$TAP_TMP/tool.log")" "ERROR: [A-Za-z]*Sanitizer|runtime error" "no sanitizer report"
done_testing
