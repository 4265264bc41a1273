-- attach.lua - the attachment limit at end of message
-- (limits.attachment_size_max = 1024): an attachment is counted decoded,
-- as postroom-deliver counts it (lib/mime_parse); one byte over the limit
-- gets 552 5.3.4 with the size, at the limit and a large plain body pass.
-- The headers the milter rebuilds must carry the MIME structure: a
-- top-level attachment and a boundary on a folded line are found too.
dofile(os.getenv("MT_LIB"))

local function hdr(c, name, value)
	local err = mt.header(c, name, value)
	if err ~= nil then error("header: " .. err) end
end
local function eoh(c)
	if not mt.test_option(c, SMFIP_NOEOH) then mt.eoh(c) end
end
-- body in chunks of at most n bytes (a CRLF may be split across two)
local function send_body(c, b, n)
	local i = 1
	n = n or 32768
	while i <= #b do
		local err = mt.bodystring(c, string.sub(b, i, i + n - 1))
		if err ~= nil then error("body: " .. err) end
		i = i + n
	end
end

-- base64 of s in lines of 76, CRLF
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
	local out, line = {}, {}
	for i = 1, #s, 3 do
		local a, b, c = string.byte(s, i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local q = {}
		for k = 3, 0, -1 do
			local v = math.floor(n / 64 ^ k) % 64
			table.insert(q, string.sub(B64, v + 1, v + 1))
		end
		if b == nil then q[3] = "=" end
		if c == nil then q[4] = "=" end
		table.insert(line, table.concat(q))
		if #line == 19 then
			table.insert(out, table.concat(line) .. "\r\n")
			line = {}
		end
	end
	if #line > 0 then table.insert(out, table.concat(line) .. "\r\n") end
	return table.concat(out)
end
local function data(n) return string.rep("0123456789abcdef", math.ceil(n / 16)):sub(1, n) end

local function multipart(n)
	return "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" ..
		"--b1\r\nContent-Type: application/octet-stream\r\n" ..
		"Content-Disposition: attachment; filename=a.bin\r\n" ..
		"Content-Transfer-Encoding: base64\r\n\r\n" .. b64(data(n)) .. "--b1--\r\n"
end

-- case(desc, headers {{name, value}...}, body, want): want nil = accepted,
-- else the size in the 552 text
local function case(desc, headers, body, want, chunk)
	local c = session("mx.postroom.test", "25")
	local r, qid = mail(c, "someone@foreign.org", nil)
	rcpt(c, "<alice@example.com>", qid)
	hdr(c, "From", "a@foreign.org")
	hdr(c, "Subject", desc)
	for _, h in ipairs(headers) do hdr(c, h[1], h[2]) end
	eoh(c)
	send_body(c, body, chunk)
	mt.eom(c)
	if want then
		local text = "attachment of " .. want .. " bytes exceeds the limit of 1024 bytes"
		ok(mt.getreply(c) == SMFIR_REPLYCODE and
			mt.eom_check(c, MT_SMTPREPLY, "552", "5.3.4", text),
			desc .. ": 552 5.3.4 " .. text)
	else
		ok(mt.getreply(c) == SMFIR_CONTINUE, desc .. ": accepted")
	end
	mt.disconnect(c)
end

local MP = { { "MIME-Version", "1.0" }, { "Content-Type", "multipart/mixed; boundary=b1" } }
case("attachment of 1024 bytes, the limit", MP, multipart(1024), nil)
case("attachment of 1025 bytes, one over", MP, multipart(1025), 1025)
case("attachment of 1025 bytes, body in 7-byte chunks", MP, multipart(1025), 1025, 7)
case("attachment of 3000 bytes", MP, multipart(3000), 3000)
-- past the first 16 KiB the milter keeps the message in a memory file
case("attachment of 30000 bytes (a memory file)", MP, multipart(30000), 30000)
case("attachment of 30000 bytes, body in 1000-byte chunks", MP, multipart(30000), 30000, 1000)
case("two attachments of 20000 and 1024 bytes: the first counts", MP,
	string.gsub(multipart(20000), "%-%-b1%-%-\r\n$", "") ..
	"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" ..
	b64(data(1024)) .. "--b1--\r\n", 20000)
case("a plain body of 20000 bytes, no attachment", {},
	string.rep(string.rep("x", 98) .. "\r\n", 200), nil)
case("boundary on a folded line", { { "MIME-Version", "1.0" },
	{ "Content-Type", "multipart/mixed;\r\n\tboundary=\"b1\"" } }, multipart(1025), 1025)
case("the whole message one attachment", { { "MIME-Version", "1.0" },
	{ "Content-Type", "application/pdf" }, { "Content-Disposition", "attachment; filename=x.pdf" },
	{ "Content-Transfer-Encoding", "base64" } }, b64(data(1025)), 1025)
case("the whole message one attachment at the limit", { { "MIME-Version", "1.0" },
	{ "Content-Type", "application/pdf" }, { "Content-Disposition", "attachment; filename=x.pdf" },
	{ "Content-Transfer-Encoding", "base64" } }, b64(data(1024)), nil)
-- encoded 1400 bytes of base64, decoded 1024: at the limit, accepted
case("1024 bytes base64-encoded (over 1024 encoded)", MP, multipart(1024), nil)
