/*
 * NAME
 *	ctl_util - postroomctl's shared helpers: database, errors, JSON
 * DESCRIPTION
 *	Opens the database lazily, turns failed statements into clear
 *	messages and exit statuses, and converts result columns to JSON
 *	values for --json output.
 * NEVER
 *	prints a conninfo or key material.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "address.h"
#include "xalloc.h"

int ctl_fail(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("postroomctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

int ctl_usage(const char *text)
{
	fprintf(stderr, "usage: postroomctl [-c FILE] [--json] %s\n", text);
	return CTL_USAGE;
}

struct db *ctl_db(struct ctl *ctl)
{
	char *err = NULL;

	if (ctl->db)
		return ctl->db;
	ctl->db = db_connect(conf_str(ctl->conf, "database.conninfo"),
			     (int)conf_int(ctl->conf, "database.connect_timeout"), &err);
	if (ctl->db == NULL)
		exit(ctl_fail(CTL_UNAVAILABLE, "%s", err));
	return ctl->db;
}

PGresult *ctl_query_try(struct ctl *ctl, const char *sql, int n, const char *const *params,
			const char **state_r)
{
	static char state[6];
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res = db_exec(ctl_db(ctl), sql, n, params, &cls, &err);

	if (res)
		return res;
	snprintf(state, sizeof(state), "%s",
		 db_last_sqlstate(ctl->db) ? db_last_sqlstate(ctl->db) : "");
	*state_r = state;
	if (cls == DB_TEMPORARY || state[0] == '\0')
		exit(ctl_fail(CTL_UNAVAILABLE, "database error: %s", err));
	if (strcmp(state, "42P01") == 0) /* undefined_table */
		exit(ctl_fail(CTL_UNAVAILABLE, "%s (run: postroomctl db migrate)", err));
	free(err);
	return NULL;
}

PGresult *ctl_query(struct ctl *ctl, const char *sql, int n, const char *const *params)
{
	const char *state = NULL;
	PGresult *res = ctl_query_try(ctl, sql, n, params, &state);

	if (res == NULL)
		exit(ctl_fail(CTL_SOFTWARE, "unexpected database error (SQLSTATE %s)", state));
	return res;
}

void ctl_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(v);
}

void ctl_print_list(struct ctl *ctl, json_t *arr)
{
	if (ctl->json)
		ctl_print_json(arr);
	else
		json_decref(arr);
}

int ctl_remove_one(struct ctl *ctl, const char *sql, const char *key, const char *what)
{
	const char *params[1] = { key };
	PGresult *res = ctl_query(ctl, sql, 1, params);
	int found = PQntuples(res) > 0;

	PQclear(res);
	if (!found)
		return ctl_fail(CTL_REFUSED, "no such %s: %s", what, key);
	if (ctl->json)
		ctl_print_json(json_pack("{s:s}", "removed", key));
	else
		printf("removed %s %s\n", what, key);
	return CTL_OK;
}

json_t *ctl_json_text(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_string(PQgetvalue(res, row, col));
}

json_t *ctl_json_bool(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_boolean(PQgetvalue(res, row, col)[0] == 't');
}

json_t *ctl_json_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

json_t *ctl_json_parsed(const PGresult *res, int row, int col)
{
	json_error_t jerr;
	json_t *v;

	if (PQgetisnull(res, row, col))
		return json_null();
	v = json_loads(PQgetvalue(res, row, col), 0, &jerr);
	return v ? v : json_null();
}

const char *ctl_val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "-" : PQgetvalue(res, row, col);
}

char *ctl_canonical_address(const char *in)
{
	const char *err = NULL;
	char *canon = addr_canonicalize(in, &err);

	if (canon == NULL)
		exit(ctl_fail(CTL_USAGE, "invalid address '%s': %s", in, err));
	return canon;
}

int ctl_is_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

char *ctl_user_id(struct ctl *ctl, const char *canon_address)
{
	const char *params[1] = { canon_address };
	PGresult *res = ctl_query(
		ctl, "SELECT user_id FROM user_addresses WHERE lower(address) = lower($1)", 1,
		params);
	char *id = PQntuples(res) ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;

	PQclear(res);
	return id;
}

/* ctl_take_opt - store the value of option o (joining repeats if multi) */
static void ctl_take_opt(const struct ctl_opt *o, const char *value)
{
	if (o->multi && *o->value) {
		char *joined = xasprintf("%s,%s", *o->value, value);
		free(*o->value);
		*o->value = joined;
	} else {
		free(*o->value);
		*o->value = xstrdup(value);
	}
}

int ctl_parse_args(int argc, char **argv, const struct ctl_opt *opts, char **pos, int minpos,
		   int maxpos)
{
	int i, npos = 0;

	for (i = 0; i < argc; i++) {
		const struct ctl_opt *o = NULL;

		if (strncmp(argv[i], "--", 2) == 0) {
			for (o = opts; o && o->name; o++)
				if (strcmp(o->name, argv[i]) == 0)
					break;
			if (o == NULL || o->name == NULL || i + 1 >= argc) {
				ctl_fail(CTL_USAGE, "%s: %s", argv[i],
					 o && o->name ? "missing value" : "unknown option");
				return -1;
			}
			ctl_take_opt(o, argv[++i]);
		} else if (npos < maxpos) {
			pos[npos++] = argv[i];
		} else {
			ctl_fail(CTL_USAGE, "unexpected argument '%s'", argv[i]);
			return -1;
		}
	}
	if (npos < minpos) {
		ctl_fail(CTL_USAGE, "missing argument");
		return -1;
	}
	for (i = npos; i < maxpos; i++)
		pos[i] = NULL;
	return 0;
}
