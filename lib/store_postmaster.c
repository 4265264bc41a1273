/*
 * NAME
 *	store_postmaster - does every hosted domain's postmaster have a mailbox?
 * DESCRIPTION
 *	RFC 5321 4.5.1: every hosted domain has a postmaster, and mail to it
 *	is accepted whether or not anyone owns it (lib/rules.c, and the
 *	store: STORE_OWNERS_SQL). It reaches a mailbox when a user or alias
 *	postmaster@DOMAIN exists, or when a user owns rules.postmaster_address;
 *	a hosted domain with neither is a configuration error (its postmaster
 *	mail is stored unlinked, in nobody's mailbox). A bare <Postmaster>
 *	goes to rules.postmaster_domain, which must be hosted. One query
 *	finds both problems, for postroomctl and the daemons.
 * NEVER
 *	refuses mail or stops a daemon: it only reports.
 * PARAMETERS
 *	rules.postmaster_domain, rules.postmaster_address, and
 *	SECTION.conninfo or database.conninfo, database.connect_timeout
 *	(store_postmaster_log).
 */
#include "store_postmaster.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xalloc.h"

/* hosted domains (only $3 when set) without a postmaster mailbox; whether
 * $1 has an owner; whether $2 is hosted */
#define PM_CHECK_SQL                                                                                \
	"SELECT (SELECT string_agg(d.name, ', ' ORDER BY d.name) FROM domains d WHERE ($3::text"    \
	" IS NULL OR d.name = lower($3::text)) AND NOT EXISTS"                                      \
	" (SELECT 1 FROM user_addresses ua WHERE lower(ua.address) = 'postmaster@' || d.name) AND"  \
	" NOT EXISTS (SELECT 1 FROM user_addresses ua WHERE lower(ua.address) = lower($1::text)))," \
	" $1::text IS NULL OR EXISTS (SELECT 1 FROM user_addresses ua WHERE lower(ua.address) ="    \
	" lower($1::text)), $2::text IS NULL OR EXISTS (SELECT 1 FROM domains d WHERE d.name ="     \
	" lower(rtrim($2::text, '.')))"

/* pm_set - a parameter value, NULL when unset or empty */
static const char *pm_set(const char *v) { return v && *v ? v : NULL; }

int store_postmaster_check(struct db *db, const char *pm_domain, const char *pm_address,
			   const char *only, char **problem_r, char **error_r)
{
	const char *params[3] = { pm_set(pm_address), pm_set(pm_domain), pm_set(only) };
	struct buf b = BUF_INIT;
	enum db_err_class cls;
	PGresult *res = db_exec(db, PM_CHECK_SQL, 3, params, &cls, error_r);

	*problem_r = NULL;
	if (res == NULL)
		return -1;
	if (!PQgetisnull(res, 0, 0)) {
		buf_printf(&b,
			   "hosted domain(s) without a postmaster mailbox: %s (create the user or "
			   "alias postmaster@DOMAIN, or set rules.postmaster_address to an address "
			   "a user owns); their postmaster mail is accepted and stored unlinked",
			   PQgetvalue(res, 0, 0));
		if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
			buf_printf(&b, "; rules.postmaster_address %s is no user's address",
				   params[0]);
	}
	if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
		buf_printf(
			&b,
			"%srules.postmaster_domain %s is not a hosted domain: a bare <Postmaster> "
			"cannot be delivered there",
			b.len ? "; " : "", params[1]);
	PQclear(res);
	*problem_r = b.len ? buf_steal(&b) : NULL;
	buf_free(&b);
	return 0;
}

void store_postmaster_log(const struct conf *cfg, const char *section)
{
	char *err = NULL, *problem = NULL;
	struct db *db = db_connect(conf_conninfo(cfg, section),
				   (int)conf_int(cfg, "database.connect_timeout"), &err);

	if (db == NULL || store_postmaster_check(db, conf_str(cfg, "rules.postmaster_domain"),
						 conf_str(cfg, "rules.postmaster_address"), NULL,
						 &problem, &err) < 0) {
		log_warn("cannot check the postmaster addresses (RFC 5321 4.5.1): %s",
			 err ? err : "database error");
	} else if (problem) {
		log_error("configuration error: %s", problem);
	}
	free(problem);
	free(err);
	db_close(&db);
}
