/*
 * NAME
 *	lookup - the rules engine's lookups over PostgreSQL, with caches
 * DESCRIPTION
 *	Hosted domains live in memory, loaded by a listener thread that
 *	holds its own connection with LISTEN postroom_domains (the trigger
 *	of sql/001_init.sql) and reloads them on every notification.
 *	Addresses (does a user own it? does this login own it?) are asked
 *	of a small connection pool and cached for milter.cache_ttl seconds;
 *	postroom_addresses and postroom_keys notifications flush that cache.
 *	Both caches are trusted only while the listener is connected and
 *	subscribed: when the database goes away, the domain set is dropped
 *	and the caches are bypassed, so every unauthenticated recipient is
 *	tempfailed (451 4.3.0) until the database is back. An empty domain
 *	table is a lookup failure too (never "not hosted": tempfail, so a
 *	mistaken "domain remove" defers mail instead of bouncing it).
 * NEVER
 *	caches a failure, answers from a cache it cannot keep fresh, or
 *	turns a database error into FOUND or NOT_FOUND.
 * PARAMETERS
 *	database.conninfo, database.connect_timeout, milter.cache_ttl,
 *	milter.cache_size, milter.db_connections.
 */
#include "milter.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "xalloc.h"

#define LOOKUP_BUCKETS 4096
#define LOOKUP_RECONNECT_GAP 1  /* seconds between connection attempts */
#define LOOKUP_RELOAD_EVERY 300 /* full domain reload, notifications or not */
/* a stalled database: fail the lookup (451) long before Postfix's
 * milter_command_timeout (30 s) gives up on the milter */
#define LOOKUP_STATEMENT_TIMEOUT "'5s'"

struct lookup_entry {
	char *key;
	enum rules_lookup result;
	time_t expires;
	struct lookup_entry *next;
};

struct lookup_slot {
	struct db *db;
	int busy;
	time_t last_attempt;
};

static struct {
	const char *conninfo;
	int connect_timeout;
	long ttl;
	size_t max_entries;

	/* pool */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct lookup_slot *slots;
	size_t nslots;
	int pool_down_logged; /* atomic: connection failure logged */

	/* domains: valid only while listener_up */
	pthread_rwlock_t dom_lock;
	char **domains;
	size_t ndomains;
	int listener_up;

	/* address cache */
	pthread_mutex_t cache_lock;
	struct lookup_entry *buckets[LOOKUP_BUCKETS];
	size_t nentries;

	/* listener thread */
	pthread_t thread;
	int running;

	struct metric *m_hit, *m_found, *m_notfound, *m_error, *m_reload, *m_domains;
} lk = {
    .pool_lock = PTHREAD_MUTEX_INITIALIZER,
    .pool_cond = PTHREAD_COND_INITIALIZER,
    .dom_lock = PTHREAD_RWLOCK_INITIALIZER,
    .cache_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- the address cache ------------------------------------------------ */

static unsigned lookup_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % LOOKUP_BUCKETS;
}

/* lookup_cache_flush - drop every entry (caller holds cache_lock) */
static void lookup_cache_flush_locked(void)
{
	size_t i;

	for (i = 0; i < LOOKUP_BUCKETS; i++) {
		struct lookup_entry *e = lk.buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
		lk.buckets[i] = NULL;
	}
	lk.nentries = 0;
}

static void lookup_cache_flush(void)
{
	pthread_mutex_lock(&lk.cache_lock);
	lookup_cache_flush_locked();
	pthread_mutex_unlock(&lk.cache_lock);
}

/* lookup_cache_get - a fresh cached result for key; 0 found in cache */
static int lookup_cache_get(const char *key, enum rules_lookup *r)
{
	struct lookup_entry **pp, *e;
	time_t now = time(NULL);
	int rc = -1;

	if (lk.ttl <= 0)
		return -1;
	pthread_mutex_lock(&lk.cache_lock);
	for (pp = &lk.buckets[lookup_hash(key)]; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->key, key) != 0)
			continue;
		if (e->expires > now) {
			*r = e->result;
			rc = 0;
		} else { /* expired: unlink */
			*pp = e->next;
			free(e->key);
			free(e);
			lk.nentries--;
		}
		break;
	}
	pthread_mutex_unlock(&lk.cache_lock);
	return rc;
}

/* lookup_cache_put - remember a definite answer (never an error) */
static void lookup_cache_put(const char *key, enum rules_lookup r)
{
	struct lookup_entry *e;
	unsigned h;

	if (lk.ttl <= 0 || r == RULES_LOOKUP_ERROR)
		return;
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->result = r;
	e->expires = time(NULL) + lk.ttl;
	h = lookup_hash(key);
	pthread_mutex_lock(&lk.cache_lock);
	if (lk.nentries >= lk.max_entries)
		lookup_cache_flush_locked();
	e->next = lk.buckets[h];
	lk.buckets[h] = e;
	lk.nentries++;
	pthread_mutex_unlock(&lk.cache_lock);
}

