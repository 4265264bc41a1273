/*
 * NAME
 *	ctl_suppression - postroomctl suppression list|add|remove, and the
 *	bounce facts of mail show (issue 21)
 * DESCRIPTION
 *	The suppression lists of sql/019_bounces.sql: a user's (--user) or a
 *	domain's (--domain), through the same functions the application
 *	uses (postroom_suppress, postroom_suppression_remove,
 *	postroom_suppressions_of). A user's list shows the entries of its
 *	domain too. mail show adds an email's class, its report facts and,
 *	for a sent email, the reports linked to it.
 * NEVER
 *	writes the suppressions table other than through those functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_suppression.h"
#include "xalloc.h"

#define CTL_TS_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

#define CTL_SUPP_USAGE                                                                           \
	"suppression list --user USER-ADDRESS | --domain DOMAIN\n"                               \
	"       suppression add ADDRESS --user USER-ADDRESS | --domain DOMAIN [--reason TEXT]\n" \
	"       suppression remove ADDRESS --user USER-ADDRESS | --domain DOMAIN"

/* the scope a command names: exactly one of a user (its id) and a domain */
struct ctl_supp_scope {
	char *user, *uid, *domain;
};

static void ctl_supp_scope_free(struct ctl_supp_scope *s)
{
	free(s->user);
	free(s->uid);
	free(s->domain);
}

/* ctl_supp_scope - resolve --user / --domain (taken); CTL_OK or a status */
static int ctl_supp_scope(struct ctl *ctl, char *user_in, char *domain_in, struct ctl_supp_scope *s)
{
	char *p;

	memset(s, 0, sizeof(*s));
	if ((user_in == NULL) == (domain_in == NULL)) {
		free(user_in);
		free(domain_in);
		return ctl_usage(CTL_SUPP_USAGE);
	}
	if (user_in) {
		s->user = ctl_canonical_address(user_in);
		free(user_in);
		if ((s->uid = ctl_user_id(ctl, s->user)) == NULL)
			return ctl_fail(CTL_REFUSED, "no such user: %s", s->user);
		return CTL_OK;
	}
	s->domain = domain_in;
	for (p = s->domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return CTL_OK;
}

static int ctl_supp_list(struct ctl *ctl, int argc, char **argv)
{
	char *user_in = NULL, *domain_in = NULL;
	struct ctl_opt opts[] = { { "--user", &user_in, 0 },
				  { "--domain", &domain_in, 0 },
				  { NULL, NULL, 0 } };
	struct ctl_supp_scope s;
	const char *params[1];
	json_t *arr = json_array();
	PGresult *res;
	int rc, i;

	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0) {
		free(user_in);
		free(domain_in);
		json_decref(arr);
		return ctl_usage(CTL_SUPP_USAGE);
	}
	if ((rc = ctl_supp_scope(ctl, user_in, domain_in, &s)) != CTL_OK) {
		ctl_supp_scope_free(&s);
		json_decref(arr);
		return rc;
	}
	params[0] = s.uid ? s.uid : s.domain;
	res = ctl_query(
		ctl,
		s.uid ? "SELECT address, reason, CASE WHEN user_id IS NULL THEN 'domain ' ||"
			" domain ELSE 'user' END, email_id, " CTL_TS_SQL(
				"created_at") " FROM postroom_suppressions_of($1::uuid)"
		      : "SELECT address, reason, 'domain ' || domain, email_id, " CTL_TS_SQL(
				"created_at") " FROM suppressions WHERE domain = $1"
					      " ORDER BY created_at, id",
		1, params);
	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json)
			json_array_append_new(arr, json_pack("{s:o, s:o, s:o, s:o, s:o}", "address",
							     ctl_json_text(res, i, 0), "reason",
							     ctl_json_text(res, i, 1), "scope",
							     ctl_json_text(res, i, 2), "email_id",
							     ctl_json_text(res, i, 3), "created_at",
							     ctl_json_text(res, i, 4)));
		else
			printf("%s\t%s\t%s\t%s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 4),
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 1));
	}
	ctl_print_list(ctl, arr);
	PQclear(res);
	ctl_supp_scope_free(&s);
	return CTL_OK;
}

