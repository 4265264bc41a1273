#!/usr/bin/env bash
# bounce-store.sh - issue 21 through postroom-deliver (its own database
# role) and lib/rules_pg (the milter's role), on a real PostgreSQL:
# - a hard-bounce DSN (null sender) naming a sent email's Message-Id is
#   stored as bounce-hard, linked to the sent email and to the recipient
#   it reports on, and that recipient is put on the sender's suppression
#   list; a failed address the sent email never had is linked without an
#   address and NOT suppressed (a forged report cannot suppress anyone);
# - rules_pg's lookup then says FOUND for that sender and address, and
#   NOT_FOUND for another user or another address;
# - soft bounces: one does not suppress, the second (rules.
#   suppression_soft_count = 2) does;
# - a delay DSN: class delay, linked, nothing suppressed;
# - an RFC 3834 auto-reply: class auto-reply, linked through In-Reply-To;
# - an ARF complaint: class complaint, its recipient suppressed;
# - a mailing-list message with Auto-Submitted: no report (ordinary);
# - the application's SQL functions (its own role): a domain-scope entry
#   refuses every user of the domain; remove takes it off again;
# - postroomctl: mail show --json gives a report's class and facts and a
#   sent email's reports; suppression list|add|remove, with --json;
# - the 'new' event of each (events.data, migration 022) carries its class
#   and, for a linked report, the sent email's id (through
#   postroom_events_read under the app role too).
set -u
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$(dirname "$0")/deliver-helpers.bash"
TOOL=$POSTROOM_BUILDDIR/tests/tools/rules-pg-tool

pg_start || { fail "PostgreSQL"; done_testing; }
pg_fresh_db bounces || { fail "fresh database"; done_testing; }
pg_login_roles
pg_roles_conf >>"$POSTROOM_CONF"
echo 'rules = { suppression_soft_count = 2; };' >>"$POSTROOM_CONF"
pctl domain add example.com >/dev/null
pctl user add alice@example.com >/dev/null
pctl user add bob@example.com >/dev/null

# the sent email: alice to dead@, soft@, gone@, slow@, away@remote.example
sent=$(msg_file sent.eml <<'EOF2'
From: Alice <alice@example.com>
To: dead@remote.example, soft@remote.example, gone@remote.example
Cc: slow@remote.example, away@remote.example
Subject: the newsletter
Message-ID: <sent.1@example.com>
Date: Mon, 1 Jun 2026 09:00:00 +0000

Hello.
EOF2
)
deliver_run "$sent" -f alice@example.com -a alice@example.com --sent -- sent@postroom.invalid
is "$D_RC" 0 "the sent copy is stored"
SENT_ID=$D_ID

# dsn NAME RCPT ACTION STATUS [MSGID] - a Postfix-like DSN file (the
# hard one also names victim@other.example, which the sent email never had)
dsn() {
	local victim=
	[ "$1" = hard ] && victim=$'Final-Recipient: rfc822; victim@other.example\nAction: failed\nStatus: 5.1.1\n'
	msg_file "$1" <<EOF2
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: alice@example.com
Subject: Undelivered Mail Returned to Sender $1
Message-ID: <dsn.$1@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B$1"

--B$1
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B$1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; $2
Original-Recipient: rfc822;$2
Action: $3
Status: $4
Diagnostic-Code: smtp; ${4:0:1}50 $4 the answer

$victim
--B$1
Content-Type: text/rfc822-headers

From: Alice <alice@example.com>
To: $2
Subject: the newsletter
Message-ID: <${5:-sent.1@example.com}>

--B$1--
EOF2
}
report() { psqlc "SELECT COALESCE((SELECT class FROM email_reports WHERE email_id = '$1'), 'ordinary')"; }
supp() { psqlc "SELECT count(*) FROM suppressions s JOIN users u ON u.id = s.user_id WHERE u.address = 'alice@example.com' AND s.address = '$1'"; }

deliver_run "$(dsn hard dead@remote.example failed 5.1.1)" -f '' -- alice@example.com
is "$D_RC" 0 "a hard-bounce DSN is stored"
HARD=$D_ID
is "$(report "$HARD")" bounce-hard "its class is bounce-hard"
is "$(psqlc "SELECT original_message_id FROM email_reports WHERE email_id = '$HARD'")" sent.1@example.com \
	"the original Message-Id from the returned headers"
is "$(psqlc "SELECT string_agg(address || ':' || status || ':' || kind, ' ' ORDER BY position) FROM email_report_recipients WHERE email_id = '$HARD'")" \
	"dead@remote.example:5.1.1:hard victim@other.example:5.1.1:hard" "both failed recipients recorded"