/* ---- the connection pool ------------------------------------------------ */

/* lookup_pool_take - a free slot, waiting for one; its db may be NULL */
static struct lookup_slot *lookup_pool_take(void)
{
	size_t i;

	pthread_mutex_lock(&lk.pool_lock);
	for (;;) {
		for (i = 0; i < lk.nslots; i++) {
			if (!lk.slots[i].busy) {
				lk.slots[i].busy = 1;
				pthread_mutex_unlock(&lk.pool_lock);
				return &lk.slots[i];
			}
		}
		pthread_cond_wait(&lk.pool_cond, &lk.pool_lock);
	}
}

static void lookup_pool_give(struct lookup_slot *s)
{
	pthread_mutex_lock(&lk.pool_lock);
	s->busy = 0;
	pthread_cond_signal(&lk.pool_cond);
	pthread_mutex_unlock(&lk.pool_lock);
}

/* lookup_slot_ready - connect the slot when needed (at most once a second) */
static int lookup_slot_ready(struct lookup_slot *s)
{
	enum db_err_class cls;
	char *err = NULL;
	time_t now = time(NULL);

	if (s->db && PQstatus(db_conn(s->db)) == CONNECTION_OK)
		return 0;
	db_close(&s->db);
	if (now - s->last_attempt < LOOKUP_RECONNECT_GAP)
		return -1;
	s->last_attempt = now;
	s->db = db_connect(lk.conninfo, lk.connect_timeout, &err);
	if (s->db == NULL || db_cmd(s->db, "SET statement_timeout = " LOOKUP_STATEMENT_TIMEOUT, 0,
	                            NULL, &cls, &err) < 0) {
		if (!__atomic_exchange_n(&lk.pool_down_logged, 1, __ATOMIC_RELAXED))
			log_warn("lookup: %s (logged once until a connection succeeds)", err);
		free(err);
		db_close(&s->db);
		return -1;
	}
	__atomic_store_n(&lk.pool_down_logged, 0, __ATOMIC_RELAXED);
	return 0;
}

/* lookup_try - one attempt on the slot; -1 when the connection broke */
static int lookup_try(struct lookup_slot *s, const char *sql, int n, const char *const *params,
                      enum rules_lookup *r)
{
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res;

	if (lookup_slot_ready(s) < 0)
		return 0; /* no connection: *r stays an error */
	res = db_exec(s->db, sql, n, params, &cls, &err);
	if (res != NULL) {
		*r = PQntuples(res) > 0 ? RULES_FOUND : RULES_NOT_FOUND;
		PQclear(res);
		return 0;
	}
	log_warn("lookup: query failed: %s", err);
	free(err);
	if (PQstatus(db_conn(s->db)) == CONNECTION_OK)
		return 0;
	db_close(&s->db);
	s->last_attempt = 0; /* a server restart: reconnect at once */
	return -1;
}

/* lookup_query - FOUND when sql returns a row, NOT_FOUND when none; a
 * connection found broken (server restarted) is replaced once */
static enum rules_lookup lookup_query(const char *sql, int n, const char *const *params)
{
	struct lookup_slot *s = lookup_pool_take();
	enum rules_lookup r = RULES_LOOKUP_ERROR;

	if (lookup_try(s, sql, n, params, &r) < 0)
		(void)lookup_try(s, sql, n, params, &r);
	lookup_pool_give(s);
	return r;
}

static int lookup_listener_up(void)
{
	int up;

	pthread_rwlock_rdlock(&lk.dom_lock);
	up = lk.listener_up;
	pthread_rwlock_unlock(&lk.dom_lock);
	return up;
}

/* lookup_cached - cache, else sql; cache trusted only with the listener up */
static enum rules_lookup lookup_cached(const char *key, const char *sql, int n,
                                       const char *const *params)
{
	enum rules_lookup r;
	int trusted = lookup_listener_up();

	if (trusted && lookup_cache_get(key, &r) == 0) {
		metric_inc(lk.m_hit);
		return r;
	}
	r = lookup_query(sql, n, params);
	metric_inc(r == RULES_FOUND       ? lk.m_found
	           : r == RULES_NOT_FOUND ? lk.m_notfound
	                                  : lk.m_error);
	if (trusted)
		lookup_cache_put(key, r);
	return r;
}

/* ---- the lookups ------------------------------------------------------- */

