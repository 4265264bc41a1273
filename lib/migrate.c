/*
 * NAME
 *	migrate - apply sql/NNN_*.sql migrations, once each
 * DESCRIPTION
 *	Each migration runs in one transaction holding an advisory lock, is
 *	skipped when schema_migrations already records it, and is recorded
 *	in the same transaction: a failure leaves nothing half-applied, and
 *	running it again (or twice at once) changes nothing. A migration
 *	that a file marks "-- postroom: compatible_from N" (tools/embed-sql)
 *	records N with it: builds from version N on may run on the schema
 *	(lib/schema_check.c).
 *	The migration text is a constant compiled into the program; it is
 *	the only SQL not sent through PQexecParams (it holds several
 *	statements and no values).
 * NEVER
 *	runs a migration outside a transaction; interpolates values into SQL.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define MIGRATE_LOCK_KEY "7316020001" /* pg_advisory_xact_lock key */

static const char migrate_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
					" version integer PRIMARY KEY, name text NOT NULL,"
					" applied_at timestamptz NOT NULL DEFAULT now())";

/* migrate_script - run a multi-statement constant script */
static int migrate_script(struct db *db, const char *sql, char **error_r)
{
	PGresult *res = PQexec(db_conn(db), sql);
	int ok = res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
			 PQresultStatus(res) == PGRES_TUPLES_OK); /* may end in a SELECT */

	if (!ok) {
		const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db_conn(db));
		*error_r = xasprintf("%.*s", (int)strcspn(msg, "\n"), msg);
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/* migrate_mark - record the build versions m is compatible with, when
 * it declares them (the column exists from sql/029 on) */
static int migrate_mark(struct db *db, const struct migration *m, char **error_r)
{
	char ver[16], from[16];
	const char *params[2] = { ver, from };

	if (m->compatible_from <= 0)
		return 0;
	snprintf(ver, sizeof(ver), "%d", m->version);
	snprintf(from, sizeof(from), "%d", m->compatible_from);
	return db_cmd(db, "UPDATE schema_migrations SET compatible_from = $2 WHERE version = $1", 2,
		      params, NULL, error_r);
}

/* migrate_one - apply m unless recorded; *done_r = 1 when applied now */
static int migrate_one(struct db *db, const struct migration *m, int *done_r, char **error_r)
{
	char ver[16];
	const char *params[2] = { ver, m->name };
	PGresult *res;
	int present;

	*done_r = 0;
	snprintf(ver, sizeof(ver), "%d", m->version);
	if (db_begin(db, NULL, error_r) < 0)
		return -1;
	if (db_cmd(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL,
		   error_r) < 0 ||
	    db_cmd(db, migrate_table_sql, 0, NULL, NULL, error_r) < 0)
		goto fail;
	res = db_exec(db, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params, NULL,
		      error_r);
	if (res == NULL)
		goto fail;
	present = PQntuples(res) > 0;
	PQclear(res);
	if (!present) {
		if (migrate_script(db, m->sql, error_r) < 0 ||
		    db_cmd(db, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
			   params, NULL, error_r) < 0 ||
		    migrate_mark(db, m, error_r) < 0)
			goto fail;
		*done_r = 1;
	}
	if (db_commit(db, NULL, error_r) < 0)
		goto fail;
	return 0;
fail : {
	char *inner = *error_r;
	*error_r = xasprintf("migration %s: %s", m->name, inner);
	free(inner);
}
	db_rollback(db);
	return -1;
}

int migrate_apply(struct db *db, int *applied_r, int *version_r, char **error_r)
{
	unsigned i;
	int done, cur;

	*applied_r = 0;
	for (i = 0; i < migrations_count; i++) {
		if (migrate_one(db, &migrations[i], &done, error_r) < 0)
			return -1;
		*applied_r += done;
	}
	if (migrate_fixups_run(db, error_r) < 0)
		return -1;
	if ((cur = migrate_current(db, error_r)) < 0)
		return -1;
	*version_r = cur;
	return 0;
}

int migrate_role_prefix(struct db *db, const char *prefix, char **error_r)
{
	const char *p[1] = { prefix ? prefix : "" };

	return db_cmd(db, "SELECT set_config('postroom.role_prefix', $1, false)", 1, p, NULL,
		      error_r);
}

int migrate_current(struct db *db, char **error_r)
{
	PGresult *res = db_exec(db, "SELECT COALESCE(max(version), 0) FROM schema_migrations", 0,
				NULL, NULL, error_r);
	int v;

	if (res == NULL)
		return -1;
	v = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}
