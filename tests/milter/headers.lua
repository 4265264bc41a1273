-- headers.lua - end of message: incoming internal headers removed, the
-- signed submission header added for authenticated sessions only (with a
-- Message-Id when missing), the sent-copy recipient, the size limit
-- (limits.message_size_max = 65536, counted with CRLF line endings).
-- SIGHDR_TOOL signs/verifies with MILTER_SECRET, independently of the milter.
dofile(os.getenv("MT_LIB"))

local TOOL, SECRET = os.getenv("SIGHDR_TOOL"), os.getenv("MILTER_SECRET")
local SUB, VER = "X-Postroom-Submission", "X-Postroom-Verdict"

local function sh(cmd)
	local f = io.popen(cmd)
	local out = f:read("*a")
	f:close()
	return out
end
local function q(s) return "'" .. string.gsub(s, "'", "'\\''") .. "'" end
-- sign(name, {"k=v", ...})
local function sign(name, fields)
	local args = {}
	for _, f in ipairs(fields) do table.insert(args, q(f)) end
	return (string.gsub(sh(TOOL .. " sign " .. q(SECRET) .. " " .. name .. " " .. os.time() .. " " ..
		table.concat(args, " ")), "\n$", ""))
end
local function verify(name, value, mid, qid)
	return sh(TOOL .. " verify " .. q(SECRET) .. " " .. name .. " " .. q(value) .. " " .. q(mid or "-") .. " " .. q(qid or "-"))
end

-- when SMFIP_HDR_LEADSPC is negotiated, miltertest itself sends the value
-- with the leading space, as Postfix does
local function hdr(c, name, value)
	local err = mt.header(c, name, value)
	if err ~= nil then error("header: " .. err) end
end

-- eoh: Postfix sends it unless the milter asked it not to (SMFIP_NOEOH)
local function eoh(c)
	if not mt.test_option(c, SMFIP_NOEOH) then mt.eoh(c) end
end

-- a message body of exactly n bytes counted with CRLF (lines of 1000)
local function body_crlf(n, eol)
	eol = eol or "\r\n"
	local parts, left = {}, n
	while left > 0 do
		local line = math.min(left, 1000)
		table.insert(parts, string.rep("x", line - 2) .. eol)
		left = left - line
	end
	return table.concat(parts)
end
local function send_body(c, b)
	local i = 1
	while i <= #b do
		local err = mt.bodystring(c, string.sub(b, i, i + 32767))
		if err ~= nil then error("body: " .. err) end
		i = i + 32768
	end
end

-- 1. unauthenticated: forged and replayed submission headers are removed,
-- nothing is added
local c = session("mx.postroom.test", "25")
ok(mt.test_option(c, SMFIP_HDR_LEADSPC), "the milter asks for header values with their leading space")
local r, qid = mail(c, "someone@foreign.org", nil)
rcpt(c, "<alice@example.com>", qid)
local genuine = sign(SUB, { "user=alice@example.com", "mid=<old@example.com>", "qid=4QOLD" })
ok(string.find(verify(SUB, genuine, "<old@example.com>", "4QOLD"), "^ok") ~= nil,
	"fixture: a genuine header from another message verifies there")
hdr(c, "From", "<someone@foreign.org>")
hdr(c, SUB, "v=1; user=alice@example.com; ts=1; sig=00")
hdr(c, "Message-Id", "<old@example.com>")
hdr(c, "x-postroom-submission", genuine)
hdr(c, VER, "v=1; spam=no; ts=1; sig=00")
hdr(c, "Authentication-Results", " (forged) MX.postroom.test;\r\n\tdkim=pass header.d=example.com; dmarc=pass")
hdr(c, "Received-SPF", " pass (forged) envelope-from=\"someone@foreign.org\"; identity=mailfrom;")
eoh(c)
send_body(c, "hello\r\n")
mt.eom(c)
ok(mt.getreply(c) == SMFIR_CONTINUE, "unauthenticated message accepted at end of data")
ok(mt.eom_check(c, MT_HDRDELETE, SUB), "forged and replayed " .. SUB .. " removed")
ok(not mt.eom_check(c, MT_HDRINSERT, SUB) and not mt.eom_check(c, MT_HDRADD, SUB),
	"no " .. SUB .. " added for an unauthenticated session")