static int lookup_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum rules_lookup lookup_domain_hosted(void *ctx, const char *domain)
{
	enum rules_lookup r;

	pthread_rwlock_rdlock(&lk.dom_lock);
	if (!lk.listener_up || lk.ndomains == 0) {
		r = RULES_LOOKUP_ERROR; /* unknown, or none hosted: never "foreign" */
		metric_inc(lk.m_error);
	} else {
		r = bsearch(&domain, lk.domains, lk.ndomains, sizeof(char *), lookup_strcmp)
		        ? RULES_FOUND
		        : RULES_NOT_FOUND;
		metric_inc(lk.m_hit);
	}
	pthread_rwlock_unlock(&lk.dom_lock);
	return r;
}

static enum rules_lookup lookup_address_exists(void *ctx, const char *address)
{
	const char *params[1] = {address};
	char *key = xasprintf("e\n%s", address);
	enum rules_lookup r = lookup_cached(
	    key, "SELECT 1 FROM user_addresses WHERE lower(address) = lower($1) LIMIT 1", 1,
	    params);

	free(key);
	return r;
}

static enum rules_lookup lookup_address_owned_by(void *ctx, const char *address, const char *login)
{
	const char *params[2] = {address, login};
	char *key = xasprintf("o\n%s\n%s", address, login);
	enum rules_lookup r = lookup_cached(
	    key,
	    "SELECT 1 FROM user_addresses a JOIN user_addresses l ON l.user_id = a.user_id"
	    " WHERE lower(a.address) = lower($1) AND lower(l.address) = lower($2) LIMIT 1",
	    2, params);

	free(key);
	return r;
}

static const struct rules_lookups lookup_table = {NULL, lookup_domain_hosted, lookup_address_exists,
                                                  lookup_address_owned_by};

const struct rules_lookups *milter_lookups(void)
{
	return &lookup_table;
}

/* ---- domains and the listener ------------------------------------------ */

/* lookup_fetch_domains - read the domain table; -1 with *error_r */
static int lookup_fetch_domains(struct db *db, char ***list_r, size_t *n_r, char **error_r)
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
	qsort(list, n, sizeof(char *), lookup_strcmp);
	*list_r = list;
	*n_r = n;
	return 0;
}

static void lookup_free_list(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* lookup_set_domains - install a new set (NULL list: unknown) */
static void lookup_set_domains(char **list, size_t n, int up)
{
	char **old;
	size_t oldn;

	pthread_rwlock_wrlock(&lk.dom_lock);
	old = lk.domains;
	oldn = lk.ndomains;
	lk.domains = list;
	lk.ndomains = list ? n : 0;
	lk.listener_up = up;
	pthread_rwlock_unlock(&lk.dom_lock);
	lookup_free_list(old, oldn);
	metric_set(lk.m_domains, (double)(list ? n : 0));
}

int milter_lookup_load_domains(char **error_r)
{
	struct db *db = db_connect(lk.conninfo, lk.connect_timeout, error_r);
	char **list;
	size_t n;

	if (db == NULL)
		return -1;
	if (lookup_fetch_domains(db, &list, &n, error_r) < 0) {
		db_close(&db);
		return -1;
	}
	db_close(&db);
	lookup_free_list(list, n);
	return (int)n;
}

static int listen_down_logged; /* only the listener thread uses it */

/* lookup_listen_connect - connect, LISTEN, load domains; NULL on failure */
static struct db *lookup_listen_connect(void)
{
	enum db_err_class cls;
	char *err = NULL, **list;
	size_t n;
	struct db *db = db_connect(lk.conninfo, lk.connect_timeout, &err);

	if (db == NULL || db_cmd(db, "LISTEN postroom_domains", 0, NULL, &cls, &err) < 0 ||
	    db_cmd(db, "LISTEN postroom_keys", 0, NULL, &cls, &err) < 0 ||
	    db_cmd(db, "LISTEN postroom_addresses", 0, NULL, &cls, &err) < 0 ||
	    lookup_fetch_domains(db, &list, &n, &err) < 0) {
		if (!listen_down_logged)
			log_warn(
			    "lookup: cannot subscribe to domain changes: %s (retrying every %d s, "
			    "logged once)",
			    err, LOOKUP_RECONNECT_GAP);
		listen_down_logged = 1;
		free(err);
		db_close(&db);
		return NULL;
	}
	listen_down_logged = 0;
	lookup_cache_flush(); /* nothing heard while away may be trusted */
	lookup_set_domains(list, n, 1);
	metric_inc(lk.m_reload);
	log_info("hosted domains loaded: %zu", n);
	if (n == 0)
		log_warn("no hosted domain: every unauthenticated recipient is tempfailed");
	return db;
}

/* lookup_listen_drain - handle notifications; -1 when the connection broke */
static int lookup_listen_drain(struct db *db, int *reload)
{
	PGconn *c = db_conn(db);
	PGnotify *n;

	if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
		return -1;
	while ((n = PQnotifies(c)) != NULL) {
		if (strcmp(n->relname, "postroom_domains") == 0)
			*reload = 1;
		else
			lookup_cache_flush(); /* a user, alias or key changed */
		PQfreemem(n);
	}
	return 0;
}

static int lookup_running(void)
{
	int r;

	pthread_mutex_lock(&lk.pool_lock);
	r = lk.running;
	pthread_mutex_unlock(&lk.pool_lock);
	return r;
}

/* lookup_listener - the thread keeping the domain set fresh */
static void *lookup_listener(void *arg)
{
	struct db *db = NULL;
	time_t loaded = 0;

	while (lookup_running()) {
		struct pollfd pfd;
		int reload = 0;

		if (db == NULL) {
			if ((db = lookup_listen_connect()) == NULL) {
				sleep(LOOKUP_RECONNECT_GAP);
				continue;
			}
			loaded = time(NULL);
		}
		pfd.fd = PQsocket(db_conn(db));
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 500) < 0 && errno != EINTR)
			reload = -1;
		if (reload == 0 && pfd.revents != 0 && lookup_listen_drain(db, &reload) < 0)
			reload = -1;
		if (reload == 0 && time(NULL) - loaded >= LOOKUP_RELOAD_EVERY)
			reload = 1;
		if (reload == 1) {
			char **list, *err = NULL;
			size_t n;

			if (lookup_fetch_domains(db, &list, &n, &err) == 0) {
				lookup_set_domains(list, n, 1);
				metric_inc(lk.m_reload);
				loaded = time(NULL);
				log_info("hosted domains reloaded: %zu", n);
				if (n == 0)
					log_warn("no hosted domain: every unauthenticated "
					         "recipient is tempfailed");
				continue;
			}
			log_warn("lookup: reloading domains: %s", err);
			free(err);
			reload = -1;
		}
		if (reload < 0) {
			log_warn("lookup: lost the database: tempfailing until it is back");
			lookup_set_domains(NULL, 0, 0);
			db_close(&db);
		}
	}
	db_close(&db);
	return NULL;
}