is "$(psqlc "SELECT string_agg(COALESCE(address, '-') || ':' || (sent_email_id = '$SENT_ID'), ' ' ORDER BY address NULLS LAST) FROM email_report_links WHERE report_email_id = '$HARD'")" \
	"dead@remote.example:true -:true" "linked to the sent email; the foreign address without an address"
is "$(supp dead@remote.example)" 1 "dead@remote.example is on alice's suppression list"
like "$(psqlc "SELECT reason FROM suppressions WHERE address = 'dead@remote.example'")" "^hard bounce: 5.1.1$" \
	"the reason names the hard bounce"
is "$(psqlc "SELECT count(*) FROM suppressions WHERE address = 'victim@other.example'")" 0 \
	"an address the sent email never had is not suppressed"

# the milter's lookup, as the milter's own role
mkfifo "$TAP_TMP/in" "$TAP_TMP/out"
"$TOOL" "$(pg_role_conninfo milter)" 0 3600 3600 <"$TAP_TMP/in" >"$TAP_TMP/out" 2>"$TAP_TMP/tool.log" &
TOOL_PID=$!
exec 7>"$TAP_TMP/in" 8<"$TAP_TMP/out"
ask() {
	local r
	echo "$*" >&7
	read -r -t 10 r <&8 || r="<no answer>"
	echo "$r"
}
is "$(ask suppressed dead@remote.example alice@example.com)" FOUND "lookup: suppressed for alice"
is "$(ask suppressed DEAD@Remote.Example alice@example.com)" FOUND "lookup: case does not matter"
is "$(ask suppressed dead@remote.example bob@example.com)" NOT_FOUND "lookup: not for bob"
is "$(ask suppressed soft@remote.example alice@example.com)" NOT_FOUND "lookup: not another address"

deliver_run "$(dsn soft1 soft@remote.example failed 4.2.1)" -f '' -- alice@example.com
is "$(report "$D_ID")" bounce-soft "a failed 4.2.1 DSN is bounce-soft"
is "$(supp soft@remote.example)" 0 "one soft bounce does not suppress"
deliver_run "$(dsn soft2 soft@remote.example failed 4.2.1)" -f '' -- alice@example.com
is "$(supp soft@remote.example)" 1 "the second within the window does (suppression_soft_count = 2)"
like "$(psqlc "SELECT reason FROM suppressions WHERE address = 'soft@remote.example'")" "^2 soft bounces within 604800 s$" \
	"its reason counts the soft bounces"
is "$(ask suppressed soft@remote.example alice@example.com)" FOUND "lookup: never cached, refused at once"

deliver_run "$(dsn delay slow@remote.example delayed 4.4.1)" -f '' -- alice@example.com
is "$(report "$D_ID")" delay "Action: delayed: class delay"
is "$(psqlc "SELECT count(*) FROM email_report_links WHERE report_email_id = '$D_ID' AND address = 'slow@remote.example'")" 1 \
	"the delay notice is linked to the recipient"
is "$(supp slow@remote.example)" 0 "a delay suppresses nothing"

auto=$(msg_file auto.eml <<'EOF2'
From: Away <away@remote.example>
To: alice@example.com
Subject: Out of office: the newsletter
Message-ID: <ooo.1@remote.example>
In-Reply-To: <sent.1@example.com>
Auto-Submitted: auto-replied

I am away.
EOF2
)
deliver_run "$auto" -f '' -- alice@example.com
is "$(report "$D_ID")" auto-reply "Auto-Submitted: auto-replied: class auto-reply"
AUTO=$D_ID
is "$(psqlc "SELECT address FROM email_report_links WHERE report_email_id = '$D_ID' AND sent_email_id = '$SENT_ID'")" \
	away@remote.example "linked through In-Reply-To, to the replying recipient"
is "$(supp away@remote.example)" 0 "an auto-reply suppresses nothing"

arf=$(msg_file arf.eml <<'EOF2'
From: <fbl@isp.example>
To: alice@example.com
Subject: complaint about message
Message-ID: <arf.1@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf"

--arf
Content-Type: text/plain

This is an abuse report.

--arf
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: fbl/1.0
Version: 1
Original-Rcpt-To: <gone@remote.example>

--arf
Content-Type: message/rfc822

From: Alice <alice@example.com>
To: gone@remote.example
Subject: the newsletter
Message-ID: <sent.1@example.com>

Hello.
--arf--
EOF2
)
deliver_run "$arf" -f fbl@isp.example -- alice@example.com
is "$(report "$D_ID")" complaint "an ARF report: class complaint"
ARF=$D_ID
is "$(supp gone@remote.example)" 1 "the complained-about recipient is suppressed"
is "$(psqlc "SELECT reason FROM suppressions WHERE address = 'gone@remote.example'")" complaint "reason: complaint"

