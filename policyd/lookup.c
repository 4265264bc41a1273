/*
 * NAME
 *	lookup - policyd's database side: pooled connections, cached rule
 *	lookups (hosted domains, addresses, ownership) and the quota backend
 * DESCRIPTION
 *	Hosted domains are kept as one cached set, reloaded when it is older
 *	than policyd.cache_ttl or when PostgreSQL notifies postroom_domains
 *	(LISTEN on a connection of its own, driven by the housekeeping
 *	thread). Address answers are cached per address (flushed whole when
 *	postroom_addresses says a user or alias changed), positive ones for
 *	policyd.cache_ttl, negative ones for policyd.cache_negative_ttl (a
 *	new user is accepted soon). A failed lookup is RULES_LOOKUP_ERROR
 *	and never cached: the rules engine turns it into 451 4.3.0.
 * NEVER
 *	runs SQL built from request data (parameters only); holds a cache
 *	lock across a query.
 */
#include "autoconfig.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttl_cache.h"
#include "db.h"
#include "log.h"
#include "policyd.h"
#include "xalloc.h"

struct lookup_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct db **idle;
	int nidle, size, open;
	char *conninfo;
	int timeout;
};

static struct lookup_pool pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
				   NULL, 0, 0, 0, NULL, 10 };
static struct ttl_cache *addr_cache;	/* value: int (enum rules_lookup) */

/* the hosted-domain set */
static pthread_mutex_t dom_lock = PTHREAD_MUTEX_INITIALIZER;
static char **dom_names;
static size_t dom_count;
static time_t dom_loaded_at;
static int dom_valid;
static struct db *watch_db;

int policyd_lookup_init(const char *conninfo, int connect_timeout, int pool_size, char **error_r)
{
	pool.conninfo = xstrdup(conninfo ? conninfo : "");
	pool.timeout = connect_timeout;
	pool.size = pool_size;
	pool.idle = xcalloc((size_t)pool_size, sizeof(*pool.idle));
	addr_cache = ttl_cache_new(sizeof(int), 100000);
	return 0;
}

void policyd_lookup_shutdown(void)
{
	int i;

	for (i = 0; i < pool.nidle; i++)
		db_close(&pool.idle[i]);
	pool.nidle = 0;
	xfree(&pool.idle);
	xfree(&pool.conninfo);
	db_close(&watch_db);
	ttl_cache_free(&addr_cache);
	pthread_mutex_lock(&dom_lock);
	while (dom_count > 0)
		free(dom_names[--dom_count]);
	xfree(&dom_names);
	pthread_mutex_unlock(&dom_lock);
}

/* lookup_db_get - a pooled connection (opened on demand, waiting while
 * all are busy); NULL with *error_r */
static struct db *lookup_db_get(char **error_r)
{
	struct db *db = NULL;

	pthread_mutex_lock(&pool.lock);
	while (pool.nidle == 0 && pool.open >= pool.size)
		pthread_cond_wait(&pool.cond, &pool.lock);
	if (pool.nidle > 0) {
		db = pool.idle[--pool.nidle];
		pthread_mutex_unlock(&pool.lock);
		return db;
	}
	pool.open++;
	pthread_mutex_unlock(&pool.lock);
	db = db_connect(pool.conninfo, pool.timeout, error_r);
	if (db == NULL) {
		pthread_mutex_lock(&pool.lock);
		pool.open--;
		pthread_cond_signal(&pool.cond);
		pthread_mutex_unlock(&pool.lock);
	}
	return db;
}

/* lookup_db_put - back to the pool; a broken connection is closed */
static void lookup_db_put(struct db *db, int broken)
{
	if (broken)
		db_close(&db);
	pthread_mutex_lock(&pool.lock);
	if (db != NULL)
		pool.idle[pool.nidle++] = db;
	else
		pool.open--;
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
}

/* lookup_query - run one statement on a pooled connection; NULL with
 * *error_r on failure (the connection is dropped when the error is
 * temporary: it may be the connection that broke) */
static PGresult *lookup_query(const char *sql, int n, const char *const *params, char **error_r)
{
	enum db_err_class cls = DB_OK;
	struct db *db = lookup_db_get(error_r);
	PGresult *res;

	if (db == NULL)
		return NULL;
	res = db_exec(db, sql, n, params, &cls, error_r);
	lookup_db_put(db, res == NULL && cls != DB_PERMANENT);
	return res;
}

/* lookup_domains_reload - read the hosted-domain set; -1 on failure */
static int lookup_domains_reload(time_t now)
{
	char *err = NULL;
	PGresult *res = lookup_query("SELECT lower(name) FROM domains", 0, NULL, &err);
	char **names;
	size_t i, n, old_n;
	char **old;

	if (res == NULL) {
		log_warn("cannot load hosted domains: %s", err);
		free(err);
		return -1;
	}
	n = (size_t)PQntuples(res);
	names = xcalloc(n + 1, sizeof(*names));
	for (i = 0; i < n; i++)
		names[i] = xstrdup(PQgetvalue(res, (int)i, 0));
	PQclear(res);
	pthread_mutex_lock(&dom_lock);
	old = dom_names;
	old_n = dom_count;
	dom_names = names;
	dom_count = n;
	dom_loaded_at = now;
	dom_valid = 1;
	pthread_mutex_unlock(&dom_lock);
	for (i = 0; i < old_n; i++)
		free(old[i]);
	free(old);
	return 0;
}

