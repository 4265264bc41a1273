/*
 * NAME
 *	pool - worker threads for bcrypt verifications
 * DESCRIPTION
 *	bcrypt at cost 11 takes about 130 ms of one core: verifications run
 *	here, one per thread, so the event loop keeps answering cached and
 *	refused requests at once. Jobs go in through a mutex-protected FIFO
 *	and come back through a second list plus an eventfd the event loop
 *	polls. The pool is sized to the cores (authd.workers).
 * NEVER
 *	touches connections or the rate limiter: those belong to the event
 *	loop.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

struct authd_pool {
	struct authd_pool_ops ops;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct authd_job *in_head, *in_tail, *out_head, *out_tail;
	size_t queued; /* submitted, not yet finished */
	int stopping, efd;
	unsigned nthreads;
	pthread_t *threads;
};

static void authd_pool_append(struct authd_pool *p, struct authd_job **head,
			      struct authd_job **tail, struct authd_job *job)
{
	*p->ops.next(job) = NULL;
	if (*tail)
		*p->ops.next(*tail) = job;
	else
		*head = job;
	*tail = job;
}

static void *authd_pool_thread(void *arg)
{
	struct authd_pool *p = arg;
	void *ctx = p->ops.thread_init ? p->ops.thread_init(p->ops.arg) : NULL;
	struct authd_job *job;
	uint64_t one = 1;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->in_head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if ((job = p->in_head) == NULL) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		p->in_head = *p->ops.next(job);
		if (p->in_head == NULL)
			p->in_tail = NULL;
		pthread_mutex_unlock(&p->lock);

		p->ops.work(job, ctx);

		pthread_mutex_lock(&p->lock);
		authd_pool_append(p, &p->out_head, &p->out_tail, job);
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error("pool: eventfd write: %s", strerror(errno));
	}
	if (p->ops.thread_done)
		p->ops.thread_done(ctx);
	return NULL;
}

struct authd_pool *authd_pool_new(unsigned n, const struct authd_pool_ops *ops)
{
	struct authd_pool *p = xcalloc(1, sizeof(*p));
	unsigned i;
	int rc;

	p->ops = *ops;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		log_fatal(EX_OSERR, "eventfd: %s", strerror(errno));
	p->nthreads = n ? n : 1;
	p->threads = xcalloc(p->nthreads, sizeof(*p->threads));
	for (i = 0; i < p->nthreads; i++)
		if ((rc = pthread_create(&p->threads[i], NULL, authd_pool_thread, p)) != 0)
			log_fatal(EX_OSERR, "cannot start worker thread: %s", strerror(rc));
	return p;
}

int authd_pool_fd(const struct authd_pool *p) { return p->efd; }

void authd_pool_submit(struct authd_pool *p, struct authd_job *job)
{
	pthread_mutex_lock(&p->lock);
	authd_pool_append(p, &p->in_head, &p->in_tail, job);
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

struct authd_job *authd_pool_done(struct authd_pool *p)
{
	struct authd_job *list;
	uint64_t v;

	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_error("pool: eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&p->lock);
	list = p->out_head;
	p->out_head = p->out_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	return list;
}

unsigned authd_pool_threads(const struct authd_pool *p) { return p->nthreads; }

size_t authd_pool_queued(struct authd_pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->queued;
	pthread_mutex_unlock(&p->lock);
	return n;
}

struct authd_job *authd_pool_free(struct authd_pool **pp)
{
	struct authd_pool *p = *pp;
	struct authd_job *left;
	unsigned i;

	if (p == NULL)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	left = p->out_head;
	close(p->efd);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	xfree(pp);
	return left;
}
