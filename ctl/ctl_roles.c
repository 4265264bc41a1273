/*
 * NAME
 *	ctl_roles - config check: does each daemon log in as its own role?
 * DESCRIPTION
 *	For every program's connection string (SECTION.conninfo, else
 *	database.conninfo: conf_conninfo), connects once per distinct string
 *	and warns when the role is a superuser or a member of the role that
 *	owns the schema (the owner of schema_migrations): such a daemon could
 *	read and write everything, keys included (sql/012_roles.sql). A
 *	string that does not connect is warned about too. Warnings only: the
 *	exit status of config check does not change.
 *	Parameters: authd.conninfo, milter.conninfo, policyd.conninfo,
 *	deliver.conninfo, lmtpd.conninfo, database.conninfo,
 *	database.connect_timeout.
 * NEVER
 *	prints a conninfo (it may hold a password); writes to the database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char *const ctl_roles_sections[] = { "authd", "milter", "policyd", "deliver",
						  "lmtpd" };
#define CTL_ROLES_N (sizeof(ctl_roles_sections) / sizeof(ctl_roles_sections[0]))

static const char ctl_roles_sql[] =
	"SELECT current_user, r.rolsuper,"
	" COALESCE((SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c"
	"   WHERE c.oid = to_regclass('schema_migrations')), false)"
	" FROM pg_roles r WHERE r.rolname = current_user";

/* ctl_roles_param - "SECTION.conninfo" when set, else the fallback
 * "database.conninfo"; buf holds it */
static const char *ctl_roles_param(const struct ctl *ctl, const char *sec, char *buf, size_t size)
{
	snprintf(buf, size, "%s.conninfo", sec);
	return conf_str(ctl->conf, buf) ? buf : "database.conninfo";
}

/* ctl_roles_one - check the programs in names, which share conninfo ci */
static void ctl_roles_one(struct ctl *ctl, const char *ci, const char *names)
{
	char *err = NULL;
	struct db *db = db_connect(ci, (int)conf_int(ctl->conf, "database.connect_timeout"), &err);
	PGresult *res;

	if (db == NULL) {
		fprintf(stderr, "postroomctl: warning: %s: cannot check the database role: %s\n",
			names, err);
		free(err);
		return;
	}
	res = db_exec(db, ctl_roles_sql, 0, NULL, NULL, &err);
	if (res == NULL) {
		fprintf(stderr, "postroomctl: warning: %s: cannot check the database role: %s\n",
			names, err);
		free(err);
	} else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
		fprintf(stderr,
			"postroomctl: warning: %s: connects as %s, a superuser: give each daemon its own"
			" role (postroom.conf(5), SECTION.conninfo)\n",
			names, PQgetvalue(res, 0, 0));
	} else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
		fprintf(stderr,
			"postroomctl: warning: %s: connects as %s, the owner of the schema: give each"
			" daemon its own role (postroom.conf(5), SECTION.conninfo)\n",
			names, PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	db_close(&db);
}

void ctl_config_roles(struct ctl *ctl)
{
	int done[CTL_ROLES_N] = { 0 };
	size_t i, j;

	for (i = 0; i < CTL_ROLES_N; i++) {
		const char *ci = conf_conninfo(ctl->conf, ctl_roles_sections[i]);
		char names[512] = "", buf[64];

		if (done[i])
			continue;
		for (j = i; j < CTL_ROLES_N; j++) {
			const char *cj = conf_conninfo(ctl->conf, ctl_roles_sections[j]);

			if (done[j] || strcmp(ci ? ci : "", cj ? cj : "") != 0)
				continue;
			done[j] = 1;
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s (%s)",
				 names[0] ? ", " : "", ctl_roles_sections[j],
				 ctl_roles_param(ctl, ctl_roles_sections[j], buf, sizeof(buf)));
		}
		ctl_roles_one(ctl, ci ? ci : "", names);
	}
}
