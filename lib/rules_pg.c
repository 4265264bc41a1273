/*
 * NAME
 *	rules_pg - the rules engine's lookups over PostgreSQL, with caches
 * DESCRIPTION
 *	Hosted domains live in memory, loaded by a listener thread that
 *	holds its own connection with LISTEN postroom_domains (the trigger
 *	of sql/001_init.sql), postroom_addresses and postroom_keys; it
 *	reloads them on every postroom_domains notification and every
 *	domain_reload seconds. Addresses (does a user own it? does this
 *	login own it?) are asked of a small connection pool and cached,
 *	an owned address for ttl_found seconds, an unknown one for
 *	ttl_not_found; the other notifications empty that cache, and so
 *	does every new subscription (nothing heard while away is trusted:
 *	the listener retries every second, so a cache that may have missed
 *	a notification is dropped within about a second of the database
 *	answering again). An answer read before such a clear is not
 *	stored after it (the cache's generation, lib/ttl_cache.c).
 *	An empty domain table is a lookup failure (never "not hosted":
 *	tempfail, so a mistaken "domain remove" defers mail instead of
 *	bouncing it).
 *	While the listener is away from the database, offline_answers
 *	says what is served: 0 (postroom-milter) drops the domain set and
 *	bypasses the cache, so every unauthenticated recipient is
 *	tempfailed (451 4.3.0) until the database is back; 1
 *	(postroom-policyd) keeps serving the last domain set and the
 *	cached answers, and only what must be asked fails.
 *	The storage quota (postroom_storage_quota_state, sql/032) is
 *	asked of the pool at every RCPT to a user with a limit and never
 *	cached then: usage changes with every delivery. That no limit
 *	applies to an address is cached like an owned address (a limit
 *	given notifies postroom_addresses). While the database is away it
 *	fails like any query that must be asked (451 4.3.0, both daemons).
 *	A pooled connection runs with statement_timeout 5 s and is
 *	replaced once when found broken (a server restart).
 * NEVER
 *	caches a failure, turns a database error into FOUND or NOT_FOUND,
 *	runs SQL built from request data (parameters only), holds a lock
 *	across a query.
 * PARAMETERS
 *	none itself: struct rules_pg_settings is filled by postroom-milter
 *	from database.conninfo, database.connect_timeout, milter.cache_ttl,
 *	milter.cache_size, milter.db_connections, and by postroom-policyd
 *	from database.*, policyd.cache_ttl, policyd.cache_negative_ttl,
 *	policyd.db_connections.
 */
#include "rules_pg.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "schema_check.h"
#include "ttl_cache.h"
#include "xalloc.h"

#define RULES_PG_RECONNECT_GAP 1 /* seconds between connection attempts */
#define RULES_PG_POLL_MS 500     /* the listener checks for the stop this often */
/* a stalled database: fail the lookup (451) long before Postfix's
 * milter_command_timeout (30 s) or policy timeout gives up on us */
#define RULES_PG_STATEMENT_TIMEOUT "'5s'"

struct rules_pg_slot {
	struct db *db;
	int busy;
	time_t last_attempt;
};

struct rules_pg {
	struct rules_pg_settings set; /* conninfo owned */
	struct rules_lookups lookups;
	int ttl_found, ttl_not_found; /* atomic: a reload may change them */

	/* pool */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct rules_pg_slot *slots;
	int pool_down_logged; /* atomic: connection failure logged */

	/* domains: NULL = unknown */
	pthread_rwlock_t dom_lock;
	char **domains;
	size_t ndomains;
	int listener_up;

	struct ttl_cache *cache; /* "e\naddress" or "o\naddress\nlogin" -> enum */

	/* listener thread; listen_db and listen_down_logged are its own */
	pthread_t thread;
	int running; /* atomic */
	struct db *listen_db;
	int listen_down_logged;
};

static void rules_pg_count(struct metric *m)
{
	if (m != NULL)
		metric_inc(m);
}

/* ---- the connection pool ------------------------------------------------ */

