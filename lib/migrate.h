/* migrate.h - numbered schema migrations compiled into the binary. */
#ifndef POSTROOM_MIGRATE_H
#define POSTROOM_MIGRATE_H

#include "db.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
	/* the lowest build version that works on a schema with this
	 * migration applied (a "-- postroom: compatible_from N" line of the
	 * file, recorded in schema_migrations.compatible_from); 0: only
	 * builds that know this migration (lib/schema_check.c) */
	int compatible_from;
};

extern const struct migration migrations[]; /* ascending versions */
extern const unsigned migrations_count;

/* migrate_apply - apply every migration not yet recorded, each in its own
 * transaction under an advisory lock (concurrent runs are safe). Sets
 * *applied_r and *version_r (schema version afterwards), then runs the
 * data steps they asked for (migrate_fixups_run). 0 ok, -1 error. */
int migrate_apply(struct db *db, int *applied_r, int *version_r, char **error_r);
/* migrate_fixups_run - the data steps later migrations asked for in
 * schema_fixups, each in batches of their own transactions (see
 * lib/migrate_fixup.c); migrate_apply runs it. 0 ok, -1 error. */
int migrate_fixups_run(struct db *db, char **error_r);
/* migrate_role_prefix - the prefix of the group roles the migrations
 * create (setting postroom.role_prefix for this session; NULL or "": the
 * database's name and "_", see sql/012_roles.sql). 0 ok, -1 error. */
int migrate_role_prefix(struct db *db, const char *prefix, char **error_r);
/* migrate_current - the highest applied version (0 for none), -1 on error */
int migrate_current(struct db *db, char **error_r);

#endif
