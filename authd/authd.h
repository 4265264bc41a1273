/* authd.h - postroom-authd's event loop and its connections: what main.c
 * and server.c share. */
#ifndef POSTROOM_AUTHD_H
#define POSTROOM_AUTHD_H

#include <stddef.h>

#include "apikey.h"
#include "cache.h"
#include "conf.h"
#include "limiter.h"
#include "lru.h"
#include "pgsql.h"
#include "pool.h"
#include "verify.h"

#define AUTHD_SCOPE "smtp"
#define AUTHD_OUT_MAX (1024 * 1024) /* a client that stops reading */
#define AUTHD_REQUESTS_MAX 128      /* open requests per connection */
#define AUTHD_IP_QUEUE_SHARE 4      /* one client IP holds at most 1/4 of the queue */

/* Tags for epoll's data.ptr: every registered object starts with one. */
enum authd_ev_kind { AUTHD_EV_LISTEN = 1, AUTHD_EV_CONN, AUTHD_EV_POOL, AUTHD_EV_SIGNAL };
struct authd_ev {
	int kind;
	int fd;
};

/* The settings of the authd section that can change on SIGHUP. */
struct authd_settings {
	struct authd_limits limits;
	size_t cache_size;
	double cache_ttl;
	size_t queue_max;      /* the cap of the queue length */
	double queue_time_max; /* s, the queue is as long as the workers answer within it */
	size_t max_connections;
};

/* One request waiting for a verification. Identical attempts (same
 * address and key) arriving while one is being verified wait for it
 * instead of starting another bcrypt: a job carries all their tickets. */
struct authd_ticket {
	struct authd_ticket *next;
	struct authd_conn *conn; /* holds a reference */
	unsigned int id;         /* request id on that connection */
	int abandoned;           /* request cancelled, replaced, closed */
	char *account;           /* what the rate limiter keys on */
	char rip[64];
	double queued_at;
};

/* A verification on its way through the worker pool. */
struct authd_job {
	struct authd_job *next;
	struct authd_ticket *tickets; /* the first one started it */
	char *address;                /* canonical, or NULL when not an address */
	char *key;                    /* wiped and freed by the worker */
	unsigned char cache_key[LRU_KEY_LEN];
	int coalescable;     /* registered in the in-flight table */
	unsigned long epoch; /* cache epoch before the lookup */
	struct authd_verify_result result;
};

struct authd_metrics;

struct authd_server {
	struct conf *cfg;
	struct authd_settings set;
	int epfd;
	struct authd_ev listeners[2], pool_ev, signal_ev;
	size_t nlisteners;
	struct authd_pool *pool;
	struct authd_cache *cache;
	struct authd_limiter *limiter;
	struct authd_pg_house *house;
	struct lru inflight;   /* cache key -> job being verified */
	double bcrypt_seconds; /* moving average of one verification's wall time */
	char dummy_hash[APIKEY_HASH_MAX];
	char cookie[33];
	unsigned long next_cuid;
	size_t nconns;
	struct authd_conn *conns; /* all open connections */
	int stopping;
	struct authd_metrics *m;
};

/* authd_settings_load - the authd section of cfg; -1 with *error_r on a
 * bad value (caller frees) */
int authd_settings_load(const struct conf *cfg, struct authd_settings *set, char **error_r);

/* server.c */
/* authd_server_metrics - register the metrics (once) */
void authd_server_metrics_init(struct authd_server *s);
/* authd_server_init - the in-flight table and a first measurement of the
 * bcrypt time (s->dummy_hash is made); authd_server_deinit frees it */
void authd_server_init(struct authd_server *s);
void authd_server_deinit(struct authd_server *s);
/* authd_server_accept - accept every pending connection on lfd */
void authd_server_accept(struct authd_server *s, int lfd);
/* authd_server_conn_event - epoll events for a connection */
void authd_server_conn_event(struct authd_server *s, void *conn, unsigned int events);
/* authd_server_jobs_done - collect finished verifications and answer */
void authd_server_jobs_done(struct authd_server *s);
/* authd_server_jobs_answer - answer (or, connection gone, drop) a list */
void authd_server_jobs_answer(struct authd_server *s, struct authd_job *list);
/* authd_server_tick - once a second: gauges */
void authd_server_tick(struct authd_server *s);
/* authd_server_idle - no connection has output or a request pending */
int authd_server_idle(struct authd_server *s);
/* authd_server_close_all - close every connection */
void authd_server_close_all(struct authd_server *s);
/* authd_now - monotonic seconds */
double authd_now(void);

#endif