/* rules_pg_pool_take - a free slot, waiting for one; its db may be NULL */
static struct rules_pg_slot *rules_pg_pool_take(struct rules_pg *rp)
{
	int i;

	pthread_mutex_lock(&rp->pool_lock);
	for (;;) {
		for (i = 0; i < rp->set.connections; i++) {
			if (!rp->slots[i].busy) {
				rp->slots[i].busy = 1;
				pthread_mutex_unlock(&rp->pool_lock);
				return &rp->slots[i];
			}
		}
		pthread_cond_wait(&rp->pool_cond, &rp->pool_lock);
	}
}

static void rules_pg_pool_give(struct rules_pg *rp, struct rules_pg_slot *s)
{
	pthread_mutex_lock(&rp->pool_lock);
	s->busy = 0;
	pthread_cond_signal(&rp->pool_cond);
	pthread_mutex_unlock(&rp->pool_lock);
}

/* rules_pg_slot_ready - connect the slot when needed (at most once a
 * second); -1 with *error_r when there is no connection */
static int rules_pg_slot_ready(struct rules_pg *rp, struct rules_pg_slot *s, char **error_r)
{
	enum db_err_class cls;
	time_t now = time(NULL);

	if (s->db && PQstatus(db_conn(s->db)) == CONNECTION_OK)
		return 0;
	db_close(&s->db);
	if (now - s->last_attempt < RULES_PG_RECONNECT_GAP) {
		*error_r = xstrdup("database unreachable (a connection failed just now)");
		return -1;
	}
	s->last_attempt = now;
	s->db = schema_check_connect(rp->set.conninfo, rp->set.connect_timeout, error_r);
	if (s->db == NULL || db_cmd(s->db, "SET statement_timeout = " RULES_PG_STATEMENT_TIMEOUT, 0,
				    NULL, &cls, error_r) < 0) {
		if (!__atomic_exchange_n(&rp->pool_down_logged, 1, __ATOMIC_RELAXED))
			log_warn("lookup: %s (logged once until a connection succeeds)", *error_r);
		db_close(&s->db);
		return -1;
	}
	__atomic_store_n(&rp->pool_down_logged, 0, __ATOMIC_RELAXED);
	return 0;
}

/* rules_pg_slot_check - after a failed statement: -1 (and the slot
 * emptied, to reconnect at once) when the connection itself broke */
static int rules_pg_slot_check(struct rules_pg_slot *s)
{
	if (PQstatus(db_conn(s->db)) == CONNECTION_OK)
		return 0;
	db_close(&s->db);
	s->last_attempt = 0; /* a server restart: reconnect at once */
	return -1;
}

PGresult *rules_pg_exec(struct rules_pg *rp, const char *sql, int n, const char *const *params,
			char **error_r)
{
	struct rules_pg_slot *s = rules_pg_pool_take(rp);
	enum db_err_class cls;
	PGresult *res = NULL;

	if (rules_pg_slot_ready(rp, s, error_r) == 0) {
		res = db_exec(s->db, sql, n, params, &cls, error_r);
		if (res == NULL)
			(void)rules_pg_slot_check(s);
	}
	rules_pg_pool_give(rp, s);
	return res;
}

/* rules_pg_try - one attempt on the slot; -1 when the connection broke.
 * With value_r, the first row's first column as an integer (left as it
 * is without a row or for NULL) */
static int rules_pg_try(struct rules_pg *rp, struct rules_pg_slot *s, const char *sql, int n,
			const char *const *params, enum rules_lookup *r, int *value_r)
{
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res;

	if (rules_pg_slot_ready(rp, s, &err) < 0) {
		free(err);
		return 0; /* no connection: *r stays an error */
	}
	res = db_exec(s->db, sql, n, params, &cls, &err);
	if (res != NULL) {
		*r = PQntuples(res) > 0 ? RULES_FOUND : RULES_NOT_FOUND;
		if (value_r != NULL && PQntuples(res) > 0 && PQnfields(res) > 0 &&
		    !PQgetisnull(res, 0, 0))
			*value_r = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
		return 0;
	}
	log_warn("lookup: query failed: %s", err);
	free(err);
	return rules_pg_slot_check(s);
}

