#!/usr/bin/env bash
# lmtpd-postmaster.sh - postmaster in the store (RFC 5321 4.5.1, issue 17
# item 6), through postroom-lmtpd and postroom-deliver with recipient
# validation on: postmaster@ a hosted domain is accepted and stored for the
# user or alias postmaster@DOMAIN, else for the owner of
# rules.postmaster_address, else unlinked (never refused); a bare
# <Postmaster> is stored for postmaster@rules.postmaster_domain; a foreign
# domain's postmaster is still unknown. The configuration error (a hosted
# domain with neither) fails `postroomctl config check`, which names it,
# makes `domain add` warn, and is logged by lmtpd at start and reload.
. "$(dirname "$0")/../lib/tap.sh"
. "$POSTROOM_SRCDIR/tests/lib/pg.sh"
. "$POSTROOM_SRCDIR/tests/integration/lmtpd-helpers.bash"
. "$POSTROOM_SRCDIR/tests/integration/deliver-helpers.bash"
pg_start && pg_fresh_db postroom || { fail "database ready"; done_testing; }
pctl domain add a.test >/dev/null 2>&1
pctl domain add b.test >/dev/null 2>&1
for u in alice bob; do pctl user add $u@a.test >/dev/null; done
pctl alias add postmaster@a.test alice@a.test >/dev/null
printf 'rules = { postmaster_domain = "A.test"; postmaster_address = "abuse@a.test"; };\n' >>"$POSTROOM_CONF"
ALICE=$(psqlc "SELECT id FROM users WHERE address = 'alice@a.test'")
BOB=$(psqlc "SELECT id FROM users WHERE address = 'bob@a.test'")

# --- the configuration error: b.test has no postmaster, abuse@a.test no owner
out=$(pctl config check 2>&1)
st=$?
is "$st" 78 "config check: a hosted domain with neither postmaster@DOMAIN nor an owned rules.postmaster_address fails (EX_CONFIG)"
like "$out" "configuration error: hosted domain\(s\) without a postmaster mailbox: b\.test " "config check names the domain (b.test)"
unlike "$out" "mailbox: a\.test|, a\.test" "... and not a.test, which has the alias postmaster@a.test"
like "$out" "rules.postmaster_address abuse@a.test is no user's address" "config check says the fallback address has no owner"
err=$(pctl domain add c.test 2>&1 >/dev/null)
like "$err" "warning: hosted domain\(s\) without a postmaster mailbox: c\.test " "domain add warns about the new domain's postmaster"
is "$(psqlc "SELECT count(*) FROM domains WHERE name = 'c.test'")" 1 "... and adds the domain all the same"

lmtpd_start || { fail "lmtpd started"; done_testing; }
like "$(cat "$LMTPD_LOG")" "configuration error: hosted domain\(s\) without a postmaster mailbox: b\.test, c\.test" \
	"lmtpd logs the configuration error at start"
S=$LMTPD_SOCKET

# deliver_lmtp ID RCPT...: one message with Message-ID <ID@report.example>
# to the recipients; the LMTP replies on stdout
deliver_lmtp() {
	local id=$1 r m
	shift
	m=$(lmtp_msg "$id.eml" <<M
From: reporter@report.example
To: postmaster@b.test
Subject: abuse report $id
Message-ID: <$id@report.example>

spam came from your network
M
)
	{
		printf 'LHLO c\r\nMAIL FROM:<reporter@report.example>\r\n'
		for r in "$@"; do printf 'RCPT TO:<%s>\r\n' "$r"; done
		printf 'DATA\r\n'; cat "$m"; printf '.\r\nQUIT\r\n'
	} >"$TAP_TMP/$id.in"
	lmtp "$S" <"$TAP_TMP/$id.in"
}
# owner_of ID ADDRESS: "user id or NULL:delivered" of the recipient row
owner_of() {
	psqlc "SELECT coalesce(r.user_id::text, 'NULL') || ':' || r.delivered FROM email_recipients r JOIN emails e ON e.id = r.email_id WHERE e.message_id = '$1@report.example' AND lower(r.address) = lower('$2')"
}

