/*
 * NAME
 *	pgsql - authd's key store, change notifications and last-use writes
 * DESCRIPTION
 *	Lookups: each worker thread owns one connection, opened lazily and
 *	reopened with exponential back-off (0.5 s doubling to 5 s) after a failure;
 *	during the back-off a lookup fails at once as temporary, so a dead
 *	database never makes a client wait. A lookup that finds its
 *	connection broken retries once on a fresh one (a database restart
 *	costs no failed login). Every statement is bounded by
 *	statement_timeout.
 *	Housekeeping thread: LISTEN postroom_keys; "key:ID" and "user:ID"
 *	purge the matching cache entries, anything else flushes the cache;
 *	after (re)connecting the whole cache is flushed, since a
 *	notification may have been missed (reconnect attempts back off from
 *	0.5 s to 1 s only, so a cache that may be stale is dropped within a
 *	second of the database answering again). Last-use times are
 *	collected in memory (deduplicated per key) and written every
 *	interval seconds in one statement, and once more at shutdown.
 *	Revocation confirmations (sql/011_authd_instances.sql): the thread
 *	keeps this process's row in authd_instances (registered on every
 *	connect, last_seen refreshed every 5 s, deleted at a clean stop) and
 *	LISTENs postroom_authd_sync: a number N arriving there means that
 *	every notification sent before it has been applied to the cache, so
 *	the row's synced column is raised to N (postroomctl key revoke waits
 *	for it).
 * NEVER
 *	sees a key: lookups are by prefix, the hash is compared elsewhere;
 *	logs a conninfo.
 * CONFIGURATION
 *	database.conninfo, authd.db_timeout, authd.last_used_interval,
 *	authd.cache_ttl (written into authd_instances for postroomctl)
 */
#include "pgsql.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "lru.h"
#include "schema_check.h"
#include "xalloc.h"

#define AUTHD_PG_BACKOFF_MIN 0.5
#define AUTHD_PG_BACKOFF_MAX 5.0
#define AUTHD_TOUCH_MAX 100000
/* the housekeeping connection: a lost LISTEN is retried at least every second */
#define AUTHD_HOUSE_BACKOFF_MAX 1.0
/* seconds between last_seen refreshes of authd_instances; postroomctl
 * counts an authd as running while it was seen in the last 3 of them */
#define AUTHD_HEARTBEAT 5.0
#define AUTHD_SYNC_CHANNEL "postroom_authd_sync"

static int authd_pg_lookups_ok = 1, authd_pg_listen_ok = 1;

static double authd_pg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* authd_pg_wallclock - Unix time, with fractions */
static double authd_pg_wallclock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int authd_pg_up(void)
{
	return __atomic_load_n(&authd_pg_lookups_ok, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&authd_pg_listen_ok, __ATOMIC_RELAXED);
}

/* authd_pg_open - connect and bound statements; NULL with *error_r */
static struct db *authd_pg_open(const char *conninfo, int timeout, char **error_r)
{
	struct db *db = schema_check_connect(conninfo, timeout, error_r);
	enum db_err_class cls;
	char *sql;

	if (db == NULL)
		return NULL;
	sql = xasprintf("SET statement_timeout = %d", timeout * 1000);
	if (db_cmd(db, sql, 0, NULL, &cls, error_r) < 0)
		db_close(&db);
	free(sql);
	return db;
}

/* ---- lookups ----------------------------------------------------------- */

struct authd_pg {
	char *conninfo;
	int timeout;
	struct db *db;
	double next_try, backoff;
};

struct authd_pg *authd_pg_new(const char *conninfo, int timeout)
{
	struct authd_pg *pg = xcalloc(1, sizeof(*pg));

	pg->conninfo = xstrdup(conninfo ? conninfo : "");
	pg->timeout = timeout;
	pg->backoff = AUTHD_PG_BACKOFF_MIN;
	return pg;
}

void authd_pg_free(struct authd_pg **pgp)
{
	if (*pgp == NULL)
		return;
	db_close(&(*pgp)->db);
	free((*pgp)->conninfo);
	xfree(pgp);
}

