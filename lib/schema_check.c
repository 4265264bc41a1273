/*
 * NAME
 *	schema_check - refuse a database schema this build does not know
 * DESCRIPTION
 *	A daemon is built for one schema version: the highest migration
 *	compiled in. On every connection it opens it reads
 *	schema_migrations: an older schema (not migrated yet) or a newer one
 *	with a migration not marked compatible with this build
 *	(compatible_from NULL or above the build's version, sql/029) is
 *	refused with a sentence saying what to do, and the daemon defers
 *	what it was asked. A newer schema whose later migrations are all
 *	marked compatible is accepted: a rolling upgrade runs hosts of the
 *	old version on the migrated database.
 * NEVER
 *	turns a schema mismatch into a permanent failure (a bounce); writes
 *	to the database.
 */
#include "schema_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "xalloc.h"

/* the highest version, and whether every version above $1 is marked
 * compatible with $1 (NULL when there is none); to_jsonb reads
 * compatible_from without naming the column, which a schema older than
 * sql/029 lacks */
#define SCHEMA_CHECK_SQL                                                             \
	"SELECT COALESCE(max(version), 0),"                                          \
	" bool_and(COALESCE((to_jsonb(m) ->> 'compatible_from')::int <= $1, false))" \
	" FILTER (WHERE version > $1)"                                               \
	" FROM schema_migrations m"

int schema_check_build_version(void)
{
	return migrations_count ? migrations[migrations_count - 1].version : 0;
}

/* schema_check_verdict - the refusal for schema version have, or NULL */
static char *schema_check_verdict(int have, int build, int compatible)
{
	if (have < build)
		return xasprintf("database schema version %d is older than this build (%d): "
				 "run postroomctl db migrate",
				 have, build);
	if (have > build && !compatible)
		return xasprintf("database schema version %d is newer than this build (%d) and "
				 "not marked compatible: run the matching version",
				 have, build);
	return NULL;
}

int schema_check(struct db *db, char **error_r)
{
	int build = schema_check_build_version(), have, compatible;
	char bs[16], *err = NULL;
	const char *p[1] = { bs };
	PGresult *res;

	snprintf(bs, sizeof(bs), "%d", build);
	if ((res = db_exec(db, SCHEMA_CHECK_SQL, 1, p, NULL, &err)) == NULL) {
		*error_r = xasprintf("cannot read the database schema version (%s): if the "
				     "schema is older than this build (%d), run postroomctl db "
				     "migrate",
				     err, build);
		free(err);
		return -1;
	}
	have = atoi(PQgetvalue(res, 0, 0));
	compatible = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	*error_r = schema_check_verdict(have, build, compatible);
	return *error_r ? -1 : 0;
}

struct db *schema_check_connect(const char *conninfo, int connect_timeout, char **error_r)
{
	struct db *db = db_connect(conninfo, connect_timeout, error_r);

	if (db != NULL && schema_check(db, error_r) < 0)
		db_close(&db);
	return db;
}