# --- neither: accepted, stored unlinked ---------------------------------------
out=$(deliver_lmtp pm1 postmaster@b.test)
like "$out" "250 2.1.5" "RCPT postmaster@b.test (hosted, nobody's, no owned fallback): 250, not 550 5.1.1"
like "$out" "250 2.0.0 <postmaster@b.test> Ok: stored as" "stored"
is "$(owner_of pm1 postmaster@b.test)" "NULL:true" "stored unlinked: in nobody's mailbox until postmaster@b.test exists"
like "$(cat "$LMTPD_LOG")" "recipient <postmaster@b.test> has no user: stored unlinked" "the unlinked postmaster mail is logged"

# --- the user or alias postmaster@DOMAIN ----------------------------------------
out=$(deliver_lmtp pm2 PostMaster@A.TEST)
like "$out" "250 2.0.0 <PostMaster@A.TEST> Ok: stored as" "RCPT PostMaster@A.TEST: stored"
is "$(owner_of pm2 PostMaster@A.TEST)" "$ALICE:true" "stored for the alias postmaster@a.test (alice)"

# --- a bare <Postmaster>: rules.postmaster_domain's ------------------------------
out=$(deliver_lmtp pm3 Postmaster)
like "$out" "250 2.1.5" "RCPT <Postmaster> (bare): 250, not 501"
like "$out" "250 2.0.0 <postmaster@a.test> Ok: stored as" "stored as postmaster@a.test (rules.postmaster_domain, lower case)"
is "$(owner_of pm3 postmaster@a.test)" "$ALICE:true" "in alice's mailbox (the alias postmaster@a.test)"

# --- the fallback: rules.postmaster_address ---------------------------------------
pctl alias add abuse@a.test bob@a.test >/dev/null
out=$(deliver_lmtp pm4 postmaster@b.test postmaster@c.test)
is "$(grep -c '^250 2.0.0' <<<"$out")" 2 "postmaster@b.test and postmaster@c.test: both stored"
is "$(owner_of pm4 postmaster@b.test)" "$BOB:true" "postmaster@b.test: in bob's mailbox (owner of rules.postmaster_address abuse@a.test)"
is "$(owner_of pm4 postmaster@c.test)" "$BOB:true" "postmaster@c.test: the same"
is "$(owner_of pm1 postmaster@b.test)" "NULL:true" "the earlier unlinked message is not given to the fallback's owner"
run_status 0 "config check passes once every hosted domain's postmaster has a mailbox" \
	"$POSTROOM_BUILDDIR/postroomctl" -c "$POSTROOM_CONF" config check
kill -HUP "$LMTPD_PID"
for i in $(seq 50); do grep -q "configuration reloaded" "$LMTPD_LOG" && break; sleep 0.1; done
is "$(grep -c 'without a postmaster mailbox' "$LMTPD_LOG")" 1 "lmtpd reload: nothing to log any more"

# --- never for a domain not hosted ---------------------------------------------
out=$(deliver_lmtp pm5 postmaster@foreign.example)
like "$out" "550 5.1.1 <postmaster@foreign.example>: recipient address unknown" \
	"RCPT postmaster@foreign.example: 550 5.1.1 (not hosted)"
out=$(deliver_lmtp pm6 postmaster+x@b.test)
like "$out" "550 5.1.1 <postmaster\+x@b.test>" "RCPT postmaster+x@b.test: unknown (exactly postmaster only)"

# --- postroom-deliver (pipe): the same store -----------------------------------
f=$(msg_file pipe.eml <<'M'
From: reporter@report.example
Subject: abuse report by pipe
Message-ID: <pm7@report.example>

spam again
M
)
pctl alias remove abuse@a.test >/dev/null
deliver_run "$f" -f reporter@report.example -- postmaster@b.test
is "$D_RC" 0 "postroom-deliver postmaster@b.test (nobody's, single recipient, validation on): exit 0, not 67"
is "$(owner_of pm7 postmaster@b.test)" "NULL:true" "stored unlinked"
deliver_run "$f" -f reporter@report.example -- nobody@b.test
is "$D_RC" 67 "postroom-deliver nobody@b.test: still 67 (EX_NOUSER)"

ok '! grep -Eq "Sanitizer|runtime error:" "$LMTPD_LOG"' "no sanitizer report from lmtpd"
done_testing
