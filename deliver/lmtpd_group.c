/*
 * NAME
 *	lmtpd_group - group commit of the messages sessions finish together
 * DESCRIPTION
 *	A session with a parsed message queues it and, if fewer than
 *	`leaders` transactions are running, becomes a leader at once: it
 *	takes every queued message (oldest first, up to its own
 *	lmtpd.group_commit of them and LMTPD_GROUP_BYTES of message), borrows a pool connection
 *	and stores them with store_messages (lib/store_group.c). A session
 *	that finds every leader busy waits on its own condition variable;
 *	a leader that finishes wakes the sessions whose messages it stored
 *	and the first one still queued, which leads next with all that
 *	queued meanwhile. Alone on the server, a message is stored at once,
 *	in a transaction of its own, as before; under load the transactions
 *	(and their WAL flushes) grow instead of queueing up.
 * NEVER
 *	replies or logs (lmtpd_data does); holds its lock while storing.
 * CONFIGURATION
 *	lmtpd.pool_size (the leaders), lmtpd.group_commit
 */
#include "lmtpd_group.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* a group stops growing at this much message (but takes one at least) */
#define LMTPD_GROUP_BYTES (8LL << 20)

/* One queued job and its owner's wake-up. */
struct group_wait {
	struct store_job *job;
	pthread_cond_t cond;
	int taken, done;
	struct group_wait *next;
};

struct lmtpd_group {
	pthread_mutex_t lock;
	struct lmtpd_pool *pool;
	struct group_wait *head, *tail;
	size_t leaders, running;
};

struct lmtpd_group *lmtpd_group_new(struct lmtpd_pool *pool, size_t leaders)
{
	struct lmtpd_group *g = xcalloc(1, sizeof(*g));

	pthread_mutex_init(&g->lock, NULL);
	g->pool = pool;
	g->leaders = leaders > 0 ? leaders : 1;
	return g;
}

void lmtpd_group_free(struct lmtpd_group **gp)
{
	if (*gp == NULL)
		return;
	pthread_mutex_destroy(&(*gp)->lock);
	xfree(gp);
}

/* group_take - the queued jobs a new leader stores (lock held) */
static size_t group_take(struct lmtpd_group *g, struct group_wait **taken, size_t max_jobs)
{
	long long bytes = 0;
	size_t n = 0;

	while (g->head && n < max_jobs &&
	       (n == 0 || bytes + g->head->job->sp->size <= LMTPD_GROUP_BYTES)) {
		bytes += g->head->job->sp->size;
		g->head->taken = 1;
		taken[n++] = g->head;
		g->head = g->head->next;
	}
	if (g->head == NULL)
		g->tail = NULL;
	return n;
}

/* group_fail_all - every job of the group deferred with one reason */
static void group_fail_all(struct store_job *jobs, size_t n, const char *why)
{
	size_t i;

	for (i = 0; i < n; i++) {
		jobs[i].status = STORE_TEMPFAIL;
		jobs[i].error = xstrdup(why);
		jobs[i].grouped = 0;
	}
}

/* group_broken - did a job fail because the connection died? */
static int group_broken(struct db *db, const struct store_job *jobs, size_t n)
{
	size_t i;

	if (PQstatus(db_conn(db)) == CONNECTION_OK)
		return 0;
	for (i = 0; i < n; i++)
		if (jobs[i].status == STORE_TEMPFAIL)
			return 1;
	return 0;
}

/* group_retry - once more, on a fresh connection, the jobs that failed
 * with the old one (the server restarted, or the connection died idle) */
static void group_retry(struct lmtpd_group *g, struct store_job *jobs, size_t n)
{
	struct store_job *again = xcalloc(n, sizeof(*again));
	struct db *db;
	char *err = NULL;
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (jobs[i].status == STORE_TEMPFAIL) {
			store_result_free(jobs[i].res);
			xfree(&jobs[i].error);
			again[k++] = jobs[i];
		}
	if ((db = lmtpd_pool_get(g->pool, &err)) == NULL) {
		group_fail_all(again, k, err);
		free(err);
	} else {
		store_messages(db, again, k);
		lmtpd_pool_put(g->pool, &db);
	}
	for (i = 0, k = 0; i < n; i++)
		if (jobs[i].status == STORE_TEMPFAIL)
			jobs[i] = again[k++];
	free(again);
}

/* group_run - store the taken jobs (no lock held) */
static void group_run(struct lmtpd_group *g, struct group_wait **taken, size_t n)
{
	struct store_job *jobs = xcalloc(n, sizeof(*jobs));
	struct db *db;
	char *err = NULL;
	size_t i;
	int broken = 0;

	for (i = 0; i < n; i++)
		jobs[i] = *taken[i]->job;
	if ((db = lmtpd_pool_get(g->pool, &err)) == NULL) {
		group_fail_all(jobs, n, err);
		free(err);
	} else {
		store_messages(db, jobs, n);
		broken = group_broken(db, jobs, n);
		lmtpd_pool_put(g->pool, &db);
	}
	if (broken)
		group_retry(g, jobs, n);
	for (i = 0; i < n; i++)
		*taken[i]->job = jobs[i];
	free(jobs);
}

/* group_lead - take the queue, store it, wake its owners (lock held on
 * entry and on return) */
static void group_lead(struct lmtpd_group *g, size_t max_jobs)
{
	struct group_wait **taken = xcalloc(max_jobs, sizeof(*taken));
	size_t n, i;

	n = group_take(g, taken, max_jobs);
	g->running++;
	if (g->head && g->running < g->leaders)
		pthread_cond_signal(&g->head->cond); /* more than one group waits */
	pthread_mutex_unlock(&g->lock);
	group_run(g, taken, n);
	pthread_mutex_lock(&g->lock);
	g->running--;
	for (i = 0; i < n; i++) {
		taken[i]->done = 1;
		pthread_cond_signal(&taken[i]->cond);
	}
	if (g->head)
		pthread_cond_signal(&g->head->cond); /* it leads next */
	free(taken);
}

void lmtpd_group_store(struct lmtpd_group *g, struct store_job *job, size_t max_jobs)
{
	struct group_wait w;

	memset(&w, 0, sizeof(w));
	w.job = job;
	max_jobs = max_jobs > 0 ? max_jobs : 1;
	pthread_cond_init(&w.cond, NULL);
	pthread_mutex_lock(&g->lock);
	if (g->tail)
		g->tail->next = &w;
	else
		g->head = &w;
	g->tail = &w;
	while (!w.done) {
		if (!w.taken && g->running < g->leaders)
			group_lead(g, max_jobs);
		else
			pthread_cond_wait(&w.cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	pthread_cond_destroy(&w.cond);
}
