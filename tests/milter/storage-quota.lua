-- storage-quota.lua - the storage quota at RCPT through the milter
-- protocol (storage-quota.sh): alice@example.com (alias
-- alice.alias@example.com) is at her limit, bob@example.com has 1000
-- bytes of room, carol@example.com has no limit. Expected: "continue"
-- for accept, "tempfail"-class reply code (the milter's own 452 4.2.2,
-- seen as "replycode") for a full mailbox. The exact reply text is
-- checked through Postfix (tests/mta/storage-quota-postfix.sh).
dofile(os.getenv("MT_LIB"))

local C, Y = SMFIR_CONTINUE, SMFIR_REPLYCODE

local function expect(got, want, desc)
	ok(got == want, desc .. " (" .. replyname(got) .. ")")
end

local c = session("mx.postroom.test", "25")
local r, q = mail(c, "someone@foreign.org", nil)
expect(r, C, "MAIL FROM accepted")
expect(rcpt(c, "<alice@example.com>", q), Y, "a user at the limit: refused at RCPT")
expect(rcpt(c, "<ALICE.ALIAS@example.com>", q), Y, "her alias counts for her: refused")
expect(rcpt(c, "<alice+tag@example.com>", q), Y, "her sub-address: refused")
expect(rcpt(c, "<bob@example.com>", q), C, "a user under the limit, no SIZE=: accepted")
expect(rcpt(c, "<carol@example.com>", q), C, "a user without a limit: accepted")
expect(rcpt(c, "<postmaster@example.com>", q), C, "postmaster is never refused for quota")
mt.disconnect(c)

-- SIZE= announced at MAIL FROM
c = session("mx.postroom.test", "25")
r, q = mail(c, "someone@foreign.org", nil, "SIZE=1001")
expect(r, C, "SIZE=1001: MAIL FROM accepted")
expect(rcpt(c, "<bob@example.com>", q), Y, "SIZE= that would cross bob's limit: refused at RCPT")
expect(rcpt(c, "<carol@example.com>", q), C, "the same message to carol (no limit): accepted")
mt.disconnect(c)
c = session("mx.postroom.test", "25")
r, q = mail(c, "someone@foreign.org", nil, "SIZE=1000")
expect(rcpt(c, "<bob@example.com>", q), C, "SIZE= that exactly fills bob's room: accepted")
mt.disconnect(c)

-- an authenticated submission to a full local user is refused as well
c = session("ORIGINATING", "587")
r, q = mail(c, "carol@example.com", "carol@example.com")
expect(r, C, "submission: MAIL FROM accepted")
expect(rcpt(c, "<alice@example.com>", q), Y, "submission to a full local user: refused")
expect(rcpt(c, "<friend@foreign.org>", q), C, "submission to a foreign recipient: accepted")
mt.disconnect(c)
