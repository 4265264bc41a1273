/*
 * NAME
 *	ctl_domain - postroomctl domain add|list|remove
 * DESCRIPTION
 *	Hosted domains: the source of truth for MX mode. Names are checked
 *	with the RFC 5321 parser and stored in lower case without a trailing
 *	dot. A change notifies the daemons (trigger in sql/001_init.sql).
 *	"add" warns when the new domain's postmaster has no mailbox (no user
 *	or alias postmaster@DOMAIN, no owned rules.postmaster_address).
 *	"dkim" manages the domain's DKIM keys (ctl/ctl_dkim.c), "check" reads
 *	its DNS records (ctl/ctl_domain_check.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "address.h"
#include "store_postmaster.h"
#include "xalloc.h"

/* ctl_domain_canonical - validated lower-case domain (caller frees) */
static char *ctl_domain_canonical(const char *name)
{
	struct mailbox mb;
	const char *err = NULL;
	char *probe = xasprintf("postmaster@%s", name), *out;

	if (addr_parse(probe, strlen(probe), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb, &err) < 0 ||
	    (mb.flags & ADDR_F_LITERAL)) {
		if (err == NULL)
			err = "address literals cannot be hosted domains";
		if (mb.local)
			addr_free(&mb);
		free(probe);
		exit(ctl_fail(CTL_USAGE, "invalid domain '%s': %s", name, err));
	}
	out = xstrdup(mb.domain);
	addr_free(&mb);
	free(probe);
	return out;
}

/* ctl_domain_postmaster_warn - a new domain's postmaster without a mailbox
 * (RFC 5321 4.5.1): a warning on stderr, the domain is added all the same */
static void ctl_domain_postmaster_warn(struct ctl *ctl, const char *dom)
{
	char *err = NULL, *problem = NULL;

	if (store_postmaster_check(ctl_db(ctl), NULL,
				   conf_str(ctl->conf, "rules.postmaster_address"), dom, &problem,
				   &err) == 0 &&
	    problem) {
		fflush(stdout); /* after the "added" line */
		fprintf(stderr, "postroomctl: warning: %s\n", problem);
	}
	free(problem);
	free(err);
}

static int ctl_domain_add(struct ctl *ctl, const char *name)
{
	char *dom = ctl_domain_canonical(name);
	const char *params[1] = { dom }, *state = NULL;
	PGresult *res = ctl_query_try(ctl, "INSERT INTO domains (name) VALUES ($1) RETURNING id", 1,
				      params, &state);
	int rc = CTL_OK;

	if (res == NULL)
		rc = ctl_fail(strcmp(state, "23505") == 0 ? CTL_REFUSED : CTL_SOFTWARE,
			      strcmp(state, "23505") == 0 ? "domain %s already exists"
							  : "cannot add domain %s",
			      dom);
	else if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s}", "id", PQgetvalue(res, 0, 0), "name", dom));
	else
		printf("added domain %s\n", dom);
	if (res != NULL)
		ctl_domain_postmaster_warn(ctl, dom);
	PQclear(res);
	free(dom);
	return rc;
}

static int ctl_domain_remove(struct ctl *ctl, const char *name)
{
	char *dom = ctl_domain_canonical(name);
	int rc = ctl_remove_one(ctl, "DELETE FROM domains WHERE lower(name) = $1 RETURNING id", dom,
				"domain");

	free(dom);
	return rc;
}

static int ctl_domain_list(struct ctl *ctl)
{
	PGresult *res = ctl_query(
		ctl,
		"SELECT id, name, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
		" legal_hold, retention_days FROM domains ORDER BY name",
		0, NULL);
	json_t *arr = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json)
			json_array_append_new(arr,
					      json_pack("{s:o, s:o, s:o, s:o, s:o}", "id",
							ctl_json_text(res, i, 0), "name",
							ctl_json_text(res, i, 1), "created_at",
							ctl_json_text(res, i, 2), "legal_hold",
							ctl_json_bool(res, i, 3), "retention_days",
							ctl_json_int(res, i, 4)));
		else
			printf("%s\n", PQgetvalue(res, i, 1));
	}
	ctl_print_list(ctl, arr);
	PQclear(res);
	return CTL_OK;
}

int ctl_cmd_domain(struct ctl *ctl, int argc, char **argv)
{
	const char *usage = "domain add NAME | domain list | domain remove NAME |"
			    " domain dkim NAME [--selector S] [--bits N] [--rotate] [--remove S] |"
			    " domain check NAME [--ip ADDR]";
	char *dom;
	int rc;

	if (argc == 2 && strcmp(argv[0], "add") == 0)
		return ctl_domain_add(ctl, argv[1]);
	if (argc == 2 && strcmp(argv[0], "remove") == 0)
		return ctl_domain_remove(ctl, argv[1]);
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return ctl_domain_list(ctl);
	if (argc >= 2 && strcmp(argv[0], "dkim") == 0) {
		dom = ctl_domain_canonical(argv[1]);
		rc = ctl_domain_dkim(ctl, dom, argc - 2, argv + 2);
		free(dom);
		return rc;
	}
	if (argc >= 2 && strcmp(argv[0], "check") == 0) {
		dom = ctl_domain_canonical(argv[1]);
		rc = ctl_domain_check(ctl, dom, argc - 2, argv + 2);
		free(dom);
		return rc;
	}
	return ctl_usage(usage);
}