/* rules_pg_query_value - FOUND when sql returns a row (*value_r its
 * first column, when value_r is given), NOT_FOUND when none; a
 * connection found broken (server restarted) is replaced once */
static enum rules_lookup rules_pg_query_value(struct rules_pg *rp, const char *sql, int n,
					      const char *const *params, int *value_r)
{
	struct rules_pg_slot *s = rules_pg_pool_take(rp);
	enum rules_lookup r = RULES_LOOKUP_ERROR;

	if (rules_pg_try(rp, s, sql, n, params, &r, value_r) < 0)
		(void)rules_pg_try(rp, s, sql, n, params, &r, value_r);
	rules_pg_pool_give(rp, s);
	return r;
}

static enum rules_lookup rules_pg_query(struct rules_pg *rp, const char *sql, int n,
					const char *const *params)
{
	return rules_pg_query_value(rp, sql, n, params, NULL);
}

/* ---- the address cache ------------------------------------------------ */

/* rules_pg_trusted - may cached answers be used now? */
static int rules_pg_trusted(struct rules_pg *rp)
{
	int up;

	pthread_rwlock_rdlock(&rp->dom_lock);
	up = rp->listener_up;
	pthread_rwlock_unlock(&rp->dom_lock);
	return up || rp->set.offline_answers;
}

/* rules_pg_cached - cache, else sql; a failure is never cached */
static enum rules_lookup rules_pg_cached(struct rules_pg *rp, const char *key, const char *sql,
					 int n, const char *const *params)
{
	const struct rules_pg_metrics *m = &rp->set.metrics;
	int trusted = rules_pg_trusted(rp), v, ttl;
	unsigned long gen = ttl_cache_generation(rp->cache);
	time_t now = time(NULL);
	enum rules_lookup r;

	if (trusted && ttl_cache_get(rp->cache, key, &v, now)) {
		rules_pg_count(m->cache_hit);
		return (enum rules_lookup)v;
	}
	r = rules_pg_query(rp, sql, n, params);
	rules_pg_count(r == RULES_FOUND       ? m->found
		       : r == RULES_NOT_FOUND ? m->not_found
					      : m->error);
	if (trusted && r != RULES_LOOKUP_ERROR) {
		v = (int)r;
		ttl = __atomic_load_n(r == RULES_FOUND ? &rp->ttl_found : &rp->ttl_not_found,
				      __ATOMIC_RELAXED);
		/* not when a notification (or a reconnect) cleared the cache
		 * while we asked: the answer may predate the change */
		(void)ttl_cache_put_if(rp->cache, key, &v, ttl, now, gen);
	}
	return r;
}

void rules_pg_set_ttl(struct rules_pg *rp, int ttl_found, int ttl_not_found)
{
	__atomic_store_n(&rp->ttl_found, ttl_found, __ATOMIC_RELAXED);
	__atomic_store_n(&rp->ttl_not_found, ttl_not_found, __ATOMIC_RELAXED);
}

/* ---- the lookups ------------------------------------------------------- */

static int rules_pg_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum rules_lookup rules_pg_domain_hosted(void *ctx, const char *domain)
{
	struct rules_pg *rp = ctx;
	enum rules_lookup r;

	pthread_rwlock_rdlock(&rp->dom_lock);
	if (rp->domains == NULL || rp->ndomains == 0) {
		r = RULES_LOOKUP_ERROR; /* unknown, or none hosted: never "foreign" */
		rules_pg_count(rp->set.metrics.error);
	} else {
		r = bsearch(&domain, rp->domains, rp->ndomains, sizeof(char *), rules_pg_strcmp)
			    ? RULES_FOUND
			    : RULES_NOT_FOUND;
		rules_pg_count(rp->set.metrics.cache_hit);
	}
	pthread_rwlock_unlock(&rp->dom_lock);
	return r;
}

