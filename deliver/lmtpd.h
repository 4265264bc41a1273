/* lmtpd.h - the server state the parts of postroom-lmtpd share: the
 * pool, the group commit, the session count and the metrics. Filled in
 * by lmtpd_main; read by the sessions (lmtpd_session) and the DATA step
 * (lmtpd_data). */
#ifndef POSTROOM_LMTPD_H
#define POSTROOM_LMTPD_H

#include <pthread.h>

#include "lmtpd_group.h"
#include "lmtpd_pool.h"
#include "metrics.h"

#define LMTPD_PROG "postroom-lmtpd"

struct lmtpd_session;

struct lmtpd_server {
	struct lmtpd_pool *pool;
	struct lmtpd_group *group; /* group commit over the pool */
	char hostname[256];
	int max_sessions;
	volatile int stopping; /* SIGTERM: finish transactions, 421 new ones */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int nsessions;
	/* threads that have ended, not yet joined (lmtpd_session_reap) */
	pthread_t *ended;
	size_t nended, ended_cap;
	/* session threads waiting for a next connection (lmtpd_session.c),
	 * and the sessions handed to them, not yet taken */
	pthread_cond_t work;
	int nwaiting;
	int nthreads; /* session threads not yet listed in ended */
	struct lmtpd_session *queue;
	struct metric *m_sessions, *m_messages_ok, *m_messages_temp, *m_messages_perm, *m_bytes,
		*m_duration, *m_rcpts;
};

#endif