/* ctl_supp_change - add (reason non-NULL) or remove one address */
static int ctl_supp_change(struct ctl *ctl, int add, int argc, char **argv)
{
	char *user_in = NULL, *domain_in = NULL, *reason = NULL, *pos[1], *addr;
	struct ctl_opt opts[] = { { "--user", &user_in, 0 },
				  { "--domain", &domain_in, 0 },
				  { "--reason", &reason, 0 },
				  { NULL, NULL, 0 } };
	struct ctl_supp_scope s;
	const char *params[4];
	PGresult *res;
	int rc;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0 || (!add && reason)) {
		free(user_in);
		free(domain_in);
		free(reason);
		return ctl_usage(CTL_SUPP_USAGE);
	}
	if ((rc = ctl_supp_scope(ctl, user_in, domain_in, &s)) != CTL_OK) {
		ctl_supp_scope_free(&s);
		free(reason);
		return rc;
	}
	addr = ctl_canonical_address(pos[0]);
	params[0] = s.uid;
	params[1] = s.uid ? NULL : s.domain;
	params[2] = addr;
	params[3] = reason ? reason : "added by postroomctl";
	res = ctl_query(ctl,
			add ? "SELECT postroom_suppress($1::uuid, $2, $3, $4)"
			    : "SELECT postroom_suppression_remove($1::uuid, $2, $3)",
			add ? 4 : 3, params);
	if (!add && strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		rc = ctl_fail(CTL_REFUSED, "%s is not on the suppression list of %s", addr,
			      s.user ? s.user : s.domain);
	else if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s, s:s}", "address", addr,
					 add ? "added" : "removed", s.user ? s.user : s.domain,
					 "scope", s.user ? "user" : "domain"));
	else
		printf("%s %s %s the suppression list of %s\n", add ? "added" : "removed", addr,
		       add ? "to" : "from", s.user ? s.user : s.domain);
	PQclear(res);
	free(addr);
	free(reason);
	ctl_supp_scope_free(&s);
	return rc;
}

int ctl_cmd_suppression(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return ctl_supp_list(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "add") == 0)
		return ctl_supp_change(ctl, 1, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "remove") == 0)
		return ctl_supp_change(ctl, 0, argc - 1, argv + 1);
	return ctl_usage(CTL_SUPP_USAGE);
}

/* ctl_report_recipients - the recipients a report names */
static json_t *ctl_report_recipients(struct ctl *ctl, const char *id)
{
	const char *params[1] = { id };
	json_t *arr = json_array();
	PGresult *res = ctl_query(ctl,
				  "SELECT address, kind, action, status, diagnostic FROM"
				  " email_report_recipients WHERE email_id = $1 ORDER BY position",
				  1, params);
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, json_pack("{s:o, s:o, s:o, s:o, s:o}", "address",
						     ctl_json_text(res, i, 0), "kind",
						     ctl_json_text(res, i, 1), "action",
						     ctl_json_text(res, i, 2), "status",
						     ctl_json_text(res, i, 3), "diagnostic",
						     ctl_json_text(res, i, 4)));
	PQclear(res);
	return arr;
}

void ctl_report_add_json(struct ctl *ctl, const char *id, json_t *email)
{
	const char *params[1] = { id };
	json_t *reports = json_array();
	PGresult *res;
	int i;

	res = ctl_query(
		ctl,
		"SELECT class, rule, original_message_id FROM email_reports WHERE email_id = $1", 1,
		params);
	if (PQntuples(res) == 0) {
		json_object_set_new(email, "class", json_string("ordinary"));
	} else {
		json_object_set_new(email, "class", ctl_json_text(res, 0, 0));
		json_object_set_new(email, "report",
				    json_pack("{s:o, s:o, s:o}", "rule", ctl_json_text(res, 0, 1),
					      "original_message_id", ctl_json_text(res, 0, 2),
					      "recipients", ctl_report_recipients(ctl, id)));
	}
	PQclear(res);
	/* as a sent email: the bounces, complaints and auto-replies about it */
	res = ctl_query(ctl,
			"SELECT l.report_email_id, r.class, l.address, l.kind, " CTL_TS_SQL(
				"l.created_at") " FROM email_report_links l JOIN email_reports r ON"
						" r.email_id = l.report_email_id WHERE"
						" l.sent_email_id = $1 ORDER BY l.created_at,"
						" l.report_email_id, l.address",
			1, params);
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(reports, json_pack("{s:o, s:o, s:o, s:o, s:o}", "email_id",
							 ctl_json_text(res, i, 0), "class",
							 ctl_json_text(res, i, 1), "address",
							 ctl_json_text(res, i, 2), "kind",
							 ctl_json_text(res, i, 3), "received_at",
							 ctl_json_text(res, i, 4)));
	json_object_set_new(email, "reports", reports);
	PQclear(res);
}
