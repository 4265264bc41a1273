/* lmtpd_group.h - group commit: the messages that sessions finish while
 * every store slot is busy are stored together, in one transaction.
 *
 * CONTRACT: lmtpd_group_store returns when the job has its outcome, the
 * one store_message would have given it (lib/store_group.h). At most
 * `leaders` transactions run at once, each on a pool connection; a job
 * waits only while all of them run. A connection that died under a transaction is replaced once and
 * the jobs that failed are stored again (exactly once makes that safe).
 * Thread-safe. */
#ifndef POSTROOM_LMTPD_GROUP_H
#define POSTROOM_LMTPD_GROUP_H

#include <stddef.h>

#include "lmtpd_pool.h"
#include "store_group.h"

struct lmtpd_group;

struct lmtpd_group *lmtpd_group_new(struct lmtpd_pool *pool, size_t leaders);
void lmtpd_group_free(struct lmtpd_group **g);
/* lmtpd_group_store - store job, with the others ready at the same time
 * (at most max_jobs in a transaction, when this session leads it) */
void lmtpd_group_store(struct lmtpd_group *g, struct store_job *job, size_t max_jobs);

#endif