void milter_lookup_init(const struct conf *cfg)
{
	lk.conninfo = conf_str(cfg, "database.conninfo");
	lk.connect_timeout = (int)conf_int(cfg, "database.connect_timeout");
	lk.ttl = (long)conf_int(cfg, "milter.cache_ttl");
	lk.max_entries = (size_t)conf_int(cfg, "milter.cache_size");
	lk.nslots = (size_t)conf_int(cfg, "milter.db_connections");
	lk.slots = xcalloc(lk.nslots, sizeof(*lk.slots));
	lk.m_hit = metrics_counter("postroom_milter_lookups_total", "Lookups by result",
	                           "result=\"cache_hit\"");
	lk.m_found = metrics_counter("postroom_milter_lookups_total", "Lookups by result",
	                             "result=\"found\"");
	lk.m_notfound = metrics_counter("postroom_milter_lookups_total", "Lookups by result",
	                                "result=\"not_found\"");
	lk.m_error = metrics_counter("postroom_milter_lookups_total", "Lookups by result",
	                             "result=\"error\"");
	lk.m_reload = metrics_counter("postroom_milter_domain_reloads_total",
	                              "Hosted-domain set (re)loads", NULL);
	lk.m_domains = metrics_gauge("postroom_milter_hosted_domains",
	                             "Hosted domains currently loaded", NULL);
}

int milter_lookup_start(char **error_r)
{
	int rc;

	lk.running = 1;
	if ((rc = pthread_create(&lk.thread, NULL, lookup_listener, NULL)) != 0) {
		lk.running = 0;
		*error_r = xasprintf("cannot start the listener thread: %s", strerror(rc));
		return -1;
	}
	return 0;
}

void milter_lookup_stop(void)
{
	size_t i;

	pthread_mutex_lock(&lk.pool_lock);
	if (!lk.running) {
		pthread_mutex_unlock(&lk.pool_lock);
		return;
	}
	lk.running = 0;
	pthread_mutex_unlock(&lk.pool_lock);
	pthread_join(lk.thread, NULL);
	lookup_set_domains(NULL, 0, 0);
	lookup_cache_flush();
	for (i = 0; i < lk.nslots; i++)
		db_close(&lk.slots[i].db);
	xfree(&lk.slots);
}

int milter_lookup_healthy(void *arg, const char **reason_r)
{
	const int *mx_enabled = arg;
	int up, n;

	pthread_rwlock_rdlock(&lk.dom_lock);
	up = lk.listener_up;
	n = (int)lk.ndomains;
	pthread_rwlock_unlock(&lk.dom_lock);
	if (!up) {
		*reason_r = "database unreachable";
		return -1;
	}
	if (mx_enabled && *mx_enabled && n == 0) {
		*reason_r = "MX mode on and no hosted domain";
		return -1;
	}
	return 0;
}
