#!/usr/bin/env bash
# schema-check.sh - every daemon checks the schema version it was built for
# (lib/schema_check.c) on each connection it opens: against a schema one
# version behind (not migrated yet) or a newer one with a migration not
# marked compatible, postroom-deliver, postroom-lmtpd and postroom-policyd
# defer (never bounce) with a log line saying what to do; a newer schema
# whose later migrations are all marked compatible (compatible_from,
# sql/029) is worked on. The daemons log in as their own roles, so the
# grant of migration 029 is tested too.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
. "$POSTROOM_SRCDIR/tests/integration/policyd-lib.bash"

pg_start && pg_fresh_db postroom && pg_login_roles || { fail "database ready"; done_testing; }
pctl domain add example.com >/dev/null
pctl user add alice@example.com >/dev/null
pd_conf "rules.mx_enabled = true" "policyd.spf = false" "policyd.conninfo = \"$(pg_role_conninfo policyd)\""
printf 'deliver = { conninfo = "%s"; };\n' "$(pg_role_conninfo deliver)" >>"$POSTROOM_CONF"
LMTPD_EXTRA="conninfo = \"$(pg_role_conninfo lmtpd)\";"
BUILD=$(psqlc "SELECT max(version) FROM schema_migrations")
is "$(psqlc "SELECT compatible_from FROM schema_migrations WHERE version = 29")" 28 \
	"migration 029 is recorded as compatible with builds of version 28 (its marker line)"

stored() { psqlc "SELECT count(*) FROM emails WHERE message_id = '$1@example.org'"; }
msg() { printf 'From: dave@example.org\r\nTo: alice@example.com\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nbody %s\r\n' "$1" "$1" "$1" >"$TAP_TMP/$1.eml"; echo "$TAP_TMP/$1.eml"; }
lsend() { # lsend ID: one LMTP transaction to lmtpd, the replies
	{ printf 'LHLO c\r\nMAIL FROM:<dave@example.org>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n'
	  cat "$(msg "$1")"; printf '.\r\nQUIT\r\n'; } | lmtp "$LMTPD_SOCKET"
}
inbound() { action protocol_state=RCPT server_port=25 client_address=198.51.100.31 \
	sender=dave@example.org recipient=alice@example.com; }

# check CASE EXPECT LOGLINE: deliver, lmtpd (fresh: its first connection)
# and policyd (restarted: its start) against the schema as it is now.
# EXPECT ok: stored once each, DUNNO; defer: 4xx/75, nothing stored, LOGLINE
# in each daemon's log
check() {
	local case=$1 expect=$2 line=${3:-}
	deliver_run "$(msg "$case-d")" -f dave@example.org -- alice@example.com
	lmtpd_start "$TAP_TMP/lmtpd-$case" || fail "$case: lmtpd starts"
	local lout pact
	lout=$(lsend "$case-l")
	pd_start || fail "$case: policyd starts"
	pact=$(inbound)
	if [ "$expect" = ok ]; then
		is "$D_RC $(stored "$case-d")" "0 1" "$case: postroom-deliver stores"
		like "$lout" "Ok: stored" "$case: postroom-lmtpd stores"
		is "$(stored "$case-l")" 1 "$case: ... once"
		is "$pact" DUNNO "$case: postroom-policyd answers"
	else
		is "$D_RC $(stored "$case-d")" "75 0" "$case: postroom-deliver defers (EX_TEMPFAIL), stores nothing"
		like "$D_ERR" "$line" "$case: ... and logs why"
		like "$lout" "^451 4\\.3\\.0 <alice@example.com>" "$case: postroom-lmtpd answers 451 4.3.0 (a deferral, not a bounce)"
		is "$(stored "$case-l")" 0 "$case: ... stores nothing"
		like "$(cat "$LMTPD_LOG")" "$line" "$case: ... and logs why"
		like "$pact" "^(4[0-9][0-9] |DEFER)" "$case: postroom-policyd defers ($pact)"
		like "$(cat "$TAP_TMP/policyd.log")" "$line" "$case: ... and logs why"
	fi
	lmtpd_stop
	pd_stop
	: >"$TAP_TMP/policyd.log"
}

check current ok

# --- one version behind: the newest migration not applied yet ----------------
psqlc "CREATE TABLE saved_row AS SELECT * FROM schema_migrations WHERE version = $BUILD" >/dev/null
psqlc "DELETE FROM schema_migrations WHERE version = $BUILD" >/dev/null
PREV=$(psqlc "SELECT max(version) FROM schema_migrations")
check older defer "database schema version $PREV is older than this build \\($BUILD\\): run postroomctl db migrate"
psqlc "INSERT INTO schema_migrations SELECT * FROM saved_row" >/dev/null

# --- a newer schema with a migration this build does not know -----------------
NEXT=$((BUILD + 1))
psqlc "INSERT INTO schema_migrations (version, name) VALUES ($NEXT, 'test_future')" >/dev/null
check newer defer "database schema version $NEXT is newer than this build \\($BUILD\\) and not marked compatible: run the matching version"

# --- the same, marked compatible with this build ------------------------------
psqlc "UPDATE schema_migrations SET compatible_from = $BUILD WHERE version = $NEXT" >/dev/null
check compatible ok

# --- marked compatible only from a later build: refused again -----------------
psqlc "INSERT INTO schema_migrations (version, name, compatible_from) VALUES ($((NEXT + 1)), 'test_future2', $NEXT)" >/dev/null
deliver_run "$(msg later-d)" -f dave@example.org -- alice@example.com
is "$D_RC $(stored later-d)" "75 0" "one later migration compatible only from $NEXT: postroom-deliver defers"
like "$D_ERR" "schema version $((NEXT + 1)) is newer than this build" "... and says so"

done_testing
