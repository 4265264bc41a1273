/*
 * NAME
 *	ctl_db - postroomctl db migrate
 * DESCRIPTION
 *	Applies the compiled-in migrations (lib/migrate.c) and reports the
 *	schema version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "migrate.h"

int ctl_cmd_db(struct ctl *ctl, int argc, char **argv)
{
	int applied, version;
	char *err = NULL;

	if (argc != 1 || strcmp(argv[0], "migrate") != 0)
		return ctl_usage("db migrate");
	if (migrate_apply(ctl_db(ctl), &applied, &version, &err) < 0) {
		int rc = ctl_fail(CTL_UNAVAILABLE, "%s", err);
		free(err);
		return rc;
	}
	if (ctl->json) {
		ctl_print_json(json_pack("{s:i, s:i}", "applied", applied, "version", version));
	} else {
		printf("applied %d migration%s; schema version %d\n", applied,
		       applied == 1 ? "" : "s", version);
	}
	return CTL_OK;
}
