#!/usr/bin/env bash
# roles-pipeline.sh - the whole pipeline with least-privilege database
# roles (issue 17 item 5): Postfix from contrib/postfix, postroom-authd,
# -milter, -policyd and -deliver each logged in as its own role
# (tests/lib/pipeline.sh does so by default), mail received on the MX
# port and submitted with an API key on 587 stored end to end, with no
# permission error in any log, and no daemon session as the owner.
# Needs root, postfix, swaks, jq.
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/lib/ports.sh"
. "$POSTROOM_SRCDIR/tests/lib/postfix.sh"
. "$POSTROOM_SRCDIR/tests/lib/pipeline.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh" # smtp_reply

pipeline_start || { fail "pipeline starts"; done_testing; }
pass "pipeline starts with a database role per daemon"
D=$PIPELINE_DOMAIN
A=alice@$D
B=bob@$D

for p in authd milter policyd deliver; do
	like "$(grep "^$p = " "$PIPELINE_CONF")" "conninfo = \"[^\"]*user=postroom_${p}_login " \
		"postroom.conf: $p logs in as postroom_${p}_login"
done
is "$(psqlc "SELECT string_agg(DISTINCT usename, ',' ORDER BY usename) FROM pg_stat_activity
	WHERE datname = 'postroom' AND usename <> current_user")" \
	"postroom_authd_login,postroom_milter_login,postroom_policyd_login" \
	"the running daemons' sessions are their own roles, none the owner's"

wait_count() {
	pipeline_wait_sql "$1" "$2" 30 || true
	is "$(psqlc "$1")" "$2" "${3:-stored}"
}

# inbound on the MX port: milter and policyd (rules) look the recipient
# up, deliver stores it
r=$(smtp_reply DATA "$PF_PORT_MX" sender@foreign.org "$A" \
	--header "Subject: roles in" --header "Message-ID: <roles-in@foreign.org>" --body "hello")
like "$r" '^250 ' "MX: accepted ($r)"
wait_count "SELECT count(*) FROM email_recipients r JOIN emails e ON e.id = r.email_id
	WHERE trim(both '<>' from e.message_id) = 'roles-in@foreign.org' AND r.delivered AND r.user_id IS NOT NULL" 1 \
	"... stored in alice's mailbox by deliver's role"
r=$(smtp_reply RCPT "$PF_PORT_MX" sender@foreign.org "nobody@$D")
like "$r" '^550 ' "MX: an unknown user refused by the rules role's lookup ($r)"

# submission with an API key: authd (keys), policyd (quota), deliver
r=$(smtp_reply DATA "$PF_PORT_SUB" "$A" "$B" --tls --auth PLAIN --auth-user "$A" \
	--auth-password "$PIPELINE_KEY" --header "Subject: roles sent" \
	--header "Message-ID: <roles-sent@$D>" --body "from alice")
like "$r" '^250 ' "587: AUTH with an API key (authd's role) and queued ($r)"
wait_count "SELECT count(*) FROM emails e JOIN users u ON u.id = e.sent_by_user_id
	WHERE trim(both '<>' from e.message_id) = 'roles-sent@$D' AND u.address = '$A'" 1 \
	"... stored with sent_by alice"
wait_count "SELECT count(*) FROM users WHERE address = '$A' AND last_login_at IS NOT NULL" 1 \
	"authd wrote last_login_at (its one column of users)"
r=$(smtp_reply MAIL "$PF_PORT_SUB" "$A" "$B" --tls --auth PLAIN --auth-user "$A" \
	--auth-password "pr_wrongwrongwrongwrongwrongwrongwrongwrong")
unlike "$r" '^250 ' "587: a wrong key refused ($r)"

# a revocation confirmed by authd, which writes its row of authd_instances
# as its own role (sql/011_authd_instances.sql)
kid=$(pctl --json key create "$A" --scope smtp --name revoke-me | jq -r .id)
run_status 0 "postroomctl key revoke: confirmed by authd logged in as its role" pctl key revoke "$kid"
is "$(psqlc "SELECT count(*) FROM authd_instances WHERE synced > 0")" 1 "... authd wrote its confirmation"

# no permission error anywhere
denied=$(grep -il "permission denied" "$PIPELINE_DIR"/logs/*.log "$PF_LOG" 2>/dev/null)
is "$denied" "" "no daemon log and no Postfix log holds a permission error"
is "$(grep -c 'permission denied' "$PG_DIR/server.log")" 0 "PostgreSQL logged no permission error"
done_testing
