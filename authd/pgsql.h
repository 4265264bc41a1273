/* pgsql.h - authd's PostgreSQL side: the key lookup (one connection per
 * worker thread, reconnected with back-off), and the housekeeping thread
 * that LISTENs for key changes (cache purges) and writes last_used_at in
 * batches. */
#ifndef POSTROOM_AUTHD_PGSQL_H
#define POSTROOM_AUTHD_PGSQL_H

#include "cache.h"
#include "verify.h"

struct authd_pg;

/* authd_pg_new - a lazily connected lookup handle; timeout (s) bounds the
 * connection attempt and every statement */
struct authd_pg *authd_pg_new(const char *conninfo, int timeout);
void authd_pg_free(struct authd_pg **pg);
/* authd_pg_lookup - struct authd_backend.lookup over PostgreSQL */
int authd_pg_lookup(void *ctx, const char *prefix, const char *address, const char *scope,
		    struct authd_keyrow *row_r, char **error_r);
/* authd_pg_up - 1 when the last lookups and the listener reached the
 * database (for /healthz and the postroom_authd_db_up gauge) */
int authd_pg_up(void);

struct authd_pg_house;

/* authd_pg_house_start - start the housekeeping thread: LISTEN
 * postroom_keys and purge cache entries as notifications arrive (flush
 * all after a reconnect), keep this process's row in authd_instances and
 * confirm postroom_authd_sync numbers there, and every interval seconds
 * write the batched last-use times. */
struct authd_pg_house *authd_pg_house_start(const char *conninfo, int timeout,
					    struct authd_cache *cache, int interval);
/* authd_pg_house_touch - remember that key_id (of user_id) was used now */
void authd_pg_house_touch(struct authd_pg_house *h, const char *key_id, const char *user_id);
/* authd_pg_house_ready - 1 once LISTEN is active (tests wait for it) */
int authd_pg_house_ready(struct authd_pg_house *h);
/* authd_pg_house_stop - final flush of last-use times, then join */
void authd_pg_house_stop(struct authd_pg_house **h);

#endif
