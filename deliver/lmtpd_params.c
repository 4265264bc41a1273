/*
 * NAME
 *	lmtpd_params - the lmtpd section of postroom.conf
 * DESCRIPTION
 *	Every lmtpd.* parameter, declared once: name, type, default, bounds,
 *	flags, one line of documentation. postroom-lmtpd registers this table
 *	before it loads the file; postroomctl registers it to list and check
 *	every parameter. doc/postroom.conf.5 documents each row
 *	(tests/unit/test-config-doc.sh).
 * NEVER
 *	declares a parameter of another section.
 */
#include "conf.h"
#include "lmtpd_params.h"

static const struct cfg_param lmtpd_params[] = {
	{ "lmtpd.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "postroom-lmtpd's libpq connection string: a login role in group PREFIXdeliver; unset = database.conninfo" },
	{ "lmtpd.listen", CFG_STRING, "unix:/var/spool/postfix/private/postroom-lmtp", 0, 0, 0,
	  "where MTAs connect over LMTP: unix:/path (Postfix lmtp:unix:, Exim lmtp transport socket) or inet:HOST:PORT" },
	{ "lmtpd.listen_inet", CFG_STRING, NULL, 0, 0, 0,
	  "an optional second listener, normally TCP (inet:127.0.0.1:24); unset = none" },
	{ "lmtpd.socket_mode", CFG_STRING, "0660", 0, 0, 0,
	  "permissions (octal) of the unix socket" },
	{ "lmtpd.socket_owner", CFG_STRING, "postfix", 0, 0, 0,
	  "owner of the unix socket (the MTA's user); empty = leave" },
	{ "lmtpd.socket_group", CFG_STRING, "postfix", 0, 0, 0,
	  "group of the unix socket; empty = leave" },
	{ "lmtpd.user", CFG_STRING, "postroom", 0, 0, 0,
	  "user to run as once the sockets are open; empty = stay (refused as root)" },
	{ "lmtpd.group", CFG_STRING, NULL, 0, 0, 0,
	  "group to run as; unset = the user's primary group" },
	{ "lmtpd.pool_size", CFG_INT, "4", 1, 1000, 0,
	  "PostgreSQL connections shared by all LMTP sessions" },
	{ "lmtpd.group_commit", CFG_INT, "32", 1, 1000, 0,
	  "messages that sessions finish while every pool connection is storing are stored together, at most this many in one transaction; 1 = each alone" },
	{ "lmtpd.max_sessions", CFG_INT, "100", 1, 100000, 0,
	  "LMTP sessions served at once; more are answered 421 4.3.2 and closed" },
	{ "lmtpd.timeout", CFG_INT, "300", 5, 3600, 0,
	  "seconds a session may stay silent while a command or message data is expected" },
	{ "lmtpd.trusted_clients", CFG_STRING, "127.0.0.1 ::1", 0, 0, 0,
	  "TCP client addresses (space separated) whose AUTH=, XFORWARD and X-POSTROOM-SENT are honoured; unix-socket clients always are" },
	{ "lmtpd.memory_budget", CFG_SIZE, "1073741824", 0, 1LL << 40, 0,
	  "bytes the messages in flight may be charged together (5 x size + 256 KiB each); past it a DATA waits; 0 = no budget" },
	{ "lmtpd.memory_wait", CFG_INT, "30", 0, 600, 0,
	  "seconds a DATA may wait for the memory budget, then 451 4.3.2" },
	{ "lmtpd.metrics_listen", CFG_STRING, NULL, 0, 0, 0,
	  "HOST:PORT serving /metrics and /healthz over HTTP; unset = none" },
};

const struct cfg_table lmtpd_conf_table = { "postroom-lmtpd", lmtpd_params,
					    sizeof(lmtpd_params) / sizeof(lmtpd_params[0]) };