ok(mt.eom_check(c, MT_HDRDELETE, VER), "unverifiable " .. VER .. " removed")
ok(mt.eom_check(c, MT_HDRDELETE, "Authentication-Results"),
	"an incoming Authentication-Results with our authserv-id removed (deliver.trusted_authserv_id)")
ok(not mt.eom_check(c, MT_RCPTADD, "<sent@postroom.invalid>"), "no sent copy for inbound mail")
ok(not mt.eom_check(c, MT_HDRADD, "Message-Id"), "no Message-Id added to inbound mail")
ok(mt.eom_check(c, MT_HDRDELETE, "Received-SPF"), "an incoming Received-SPF removed (for OpenDMARC)")
ok(not mt.eom_check(c, MT_HDRINSERT, "Received-SPF"), "... and none added without a genuine verdict")
mt.disconnect(c)

-- 2. a genuine verdict for this queue id (policyd's PREPEND) survives
c = session("mx.postroom.test", "25")
r, qid = mail(c, "someone@foreign.org", nil)
rcpt(c, "<alice@example.com>", qid)
hdr(c, VER, sign(VER, { "spam=no", "spf=pass", "spf_identity=mailfrom", "spf_domain=foreign.org",
	"client=192.0.2.10", "qid=" .. qid }))
hdr(c, "From", "<someone@foreign.org>")
hdr(c, "Authentication-Results", " mx.foreign.org; dkim=pass header.d=foreign.org")
eoh(c)
send_body(c, "hello\r\n")
mt.eom(c)
ok(mt.getreply(c) == SMFIR_CONTINUE and not mt.eom_check(c, MT_HDRDELETE, VER),
	"policyd's genuine " .. VER .. " for this queue id is kept")
ok(not mt.eom_check(c, MT_HDRDELETE, "Authentication-Results"),
	"an Authentication-Results of another authserv-id is kept")
ok(mt.eom_check(c, MT_HDRINSERT, "Received-SPF", " pass (mx.postroom.test: postroom-policyd verdict) " ..
	"client-ip=192.0.2.10; envelope-from=\"someone@foreign.org\"; identity=mailfrom; receiver=mx.postroom.test;"),
	"Received-SPF added from the genuine verdict's spf=pass (for OpenDMARC)")
mt.disconnect(c)

-- 3. authenticated, with a Message-Id: signed header added, bound to it
c = session("ORIGINATING", "587")
r, qid = mail(c, "alice@example.com", "alice@example.com")
rcpt(c, "<friend@foreign.org>", qid)
hdr(c, "From", "Alice <alice@example.com>")
hdr(c, "Message-Id", "<m1.abc@example.com>")
hdr(c, SUB, "v=1; user=bob@example.com; ts=1; sig=00")
eoh(c)
send_body(c, "hi\r\n")
mt.eom(c)
ok(mt.getreply(c) == SMFIR_CONTINUE, "authenticated submission accepted at end of data")
ok(mt.eom_check(c, MT_HDRDELETE, SUB), "the client's own " .. SUB .. " removed")
ok(mt.eom_check(c, MT_HDRINSERT, SUB), SUB .. " inserted")
ok(not mt.eom_check(c, MT_HDRADD, "Message-Id"), "existing Message-Id kept, none added")
ok(mt.eom_check(c, MT_RCPTADD, "<sent@postroom.invalid>"), "sent-copy recipient added")
local v = mt.getheader(c, SUB, 0) or mt.getheader(c, SUB, 1)
ok(v ~= nil, "inserted value readable: " .. tostring(v))
v = v or ""
local res = verify(SUB, v, "<m1.abc@example.com>", qid)
ok(string.find(res, "^ok") and string.find(res, "\nuser=alice@example.com\n"),
	"it verifies for this Message-Id and queue id, user=alice@example.com")
ok(string.find(verify(SUB, v, "<m1.abc@example.com>", "4QOTHER"), "^fail") ~= nil,
	"it does not verify for another queue id")
ok(string.find(verify(SUB, v, "<other@example.com>", qid), "^fail") ~= nil,
	"it does not verify for another Message-Id")
mt.disconnect(c)

-- 4. authenticated without a Message-Id: one is added and signed
c = session("ORIGINATING", "587")
r, qid = mail(c, "alice@example.com", "alice@example.com")
rcpt(c, "<bob@example.com>", qid)
hdr(c, "From", "Alice <alice@example.com>")
hdr(c, "Subject", "no id")
eoh(c)
send_body(c, "hi\r\n")
mt.eom(c)
ok(mt.getreply(c) == SMFIR_CONTINUE and mt.eom_check(c, MT_HDRADD, "Message-Id"),
	"Message-Id added to a submission without one")
local mid = mt.getheader(c, "Message-Id", 0) or mt.getheader(c, "Message-Id", 1) or ""
ok(string.find(mid, "^%s*<[0-9a-f]+%.[0-9a-f]+@mx%.postroom%.test>$") ~= nil,
	"generated Message-Id is <time.random@myhostname>: " .. mid)
v = mt.getheader(c, SUB, 0) or mt.getheader(c, SUB, 1) or ""
ok(string.find(verify(SUB, v, mid, qid), "^ok") ~= nil, "the signed header is bound to the added Message-Id")
mt.disconnect(c)

-- 4b. a blank Message-Id is replaced, not doubled
c = session("ORIGINATING", "587")
r, qid = mail(c, "alice@example.com", "alice@example.com")
rcpt(c, "<bob@example.com>", qid)
hdr(c, "From", "Alice <alice@example.com>")
hdr(c, "Message-Id", "")
eoh(c)
send_body(c, "hi\r\n")
mt.eom(c)
ok(mt.getreply(c) == SMFIR_CONTINUE and mt.eom_check(c, MT_HDRCHANGE, "Message-Id") and
	not mt.eom_check(c, MT_HDRADD, "Message-Id"), "a blank Message-Id is replaced by a generated one")
mt.disconnect(c)

-- 5. size at end of data: SIZE= lied; headers + CRLF + body counted
local function size_case(n, eol, desc, want_reject)
	c = session("mx.postroom.test", "25")
	r, qid = mail(c, "someone@foreign.org", nil, "SIZE=100")
	rcpt(c, "<alice@example.com>", qid)
	hdr(c, "From", "a@foreign.org")	-- "From: a@foreign.org" CRLF = 21
	hdr(c, "Subject", "size")	-- "Subject: size" CRLF = 15
	eoh(c)
	send_body(c, body_crlf(n - 21 - 15 - 2, eol))	-- the empty line: 2
	mt.eom(c)
	if want_reject then
		ok(mt.getreply(c) == SMFIR_REPLYCODE and
			mt.eom_check(c, MT_SMTPREPLY, "552", "5.3.4", "Message size exceeds fixed limit"),
			desc .. ": 552 5.3.4 Message size exceeds fixed limit")
	else
		ok(mt.getreply(c) == SMFIR_CONTINUE, desc .. ": accepted")
	end
	mt.disconnect(c)
end
size_case(65536, "\r\n", "65536 bytes, the limit, SIZE=100", false)
size_case(65537, "\r\n", "65537 bytes, one over, though SIZE=100 said less", true)
size_case(65536, "\n", "65536 bytes counted with CRLF, sent with bare LF", false)
size_case(65537, "\n", "65537 bytes counted with CRLF, fewer sent with bare LF", true)
