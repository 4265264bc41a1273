#!/usr/bin/env bash
# milter-startup.sh - postroom-milter's start-up checks and its life with
# the database: MX mode with no hosted domain refuses to start; a bad
# configuration is fatal; the database unreachable at start, stopped at
# run time, or the last domain removed: every unauthenticated recipient is
# tempfailed (never accepted, never refused for good); domains follow
# LISTEN/NOTIFY; privileges dropped; /metrics and /healthz.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"

MILTER="$POSTROOM_BUILDDIR/postroom-milter"
pg_start || { fail "PostgreSQL starts"; done_testing; }
pg_fresh_db milter || { fail "database created"; done_testing; }
BASE="$TAP_TMP/base.conf"
cp "$POSTROOM_CONF" "$BASE"
METRICS=127.0.0.1:$(free_port)

# conf_with LINES... - a fresh configuration: the database part plus LINES
conf_with() {
	cp "$BASE" "$POSTROOM_CONF"
	milter_conf "$@"
}
SEC="security = { hmac_secret = \"$MILTER_SECRET\"; };"
MIL="milter = { socket = \"@MILTER_SOCK@\"; user = \"$(milter_user)\"; metrics_listen = \"$METRICS\"; };"

# ---- configuration checks (-t) --------------------------------------------
conf_with "$SEC" "$MIL"
run_status 0 "-t: a valid configuration" "$MILTER" -t -c "$POSTROOM_CONF"
conf_with "$MIL"
run_status 78 "-t: no security.hmac_secret is fatal (EX_CONFIG)" "$MILTER" -t -c "$POSTROOM_CONF"
like "$(cat "$TAP_TMP/err")" "hmac_secret" "the error names security.hmac_secret"
conf_with 'security = { hmac_secret = "short"; };' "$MIL"
run_status 78 "-t: a short secret is fatal" "$MILTER" -t -c "$POSTROOM_CONF"
conf_with "$SEC" 'rules = { port_roles = "25=mx 587=relay"; };' "$MIL"
run_status 78 "-t: a bad port role is fatal" "$MILTER" -t -c "$POSTROOM_CONF"
like "$(cat "$TAP_TMP/err")" "587=relay" "the error names the bad entry"
conf_with "$SEC" "milter = { sent_recipient = \"a%b@c\"; };"
run_status 78 "-t: a sent_recipient that is no plain address is fatal" "$MILTER" -t -c "$POSTROOM_CONF"
like "$(cat "$TAP_TMP/err")" "rules.sent_recipient" "the error names the parameter by its new name"
conf_with "$SEC" "${MIL%\};*}sent_recipient = \"sent@postroom.invalid\"; };"
run_status 0 "-t: the old name milter.sent_recipient still works" "$MILTER" -t -c "$POSTROOM_CONF"
like "$(cat "$TAP_TMP/err")" "milter.sent_recipient is deprecated: use rules.sent_recipient" \
	"... and the daemon warns that it is deprecated"
conf_with "$SEC" "$MIL" 'rules = { sent_recipient = "sent@postroom.invalid"; };'
run_status 0 "-t: rules.sent_recipient, the new name" "$MILTER" -t -c "$POSTROOM_CONF"
conf_with "$SEC" "$MIL" 'authd = { listen = "unix:/nonexistent/auth"; };' 'policyd = { bogus_x = 1; };'
run_status 0 "-t: the milter leaves other programs' sections to them" "$MILTER" -t -c "$POSTROOM_CONF"
conf_with "$SEC" "${MIL%\};*}bogus_x = 1; };"
run_status 78 "-t: a typo in the milter's own section is fatal" "$MILTER" -t -c "$POSTROOM_CONF"
like "$(cat "$TAP_TMP/err")" "unknown parameter milter.bogus_x" "... naming it"

# ---- MX mode with no hosted domain: refuse to start -----------------------
conf_with "$SEC" 'rules = { mx_enabled = true; };' "$MIL"
sed -i "s|@MILTER_SOCK@|inet:$(free_port)@127.0.0.1|" "$POSTROOM_CONF"
run_status 78 "MX mode on, database reachable, no hosted domain: refuses to start (78)" \
	"$MILTER" -f -c "$POSTROOM_CONF"
like "$(cat "$TAP_TMP/err")" "no hosted domain" "and says why"

metric() {
	curl -s --max-time 5 "http://$METRICS/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'
}
tempfails() { metric 'postroom_milter_rcpt_total{verdict="tempfail"}'; }
probe() {	# probe RCPT EXPECT DESC
	PROBE_RCPT=$1 PROBE_EXPECT=$2 PROBE_DESC=$3 mt_run probe.lua
}
# probe_tempfail RCPT DESC - refused, and counted as a tempfail
probe_tempfail() {
	local before after
	before=$(tempfails)
	probe "$1" replycode "$2: refused"
	after=$(tempfails)
	is "$((${after:-0} - ${before:-0}))" 1 "$2: a temporary refusal (451 4.3.0)"
}