static enum rules_lookup lookup_domain_hosted(void *ctx, const char *domain)
{
	const struct policyd_config *cfg = ctx;
	time_t now = time(NULL);
	enum rules_lookup r = RULES_NOT_FOUND;
	size_t i;
	int need;

	pthread_mutex_lock(&dom_lock);
	need = !dom_valid || now - dom_loaded_at >= cfg->cache_ttl;
	pthread_mutex_unlock(&dom_lock);
	if (need && lookup_domains_reload(now) < 0) {
		pthread_mutex_lock(&dom_lock);
		need = !dom_valid;	/* a stale set beats refusing all mail */
		pthread_mutex_unlock(&dom_lock);
		if (need)
			return RULES_LOOKUP_ERROR;
	}
	pthread_mutex_lock(&dom_lock);
	for (i = 0; i < dom_count; i++)
		if (strcmp(dom_names[i], domain) == 0) {
			r = RULES_FOUND;
			break;
		}
	pthread_mutex_unlock(&dom_lock);
	return r;
}

/* lookup_cached - answer of sql($1[, $2]) through the address cache */
static enum rules_lookup lookup_cached(const struct policyd_config *cfg, const char *key,
				       const char *sql, int n, const char *const *params)
{
	time_t now = time(NULL);
	int v;
	char *err = NULL;
	PGresult *res;

	if (ttl_cache_get(addr_cache, key, &v, now))
		return (enum rules_lookup)v;
	res = lookup_query(sql, n, params, &err);
	if (res == NULL) {
		log_warn("address lookup failed: %s", err);
		free(err);
		return RULES_LOOKUP_ERROR;
	}
	v = PQntuples(res) > 0 ? RULES_FOUND : RULES_NOT_FOUND;
	PQclear(res);
	ttl_cache_put(addr_cache, key, &v, v == RULES_FOUND ? cfg->cache_ttl : cfg->cache_negative_ttl, now);
	return (enum rules_lookup)v;
}

static enum rules_lookup lookup_address_exists(void *ctx, const char *address)
{
	const char *params[1] = { address };
	char *key = xasprintf("a\n%s", address);
	enum rules_lookup r = lookup_cached(ctx, key,
		"SELECT 1 FROM user_addresses WHERE lower(address) = lower($1)", 1, params);

	free(key);
	return r;
}

static enum rules_lookup lookup_address_owned_by(void *ctx, const char *address, const char *login)
{
	const char *params[2] = { address, login };
	char *key = xasprintf("o\n%s\n%s", login, address);
	enum rules_lookup r = lookup_cached(ctx, key,
		"SELECT 1 FROM user_addresses a JOIN user_addresses l ON l.user_id = a.user_id"
		" WHERE lower(a.address) = lower($1) AND lower(l.address) = lower($2)", 2, params);

	free(key);
	return r;
}

void policyd_lookup_lookups(struct rules_lookups *lk)
{
	lk->ctx = NULL;		/* the caller sets the configuration */
	lk->domain_hosted = lookup_domain_hosted;
	lk->address_exists = lookup_address_exists;
	lk->address_owned_by = lookup_address_owned_by;
}

