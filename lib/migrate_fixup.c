/*
 * NAME
 *	migrate_fixup - the data steps of migrations whose rule lives in C
 * DESCRIPTION
 *	A migration that must change stored rows by a rule the programs also
 *	apply to new mail (one implementation, not a copy in SQL) inserts a
 *	row into schema_fixups naming its step. migrate_apply then runs each
 *	named step here, in batches of MIGRATE_FIXUP_BATCH rows in primary
 *	key order. Each batch is one transaction under the migrations'
 *	advisory lock that also records the last key done (after_id): an
 *	interrupted run resumes where it stopped, two runs take turns, and
 *	delivery goes on between batches. The row is deleted when the step
 *	is done. Progress is logged (log_info) when there are rows.
 *	Steps:
 *	attachment_filename (sql/010_attachment_filename.sql): filename :=
 *	filename_safe(filename, mime_default_filename(content_type)), what
 *	mime_parse gives new mail. A row stored before holds the sender's
 *	name there (the migration copied it to filename_original); a row
 *	stored since holds a safe name, which filename_safe leaves as it is
 *	(it is idempotent), so new mail delivered meanwhile is never changed.
 * NEVER
 *	interpolates values into SQL; holds a lock for longer than one batch;
 *	updates a row whose value is already right.
 */
#include "migrate.h"

#include <stdlib.h>
#include <string.h>

#include "filename_safe.h"
#include "log.h"
#include "mime_parse.h"
#include "xalloc.h"

#define MIGRATE_FIXUP_BATCH "1000"
#define MIGRATE_FIXUP_LOCK "SELECT pg_advisory_xact_lock(7316020001)" /* as lib/migrate.c */
#define MIGRATE_FIXUP_FIRST "00000000-0000-0000-0000-000000000000"    /* below any v4 uuid */
#define MIGRATE_FIXUP_LOG_EVERY 20 /* batches between progress lines */

/* The rows one batch looked at. */
struct fixup_count {
	long long checked, changed;
};

/* One step: does one batch after key after (never NULL); sets *last_r
 * (caller frees) to the last key it looked at, NULL when none was left. */
struct fixup_step {
	const char *name, *what;
	int (*batch)(struct db *db, const char *after, char **last_r, struct fixup_count *cnt,
		     char **error_r);
};

/* fixup_att_filename - one batch of email_attachments.filename */
static int fixup_att_filename(struct db *db, const char *after, char **last_r,
			      struct fixup_count *cnt, char **error_r)
{
	const char *p[2] = { after, MIGRATE_FIXUP_BATCH };
	PGresult *res = db_exec(db,
				"SELECT id, content_type, filename FROM email_attachments"
				" WHERE id > $1::uuid ORDER BY id LIMIT $2::integer",
				2, p, NULL, error_r);
	int i, n, rc = 0;

	if (res == NULL)
		return -1;
	n = PQntuples(res);
	for (i = 0; rc == 0 && i < n; i++) {
		char *safe = filename_safe(PQgetvalue(res, i, 2),
					   mime_default_filename(PQgetvalue(res, i, 1)));

		if (strcmp(safe, PQgetvalue(res, i, 2)) != 0) {
			const char *u[2] = { PQgetvalue(res, i, 0), safe };

			rc = db_cmd(db, "UPDATE email_attachments SET filename = $2 WHERE id = $1",
				    2, u, NULL, error_r);
			cnt->changed++;
		}
		free(safe);
	}
	cnt->checked += n;
	*last_r = rc == 0 && n > 0 ? xstrdup(PQgetvalue(res, n - 1, 0)) : NULL;
	PQclear(res);
	return rc;
}

static const struct fixup_step fixup_steps[] = {
	{ "attachment_filename", "attachment filenames", fixup_att_filename },
};

/* fixup_batch - one batch of step s in its own transaction; *done_r = 1
 * when the step has nothing left (or was not asked for) */
static int fixup_batch(struct db *db, const struct fixup_step *s, struct fixup_count *cnt,
		       int *done_r, char **error_r)
{
	const char *p[2] = { s->name, MIGRATE_FIXUP_FIRST };
	char *last = NULL;
	PGresult *res;

	*done_r = 1;
	if (db_begin(db, NULL, error_r) < 0)
		return -1;
	if (db_cmd(db, MIGRATE_FIXUP_LOCK, 0, NULL, NULL, error_r) < 0 ||
	    (res = db_exec(db,
			   "SELECT COALESCE(after_id::text, $2) FROM schema_fixups WHERE name = $1",
			   2, p, NULL, error_r)) == NULL)
		goto fail;
	if (PQntuples(res) == 1 && s->batch(db, PQgetvalue(res, 0, 0), &last, cnt, error_r) < 0) {
		PQclear(res);
		goto fail;
	}
	if (PQntuples(res) == 1) {
		p[1] = last;
		*done_r = last == NULL;
		if (db_cmd(db,
			   last ? "UPDATE schema_fixups SET after_id = $2::uuid WHERE name = $1"
				: "DELETE FROM schema_fixups WHERE name = $1",
			   last ? 2 : 1, p, NULL, error_r) < 0) {
			PQclear(res);
			goto fail;
		}
	}
	PQclear(res);
	free(last);
	return db_commit(db, NULL, error_r) < 0 ? -1 : 0;
fail:
	free(last);
	db_rollback(db);
	return -1;
}

/* fixup_run - every batch of step s, with progress lines */
static int fixup_run(struct db *db, const struct fixup_step *s, char **error_r)
{
	struct fixup_count cnt = { 0, 0 };
	int done = 0, batches = 0;

	while (!done) {
		if (fixup_batch(db, s, &cnt, &done, error_r) < 0) {
			char *inner = *error_r;

			*error_r = xasprintf("migration step %s: %s", s->name, inner);
			free(inner);
			return -1;
		}
		if (cnt.checked > 0 && !done && ++batches % MIGRATE_FIXUP_LOG_EVERY == 0)
			log_info("migrate: %s: %lld rows checked, %lld changed so far", s->what,
				 cnt.checked, cnt.changed);
	}
	if (cnt.checked > 0)
		log_info("migrate: %s: done, %lld rows checked, %lld changed", s->what, cnt.checked,
			 cnt.changed);
	return 0;
}

int migrate_fixups_run(struct db *db, char **error_r)
{
	PGresult *res = db_exec(db, "SELECT to_regclass('schema_fixups') IS NOT NULL", 0, NULL,
				NULL, error_r);
	int present;
	size_t i;

	if (res == NULL)
		return -1;
	present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	for (i = 0; present && i < sizeof(fixup_steps) / sizeof(fixup_steps[0]); i++)
		if (fixup_run(db, &fixup_steps[i], error_r) < 0)
			return -1;
	return 0;
}
