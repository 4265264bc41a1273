/*
 * NAME
 *	quota_pg - policyd's sending quotas in PostgreSQL (quota_limits,
 *	quota_usage), on the connection pool of the rules lookups
 * DESCRIPTION
 *	The quota backend of quota.c: a user's limits and usage rows,
 *	batched flushes (INSERT ... ON CONFLICT adding the deltas and
 *	returning the totals) and refreshes, and the hourly expiry of old
 *	usage rows. Statements run on lib/rules_pg.c's pool.
 * NEVER
 *	runs SQL built from request data (parameters only, logins passed
 *	as one array parameter).
 * PARAMETERS
 *	none (the pool is configured by main.c).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policyd.h"
#include "rules_pg.h"

/* quota_pg_array_str - a PostgreSQL array literal of strings */
static void quota_pg_array_str(struct buf *b, const struct quota_flush_item *it, int n)
{
	int i;
	const char *p;

	buf_append_char(b, '{');
	for (i = 0; i < n; i++) {
		buf_append_str(b, i ? ",\"" : "\"");
		for (p = it[i].login; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_append_char(b, '\\');
			buf_append_char(b, *p);
		}
		buf_append_char(b, '"');
	}
	buf_append_char(b, '}');
}

/* quota_pg_array_num - {a,b,...} of one numeric member of the items */
static void quota_pg_array_num(struct buf *b, const struct quota_flush_item *it, int n, int which)
{
	int i;

	buf_append_char(b, '{');
	for (i = 0; i < n; i++)
		buf_printf(b, "%s%lld", i ? "," : "",
			   which == 0   ? it[i].window
			   : which == 1 ? (long long)it[i].messages
					: (long long)it[i].recipients);
	buf_append_char(b, '}');
}

/* quota_pg_load - a user's limits and usage rows since a window */
static int quota_pg_load(void *ctx, const char *login, long long since, long *msg_limit,
			 long *rcpt_limit, struct quota_usage usage[2], int *nusage, char **error_r)
{
	char since_s[32];
	const char *params[2] = { login, since_s };
	PGresult *res;
	int i;

	snprintf(since_s, sizeof(since_s), "%lld", since);
	res = rules_pg_exec(
		ctx,
		"SELECT COALESCE(q.messages_per_hour, -1), COALESCE(q.recipients_per_hour, -1)"
		"  FROM user_addresses a JOIN quota_limits q ON q.user_id = a.user_id"
		" WHERE lower(a.address) = $1",
		1, params, error_r);
	if (res == NULL)
		return -1;
	*msg_limit = *rcpt_limit = -1;
	*nusage = 0;
	if (PQntuples(res) > 0) {
		*msg_limit = atol(PQgetvalue(res, 0, 0));
		*rcpt_limit = atol(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	/* the usage rows with their windows, in a second small query */
	res = rules_pg_exec(
		ctx,
		"SELECT extract(epoch FROM window_start)::bigint, messages, recipients"
		"  FROM quota_usage WHERE login = $1 AND window_start >= to_timestamp($2::bigint)"
		" ORDER BY window_start LIMIT 2",
		2, params, error_r);
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res) && i < 2; i++) {
		usage[i].window = atoll(PQgetvalue(res, i, 0));
		usage[i].messages = atol(PQgetvalue(res, i, 1));
		usage[i].recipients = atol(PQgetvalue(res, i, 2));
		(*nusage)++;
	}
	PQclear(res);
	return 0;
}

/* quota_pg_take - copy returned totals into the matching items */
static void quota_pg_take(PGresult *res, struct quota_flush_item *items, int n)
{
	int i, j;

	for (i = 0; i < PQntuples(res); i++) {
		const char *login = PQgetvalue(res, i, 0);
		long long w = atoll(PQgetvalue(res, i, 1));

		for (j = 0; j < n; j++)
			if (items[j].window == w && strcmp(items[j].login, login) == 0) {
				items[j].messages = atol(PQgetvalue(res, i, 2));
				items[j].recipients = atol(PQgetvalue(res, i, 3));
			}
	}
}

/* quota_pg_arrays - the four array parameters of a batch */
static void quota_pg_arrays(struct buf a[4], const struct quota_flush_item *items, int n)
{
	quota_pg_array_str(&a[0], items, n);
	quota_pg_array_num(&a[1], items, n, 0);
	quota_pg_array_num(&a[2], items, n, 1);
	quota_pg_array_num(&a[3], items, n, 2);
}

/* quota_pg_batch - run a flush or refresh statement over the items */
static int quota_pg_batch(struct rules_pg *rp, const char *sql, struct quota_flush_item *items,
			  int n, int zero_first, char **error_r)
{
	struct buf a[4] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	const char *params[4];
	PGresult *res;
	int i;

	quota_pg_arrays(a, items, n);
	for (i = 0; i < 4; i++)
		params[i] = buf_cstr(&a[i]);
	res = rules_pg_exec(rp, sql, 4, params, error_r);
	for (i = 0; i < 4; i++)
		buf_free(&a[i]);
	if (res == NULL)
		return -1;
	if (zero_first)
		for (i = 0; i < n; i++)
			items[i].messages = items[i].recipients = 0;
	quota_pg_take(res, items, n);
	PQclear(res);
	return 0;
}

static int quota_pg_flush(void *ctx, struct quota_flush_item *items, int n, char **error_r)
{
	return quota_pg_batch(
		ctx,
		"INSERT INTO quota_usage AS u (login, window_start, messages, recipients)"
		" SELECT l, to_timestamp(w), m, r"
		"   FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[]) AS t(l, w, m, r)"
		" ON CONFLICT (login, window_start) DO UPDATE"
		"   SET messages = u.messages + EXCLUDED.messages,"
		"       recipients = u.recipients + EXCLUDED.recipients"
		" RETURNING login, extract(epoch FROM window_start)::bigint, messages, recipients",
		items, n, 0, error_r);
}

static int quota_pg_refresh(void *ctx, struct quota_flush_item *items, int n, char **error_r)
{
	return quota_pg_batch(
		ctx,
		"SELECT u.login, extract(epoch FROM u.window_start)::bigint, u.messages, u.recipients"
		"  FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[]) AS t(l, w, m, r)"
		"  JOIN quota_usage u ON u.login = t.l AND u.window_start = to_timestamp(t.w)",
		items, n, 1, error_r);
}

void policyd_quota_pg_backend(struct quota_backend *be, struct rules_pg *rp)
{
	be->ctx = rp;
	be->load = quota_pg_load;
	be->flush = quota_pg_flush;
	be->refresh = quota_pg_refresh;
}

void policyd_quota_pg_expire(struct rules_pg *rp)
{
	char *err = NULL;
	PGresult *res = rules_pg_exec(
		rp, "DELETE FROM quota_usage WHERE window_start < now() - interval '3 hours'", 0,
		NULL, &err);

	if (res == NULL) {
		log_debug("expiring old quota rows: %s", err);
		free(err);
	}
	PQclear(res);
}
