/*
 * NAME
 *	ctl_config - postroomctl config check|params
 * DESCRIPTION
 *	"check" proves the configuration loads (main.c already refused a bad
 *	one: postroomctl registers every program's table, so every section is
 *	checked), prints its warnings (deprecated names) and that the database
 *	answers, and fails when a hosted domain's postmaster has no mailbox
 *	(lib/store_postmaster.c, RFC 5321 4.5.1) or, with dkim.enabled, a
 *	hosted domain has no DKIM key on this host; "params" lists every
 *	parameter of every table, which tests compare with
 *	doc/postroom.conf.5.
 * NEVER
 *	prints the value of a secret parameter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "migrate.h"
#include "store_postmaster.h"

#include "authd/authd_params.h"
#include "deliver/deliver_params.h"
#include "deliver/lmtpd_params.h"
#include "milter/milter_params.h"
#include "policyd/policyd_params.h"
#include "webhook/webhook_params.h"

/* ctl_config_register - every program's table: postroomctl checks and
 * lists the whole file, whichever program reads each section */
void ctl_config_register(void)
{
	conf_register(&deliver_conf_table);
	conf_register(&lmtpd_conf_table);
	conf_register(&authd_conf_table);
	conf_register(&milter_conf_table);
	conf_register(&policyd_conf_table);
	conf_register(&webhook_conf_table);
}

static int ctl_config_params(struct ctl *ctl)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < conf_param_count(); i++) {
		const struct cfg_param *p = conf_param_at(i);

		if (ctl->json)
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:o, s:b, s:s}", "name", p->name, "type",
					       cfg_type_name(p->type), "default",
					       p->def ? json_string(p->def) : json_null(), "secret",
					       (p->flags & (CFG_SECRET | CFG_SECRET_PW)) != 0,
					       "doc", p->doc));
		else
			printf("%s\t%s\t%s\t%s\n", p->name, cfg_type_name(p->type),
			       p->def ? p->def : "-", p->doc);
	}
	ctl_print_list(ctl, arr);
	return CTL_OK;
}

/* ctl_config_warnings - print the file's warnings (deprecated names) */
static void ctl_config_warnings(const struct ctl *ctl)
{
	const char *w;
	size_t i;

	for (i = 0; (w = conf_warning(ctl->conf, i)) != NULL; i++)
		fprintf(stderr, "postroomctl: warning: %s: %s\n", conf_path(ctl->conf), w);
}

/* ctl_config_postmaster - every hosted domain's postmaster has a mailbox
 * (RFC 5321 4.5.1) and rules.postmaster_domain is hosted: CTL_OK, or the
 * failure printed (CTL_CONFIG names the domains) */
static int ctl_config_postmaster(struct ctl *ctl)
{
	char *err = NULL, *problem = NULL;
	int rc = CTL_OK;

	if (store_postmaster_check(ctl_db(ctl), conf_str(ctl->conf, "rules.postmaster_domain"),
				   conf_str(ctl->conf, "rules.postmaster_address"), NULL, &problem,
				   &err) < 0)
		rc = ctl_fail(CTL_SOFTWARE, "cannot check the postmaster addresses: %s", err);
	else if (problem)
		rc = ctl_fail(CTL_CONFIG, "configuration error: %s", problem);
	free(problem);
	free(err);
	return rc;
}

static int ctl_config_check(struct ctl *ctl)
{
	char *err = NULL;
	int version, rc;

	ctl_config_warnings(ctl);
	version = migrate_current(ctl_db(ctl), &err);

	if (version < 0) {
		rc = ctl_fail(CTL_UNAVAILABLE, "database reachable but not migrated: %s", err);
		free(err);
		return rc;
	}
	ctl_config_roles(ctl);
	if ((rc = ctl_config_postmaster(ctl)) != CTL_OK)
		return rc;
	if ((rc = ctl_dkim_config_check(ctl)) != CTL_OK)
		return rc;
	if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:b, s:i}", "config", conf_path(ctl->conf),
					 "database", 1, "schema_version", version));
	else
		printf("configuration %s: OK; database reachable, schema version %d (latest %d)\n",
		       conf_path(ctl->conf), version, migrations[migrations_count - 1].version);
	return CTL_OK;
}

int ctl_cmd_config(struct ctl *ctl, int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "check") == 0)
		return ctl_config_check(ctl);
	if (argc == 1 && strcmp(argv[0], "params") == 0)
		return ctl_config_params(ctl);
	return ctl_usage("config check | config params");
}
