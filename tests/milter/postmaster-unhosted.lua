-- postmaster-unhosted.lua - rules.postmaster_domain names a domain that is
-- not hosted (milter-protocol.sh, second start): a bare <Postmaster> is
-- still accepted on the MX port, but never sent on to that domain: the
-- milter leaves it to the MTA (no recipient added or deleted).
dofile(os.getenv("MT_LIB"))

local c = session("mx.postroom.test", "25")
local r, q = mail(c, "reporter@foreign.org", nil)
ok(rcpt(c, "<Postmaster>", q) == SMFIR_CONTINUE, "bare <Postmaster> still accepted")
if not mt.test_option(c, SMFIP_NOEOH) then mt.eoh(c) end
local err = mt.bodystring(c, "a report\r\n")
if err ~= nil then error("body: " .. err) end
mt.eom(c)
ok(mt.getreply(c) == SMFIR_CONTINUE, "accepted at end of data")
ok(not mt.eom_check(c, MT_RCPTADD, "<postmaster@elsewhere.example>"),
	"no recipient postmaster@elsewhere.example added (not hosted: never relayed there)")
ok(not mt.eom_check(c, MT_RCPTDELETE, "<Postmaster>"), "the bare <Postmaster> left to the MTA")
mt.disconnect(c)
