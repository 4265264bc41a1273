/*
 * NAME
 *	policyd_params - the policyd section of postroom.conf
 * DESCRIPTION
 *	Every policyd.* parameter, declared once: name, type, default, bounds,
 *	flags, one line of documentation. postroom-policyd registers this table
 *	before it loads the file; postroomctl registers it to list and check
 *	every parameter. doc/postroom.conf.5 documents each row
 *	(tests/unit/test-config-doc.sh).
 * NEVER
 *	declares a parameter of another section.
 */
#include "conf.h"
#include "policyd_params.h"

static const struct cfg_param policyd_params[] = {
	{ "policyd.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "postroom-policyd's libpq connection string: a login role in group PREFIXrules; unset = database.conninfo" },
	{ "policyd.listen", CFG_STRING, "inet:127.0.0.1:10045", 0, 0, 0,
	  "where to listen: unix:/path or inet:HOST:PORT, several separated by commas" },
	{ "policyd.socket_mode", CFG_STRING, "0660", 0, 0, 0,
	  "octal permissions of unix listening sockets" },
	{ "policyd.socket_group", CFG_STRING, NULL, 0, 0, 0,
	  "group given unix listening sockets (e.g. postfix or Debian-exim); unset: unchanged" },
	{ "policyd.user", CFG_STRING, "postroom", 0, 0, 0,
	  "user to run as after opening the sockets (started as root)" },
	{ "policyd.group", CFG_STRING, NULL, 0, 0, 0,
	  "group to run as; unset: the user's primary group" },
	{ "policyd.max_connections", CFG_INT, "500", 1, 60000, 0,
	  "concurrent client connections (one thread each); more wait in the listen queue" },
	{ "policyd.line_max", CFG_INT, "4096", 256, 65536, 0,
	  "longest request line in bytes; a longer one closes the connection" },
	{ "policyd.request_max", CFG_INT, "32768", 1024, 1048576, 0,
	  "largest request in bytes without its terminating empty line; more closes the connection" },
	{ "policyd.idle_timeout", CFG_INT, "1000", 1, 86400, 0,
	  "seconds an idle persistent connection is kept (Postfix closes its own after 300)" },
	{ "policyd.request_timeout", CFG_INT, "10", 1, 3600, 0,
	  "seconds a client may take to finish a request it started" },
	{ "policyd.db_connections", CFG_INT, "4", 1, 256, 0,
	  "PostgreSQL connections shared by all client connections" },
	{ "policyd.cache_ttl", CFG_INT, "60", 0, 86400, 0,
	  "seconds hosted domains, found addresses and \"no storage limit\" are cached (changes are also notified)" },
	{ "policyd.cache_negative_ttl", CFG_INT, "10", 0, 86400, 0,
	  "seconds an unknown address stays cached as unknown" },
	{ "policyd.quota_messages", CFG_INT, "200", 0, 100000000, 0,
	  "messages per hour an authenticated user may send; 0: unlimited; per-user overrides by postroomctl quota set" },
	{ "policyd.quota_recipients", CFG_INT, "1000", 0, 100000000, 0,
	  "recipients per hour an authenticated user may send to; 0: unlimited" },
	{ "policyd.quota_flush_interval", CFG_INT, "1000", 100, 60000, 0,
	  "milliseconds between batched writes of quota counters (the most a crash can lose)" },
	{ "policyd.spf", CFG_BOOL, "true", 0, 0, 0,
	  "check SPF of unauthenticated mail on MX services" },
	{ "policyd.spf_spam", CFG_STRING, "fail", 0, 0, 0,
	  "SPF results that tag a message as spam (comma-separated: fail, softfail, neutral, none, permerror)" },
	{ "policyd.spf_reject", CFG_STRING, "", 0, 0, 0,
	  "SPF results refused with 550 5.7.23 instead of tagged; empty: none (temperror is never refused)" },
	{ "policyd.dnsbl_zones", CFG_STRING, "", 0, 0, 0,
	  "DNS block lists of the client address: ZONE[=CODES][:tag|:reject] separated by ';'; empty: none" },
	{ "policyd.dns_server", CFG_STRING, NULL, 0, 0, 0,
	  "DNS server for SPF and DNSBL as IPv4[:PORT]; unset: /etc/resolv.conf" },
	{ "policyd.dns_timeout", CFG_INT, "2", 1, 30, 0, "seconds to wait for one DNS answer" },
	{ "policyd.dns_attempts", CFG_INT, "1", 1, 5, 0, "tries per DNS query" },
	{ "policyd.check_timeout", CFG_INT, "5", 1, 60, 0,
	  "seconds all DNS queries of one message may take together; then temperror" },
	{ "policyd.instance_ttl", CFG_INT, "600", 1, 86400, 0,
	  "seconds a message's SPF/DNSBL verdict is kept for its later RCPT and DATA requests" },
	{ "policyd.hostname", CFG_STRING, NULL, 0, 0, 0,
	  "this host's name in verdict headers and SPF explanations; unset: the system host name" },
	{ "policyd.metrics_listen", CFG_STRING, NULL, 0, 0, 0,
	  "HOST:PORT serving /metrics and /healthz; unset: off" },
};

const struct cfg_table policyd_conf_table = { "postroom-policyd", policyd_params,
					      sizeof(policyd_params) / sizeof(policyd_params[0]) };
