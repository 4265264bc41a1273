/* pool.h - the bcrypt worker pool of authd: N threads take jobs from one
 * queue, run the work function, and hand finished jobs back to the event
 * loop through an eventfd. */
#ifndef POSTROOM_AUTHD_POOL_H
#define POSTROOM_AUTHD_POOL_H

#include <stddef.h>

struct authd_job; /* defined by the caller; has a "struct authd_job *next" */

struct authd_pool_ops {
	/* thread_init - per-thread context (a database connection); runs on
	 * the worker thread */
	void *(*thread_init)(void *arg);
	void (*thread_done)(void *thread_ctx);
	/* work - process one job on a worker thread */
	void (*work)(struct authd_job *job, void *thread_ctx);
	/* next - the link field of a job */
	struct authd_job **(*next)(struct authd_job *job);
	void *arg;
};

struct authd_pool;

/* authd_pool_new - start n threads. Never fails (thread creation failure
 * is fatal). */
struct authd_pool *authd_pool_new(unsigned n, const struct authd_pool_ops *ops);
/* authd_pool_fd - readable when finished jobs are waiting */
int authd_pool_fd(const struct authd_pool *p);
void authd_pool_submit(struct authd_pool *p, struct authd_job *job);
/* authd_pool_done - the finished jobs, oldest first (caller owns them) */
struct authd_job *authd_pool_done(struct authd_pool *p);
/* authd_pool_threads - the number of worker threads */
unsigned authd_pool_threads(const struct authd_pool *p);
/* authd_pool_queued - jobs waiting or running */
size_t authd_pool_queued(struct authd_pool *p);
/* authd_pool_free - finish every submitted job, stop and join the
 * threads; returns the finished jobs not yet collected (caller owns). */
struct authd_job *authd_pool_free(struct authd_pool **p);

#endif