static enum rules_lookup rules_pg_address_exists(void *ctx, const char *address)
{
	const char *params[1] = { address };
	char *key = xasprintf("e\n%s", address);
	enum rules_lookup r = rules_pg_cached(
		ctx, key, "SELECT 1 FROM user_addresses WHERE lower(address) = lower($1) LIMIT 1",
		1, params);

	free(key);
	return r;
}

static enum rules_lookup rules_pg_address_owned_by(void *ctx, const char *address,
						   const char *login)
{
	const char *params[2] = { address, login };
	char *key = xasprintf("o\n%s\n%s", address, login);
	enum rules_lookup r = rules_pg_cached(
		ctx, key,
		"SELECT 1 FROM user_addresses a JOIN user_addresses l ON l.user_id = a.user_id"
		" WHERE lower(a.address) = lower($1) AND lower(l.address) = lower($2) LIMIT 1",
		2, params);

	free(key);
	return r;
}

/* rules_pg_offline_pass - a check that only ever refuses (storage quota,
 * suppression list) and could not ask the database: with offline_answers
 * (policyd keeps answering while the database is away) it passes, so the
 * database being down defers nothing that was accepted before those
 * checks existed; without (the milter) the error stands (451 4.3.0) */
static enum rules_lookup rules_pg_offline_pass(void *ctx, enum rules_lookup r, const char *what)
{
	struct rules_pg *rp = ctx;

	if (r != RULES_LOOKUP_ERROR || !rp->set.offline_answers)
		return r;
	log_warn("lookup: %s not checked: the database is not answering", what);
	return RULES_NOT_FOUND;
}

/* the storage quota of one or two addresses, always one row: 0 no limit
 * applies to them, 1 a limit with room, 2 full (sql/032) */
#define RULES_PG_QUOTA_SQL(arr)                                                        \
	"SELECT CASE WHEN count(*) = 0 THEN 0 WHEN bool_or(is_full) THEN 2 ELSE 1 END" \
	"  FROM postroom_storage_quota_state(" arr ", $1)"
enum { RULES_PG_QUOTA_NONE, RULES_PG_QUOTA_ROOM, RULES_PG_QUOTA_FULL };

/* rules_pg_quota_ask - the state of the addresses, -1 on a failure */
static int rules_pg_quota_ask(struct rules_pg *rp, const char *const *addresses, int n,
			      long long size)
{
	char sz[24];
	const char *params[3];
	int v = -1;

	snprintf(sz, sizeof(sz), "%lld", size > 0 ? size : 0);
	params[0] = sz;
	params[1] = addresses[0];
	params[2] = n > 1 ? addresses[1] : NULL;
	if (rules_pg_query_value(rp,
				 n > 1 ? RULES_PG_QUOTA_SQL("ARRAY[$2, $3]")
				       : RULES_PG_QUOTA_SQL("ARRAY[$2]"),
				 n + 1, params, &v) != RULES_FOUND)
		return -1;
	return v >= RULES_PG_QUOTA_NONE && v <= RULES_PG_QUOTA_FULL ? v : -1;
}

/* rules_pg_storage_full - FOUND when a user of the addresses is full
 * (or would be with size bytes). "No limit applies" is cached like an
 * owned address (sql/032 notifies postroom_addresses when a limit is
 * given, which empties the cache); a user with a limit is asked every
 * time: usage changes with every delivery. A failure is
 * RULES_LOOKUP_ERROR. */