long policyd_lookup_domain_count(char **error_r)
{
	PGresult *res = lookup_query("SELECT count(*) FROM domains", 0, NULL, error_r);
	long n;

	if (res == NULL)
		return -1;
	n = atol(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

int policyd_lookup_healthy(const char **reason_r)
{
	char *err = NULL;
	PGresult *res = lookup_query("SELECT 1", 0, NULL, &err);

	if (res == NULL) {
		free(err);
		*reason_r = "database unreachable";
		return -1;
	}
	PQclear(res);
	return 0;
}

/* ---- LISTEN postroom_domains, postroom_addresses ----------------------- */

void policyd_lookup_watch(int ms)
{
	char *err = NULL;
	PGnotify *nt;
	struct pollfd pfd;
	int changed = 0;

	if (watch_db == NULL) {
		enum db_err_class cls;

		watch_db = db_connect(pool.conninfo, pool.timeout, &err);
		if (watch_db == NULL || db_cmd(watch_db, "LISTEN postroom_domains", 0, NULL, &cls, &err) < 0 ||
		    db_cmd(watch_db, "LISTEN postroom_addresses", 0, NULL, &cls, &err) < 0) {
			log_debug("LISTEN: %s", err ? err : "?");
			free(err);
			db_close(&watch_db);
			poll(NULL, 0, ms);
			return;
		}
		changed = 1;	/* we may have missed notifications */
	}
	pfd.fd = PQsocket(db_conn(watch_db));
	pfd.events = POLLIN;
	if (poll(&pfd, 1, ms) > 0 && !PQconsumeInput(db_conn(watch_db))) {
		log_warn("domain change listener lost its connection: %s",
			 PQerrorMessage(db_conn(watch_db)));
		db_close(&watch_db);
		return;
	}
	while ((nt = PQnotifies(db_conn(watch_db))) != NULL) {
		changed = 1;
		PQfreemem(nt);
	}
	if (changed) {
		pthread_mutex_lock(&dom_lock);
		dom_valid = 0;	/* reloaded on the next lookup */
		pthread_mutex_unlock(&dom_lock);
		ttl_cache_clear(addr_cache);
	}
}

/* ---- quota backend ------------------------------------------------------ */

/* lookup_pg_array - a PostgreSQL array literal of strings */
static void lookup_pg_array_str(struct buf *b, const struct quota_flush_item *it, int n)
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

/* lookup_pg_array_num - {a,b,...} of one numeric member of the items */
static void lookup_pg_array_num(struct buf *b, const struct quota_flush_item *it, int n, int which)
{
	int i;

	buf_append_char(b, '{');
	for (i = 0; i < n; i++)
		buf_printf(b, "%s%lld", i ? "," : "", which == 0 ? it[i].window
				: which == 1 ? (long long)it[i].messages : (long long)it[i].recipients);
	buf_append_char(b, '}');
}

static int lookup_quota_load(void *ctx, const char *login, long long since, long *msg_limit,
			     long *rcpt_limit, struct quota_usage usage[2], int *nusage, char **error_r)
{
	char since_s[32];
	const char *params[2] = { login, since_s };
	PGresult *res;
	int i;

	snprintf(since_s, sizeof(since_s), "%lld", since);
	res = lookup_query(
		"SELECT COALESCE(q.messages_per_hour, -1), COALESCE(q.recipients_per_hour, -1)"
		"  FROM user_addresses a JOIN quota_limits q ON q.user_id = a.user_id"
		" WHERE lower(a.address) = $1", 1, params, error_r);
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
	res = lookup_query("SELECT extract(epoch FROM window_start)::bigint, messages, recipients"
			   "  FROM quota_usage WHERE login = $1 AND window_start >= to_timestamp($2::bigint)"
			   " ORDER BY window_start LIMIT 2", 2, params, error_r);
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

/* lookup_quota_take - copy returned totals into the matching items */
static void lookup_quota_take(PGresult *res, struct quota_flush_item *items, int n)
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

/* lookup_quota_arrays - the four array parameters of a batch */
static void lookup_quota_arrays(struct buf a[4], const struct quota_flush_item *items, int n)
{
	lookup_pg_array_str(&a[0], items, n);
	lookup_pg_array_num(&a[1], items, n, 0);
	lookup_pg_array_num(&a[2], items, n, 1);
	lookup_pg_array_num(&a[3], items, n, 2);
}

static int lookup_quota_batch(const char *sql, struct quota_flush_item *items, int n,
			      int zero_first, char **error_r)
{
	struct buf a[4] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	const char *params[4];
	PGresult *res;
	int i;

	lookup_quota_arrays(a, items, n);
	for (i = 0; i < 4; i++)
		params[i] = buf_cstr(&a[i]);
	res = lookup_query(sql, 4, params, error_r);
	for (i = 0; i < 4; i++)
		buf_free(&a[i]);
	if (res == NULL)
		return -1;
	if (zero_first)
		for (i = 0; i < n; i++)
			items[i].messages = items[i].recipients = 0;
	lookup_quota_take(res, items, n);
	PQclear(res);
	return 0;
}

static int lookup_quota_flush(void *ctx, struct quota_flush_item *items, int n, char **error_r)
{
	return lookup_quota_batch(
		"INSERT INTO quota_usage AS u (login, window_start, messages, recipients)"
		" SELECT l, to_timestamp(w), m, r"
		"   FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[]) AS t(l, w, m, r)"
		" ON CONFLICT (login, window_start) DO UPDATE"
		"   SET messages = u.messages + EXCLUDED.messages,"
		"       recipients = u.recipients + EXCLUDED.recipients"
		" RETURNING login, extract(epoch FROM window_start)::bigint, messages, recipients",
		items, n, 0, error_r);
}

static int lookup_quota_refresh(void *ctx, struct quota_flush_item *items, int n, char **error_r)
{
	return lookup_quota_batch(
		"SELECT u.login, extract(epoch FROM u.window_start)::bigint, u.messages, u.recipients"
		"  FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[]) AS t(l, w, m, r)"
		"  JOIN quota_usage u ON u.login = t.l AND u.window_start = to_timestamp(t.w)",
		items, n, 1, error_r);
}

void policyd_lookup_quota_backend(struct quota_backend *be)
{
	be->ctx = NULL;
	be->load = lookup_quota_load;
	be->flush = lookup_quota_flush;
	be->refresh = lookup_quota_refresh;
}

void policyd_lookup_expire_usage(void)
{
	char *err = NULL;
	PGresult *res = lookup_query("DELETE FROM quota_usage WHERE window_start < now() - interval '3 hours'",
				     0, NULL, &err);

	if (res == NULL) {
		log_debug("expiring old quota rows: %s", err);
		free(err);
	}
	PQclear(res);
}