/* authd_pg_ensure - a usable connection, or -1 (backing off) */
static int authd_pg_ensure(struct authd_pg *pg, char **error_r)
{
	double now = authd_pg_now();

	if (pg->db && PQstatus(db_conn(pg->db)) == CONNECTION_OK)
		return 0;
	db_close(&pg->db);
	if (now < pg->next_try) {
		*error_r = xasprintf("database unavailable, next attempt in %.1f s",
				     pg->next_try - now);
		return -1;
	}
	if ((pg->db = authd_pg_open(pg->conninfo, pg->timeout, error_r)) == NULL) {
		pg->next_try = authd_pg_now() + pg->backoff;
		pg->backoff = pg->backoff * 2 > AUTHD_PG_BACKOFF_MAX ? AUTHD_PG_BACKOFF_MAX
								     : pg->backoff * 2;
		return -1;
	}
	pg->backoff = AUTHD_PG_BACKOFF_MIN;
	return 0;
}

static void authd_pg_copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

int authd_pg_lookup(void *ctx, const char *prefix, const char *address, const char *scope,
		    struct authd_keyrow *row_r, char **error_r)
{
	static const char sql[] =
		"SELECT k.id, k.user_id, k.key_hash, $3 = ANY (k.scopes),"
		" COALESCE(extract(epoch FROM k.expires_at)::bigint, 0),"
		" COALESCE(k.expires_at <= now(), false), lower(u.address)"
		" FROM api_keys k JOIN users u ON u.id = k.user_id"
		" WHERE k.prefix = $1 AND k.revoked_at IS NULL AND lower(u.address) = $2";
	struct authd_pg *pg = ctx;
	const char *params[3] = { prefix, address, scope };
	enum db_err_class cls = DB_OK;
	PGresult *res = NULL;
	int attempt, found;

	for (attempt = 0; attempt < 2 && res == NULL; attempt++) {
		int was_connected = pg->db != NULL;

		if (*error_r)
			xfree(error_r);
		if (authd_pg_ensure(pg, error_r) < 0)
			break;
		res = db_exec(pg->db, sql, 3, params, &cls, error_r);
		/* a connection that broke since its last use: one fresh try */
		if (res == NULL && !(was_connected && PQstatus(db_conn(pg->db)) != CONNECTION_OK))
			break;
	}
	if (res == NULL) {
		__atomic_store_n(&authd_pg_lookups_ok, 0, __ATOMIC_RELAXED);
		return -1;
	}
	xfree(error_r);
	__atomic_store_n(&authd_pg_lookups_ok, 1, __ATOMIC_RELAXED);
	found = PQntuples(res) > 0;
	if (found) {
		authd_pg_copy(row_r->key_id, sizeof(row_r->key_id), PQgetvalue(res, 0, 0));
		authd_pg_copy(row_r->user_id, sizeof(row_r->user_id), PQgetvalue(res, 0, 1));
		authd_pg_copy(row_r->hash, sizeof(row_r->hash), PQgetvalue(res, 0, 2));
		row_r->has_scope = PQgetvalue(res, 0, 3)[0] == 't';
		row_r->expires_at = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		row_r->expired = PQgetvalue(res, 0, 5)[0] == 't';
		authd_pg_copy(row_r->address, sizeof(row_r->address), PQgetvalue(res, 0, 6));
	}
	PQclear(res);
	return found;
}

/* ---- housekeeping: LISTEN and last-use batches ------------------------- */

struct authd_touch {
	struct lru_entry lru;
	char key_id[AUTHD_ID_MAX], user_id[AUTHD_ID_MAX];
	double when; /* Unix time */
};

struct authd_pg_house {
	char *conninfo;
	int timeout, interval;
	struct authd_cache *cache;
	pthread_t thread;
	pthread_mutex_t lock;
	struct lru touched; /* under lock */
	int wake[2];
	int stopping, ready;
	struct db *db;
	/* authd_instances: this process's row (id 0: not registered) */
	char host[256];
	long pid;
	double started; /* Unix time */
	long long instance;
	int register_warned;
};

static void authd_touch_free(struct lru_entry *e) { free(e); }

