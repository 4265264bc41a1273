-- probe.lua - one unauthenticated MX transaction, driven by the environment:
-- PROBE_RCPT (recipient path), PROBE_EXPECT (continue|replycode),
-- PROBE_DESC (test description). Used by milter-startup.sh, which tells a
-- temporary from a permanent refusal by the milter's metrics.
dofile(os.getenv("MT_LIB"))
local c = session("mx.postroom.test", "25")
local r, q = mail(c, "someone@foreign.org", nil)
local want = os.getenv("PROBE_EXPECT") == "continue" and SMFIR_CONTINUE or SMFIR_REPLYCODE
local got = rcpt(c, os.getenv("PROBE_RCPT"), q)
ok(got == want, os.getenv("PROBE_DESC") .. " (" .. replyname(got) .. ")")
mt.disconnect(c)
