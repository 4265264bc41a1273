#!/usr/bin/env bash
# milter-protocol.sh - postroom-milter through the milter protocol
# (miltertest plays Postfix): the envelope-rule rows, the internal headers,
# the size limit and the attachment limit at end of message, postmaster
# (RFC 5321 4.5.1: a bare <Postmaster>, postmaster@ a hosted domain nobody
# owns; the start-up error for that domain).
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/milter/milter.sh"

pg_start || { fail "PostgreSQL starts"; done_testing; }
pg_fresh_db milter || { fail "database created"; done_testing; }
pctl domain add example.com >/dev/null
pctl user add alice@example.com >/dev/null
pctl user add bob@example.com >/dev/null
pctl alias add alice.alias@example.com alice@example.com >/dev/null
ok '[ "$(psqlc "SELECT count(*) FROM user_addresses")" = 3 ]' "fixture: three addresses"

milter_conf "security = { hmac_secret = \"$MILTER_SECRET\"; };" \
	'limits = { message_size_max = 65536; attachment_size_max = 1024; };' \
	'rules = { mx_enabled = true; sent_recipient = "sent@postroom.invalid"; postmaster_domain = "example.com"; };' \
	"milter = { socket = \"@MILTER_SOCK@\"; user = \"$(milter_user)\"; };" \
	'deliver = { trusted_authserv_id = "mx.postroom.test"; };'
milter_start || { fail "postroom-milter starts"; done_testing; }
pass "postroom-milter starts"

mt_run rows.lua
export SIGHDR_TOOL="$POSTROOM_BUILDDIR/tests/milter/sighdr-tool" MILTER_SECRET
mt_run headers.lua
mt_run attach.lua
mt_run postmaster.lua
like "$(cat "$MILTER_LOG")" "configuration error: hosted domain\(s\) without a postmaster mailbox: example.com" \
	"start-up: the hosted domain whose postmaster has no mailbox is logged as a configuration error"
like "$(cat "$MILTER_LOG")" "recipient <Postmaster> from 192.0.2.10 delivered to <postmaster@example.com>" \
	"the bare <Postmaster> replacement is logged"
like "$(cat "$MILTER_LOG")" "reject: end of data from 192.0.2.10: 552 5.3.4 attachment of 1025 bytes exceeds the limit of 1024 bytes" \
	"attachment refusal logged with client and reply"

like "$(cat "$MILTER_LOG")" "warning: 4QTEST[0-9]+: relay attempt refused: RCPT TO <victim@foreign.org> from 192.0.2.10" \
	"relay attempt logged as a warning with queue id, client, recipient"
like "$(cat "$MILTER_LOG")" "reject: RCPT TO <nobody@example.com> from 192.0.2.10, MAIL FROM <someone@foreign.org>: 550 5.1.1 User unknown" \
	"rejection logged once with client, sender, recipient and reply"
n=$(grep -c "RCPT TO <nobody@example.com> from 192.0.2.10, MAIL FROM <someone@foreign.org>" "$MILTER_LOG")
is "$n" 1 "exactly one log line for that rejection"
ok '! grep -q "^forged log line" "$MILTER_LOG" && grep -q "RCPT TO <evil??forged log line@foreign.org>" "$MILTER_LOG"' \
	"a CR LF in a logged address cannot start a log line of its own"
milter_stop_check

# rules.postmaster_domain not hosted: the bare <Postmaster> is not sent there
sed -i 's/postmaster_domain = "example.com";/postmaster_domain = "elsewhere.example";/' "$POSTROOM_CONF"
: >"$MILTER_LOG"
milter_start || { fail "postroom-milter restarts"; done_testing; }
mt_run postmaster-unhosted.lua
like "$(cat "$MILTER_LOG")" "configuration error: .*rules.postmaster_domain elsewhere.example is not a hosted domain" \
	"start-up: a rules.postmaster_domain that is not hosted is logged as a configuration error"
like "$(cat "$MILTER_LOG")" "rules.postmaster_domain elsewhere.example is not a hosted domain: <Postmaster> left to the MTA" \
	"the bare <Postmaster> left to the MTA is logged"
milter_stop_check
done_testing
