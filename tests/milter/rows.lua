-- rows.lua - MISSION.md's envelope-rule rows through the milter protocol,
-- with the macros Postfix sends. Configuration (milter-protocol.sh): MX mode
-- on, recipient validation on, sender login match on; hosted example.com;
-- users alice@example.com (alias alice.alias@example.com), bob@example.com.
-- Expected: MTA reply "continue" for accept, "replycode" (the milter's own
-- code and text) for a refusal. Exact codes and texts are checked by
-- milter-replies.sh and the Postfix tests.
dofile(os.getenv("MT_LIB"))

local C, Y = SMFIR_CONTINUE, SMFIR_REPLYCODE

local function expect(got, want, desc)
	ok(got == want, desc .. " (" .. replyname(got) .. ")")
end

-- MX port (25), unauthenticated
local c = session("mx.postroom.test", "25")
local r, q = mail(c, "someone@foreign.org", nil)
expect(r, C, "MX enabled, port 25, unauthenticated: MAIL FROM accepted")
expect(rcpt(c, "<alice@example.com>", q), C, "port 25, hosted user accepted")
expect(rcpt(c, "<ALICE@EXAMPLE.COM.>", q), C, "port 25, hosted user in upper case with trailing dot accepted")
expect(rcpt(c, "<alice.alias@example.com>", q), C, "port 25, alias accepted")
expect(rcpt(c, "<alice+tag@example.com>", q), C, "port 25, sub-address accepted")
expect(rcpt(c, "<victim@foreign.org>", q), Y, "port 25, foreign domain refused (relay)")
expect(rcpt(c, "<nobody@example.com>", q), Y, "port 25, unknown user refused")
expect(rcpt(c, "<user%foreign.org@example.com>", q), Y, "port 25, percent hack refused")
expect(rcpt(c, "<foreign.org!user@example.com>", q), Y, "port 25, bang path refused")
expect(rcpt(c, "<@example.com:user@foreign.org>", q), Y, "port 25, source route refused")
expect(rcpt(c, "<\"user@foreign.org\"@example.com>", q), Y, "port 25, quoted user@foreign refused")
expect(rcpt(c, "<alice@[127.0.0.1]>", q), Y, "port 25, address literal refused")
expect(rcpt(c, "<alice@sub.example.com>", q), Y, "port 25, sub-domain refused")
expect(rcpt(c, "<>", q), Y, "port 25, empty recipient refused")
expect(rcpt(c, "alice@example.com", q), C, "port 25, recipient without brackets read as a path")
expect(rcpt(c, "<evil\r\nforged log line@foreign.org>", q), Y, "port 25, CR LF in a recipient refused")
mt.disconnect(c)

-- the null sender (bounces) on the MX port
c = session("mx.postroom.test", "25")
r, q = mail(c, "", nil)
expect(r, C, "port 25, null sender accepted")
expect(rcpt(c, "<bob@example.com>", q), C, "port 25, bounce to hosted user accepted")
mt.disconnect(c)

-- SIZE= over limits.message_size_max (65536 in this test)
c = session("mx.postroom.test", "25")
r, q = mail(c, "someone@foreign.org", nil, "SIZE=65537")
expect(r, Y, "SIZE= over the limit refused at MAIL FROM")
mt.disconnect(c)
c = session("mx.postroom.test", "25")
r, q = mail(c, "someone@foreign.org", nil, "SIZE=65536", "BODY=8BITMIME")
expect(r, C, "SIZE= at the limit accepted")
mt.disconnect(c)

-- SMTPUTF8
c = session("mx.postroom.test", "25")
r, q = mail(c, "j\195\182rg@foreign.org", nil, "SMTPUTF8")
expect(r, C, "SMTPUTF8: UTF-8 sender accepted")
expect(rcpt(c, "<alice@example.com>", q), C, "SMTPUTF8: hosted recipient accepted")
expect(rcpt(c, "<j\195\182rg@example.com>", q), Y, "SMTPUTF8: unknown UTF-8 user refused")
expect(rcpt(c, "<j\195rg@example.com>", q), Y, "SMTPUTF8: malformed UTF-8 refused")
mt.disconnect(c)
c = session("mx.postroom.test", "25")
r, q = mail(c, "j\195\182rg@foreign.org", nil)
expect(r, Y, "UTF-8 sender without SMTPUTF8 refused")
mt.disconnect(c)

-- submission (587, and the ORIGINATING name), unauthenticated
c = session("ORIGINATING", "587")
r, q = mail(c, "alice@example.com", nil)
expect(r, Y, "port 587, unauthenticated: MAIL FROM refused")
mt.disconnect(c)
c = session("mx.postroom.test", "465")
r, q = mail(c, "alice@example.com", nil)
expect(r, Y, "port 465, unauthenticated: MAIL FROM refused")
mt.disconnect(c)
c = session("ORIGINATING", "25")
r, q = mail(c, "someone@foreign.org", nil)
expect(r, Y, "daemon name ORIGINATING on port 25 is a submission: unauthenticated refused")
mt.disconnect(c)

-- other port, unauthenticated
c = session("mx.postroom.test", "2525")
r, q = mail(c, "someone@foreign.org", nil)
expect(r, Y, "other port, unauthenticated: MAIL FROM refused")
mt.disconnect(c)
c = session(nil, nil)
r, q = mail(c, "someone@foreign.org", nil)
expect(r, Y, "no daemon macros at all (unknown service), unauthenticated: refused")
mt.disconnect(c)

-- authenticated submission
c = session("ORIGINATING", "587")
r, q = mail(c, "alice@example.com", "alice@example.com")
expect(r, C, "port 587, authenticated, own address: MAIL FROM accepted")
expect(rcpt(c, "<friend@foreign.org>", q), C, "port 587, authenticated: foreign recipient accepted")
expect(rcpt(c, "<nobody@example.com>", q), C, "port 587, authenticated: unknown hosted recipient accepted")
mt.disconnect(c)
c = session("ORIGINATING", "587")
r, q = mail(c, "alice.alias@example.com", "alice@example.com")
expect(r, C, "authenticated: own alias as MAIL FROM accepted")
mt.disconnect(c)
c = session("ORIGINATING", "587")
r, q = mail(c, "", "alice@example.com")
expect(r, C, "authenticated: null sender accepted")
mt.disconnect(c)
c = session("ORIGINATING", "587")
r, q = mail(c, "bob@example.com", "alice@example.com")
expect(r, Y, "authenticated: another user's address as MAIL FROM refused")
mt.disconnect(c)
c = session("mx.postroom.test", "25")
r, q = mail(c, "alice@example.com", "alice@example.com")
expect(r, C, "port 25, authenticated: a submission")
expect(rcpt(c, "<friend@foreign.org>", q), C, "port 25, authenticated: foreign recipient accepted")
mt.disconnect(c)
c = session("mx.postroom.test", "2525")
r, q = mail(c, "alice@example.com", "alice@example.com")
expect(r, C, "other port, authenticated: accepted")
expect(rcpt(c, "<friend@foreign.org>", q), C, "other port, authenticated: foreign recipient accepted")
mt.disconnect(c)

-- two messages on one connection: authentication is per message macro
c = session("mx.postroom.test", "25")
r, q = mail(c, "alice@example.com", "alice@example.com")
expect(rcpt(c, "<friend@foreign.org>", q), C, "first message authenticated: foreign accepted")
mt.abort(c)
r, q = mail(c, "someone@foreign.org", nil)
expect(rcpt(c, "<friend@foreign.org>", q), Y, "second message without {auth_authen}: relay refused")
mt.disconnect(c)
