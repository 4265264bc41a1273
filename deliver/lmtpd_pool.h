/* lmtpd_pool.h - PostgreSQL connections shared by the LMTP sessions.
 *
 * CONTRACT: lmtpd_pool_get blocks until a connection is free (at most
 * size exist), checks an idle one before handing it out (a connection
 * the server closed is replaced), and connects lazily. A session gives
 * the connection back with lmtpd_pool_put, which closes it when it broke
 * during use, so that only the transaction in flight fails. Thread-safe. */
#ifndef POSTROOM_LMTPD_POOL_H
#define POSTROOM_LMTPD_POOL_H

#include <stddef.h>

#include "db.h"

struct lmtpd_pool;

struct lmtpd_pool *lmtpd_pool_new(const char *conninfo, int connect_timeout, size_t size);
void lmtpd_pool_free(struct lmtpd_pool **p);

/* lmtpd_pool_get - a usable connection, or NULL with *error_r (caller
 * frees) when none can be made */
struct db *lmtpd_pool_get(struct lmtpd_pool *p, char **error_r);
/* lmtpd_pool_put - give *db back (and set it NULL) */
void lmtpd_pool_put(struct lmtpd_pool *p, struct db **db);

/* lmtpd_pool_healthy - 1 unless the last connection attempt failed */
int lmtpd_pool_healthy(struct lmtpd_pool *p);

#endif