void authd_pg_house_touch(struct authd_pg_house *h, const char *key_id, const char *user_id)
{
	unsigned char k[LRU_KEY_LEN];
	struct authd_touch *t;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	crypto_sha256(key_id, strlen(key_id), k);
	pthread_mutex_lock(&h->lock);
	if ((t = (struct authd_touch *)lru_get(&h->touched, k)) == NULL) {
		t = xcalloc(1, sizeof(*t));
		memcpy(t->lru.key, k, LRU_KEY_LEN);
		authd_pg_copy(t->key_id, sizeof(t->key_id), key_id);
		authd_pg_copy(t->user_id, sizeof(t->user_id), user_id);
		lru_put(&h->touched, &t->lru);
	}
	t->when = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	pthread_mutex_unlock(&h->lock);
}

int authd_pg_house_ready(struct authd_pg_house *h)
{
	return __atomic_load_n(&h->ready, __ATOMIC_ACQUIRE);
}

/* authd_pg_house_warn - log a failure of the instance row (once until it works) */
static void authd_pg_house_warn(struct authd_pg_house *h, const char *what, const char *err)
{
	if (!h->register_warned)
		log_warn("authd: %s in authd_instances: %s (revocations are not confirmed to "
			 "postroomctl; logged once)",
			 what, err);
	h->register_warned = 1;
}

/* authd_pg_house_row - run sql on this process's row; affected rows or -1 */
static int authd_pg_house_row(struct authd_pg_house *h, const char *sql, int n,
			      const char *const *params, const char *what)
{
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res = db_exec(h->db, sql, n, params, &cls, &err);
	int rows;

	if (res == NULL) {
		authd_pg_house_warn(h, what, err);
		free(err);
		return -1;
	}
	rows = atoi(PQcmdTuples(res));
	if (PQntuples(res) > 0)
		h->instance = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rows;
}

/* authd_pg_house_register - insert this process's row; synced is the
 * confirmation number it starts with */
static void authd_pg_house_register(struct authd_pg_house *h, long long synced)
{
	static const char sql_update[] = "UPDATE authd_instances SET last_seen = now(),"
					 " cache_ttl = $2, synced = $3 WHERE id = $1";
	static const char sql_insert[] =
		"INSERT INTO authd_instances (host, pid, started_at, cache_ttl, synced)"
		" VALUES ($1, $2, to_timestamp($3), $4, $5) RETURNING id";
	char id[24], pid[24], started[32], ttl[24], sync[24];
	const char *pu[3] = { id, ttl, sync }, *pi[5] = { h->host, pid, started, ttl, sync };
	int rows = 0;

	snprintf(id, sizeof(id), "%lld", h->instance);
	snprintf(pid, sizeof(pid), "%ld", h->pid);
	snprintf(started, sizeof(started), "%.6f", h->started);
	snprintf(ttl, sizeof(ttl), "%.0f", authd_cache_ttl(h->cache));
	snprintf(sync, sizeof(sync), "%lld", synced);
	if (h->instance > 0 &&
	    (rows = authd_pg_house_row(h, sql_update, 3, pu, "cannot update this process")) < 0)
		return;
	if (rows == 0 &&
	    authd_pg_house_row(h, sql_insert, 5, pi, "cannot register this process") < 0)
		return;
	h->register_warned = 0;
}

/* authd_pg_house_beat - refresh last_seen (re-register a vanished row) */
static void authd_pg_house_beat(struct authd_pg_house *h)
{
	static const char sql[] = "UPDATE authd_instances SET last_seen = now(), cache_ttl = $2"
				  " WHERE id = $1";
	char id[24], ttl[24];
	const char *params[2] = { id, ttl };

	snprintf(id, sizeof(id), "%lld", h->instance);
	snprintf(ttl, sizeof(ttl), "%.0f", authd_cache_ttl(h->cache));
	if (h->instance <= 0 || authd_pg_house_row(h, sql, 2, params, "cannot refresh") == 0)
		authd_pg_house_register(h, 0);
}

