#!/bin/bash
# policyd-golden.sh - postroom-policyd against the golden transcripts in
# tests/golden/policyd/ (see its README): several requests on one
# persistent connection, the readsocket (half-close) style, and garbage
# that must close the connection without a reply; the daemon keeps
# serving after each. Needs PostgreSQL.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

pg_start && pg_fresh_db policyd || { fail "PostgreSQL"; done_testing; }
pctl domain add postroom.test >/dev/null
pctl user add alice@postroom.test >/dev/null
pctl alias add al@postroom.test alice@postroom.test >/dev/null
pd_conf "rules.mx_enabled = true" "policyd.spf = false"
pd_start || { fail "policyd starts"; done_testing; }

for in in "$POSTROOM_SRCDIR"/tests/golden/policyd/*.in; do
	name=$(basename "$in" .in)
	case $name in
	persistent-*) style=persistent ;;
	readsocket-*) style=readsocket ;;
	*) style=nohalfclose ;;
	esac
	got=$(pd_req "$style" <"$in")
	want=$(cat "${in%.in}.ref")
	is "$got" "$want" "golden $name ($style)"
done

# the same transcript over the unix socket
got=$(PD_TARGET=$PD_SOCK pd_req persistent <"$POSTROOM_SRCDIR/tests/golden/policyd/persistent-mx-session.in")
is "$got" "$(cat "$POSTROOM_SRCDIR/tests/golden/policyd/persistent-mx-session.ref")" "golden over the unix socket"

# limits: a line over policyd.line_max (4096) and a request without end
long=$(python3 -c 'print("request=smtpd_access_policy\nsender=" + "a" * 5000 + "\n")')
is "$(printf '%s\n' "$long" | pd_req nohalfclose)" "<closed>" "line over line_max: closed without reply"
big=$(python3 -c 'print("request=smtpd_access_policy\n" + "x_attr=yyyyyyyy\n" * 3000, end="")')
is "$(printf '%s' "$big" | pd_req nohalfclose)" "<closed>" "no empty line within request_max: closed"
# pipelined: two requests in one write, answered in order
is "$(pd_req readsocket <"$POSTROOM_SRCDIR/tests/golden/policyd/readsocket-two.in" | sed -n 1,3p | tr '\n' '|')" \
	"action=DUNNO||action=554 5.7.1 Relay access denied|" "pipelined requests answered in order"

# still serving, and the log names what was wrong
is "$(action protocol_state=RCPT server_port=25 sender=a@example.org recipient=alice@postroom.test sasl_username=)" \
	DUNNO "daemon unaffected by the garbage"
log=$(cat "$TAP_TMP/policyd.log")
like "$log" "binary data in request: closing" "binary data logged"
like "$log" "line too long: closing" "long line logged"
like "$log" "malformed request \\(attribute without '='\\): closing" "line without = logged"
like "$log" "no request= attribute" "missing request= logged"
like "$log" "unknown request type 'check_something_else'" "other request type logged"
like "$log" "incomplete request at end of input" "truncated request logged"
like "$log" "relay attempt from client.example \[198.51.100.20\] to <victim@elsewhere.example> refused" \
	"relay attempt logged as a warning"
ok 'kill -0 $PD_PID' "daemon still running"

# postmaster (RFC 5321 4.5.1): postroom.test has no postmaster mailbox, a
# configuration error logged at start and at every reload until an alias
# postmaster@postroom.test exists (mail to it is accepted all along:
# persistent-postmaster)
pm_errors() { grep -c "configuration error: hosted domain(s) without a postmaster mailbox: postroom.test" "$TAP_TMP/policyd.log"; }
is "$(pm_errors)" 1 "start: the hosted domain without a postmaster mailbox is logged"
reloaded() {	# N: wait until the log holds N reload lines
	local i
	for i in $(seq 100); do
		[ "$(grep -c "configuration reloaded" "$TAP_TMP/policyd.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
kill -HUP "$PD_PID" && reloaded 1
is "$(pm_errors)" 2 "reload: logged again"
pctl alias add postmaster@postroom.test alice@postroom.test >/dev/null
kill -HUP "$PD_PID" && reloaded 2
is "$(pm_errors)" 2 "reload after postmaster@postroom.test was created: no new error"
pd_done
