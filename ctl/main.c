/*
 * NAME
 *	postroomctl - postroom's administration command
 * SYNOPSIS
 *	postroomctl [-c FILE] [--json] COMMAND [ARGS...]
 * DESCRIPTION
 *	Parses the global options, loads the configuration and dispatches
 *	to a sub-command (ctl_*.c). See postroomctl(1).
 * NEVER
 *	takes an API key or password on the command line.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_suppression.h"
#include "log.h"

static const struct {
	const char *name;
	ctl_cmd_fn *fn;
} ctl_commands[] = {
	{ "db", ctl_cmd_db },
	{ "domain", ctl_cmd_domain },
	{ "user", ctl_cmd_user },
	{ "alias", ctl_cmd_alias },
	{ "key", ctl_cmd_key },
	{ "mail", ctl_cmd_mail },
	{ "thread", ctl_cmd_thread },
	{ "config", ctl_cmd_config },
	{ "quota", ctl_cmd_quota },
	{ "storage-quota", ctl_cmd_storage_quota },
	{ "events", ctl_cmd_events },
	{ "hold", ctl_cmd_hold },
	{ "retention", ctl_cmd_retention },
	/* issue 21 */
	{ "suppression", ctl_cmd_suppression },
	/* issue 20 */
	{ "blobs", ctl_cmd_blobs },
};

static int ctl_help(FILE *fp, int status)
{
	fputs("usage: postroomctl [-c FILE] [--json] COMMAND [ARGS...]\n"
	      "commands:\n"
	      "  db migrate\n"
	      "  domain add NAME | domain list | domain remove NAME\n"
	      "  domain dkim NAME [--selector S] [--bits N] [--rotate] [--remove S]\n"
	      "  domain check NAME [--ip ADDR]\n"
	      "  user add ADDRESS [--name DISPLAY] | user list\n"
	      "  user remove ADDRESS [--keep-mail DAYS]\n"
	      "  alias add ALIAS USER-ADDRESS | alias remove ALIAS\n"
	      "  key create USER-ADDRESS --scope SCOPE[,SCOPE...] [--name N] [--expires WHEN]\n"
	      "  key list USER-ADDRESS | key revoke KEY-ID | key check USER-ADDRESS [--scope S] (key on stdin)\n"
	      "  mail list [--user ADDRESS] [--limit N] | mail show ID [--user ADDRESS] | mail raw ID\n"
	      "  mail attachment ID N\n"
	      "  mail mark ID... --user ADDRESS [--read|--unread|--flag|--unflag]\n"
	      "  mail trash|restore|delete ID... --user ADDRESS | mail empty-trash --user ADDRESS\n"
	      "  mail purge [--dry-run] [--batch N] [--pause MS]\n"
	      "  hold set DOMAIN|ADDRESS on|off | hold show\n"
	      "  retention set DOMAIN|ADDRESS DAYS|none | retention show [DOMAIN|ADDRESS]\n"
	      "  thread show ID\n"
	      "  config check | config params\n"
	      "  events [--since POSITION] [--follow] [--user ADDRESS] | events prune [--keep DAYS] [--batch N]\n"
	      "  suppression list|add|remove [ADDRESS] --user USER-ADDRESS|--domain DOMAIN [--reason T]\n"
	      "  quota set USER-ADDRESS [--messages N|default] [--recipients N|default] | quota show USER-ADDRESS\n"
	      "  storage-quota set USER-ADDRESS BYTES|default | storage-quota set --domain DOMAIN BYTES|none\n"
	      "  storage-quota show [USER-ADDRESS] | storage-quota recount [USER-ADDRESS]\n"
	      "  blobs gc [--grace DAYS] [--dry-run] [--page N] | blobs migrate --to s3|postgresql [--batch N]\n"
	      "see postroomctl(1)\n",
	      fp);
	return status;
}

int main(int argc, char **argv)
{
	struct ctl ctl = { NULL, NULL, NULL, 0 };
	char *err = NULL;
	size_t i;
	int argi = 1, rc;

	log_init("postroomctl", 0, 1);
	while (argi < argc && argv[argi][0] == '-') {
		if (strcmp(argv[argi], "-c") == 0 && argi + 1 < argc)
			ctl.conf_path = argv[argi += 1];
		else if (strcmp(argv[argi], "--json") == 0)
			ctl.json = 1;
		else if (strcmp(argv[argi], "-h") == 0 || strcmp(argv[argi], "--help") == 0)
			return ctl_help(stdout, CTL_OK);
		else if (strcmp(argv[argi], "--version") == 0) {
			puts(PACKAGE_STRING);
			return CTL_OK;
		} else
			return ctl_help(stderr, CTL_USAGE);
		argi++;
	}
	if (argi >= argc)
		return ctl_help(stderr, CTL_USAGE);
	/* without -c, a missing default file means "defaults and PG* env" */
	ctl_config_register();
	ctl.conf = conf_load(ctl.conf_path, ctl.conf_path == NULL, &err);
	if (ctl.conf == NULL) {
		rc = ctl_fail(CTL_CONFIG, "configuration error: %s", err);
		free(err);
		return rc;
	}
	rc = -1;
	for (i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++)
		if (strcmp(argv[argi], ctl_commands[i].name) == 0)
			rc = ctl_commands[i].fn(&ctl, argc - argi - 1, argv + argi + 1);
	if (rc < 0)
		rc = ctl_fail(CTL_USAGE, "unknown command '%s' (try --help)", argv[argi]);
	db_close(&ctl.db);
	conf_free(&ctl.conf);
	fflush(stdout);
	return rc;
}
