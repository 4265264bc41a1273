-- common.lua - helpers for postroom-milter's miltertest scripts.
-- Loaded by each script with dofile(os.getenv("MT_LIB")). Prints TAP lines
-- "ok - DESC" / "not ok - DESC" that tests/milter/milter.sh counts.
-- Macros are the ones Postfix 3.7 sends (PROTOCOLS.md section 4) plus what
-- postroom-milter asks for with smfi_setsymlist ({daemon_port}).

SOCK = os.getenv("MILTER_SOCK")
QSEQ = 0

function ok(cond, desc)
	if cond then print("ok - " .. desc) else print("not ok - " .. desc) end
	return cond
end

-- session(daemon_name, daemon_port): a new connection from 192.0.2.10
function session(daemon_name, daemon_port, client)
	local conn = mt.connect(SOCK, 50, 0.1)
	if conn == nil then error("cannot connect to " .. tostring(SOCK)) end
	client = client or "192.0.2.10"
	if daemon_name ~= nil then
		mt.macro(conn, SMFIC_CONNECT, "j", "mx.postroom.test",
			"{daemon_name}", daemon_name, "{daemon_addr}", "127.0.0.1",
			"{daemon_port}", daemon_port, "{client_addr}", client,
			"v", "Postfix 3.7.11", "_", "client.example [" .. client .. "]")
	end
	-- postroom-milter skips the connect step (SMFIP_NOCONNECT), as Postfix
	-- lets it: miltertest then refuses mt.conninfo, and the client address
	-- comes from {client_addr} alone, as with Postfix
	local sent, err = pcall(mt.conninfo, conn, "client.example", client)
	if not sent then
		if not string.find(tostring(err), "SMFIP_NOCONNECT", 1, true) then
			error("conninfo: " .. tostring(err))
		end
		return conn
	end
	if err ~= nil then error("conninfo: " .. err) end
	if mt.getreply(conn) ~= SMFIR_CONTINUE then error("connect refused") end
	return conn
end

-- mail(conn, sender, auth, ...): MAIL FROM with Postfix's mail macros;
-- auth nil = not authenticated ({auth_authen} absent, as Postfix does)
function mail(conn, sender, auth, ...)
	QSEQ = QSEQ + 1
	local qid = string.format("4QTEST%04d", QSEQ)
	if auth then
		mt.macro(conn, SMFIC_MAIL, "i", qid, "{auth_type}", "PLAIN",
			"{auth_authen}", auth, "{mail_addr}", sender)
	else
		mt.macro(conn, SMFIC_MAIL, "i", qid, "{mail_addr}", sender)
	end
	local err = mt.mailfrom(conn, "<" .. sender .. ">", ...)
	if err ~= nil then error("mailfrom: " .. err) end
	return mt.getreply(conn), qid
end

function rcpt(conn, path, qid)
	mt.macro(conn, SMFIC_RCPT, "i", qid or "", "{rcpt_addr}", path)
	local err = mt.rcptto(conn, path)
	if err ~= nil then error("rcptto: " .. err) end
	return mt.getreply(conn)
end

function replyname(r)
	local names = { [SMFIR_CONTINUE] = "continue", [SMFIR_REJECT] = "reject",
		[SMFIR_TEMPFAIL] = "tempfail", [SMFIR_REPLYCODE] = "replycode",
		[SMFIR_ACCEPT] = "accept", [SMFIR_DISCARD] = "discard" }
	return names[r] or tostring(r)
end