static enum rules_lookup rules_pg_storage_full(void *ctx, const char *const *addresses, int n,
					       long long size)
{
	struct rules_pg *rp = ctx;
	int trusted, v, none = RULES_PG_QUOTA_NONE;
	unsigned long gen;
	time_t now;
	char *key;

	if (n < 1 || n > 2)
		return RULES_LOOKUP_ERROR;
	key = xasprintf("q\n%s\n%s", addresses[0], n > 1 ? addresses[1] : "");
	trusted = rules_pg_trusted(rp);
	gen = ttl_cache_generation(rp->cache);
	now = time(NULL);
	if (trusted && ttl_cache_get(rp->cache, key, &v, now)) {
		free(key);
		return RULES_NOT_FOUND;
	}
	v = rules_pg_quota_ask(rp, addresses, n, size);
	if (v == RULES_PG_QUOTA_NONE && trusted)
		(void)ttl_cache_put_if(rp->cache, key, &none,
				       __atomic_load_n(&rp->ttl_found, __ATOMIC_RELAXED), now, gen);
	free(key);
	return rules_pg_offline_pass(ctx,
				     v < 0                      ? RULES_LOOKUP_ERROR
				     : v == RULES_PG_QUOTA_FULL ? RULES_FOUND
								: RULES_NOT_FOUND,
				     "storage quota");
}

/* rules_pg_suppressed - postroom_suppressed() (sql/019): never cached,
 * so that a bounce stored a moment ago refuses the next RCPT; a failure
 * is RULES_LOOKUP_ERROR */
static enum rules_lookup rules_pg_suppressed(void *ctx, const char *address, const char *login)
{
	const char *params[2] = { login, address };

	return rules_pg_offline_pass(
		ctx, rules_pg_query(ctx, "SELECT 1 FROM postroom_suppressed($1, $2)", 2, params),
		"suppression list");
}

const struct rules_lookups *rules_pg_lookups(struct rules_pg *rp) { return &rp->lookups; }

/* ---- the domain set ---------------------------------------------------- */

/* rules_pg_fetch_domains - read the domain table, lower-case, without a
 * trailing dot, sorted; -1 with *error_r */
static int rules_pg_fetch_domains(struct db *db, char ***list_r, size_t *n_r, char **error_r)
{
	enum db_err_class cls;
	PGresult *res = db_exec(db, "SELECT lower(name) FROM domains", 0, NULL, &cls, error_r);
	size_t i, n;
	char **list;

	if (res == NULL)
		return -1;
	n = (size_t)PQntuples(res);
	list = xcalloc(n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		char *d = xstrdup(PQgetvalue(res, (int)i, 0));
		size_t len = strlen(d);
		if (len > 0 && d[len - 1] == '.')
			d[len - 1] = '\0';
		list[i] = d;
	}
	PQclear(res);
	qsort(list, n, sizeof(char *), rules_pg_strcmp);
	*list_r = list;
	*n_r = n;
	return 0;
}

static void rules_pg_free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* rules_pg_set_domains - install a new set (NULL list: unknown) */
static void rules_pg_set_domains(struct rules_pg *rp, char **list, size_t n, int up)
{
	char **old;
	size_t oldn;

	pthread_rwlock_wrlock(&rp->dom_lock);
	old = rp->domains;
	oldn = rp->ndomains;
	rp->domains = list;
	rp->ndomains = list ? n : 0;
	rp->listener_up = up;
	pthread_rwlock_unlock(&rp->dom_lock);
	rules_pg_free_list(old, oldn);
	if (rp->set.metrics.domains != NULL)
		metric_set(rp->set.metrics.domains, (double)(list ? n : 0));
}

/* rules_pg_lost - the listener lost the database */
static void rules_pg_lost(struct rules_pg *rp)
{
	if (!rp->set.offline_answers) {
		log_warn("lookup: lost the database: tempfailing until it is back");
		rules_pg_set_domains(rp, NULL, 0, 0);
		return;
	}
	log_warn("lookup: lost the database: serving the last hosted domains and cached "
		 "answers until it is back");
	pthread_rwlock_wrlock(&rp->dom_lock);
	rp->listener_up = 0;
	pthread_rwlock_unlock(&rp->dom_lock);
}

/* rules_pg_loaded - a set freshly read: install and say so */
static void rules_pg_loaded(struct rules_pg *rp, char **list, size_t n, const char *how)
{
	rules_pg_set_domains(rp, list, n, 1);
	rules_pg_count(rp->set.metrics.reloads);
	log_info("hosted domains %s: %zu", how, n);
	if (n == 0)
		log_warn("no hosted domain: every unauthenticated recipient is tempfailed");
}