# ---- database unreachable at start: start, tempfail until it answers ------
pctl domain add example.com >/dev/null
pctl user add alice@example.com >/dev/null
conf_with "$SEC" 'rules = { mx_enabled = true; };' "$MIL"
pg_server_stop
milter_start || { fail "starts with the database down"; done_testing; }
pass "MX mode on, database unreachable: starts anyway"
like "$(cat "$MILTER_LOG")" "cannot read hosted domains" "and warns"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/healthz")" 503 "/healthz says 503 without the database"
probe_tempfail "<alice@example.com>" "database down at start, hosted user"
probe_tempfail "<victim@foreign.org>" "database down at start, foreign domain"
pg_server_start
for i in $(seq 50); do grep -q "hosted domains loaded: 1" "$MILTER_LOG" && break; sleep 0.1; done
probe "<alice@example.com>" continue "database back: hosted user accepted"
probe "<victim@foreign.org>" replycode "database back: foreign domain refused"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/healthz")" 200 "/healthz says 200"

# ---- stopped at run time --------------------------------------------------
pg_server_stop
for i in $(seq 50); do grep -q "lost the database" "$MILTER_LOG" && break; sleep 0.1; done
probe_tempfail "<alice@example.com>" "database stopped at run time, hosted user (cached before)"
pg_server_start
for i in $(seq 50); do [ "$(grep -c "hosted domains loaded" "$MILTER_LOG")" -ge 2 ] && break; sleep 0.1; done
probe "<alice@example.com>" continue "database back again: accepted"

# ---- users and aliases follow LISTEN/NOTIFY (postroom_addresses) ----------
# "unknown" is cached for milter.cache_ttl (30 s); a user created at run
# time must not be refused for that long (a 550 bounces real mail)
probe "<dave@example.com>" replycode "unknown user refused (and cached as unknown)"
pctl user add dave@example.com >/dev/null
sleep 1
probe "<dave@example.com>" continue "a user created at run time is accepted at once (NOTIFY)"
probe "<sales@example.com>" replycode "unknown alias refused (and cached)"
pctl alias add sales@example.com dave@example.com >/dev/null
sleep 1
probe "<sales@example.com>" continue "an alias created at run time is accepted at once"
pctl alias remove sales@example.com >/dev/null
sleep 1
probe "<sales@example.com>" replycode "an alias removed at run time is refused at once"

# ---- domains follow LISTEN/NOTIFY -----------------------------------------
pctl domain add example.org >/dev/null
pctl user add carol@example.org >/dev/null
for i in $(seq 50); do grep -q "hosted domains reloaded: 2" "$MILTER_LOG" && break; sleep 0.1; done
probe "<carol@example.org>" continue "a domain added at run time is hosted at once (NOTIFY)"
pctl domain remove example.org >/dev/null
for i in $(seq 50); do grep -q "hosted domains reloaded: 1" "$MILTER_LOG" && break; sleep 0.1; done
probe "<carol@example.org>" replycode "a domain removed at run time is foreign at once"
pctl domain remove example.com >/dev/null
for i in $(seq 50); do grep -q "hosted domains reloaded: 0" "$MILTER_LOG" && break; sleep 0.1; done
probe_tempfail "<alice@example.com>" "the last domain removed: tempfailed, never accepted"
probe_tempfail "<victim@foreign.org>" "the last domain removed, foreign domain: tempfailed"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/healthz")" 503 "/healthz 503 with MX mode and no domain"
pctl domain add example.com >/dev/null
for i in $(seq 50); do grep -q "hosted domains reloaded: 1" "$MILTER_LOG" && break; sleep 0.1; done
probe "<alice@example.com>" continue "domain back: accepted"

# ---- privileges, metrics ---------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
	uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$MILTER_PID/status")
	want=$(id -u "$(milter_user)")
	is "$uid" "$want $want $want $want" "runs as $(milter_user) (real, effective, saved, fs uid)"
fi
m=$(curl -s "http://$METRICS/metrics")
like "$m" 'postroom_milter_rcpt_total\{verdict="accept"\} [1-9]' "metrics: rcpt accept counted"
like "$m" 'postroom_milter_relay_attempts_total [1-9]' "metrics: relay attempts counted"
like "$m" 'postroom_milter_lookups_total\{result="error"\} [1-9]' "metrics: lookup errors counted"
like "$m" 'postroom_milter_rcpt_decision_seconds_bucket' "metrics: RCPT decision time histogram"
milter_stop_check

# ---- a unix socket, mode 0660, given to the daemon's user -------------------
if [ "$(id -u)" -eq 0 ]; then
	conf_with "$SEC" "milter = { socket = \"unix:$TAP_TMP/milter.sock\"; user = \"$(milter_user)\"; socket_group = \"postfix\"; };"
	"$MILTER" -f -c "$POSTROOM_CONF" >>"$TAP_TMP/unix.log" 2>&1 &
	pid=$!
	for i in $(seq 50); do [ -S "$TAP_TMP/milter.sock" ] && break; sleep 0.1; done
	is "$(stat -c '%a %U %G' "$TAP_TMP/milter.sock" 2>/dev/null)" "660 $(milter_user) postfix" \
		"unix socket: mode 0660, owned by the daemon user, group postfix"
	kill -TERM "$pid"
	wait "$pid"
fi
done_testing
