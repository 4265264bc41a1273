/* store_group.h - store several parsed messages in one transaction.
 *
 * CONTRACT: each job ends exactly as store_message would have ended it
 * (status, result, error): the jobs that can share a transaction are
 * stored in one (one BEGIN, one COMMIT, one WAL flush); a job that
 * cannot (a part too large for a batch, a --sent copy, the same message
 * twice) and, when the shared transaction fails, every job of it, is
 * stored alone with store_message. A failed shared transaction leaves
 * nothing behind: exactly once holds either way. No logging here. */
#ifndef POSTROOM_STORE_GROUP_H
#define POSTROOM_STORE_GROUP_H

#include <stddef.h>

#include "store_mail.h"

struct store_job {
	const struct store_spool *sp;
	const struct mime_msg *m;
	const struct store_request *rq;
	struct store_result *res; /* out: free with store_result_free */
	enum store_status status; /* out */
	char *error;              /* out: why, unless STORE_OK (caller frees) */
	int grouped;              /* out: stored in the shared transaction */
};

/* store_messages - see above */
void store_messages(struct db *db, struct store_job *jobs, size_t n);

#endif
