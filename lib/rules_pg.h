/* rules_pg.h - the envelope rules' lookups (rules.h) over PostgreSQL, the
 * one backend postroom-milter and postroom-policyd both use: hosted
 * domains kept fresh by LISTEN/NOTIFY, cached address answers, a pool of
 * connections and a health flag. Each program fills the settings from its
 * own parameters (milter.* or policyd.*, database.*). */
#ifndef POSTROOM_RULES_PG_H
#define POSTROOM_RULES_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "rules.h"

struct metric;

/* Counters and gauges the caller registered (any may be NULL: not kept). */
struct rules_pg_metrics {
	struct metric *cache_hit, *found, *not_found, *error; /* lookups by result */
	struct metric *reloads;                               /* domain set (re)loads */
	struct metric *domains;                               /* gauge: domains loaded */
};

struct rules_pg_settings {
	const char *conninfo; /* database.conninfo (copied) */
	int connect_timeout;  /* database.connect_timeout, seconds */
	int connections;      /* the pool's size, at least 1 */
	int ttl_found;        /* seconds an owned address is cached (0: not cached) */
	int ttl_not_found;    /* seconds an unknown one is (0: not cached) */
	size_t cache_size;    /* cached answers at most */
	int domain_reload;    /* seconds between full domain reloads, notified or not */
	/* while the LISTEN connection is down: 0 = no cached answer and no
	 * domain set is trusted (every unauthenticated recipient tempfails);
	 * 1 = the last domain set and the cached answers are still served */
	int offline_answers;
	struct rules_pg_metrics metrics;
};

struct rules_pg;

/* rules_pg_new - the backend, not connected yet (nothing is opened, no
 * thread started: safe before fork). Settings are copied. */
struct rules_pg *rules_pg_new(const struct rules_pg_settings *s);
/* rules_pg_start - subscribe to changes and load the domains now (one
 * attempt: the database may be down), then start the thread that keeps
 * them fresh. 0 ok, -1 with *error_r (caller frees) when the thread
 * cannot start. */
int rules_pg_start(struct rules_pg *rp, char **error_r);
/* rules_pg_free - stop the thread, close every connection, *rp = NULL */
void rules_pg_free(struct rules_pg **rp);

/* rules_pg_lookups - the lookups for rules_check_*(); valid while rp lives */
const struct rules_lookups *rules_pg_lookups(struct rules_pg *rp);
/* rules_pg_set_ttl - new cache times (a configuration reload) */
void rules_pg_set_ttl(struct rules_pg *rp, int ttl_found, int ttl_not_found);

/* rules_pg_domain_count - hosted domains in the table, on a connection of
 * its own (closed again). -1 with *error_r (caller frees). */
long rules_pg_domain_count(const struct rules_pg *rp, char **error_r);
/* rules_pg_healthy - 0 while the LISTEN connection is up and, when
 * mx_enabled, domains are loaded; else -1 with a static *reason_r */
int rules_pg_healthy(struct rules_pg *rp, int mx_enabled, const char **reason_r);

/* rules_pg_exec - one statement on a pooled connection (for a program's
 * own SQL, e.g. policyd's quotas), never retried. The result (caller
 * PQclear()s it), or NULL with *error_r (caller frees). */
PGresult *rules_pg_exec(struct rules_pg *rp, const char *sql, int n, const char *const *params,
			char **error_r);

#endif