/* authd_pg_house_confirm - every notification before sync number n is applied */
static void authd_pg_house_confirm(struct authd_pg_house *h, long long n)
{
	static const char sql[] = "UPDATE authd_instances SET synced = GREATEST(synced, $2),"
				  " last_seen = now() WHERE id = $1";
	char id[24], num[24];
	const char *params[2] = { id, num };

	if (h->instance <= 0)
		return;
	snprintf(id, sizeof(id), "%lld", h->instance);
	snprintf(num, sizeof(num), "%lld", n);
	if (authd_pg_house_row(h, sql, 2, params, "cannot confirm a revocation") > 0)
		log_debug("authd: confirmed sync %lld", n);
}

/* authd_pg_house_unregister - delete this process's row (clean stop) */
static void authd_pg_house_unregister(struct authd_pg_house *h)
{
	char id[24];
	const char *params[1] = { id };

	if (h->db == NULL || h->instance <= 0)
		return;
	snprintf(id, sizeof(id), "%lld", h->instance);
	(void)authd_pg_house_row(h, "DELETE FROM authd_instances WHERE id = $1", 1, params,
				 "cannot unregister");
}

/* authd_pg_house_purge - apply one postroom_keys notification */
static void authd_pg_house_purge(struct authd_pg_house *h, const char *extra)
{
	size_t purged;

	if (strncmp(extra, "key:", 4) == 0)
		purged = authd_cache_purge_key(h->cache, extra + 4);
	else if (strncmp(extra, "user:", 5) == 0)
		purged = authd_cache_purge_user(h->cache, extra + 5);
	else
		purged = authd_cache_flush(h->cache);
	log_debug("notification %s: %zu cache entries purged", extra, purged);
}

/* authd_pg_house_notifies - apply every pending notification, then
 * confirm the highest sync number among them */
static void authd_pg_house_notifies(struct authd_pg_house *h)
{
	long long sync;
	PGnotify *n;

	do {
		sync = 0;
		while (h->db && (n = PQnotifies(db_conn(h->db))) != NULL) {
			if (strcmp(n->relname, AUTHD_SYNC_CHANNEL) == 0) {
				long long v = strtoll(n->extra, NULL, 10);

				sync = v > sync ? v : sync;
				PQfreemem(n);
				continue;
			}
			authd_pg_house_purge(h, n->extra);
			PQfreemem(n);
		}
		/* the UPDATE may read more notifications: the loop takes them */
		if (sync > 0)
			authd_pg_house_confirm(h, sync);
	} while (sync > 0);
}

/* authd_pg_house_sync_base - the highest sync number issued so far (0
 * when none, or unreadable) */
