/*
 * NAME
 *	config_params - the table of every postroom.conf parameter
 * DESCRIPTION
 *	Each parameter is declared here once: name, type, default, bounds,
 *	flags, one line of documentation. doc/postroom.conf.5 must document
 *	every name (tests/unit/test-config-doc.sh fails otherwise). The
 *	sections of each program live in PROGRAM/conf_params.def (rules/ is
 *	the envelope rules shared by milter and policyd), included below.
 * NEVER
 *	declares a parameter anywhere else.
 */
#include "conf.h"

#define MiB (1024LL * 1024LL)

const struct cfg_param cfg_params[] = {
	/* database */
	{ "database.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "libpq connection string; libpq's PG* environment variables apply when unset" },
	{ "database.connect_timeout", CFG_INT, "10", 1, 300, 0,
	  "seconds to wait for a database connection" },

	/* shared limits (milter and deliver use the same definition of size) */
	{ "limits.message_size_max", CFG_SIZE, "52428800", 1024, 2048 * MiB, 0,
	  "largest message in bytes, headers and body counted with CRLF line endings" },
	{ "limits.attachment_size_max", CFG_SIZE, "26214400", 1024, 2048 * MiB, 0,
	  "largest decoded attachment in bytes; one larger rejects the whole message" },

	/* API keys */
	{ "apikey.bcrypt_cost", CFG_INT, "11", 4, 31, 0,
	  "bcrypt cost (log2 rounds) for newly created API keys" },

	/* secrets shared by the daemons */
	{ "security.hmac_secret", CFG_STRING, NULL, 0, 0, CFG_SECRET,
	  "server secret for HMACs (auth cache keys, signed internal headers); at least 32 characters" },

	/* Each program declares its own section in its own fragment, included
	 * here so that this stays the one table. */
#include "rules/conf_params.def"
#include "deliver/conf_params.def"
#include "deliver/lmtpd_params.def"
#include "authd/conf_params.def"
#include "milter/conf_params.def"
#include "policyd/conf_params.def"
};

const size_t cfg_nparams = sizeof(cfg_params) / sizeof(cfg_params[0]);
