-- postmaster.lua - RFC 5321 4.5.1 through the milter protocol (issue 17
-- item 6). Configuration (milter-protocol.sh): MX mode on, recipient
-- validation on, hosted example.com with no user postmaster@example.com,
-- rules.postmaster_domain = "example.com". A bare <Postmaster> and
-- postmaster@example.com are accepted on the MX port; the bare one is
-- replaced at end of message by postmaster@example.com; a foreign
-- domain's postmaster is still a relay attempt; submission is unchanged.
dofile(os.getenv("MT_LIB"))

local C, Y = SMFIR_CONTINUE, SMFIR_REPLYCODE

local function expect(got, want, desc)
	ok(got == want, desc .. " (" .. replyname(got) .. ")")
end

local function finish(c)
	if not mt.test_option(c, SMFIP_NOEOH) then mt.eoh(c) end
	local err = mt.bodystring(c, "a report\r\n")
	if err ~= nil then error("body: " .. err) end
	mt.eom(c)
	return mt.getreply(c)
end

-- MX port: the bare forms and postmaster@ the hosted domain, accepted
local c = session("mx.postroom.test", "25")
local r, q = mail(c, "reporter@foreign.org", nil)
expect(r, C, "MX port: MAIL FROM accepted")
expect(rcpt(c, "<Postmaster>", q), C, "MX port: bare <Postmaster> accepted (was 501 5.1.3)")
expect(rcpt(c, "<POSTMASTER>", q), C, "MX port: bare <POSTMASTER> accepted (any case)")
expect(rcpt(c, "<postmaster@example.com>", q), C,
	"MX port: postmaster@ a hosted domain without such a user accepted (was 550 5.1.1)")
expect(rcpt(c, "<PostMaster@Example.COM>", q), C, "MX port: PostMaster@Example.COM accepted")
expect(rcpt(c, "<postmaster@foreign.org>", q), Y, "MX port: postmaster@foreign.org refused (relay)")
expect(rcpt(c, "<postmaster%foreign.org@example.com>", q), Y,
	"MX port: postmaster%foreign.org@example.com refused (relay)")
expect(rcpt(c, "<postmaster@sub.example.com>", q), Y, "MX port: postmaster@ a sub-domain refused (relay)")
expect(rcpt(c, "<postmasterx>", q), Y, "MX port: another bare local part still refused")
expect(finish(c), C, "the message is accepted at end of data")
ok(mt.eom_check(c, MT_RCPTADD, "<postmaster@example.com>"),
	"end of message: postmaster@example.com (rules.postmaster_domain) added")
ok(mt.eom_check(c, MT_RCPTDELETE, "<Postmaster>") and mt.eom_check(c, MT_RCPTDELETE, "<POSTMASTER>"),
	"end of message: each bare spelling deleted")
ok(not mt.eom_check(c, MT_RCPTDELETE, "<postmaster@example.com>"),
	"end of message: postmaster@example.com itself is not deleted")
mt.disconnect(c)

-- a message without a bare postmaster: no recipient changed
c = session("mx.postroom.test", "25")
r, q = mail(c, "reporter@foreign.org", nil)
rcpt(c, "<postmaster@example.com>", q)
expect(finish(c), C, "postmaster@example.com alone: accepted at end of data")
ok(not mt.eom_check(c, MT_RCPTADD, "<postmaster@example.com>") and
	not mt.eom_check(c, MT_RCPTDELETE, "<postmaster@example.com>"),
	"postmaster@example.com alone: no recipient added or deleted")
mt.disconnect(c)

-- submission: unchanged
c = session("ORIGINATING", "587")
r, q = mail(c, "alice@example.com", nil)
expect(r, Y, "port 587, unauthenticated: still refused at MAIL FROM")
mt.disconnect(c)
c = session("ORIGINATING", "587")
r, q = mail(c, "alice@example.com", "alice@example.com")
expect(r, C, "port 587, authenticated: MAIL FROM accepted")
expect(rcpt(c, "<Postmaster>", q), Y, "port 587, authenticated: a bare <Postmaster> unchanged (501)")
expect(rcpt(c, "<postmaster@foreign.org>", q), C, "port 587, authenticated: postmaster@foreign.org (to anyone) unchanged")
mt.disconnect(c)