list=$(msg_file list.eml <<'EOF2'
From: Dev List <dev@lists.example>
To: alice@example.com
Subject: [dev] digest
Message-ID: <digest.1@lists.example>
List-Id: <dev.lists.example>
Auto-Submitted: auto-generated
In-Reply-To: <sent.1@example.com>

This week.
EOF2
)
deliver_run "$list" -f dev-bounces@lists.example -- alice@example.com
is "$(report "$D_ID")" ordinary "a mailing-list message with Auto-Submitted: ordinary"
is "$(psqlc "SELECT count(*) FROM email_report_links WHERE report_email_id = '$D_ID'")" 0 "...and not linked"
LIST=$D_ID

# the 'new' events: the class (and the sent email) in their data, as the
# read function returns it (031: looked up when read, not in the row)
ev() { psqlc "SELECT string_agg(data::text, ' ') FROM postroom_events_read(NULL, 100000) WHERE kind = 'new' AND email_id = '$1'"; }
is "$(ev "$HARD")" "{\"class\": \"bounce-hard\", \"sent_email_id\": \"$SENT_ID\"}" \
	"the hard bounce's 'new' event: class bounce-hard and the sent email"
is "$(ev "$AUTO")" "{\"class\": \"auto-reply\", \"sent_email_id\": \"$SENT_ID\"}" \
	"the auto-reply's 'new' event: class auto-reply and the sent email"
is "$(ev "$LIST")" '{"class": "ordinary"}' "the list message's 'new' event: class ordinary, no sent email"
is "$(psqlc "SELECT count(*) FROM postroom_events_read(NULL, 100000) WHERE kind = 'sent' AND email_id = '$SENT_ID' AND data IS NULL")" 1 \
	"the sent copy's 'sent' event: no data"
is "$("$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 "$(pg_role_conninfo app)" -c \
	"SELECT data->>'class' FROM postroom_events_read(NULL, 1000, NULL) WHERE kind = 'new' AND email_id = '$ARF'")" \
	complaint "read by the app role (postroom_events_read): the complaint's class"

# the application's functions, under its own role
app() { "$PG_BINDIR/psql" -qXAt -v ON_ERROR_STOP=1 "$(pg_role_conninfo app)" -c "$1"; }
ok "app \"SELECT postroom_suppress(NULL, 'example.com', 'list@remote.example', 'manual')\" >/dev/null" \
	"the app role adds a domain-scope suppression"
is "$(ask suppressed list@remote.example bob@example.com)" FOUND "lookup: it applies to bob too"
is "$(app "SELECT count(*) FROM postroom_suppressions_of((SELECT id FROM users WHERE address = 'bob@example.com'))")" 1 \
	"postroom_suppressions_of lists it for bob"
is "$(app "SELECT postroom_suppression_remove(NULL, 'example.com', 'list@remote.example')")" 1 \
	"postroom_suppression_remove takes it off"
is "$(ask suppressed list@remote.example bob@example.com)" NOT_FOUND "lookup: bob may write to it again"

# postroomctl (the admin role)
js=$(pctl --json mail show "$SENT_ID")
is "$(jq -r '[.reports[] | .class + ":" + (.address // "-")] | sort | join(" ")' <<<"$js")" \
	"auto-reply:away@remote.example bounce-hard:- bounce-hard:dead@remote.example bounce-soft:soft@remote.example bounce-soft:soft@remote.example complaint:gone@remote.example delay:slow@remote.example" \
	"mail show --json on the sent email lists its reports"
is "$(jq -r .class <<<"$js")" ordinary "...and its own class, ordinary"
js=$(pctl --json mail show "$HARD")
is "$(jq -r '.class + " " + .report.original_message_id + " " + .report.recipients[0].status' <<<"$js")" \
	"bounce-hard sent.1@example.com 5.1.1" "mail show --json on the bounce: class and facts"
is "$(pctl --json suppression list --user alice@example.com | jq -r '[.[].address] | sort | join(" ")')" \
	"dead@remote.example gone@remote.example soft@remote.example" "suppression list --user --json"
ok "pctl suppression add manual@remote.example --user bob@example.com --reason 'asked' >/dev/null" \
	"suppression add"
is "$(ask suppressed manual@remote.example bob@example.com)" FOUND "lookup: the added entry refuses bob"
like "$(pctl suppression list --user bob@example.com)" "manual@remote.example.*user.*asked" "suppression list shows it"
ok "pctl suppression remove manual@remote.example --user bob@example.com >/dev/null" "suppression remove"
pctl suppression remove manual@remote.example --user bob@example.com >/dev/null 2>&1
is "$?" 1 "removing it again: exit 1"
is "$(ask suppressed manual@remote.example bob@example.com)" NOT_FOUND "lookup: bob may write to it again"
exec 7>&- 8<&-
wait "$TOOL_PID"
done_testing