long rules_pg_domain_count(const struct rules_pg *rp, char **error_r)
{
	struct db *db = schema_check_connect(rp->set.conninfo, rp->set.connect_timeout, error_r);
	char **list;
	size_t n;

	if (db == NULL)
		return -1;
	if (rules_pg_fetch_domains(db, &list, &n, error_r) < 0) {
		db_close(&db);
		return -1;
	}
	db_close(&db);
	rules_pg_free_list(list, n);
	return (long)n;
}

/* ---- the listener ------------------------------------------------------- */

/* rules_pg_listen_connect - connect, LISTEN, load domains; NULL on failure */
static struct db *rules_pg_listen_connect(struct rules_pg *rp)
{
	enum db_err_class cls;
	char *err = NULL, **list;
	size_t n;
	struct db *db = schema_check_connect(rp->set.conninfo, rp->set.connect_timeout, &err);

	if (db == NULL || db_cmd(db, "LISTEN postroom_domains", 0, NULL, &cls, &err) < 0 ||
	    db_cmd(db, "LISTEN postroom_keys", 0, NULL, &cls, &err) < 0 ||
	    db_cmd(db, "LISTEN postroom_addresses", 0, NULL, &cls, &err) < 0 ||
	    rules_pg_fetch_domains(db, &list, &n, &err) < 0) {
		if (!rp->listen_down_logged)
			log_warn("lookup: cannot subscribe to domain changes: %s (retrying every "
				 "%d s, logged once)",
				 err, RULES_PG_RECONNECT_GAP);
		rp->listen_down_logged = 1;
		free(err);
		db_close(&db);
		return NULL;
	}
	rp->listen_down_logged = 0;
	ttl_cache_clear(rp->cache); /* nothing heard while away may be trusted */
	rules_pg_loaded(rp, list, n, "loaded");
	return db;
}

/* rules_pg_listen_drain - handle notifications; -1 when the connection broke */
static int rules_pg_listen_drain(struct rules_pg *rp, struct db *db, int *reload)
{
	PGconn *c = db_conn(db);
	PGnotify *n;

	if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
		return -1;
	while ((n = PQnotifies(c)) != NULL) {
		if (strcmp(n->relname, "postroom_domains") == 0)
			*reload = 1;
		else
			ttl_cache_clear(rp->cache); /* a user, alias or key changed */
		PQfreemem(n);
	}
	return 0;
}

/* rules_pg_reload - read the domains again; -1 when that failed */
static int rules_pg_reload(struct rules_pg *rp, struct db *db)
{
	char **list, *err = NULL;
	size_t n;

	if (rules_pg_fetch_domains(db, &list, &n, &err) < 0) {
		log_warn("lookup: reloading domains: %s", err);
		free(err);
		return -1;
	}
	rules_pg_loaded(rp, list, n, "reloaded");
	return 0;
}

/* rules_pg_listen_wait - wait for notifications on db, reload when told
 * or when the set is older than domain_reload; -1 when db is lost */
static int rules_pg_listen_wait(struct rules_pg *rp, struct db *db, time_t *loaded)
{
	struct pollfd pfd = { PQsocket(db_conn(db)), POLLIN, 0 };
	int reload = 0;

	if (poll(&pfd, 1, RULES_PG_POLL_MS) < 0 && errno != EINTR)
		return -1;
	if (pfd.revents != 0 && rules_pg_listen_drain(rp, db, &reload) < 0)
		return -1;
	if (time(NULL) - *loaded >= rp->set.domain_reload)
		reload = 1;
	if (!reload)
		return 0;
	if (rules_pg_reload(rp, db) < 0)
		return -1;
	*loaded = time(NULL);
	return 0;
}

static int rules_pg_running(struct rules_pg *rp)
{
	return __atomic_load_n(&rp->running, __ATOMIC_ACQUIRE);
}

