/*
 * NAME
 *	ctl_db - postroomctl db migrate
 * DESCRIPTION
 *	Applies the compiled-in migrations (lib/migrate.c) and reports the
 *	schema version. Connects as database.migrate_conninfo (the role that
 *	owns the schema and may create the group roles) when set, else as
 *	database.conninfo; passes database.role_prefix to the migrations
 *	(sql/012_roles.sql names the group roles with it).
 * NEVER
 *	prints a conninfo.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "migrate.h"

/* ctl_db_owner - the migrating connection: its own, or postroomctl's */
static struct db *ctl_db_owner(struct ctl *ctl, struct db **own_r)
{
	const char *ci = conf_str(ctl->conf, "database.migrate_conninfo");
	char *err = NULL;

	*own_r = NULL;
	if (ci == NULL)
		return ctl_db(ctl);
	*own_r = db_connect(ci, (int)conf_int(ctl->conf, "database.connect_timeout"), &err);
	if (*own_r == NULL)
		exit(ctl_fail(CTL_UNAVAILABLE, "database.migrate_conninfo: %s", err));
	return *own_r;
}

int ctl_cmd_db(struct ctl *ctl, int argc, char **argv)
{
	int applied, version;
	char *err = NULL;
	struct db *own, *db;

	if (argc != 1 || strcmp(argv[0], "migrate") != 0)
		return ctl_usage("db migrate");
	db = ctl_db_owner(ctl, &own);
	if (migrate_role_prefix(db, conf_str(ctl->conf, "database.role_prefix"), &err) < 0 ||
	    migrate_apply(db, &applied, &version, &err) < 0) {
		int rc = ctl_fail(CTL_UNAVAILABLE, "%s", err);
		free(err);
		db_close(&own);
		return rc;
	}
	db_close(&own);
	if (ctl->json) {
		ctl_print_json(json_pack("{s:i, s:i}", "applied", applied, "version", version));
	} else {
		printf("applied %d migration%s; schema version %d\n", applied,
		       applied == 1 ? "" : "s", version);
	}
	return CTL_OK;
}