static long long authd_pg_house_sync_base(struct authd_pg_house *h)
{
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res = db_exec(h->db,
				"SELECT CASE WHEN is_called THEN last_value ELSE 0 END"
				" FROM authd_sync_seq",
				0, NULL, &cls, &err);
	long long n = 0;

	if (res == NULL) {
		authd_pg_house_warn(h, "cannot read authd_sync_seq", err);
		free(err);
		return 0;
	}
	if (PQntuples(res) > 0)
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

/* authd_pg_house_connect - connect, LISTEN, flush the cache, register; 0 or -1 */
static int authd_pg_house_connect(struct authd_pg_house *h, int *down_logged)
{
	enum db_err_class cls;
	char *err = NULL;
	long long base = 0;
	size_t n;

	if ((h->db = authd_pg_open(h->conninfo, h->timeout, &err)) != NULL)
		/* read before LISTEN: every sync number up to base was sent after
		 * a revocation that committed before we listen, which the flush
		 * below covers */
		base = authd_pg_house_sync_base(h);
	if (h->db == NULL || db_cmd(h->db, "LISTEN postroom_keys", 0, NULL, &cls, &err) < 0 ||
	    db_cmd(h->db, "LISTEN " AUTHD_SYNC_CHANNEL, 0, NULL, &cls, &err) < 0) {
		if (!*down_logged)
			log_warn("authd: cache invalidation channel: %s (retrying every second, "
				 "logged once)",
				 err);
		*down_logged = 1;
		free(err);
		db_close(&h->db);
		__atomic_store_n(&authd_pg_listen_ok, 0, __ATOMIC_RELAXED);
		return -1;
	}
	*down_logged = 0;
	/* a notification may have been missed while we were not listening */
	n = authd_cache_flush(h->cache);
	log_info(
		"authd: listening for key changes (LISTEN postroom_keys); %zu cache entries flushed",
		n);
	authd_pg_house_register(h, base);
	__atomic_store_n(&authd_pg_listen_ok, 1, __ATOMIC_RELAXED);
	/* the database answers again: lookups will reconnect on demand */
	__atomic_store_n(&authd_pg_lookups_ok, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
	return 0;
}

/* authd_pg_house_take - the batched last-use times, as two array literals */
static size_t authd_pg_house_take(struct authd_pg_house *h, struct buf *ids, struct buf *users,
				  struct buf *times)
{
	struct lru_entry *e;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	buf_append_char(ids, '{');
	buf_append_char(users, '{');
	buf_append_char(times, '{');
	for (e = h->touched.head; e; e = e->next, n++) {
		struct authd_touch *t = (struct authd_touch *)e;

		buf_printf(ids, "%s%s", n ? "," : "", t->key_id);
		buf_printf(users, "%s%s", n ? "," : "", t->user_id);
		buf_printf(times, "%s%.6f", n ? "," : "", t->when);
	}
	buf_append_char(ids, '}');
	buf_append_char(users, '}');
	buf_append_char(times, '}');
	lru_clear(&h->touched);
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* authd_pg_house_flush - write last_used_at (and users.last_login_at) */
static int authd_pg_house_flush(struct authd_pg_house *h)
{
	static const char sql_keys[] =
		"UPDATE api_keys k SET last_used_at = v.t"
		" FROM (SELECT unnest($1::uuid[]) AS id, to_timestamp(unnest($2::float8[])) AS t) v"
		" WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.t)";
	static const char sql_users[] =
		"UPDATE users u SET last_login_at = v.t"
		" FROM (SELECT id, max(t) AS t FROM (SELECT unnest($1::uuid[]) AS id,"
		"  to_timestamp(unnest($2::float8[])) AS t) s GROUP BY id) v"
		" WHERE u.id = v.id AND (u.last_login_at IS NULL OR u.last_login_at < v.t)";
	struct buf ids = BUF_INIT, users = BUF_INIT, times = BUF_INIT;
	enum db_err_class cls;
	const char *pk[2], *pu[2];
	char *err = NULL;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	n = h->touched.count;
	pthread_mutex_unlock(&h->lock);
	if (n == 0 || h->db == NULL)
		return h->db ? 0 : -1;
	n = authd_pg_house_take(h, &ids, &users, &times);
	pk[0] = buf_cstr(&ids);
	pu[0] = buf_cstr(&users);
	pk[1] = pu[1] = buf_cstr(&times);
	if (db_cmd(h->db, sql_keys, 2, pk, &cls, &err) < 0 ||
	    db_cmd(h->db, sql_users, 2, pu, &cls, &err) < 0) {
		log_warn("authd: cannot record last use of %zu keys: %s", n, err);
		free(err);
		rc = -1;
	} else {
		log_debug("authd: recorded last use of %zu keys", n);
	}
	buf_free(&ids);
	buf_free(&users);
	buf_free(&times);
	return rc;
}

/* authd_pg_house_lost - the LISTEN connection broke: reconnect next round */
static void authd_pg_house_lost(struct authd_pg_house *h)
{
	log_warn("authd: lost the cache invalidation channel; reconnecting");
	db_close(&h->db);
	__atomic_store_n(&authd_pg_listen_ok, 0, __ATOMIC_RELAXED);
}

/* authd_pg_house_round - wait until a notification, the wake pipe or the
 * next timer (next_flush, next_beat), then do what is due */
static void authd_pg_house_round(struct authd_pg_house *h, double *next_flush, double *next_beat)
{
	struct pollfd pfd[2];
	double now = authd_pg_now(), next = *next_flush < *next_beat ? *next_flush : *next_beat;
	int timeout = next > now ? (int)((next - now) * 1000) + 1 : 0;

	pfd[0].fd = PQsocket(db_conn(h->db));
	pfd[0].events = POLLIN;
	pfd[1].fd = h->wake[0];
	pfd[1].events = POLLIN;
	pfd[0].revents = pfd[1].revents = 0;
	if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
		log_error("authd: poll: %s", strerror(errno));
	if (pfd[0].revents && PQconsumeInput(db_conn(h->db)) == 0) {
		authd_pg_house_lost(h);
		return;
	}
	authd_pg_house_notifies(h);
	if (h->db && authd_pg_now() >= *next_beat) {
		authd_pg_house_beat(h);
		authd_pg_house_notifies(h);
		*next_beat = authd_pg_now() + AUTHD_HEARTBEAT;
	}
	if (h->db && authd_pg_now() >= *next_flush) {
		authd_pg_house_flush(h);
		authd_pg_house_notifies(h);
		*next_flush = authd_pg_now() + h->interval;
	}
	/* a statement found the connection broken: PQsocket is gone */
	if (h->db && PQstatus(db_conn(h->db)) != CONNECTION_OK)
		authd_pg_house_lost(h);
}

static void *authd_pg_house_thread(void *arg)
{
	struct authd_pg_house *h = arg;
	double backoff = AUTHD_PG_BACKOFF_MIN, next_flush = authd_pg_now() + h->interval;
	double next_beat = authd_pg_now() + AUTHD_HEARTBEAT;
	int down_logged = 0;

	while (!__atomic_load_n(&h->stopping, __ATOMIC_ACQUIRE)) {
		if (h->db == NULL && authd_pg_house_connect(h, &down_logged) < 0) {
			struct pollfd pfd = { h->wake[0], POLLIN, 0 };

			poll(&pfd, 1, (int)(backoff * 1000));
			backoff = backoff * 2 > AUTHD_HOUSE_BACKOFF_MAX ? AUTHD_HOUSE_BACKOFF_MAX
									: backoff * 2;
			continue;
		}
		backoff = AUTHD_PG_BACKOFF_MIN;
		authd_pg_house_round(h, &next_flush, &next_beat);
	}
	/* shutdown: last-use times must survive a clean stop */
	if (h->db == NULL) {
		char *err = NULL;

		if ((h->db = authd_pg_open(h->conninfo, h->timeout, &err)) == NULL) {
			log_warn("authd: last-use times lost at shutdown: %s", err);
			free(err);
		}
	}
	authd_pg_house_flush(h);
	authd_pg_house_unregister(h);
	db_close(&h->db);
	return NULL;
}

struct authd_pg_house *authd_pg_house_start(const char *conninfo, int timeout,
					    struct authd_cache *cache, int interval)
{
	struct authd_pg_house *h = xcalloc(1, sizeof(*h));
	int rc;

	h->conninfo = xstrdup(conninfo ? conninfo : "");
	h->timeout = timeout;
	h->interval = interval > 0 ? interval : 1;
	h->cache = cache;
	if (gethostname(h->host, sizeof(h->host) - 1) < 0)
		authd_pg_copy(h->host, sizeof(h->host), "unknown");
	h->pid = (long)getpid();
	h->started = authd_pg_wallclock();
	pthread_mutex_init(&h->lock, NULL);
	lru_init(&h->touched, AUTHD_TOUCH_MAX, authd_touch_free);
	if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK) < 0)
		log_fatal(EX_OSERR, "pipe: %s", strerror(errno));
	if ((rc = pthread_create(&h->thread, NULL, authd_pg_house_thread, h)) != 0)
		log_fatal(EX_OSERR, "cannot start the housekeeping thread: %s", strerror(rc));
	return h;
}

void authd_pg_house_stop(struct authd_pg_house **hp)
{
	struct authd_pg_house *h = *hp;

	if (h == NULL)
		return;
	__atomic_store_n(&h->stopping, 1, __ATOMIC_RELEASE);
	if (write(h->wake[1], "x", 1) < 0)
		log_warn("authd: cannot wake the housekeeping thread: %s", strerror(errno));
	pthread_join(h->thread, NULL);
	close(h->wake[0]);
	close(h->wake[1]);
	lru_deinit(&h->touched);
	pthread_mutex_destroy(&h->lock);
	free(h->conninfo);
	xfree(hp);
}
