/*
 * NAME
 *	milter_params - the milter section of postroom.conf
 * DESCRIPTION
 *	Every milter.* parameter, declared once: name, type, default, bounds,
 *	flags, one line of documentation. postroom-milter registers this table
 *	before it loads the file; postroomctl registers it to list and check
 *	every parameter. doc/postroom.conf.5 documents each row
 *	(tests/unit/test-config-doc.sh).
 * NEVER
 *	declares a parameter of another section.
 */
#include "conf.h"
#include "milter_params.h"

static const struct cfg_param milter_params[] = {
	{ "milter.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "postroom-milter's libpq connection string: a login role in group PREFIXrules; unset = database.conninfo" },
	{ "milter.socket", CFG_STRING, "unix:/var/spool/postfix/postroom/milter.sock", 0, 0, 0,
	  "libmilter socket: unix:PATH or inet:PORT@HOST; created as root, then given to milter.user" },
	{ "milter.user", CFG_STRING, "postroom", 0, 0, 0,
	  "user the milter runs as after opening its socket (when started as root)" },
	{ "milter.group", CFG_STRING, NULL, 0, 0, 0,
	  "group the milter runs as; unset: the user's primary group" },
	{ "milter.socket_group", CFG_STRING, NULL, 0, 0, 0,
	  "group of the unix socket (mode 0660), e.g. postfix; unset: milter.user's primary group" },
	{ "milter.metrics_listen", CFG_STRING, NULL, 0, 0, 0,
	  "HOST:PORT serving /metrics and /healthz; unset: off" },
	{ "milter.timeout", CFG_INT, "300", 10, 7200, 0,
	  "seconds to wait for the MTA before closing a milter connection" },
	{ "milter.cache_ttl", CFG_INT, "30", 0, 3600, 0,
	  "seconds an address lookup result (and \"no storage limit\") is cached; 0: no cache" },
	{ "milter.cache_size", CFG_INT, "100000", 100, 10000000, 0,
	  "most cached address lookups; the cache is emptied when full" },
	{ "milter.verp", CFG_BOOL, "no", 0, 0, 0,
	  "rewrite an authenticated submission's envelope sender to LOCAL+verp-TOKEN@DOMAIN of the sender's own address, so that its bounces link to it exactly" },
	{ "milter.db_connections", CFG_INT, "4", 1, 64, 0,
	  "database connections for address lookups (the LISTEN thread has its own)" },
};

const struct cfg_table milter_conf_table = { "postroom-milter", milter_params,
					     sizeof(milter_params) / sizeof(milter_params[0]) };
