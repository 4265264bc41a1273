/* schema_check.h - does the database's schema match this build? Every
 * daemon asks on each connection it opens (start and reconnect) and
 * refuses to work on one it does not know: deferring, never bouncing. */
#ifndef POSTROOM_SCHEMA_CHECK_H
#define POSTROOM_SCHEMA_CHECK_H

#include "db.h"

/* schema_check_build_version - the schema version this build was made
 * for: the highest migration compiled in (lib/migrations.c) */
int schema_check_build_version(void);

/* schema_check - 0 when db's schema is this build's version, or newer
 * with every later migration marked compatible with it (schema_migrations
 * .compatible_from, sql/029); -1 with *error_r (caller frees) when it is
 * older, newer and not marked, or cannot be read. The failure is always
 * temporary for the caller: defer, never bounce. */
int schema_check(struct db *db, char **error_r);

/* schema_check_connect - db_connect, then schema_check: NULL with
 * *error_r (caller frees) when either fails. */
struct db *schema_check_connect(const char *conninfo, int connect_timeout, char **error_r);

#endif
