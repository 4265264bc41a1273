/*
 * NAME
 *	ctl_user - postroomctl user add|list|remove, alias add|remove
 * DESCRIPTION
 *	Users are identified by their primary address; aliases are further
 *	addresses of one user. One unique index over user_addresses keeps an
 *	address owned by at most one user; the insert trigger links earlier
 *	recipient rows that never had an owner to the new owner (sql/001_init.sql
 *	and sql/013_address_reuse.sql). Removing a user (ctl/ctl_mailbox.c,
 *	postroom_user_remove) expunges their mailbox, or with --keep-mail
 *	keeps it unlinked, its recipient rows marked orphaned, for audit until
 *	the purge removes it.
 * NEVER
 *	lets two users own one address; gives a removed user's mail to the
 *	next owner of the address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "xalloc.h"

#define CTL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ctl_address_taken - message for a unique violation on address */
static int ctl_address_taken(const char *addr)
{
	return ctl_fail(CTL_REFUSED, "address %s is already in use (by a user or an alias)", addr);
}

static int ctl_user_add(struct ctl *ctl, int argc, char **argv)
{
	char *name = NULL, *pos[1];
	struct ctl_opt opts[] = { { "--name", &name, 0 }, { NULL, NULL, 0 } };
	const char *params[2], *state = NULL;
	char *addr;
	PGresult *res;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0) {
		free(name);
		return ctl_usage("user add ADDRESS [--name DISPLAY]");
	}
	addr = ctl_canonical_address(pos[0]);
	params[0] = addr;
	params[1] = name;
	res = ctl_query_try(
		ctl, "INSERT INTO users (address, display_name) VALUES ($1, $2) RETURNING id", 2,
		params, &state);
	if (res == NULL && strcmp(state, "23505") == 0)
		rc = ctl_address_taken(addr);
	else if (res == NULL)
		rc = ctl_fail(CTL_SOFTWARE, "cannot add user %s (SQLSTATE %s)", addr, state);
	else if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s, s:o}", "id", PQgetvalue(res, 0, 0), "address",
					 addr, "display_name",
					 name ? json_string(name) : json_null()));
	else
		printf("added user %s (%s)\n", addr, PQgetvalue(res, 0, 0));
	PQclear(res);
	free(addr);
	free(name);
	return rc;
}

static int ctl_user_list(struct ctl *ctl)
{
	PGresult *res = ctl_query(
		ctl,
		"SELECT u.id, u.address, u.display_name, " CTL_TS(
			"u.created_at") ", "
					"  " CTL_TS(
						"u.last_login_at") ", "
								   "  (SELECT COALESCE(json_agg(a.address ORDER BY a.address), '[]')"
								   "     FROM user_addresses a WHERE a.user_id = u.id AND a.kind = 'alias'),"
								   "  u.legal_hold, u.retention_days"
								   " FROM users u ORDER BY u.address",
		0, NULL);
	json_t *arr = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json)
			json_array_append_new(arr,
					      json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
							"id", ctl_json_text(res, i, 0), "address",
							ctl_json_text(res, i, 1), "display_name",
							ctl_json_text(res, i, 2), "created_at",
							ctl_json_text(res, i, 3), "last_login_at",
							ctl_json_text(res, i, 4), "aliases",
							ctl_json_parsed(res, i, 5), "legal_hold",
							ctl_json_bool(res, i, 6), "retention_days",
							ctl_json_int(res, i, 7)));
		else
			printf("%s\t%s\t%s\n", PQgetvalue(res, i, 1), ctl_val(res, i, 2),
			       PQgetvalue(res, i, 0));
	}
	ctl_print_list(ctl, arr);
	PQclear(res);
	return CTL_OK;
}

int ctl_cmd_user(struct ctl *ctl, int argc, char **argv)
{
	const char *usage = "user add ADDRESS [--name DISPLAY] | user list"
			    " | user remove ADDRESS [--keep-mail DAYS]";

	if (argc >= 1 && strcmp(argv[0], "add") == 0)
		return ctl_user_add(ctl, argc - 1, argv + 1);
	if (argc == 1 && strcmp(argv[0], "list") == 0)
		return ctl_user_list(ctl);
	if (argc >= 2 && strcmp(argv[0], "remove") == 0) /* ctl/ctl_mailbox.c */
		return ctl_user_remove_mailbox(ctl, argc - 1, argv + 1);
	return ctl_usage(usage);
}

static int ctl_alias_add(struct ctl *ctl, const char *alias_in, const char *user_in)
{
	char *alias = ctl_canonical_address(alias_in), *user = ctl_canonical_address(user_in);
	const char *params[2] = { user, alias }, *state = NULL;
	PGresult *res;
	int rc = CTL_OK;

	res = ctl_query_try(
		ctl,
		"INSERT INTO user_addresses (user_id, address, kind)"
		" SELECT id, $2, 'alias' FROM users WHERE lower(address) = $1 RETURNING id",
		2, params, &state);
	if (res == NULL && strcmp(state, "23505") == 0)
		rc = ctl_address_taken(alias);
	else if (res == NULL)
		rc = ctl_fail(CTL_SOFTWARE, "cannot add alias %s (SQLSTATE %s)", alias, state);
	else if (PQntuples(res) == 0)
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", user);
	else if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s}", "alias", alias, "user", user));
	else
		printf("added alias %s for %s\n", alias, user);
	PQclear(res);
	free(alias);
	free(user);
	return rc;
}

static int ctl_alias_remove(struct ctl *ctl, const char *alias_in)
{
	char *alias = ctl_canonical_address(alias_in);
	int rc = ctl_remove_one(ctl,
				"DELETE FROM user_addresses WHERE lower(address) = $1"
				" AND kind = 'alias' RETURNING id",
				alias, "alias");

	free(alias);
	return rc;
}

int ctl_cmd_alias(struct ctl *ctl, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[0], "add") == 0)
		return ctl_alias_add(ctl, argv[1], argv[2]);
	if (argc == 2 && strcmp(argv[0], "remove") == 0)
		return ctl_alias_remove(ctl, argv[1]);
	return ctl_usage("alias add ALIAS USER-ADDRESS | alias remove ALIAS");
}