/* rules_pg_listener - the thread keeping the domain set fresh */
static void *rules_pg_listener(void *arg)
{
	struct rules_pg *rp = arg;
	time_t loaded = time(NULL);

	while (rules_pg_running(rp)) {
		if (rp->listen_db == NULL) {
			if ((rp->listen_db = rules_pg_listen_connect(rp)) == NULL) {
				sleep(RULES_PG_RECONNECT_GAP);
				continue;
			}
			loaded = time(NULL);
		}
		if (rules_pg_listen_wait(rp, rp->listen_db, &loaded) < 0) {
			rules_pg_lost(rp);
			db_close(&rp->listen_db);
		}
	}
	db_close(&rp->listen_db);
	return NULL;
}

/* ---- life cycle --------------------------------------------------------- */

struct rules_pg *rules_pg_new(const struct rules_pg_settings *s)
{
	struct rules_pg *rp = xcalloc(1, sizeof(*rp));

	rp->set = *s;
	rp->set.conninfo = xstrdup(s->conninfo ? s->conninfo : "");
	if (rp->set.connections < 1)
		rp->set.connections = 1;
	if (rp->set.domain_reload < 1)
		rp->set.domain_reload = 1;
	rules_pg_set_ttl(rp, s->ttl_found, s->ttl_not_found);
	rp->lookups = (struct rules_lookups){ rp,
					      rules_pg_domain_hosted,
					      rules_pg_address_exists,
					      rules_pg_address_owned_by,
					      rules_pg_storage_full,
					      rules_pg_suppressed };
	pthread_mutex_init(&rp->pool_lock, NULL);
	pthread_cond_init(&rp->pool_cond, NULL);
	pthread_rwlock_init(&rp->dom_lock, NULL);
	rp->slots = xcalloc((size_t)rp->set.connections, sizeof(*rp->slots));
	rp->cache = ttl_cache_new(sizeof(int), s->cache_size);
	return rp;
}

int rules_pg_start(struct rules_pg *rp, char **error_r)
{
	int rc;

	rp->listen_db = rules_pg_listen_connect(rp); /* NULL: the thread retries */
	__atomic_store_n(&rp->running, 1, __ATOMIC_RELEASE);
	if ((rc = pthread_create(&rp->thread, NULL, rules_pg_listener, rp)) != 0) {
		__atomic_store_n(&rp->running, 0, __ATOMIC_RELEASE);
		db_close(&rp->listen_db);
		*error_r = xasprintf("cannot start the listener thread: %s", strerror(rc));
		return -1;
	}
	return 0;
}

/* rules_pg_stop - end the listener thread, if it runs */
static void rules_pg_stop(struct rules_pg *rp)
{
	if (__atomic_exchange_n(&rp->running, 0, __ATOMIC_ACQ_REL))
		pthread_join(rp->thread, NULL);
}

void rules_pg_free(struct rules_pg **rpp)
{
	struct rules_pg *rp = *rpp;
	int i;

	if (rp == NULL)
		return;
	rules_pg_stop(rp);
	rules_pg_set_domains(rp, NULL, 0, 0);
	for (i = 0; i < rp->set.connections; i++)
		db_close(&rp->slots[i].db);
	free(rp->slots);
	ttl_cache_free(&rp->cache);
	pthread_rwlock_destroy(&rp->dom_lock);
	pthread_cond_destroy(&rp->pool_cond);
	pthread_mutex_destroy(&rp->pool_lock);
	free((char *)rp->set.conninfo);
	xfree(rpp);
}

int rules_pg_healthy(struct rules_pg *rp, int mx_enabled, const char **reason_r)
{
	int up;
	size_t n;

	pthread_rwlock_rdlock(&rp->dom_lock);
	up = rp->listener_up;
	n = rp->ndomains;
	pthread_rwlock_unlock(&rp->dom_lock);
	if (!up) {
		*reason_r = "database unreachable";
		return -1;
	}
	if (mx_enabled && n == 0) {
		*reason_r = "MX mode on and no hosted domain";
		return -1;
	}
	return 0;
}
