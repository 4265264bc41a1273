/*
 * NAME
 *	quota - per-user sending quotas, counted in memory, flushed in batches
 * DESCRIPTION
 *	quota_charge() checks and counts under one mutex, so concurrent
 *	requests of one user can never both take the last unit. The known
 *	database totals plus this host's pending counts are what is
 *	compared with the limit; quota_flush(), run by a thread every
 *	policyd.quota_flush_interval, adds the pending counts to the shared
 *	rows and reads back the totals other hosts contributed. See quota.h
 *	for the window and the bounds.
 * NEVER
 *	writes to the database on the request path; holds the mutex across
 *	a database call.
 */
#include "quota.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define QUOTA_BUCKETS 4096
#define QUOTA_ACTIVE 120 /* seconds: users refreshed by the flusher */
#define QUOTA_EVICT 7200 /* seconds idle before an entry is dropped */

struct quota_entry {
	struct quota_entry *next;
	char *login;
	int loaded;
	time_t limits_at, last_used;
	long msg_limit, rcpt_limit; /* -1 = default */
	long long window;           /* current hour start */
	long db_cur[2], db_prev[2]; /* known totals, indexed by kind */
	long pend[2];               /* not yet flushed, window `window` */
	long pend_old[2];           /* not yet flushed, window `window - 3600` */
};

struct quota {
	pthread_mutex_t lock;
	struct quota_config cfg;
	struct quota_backend be;
	struct quota_entry *buckets[QUOTA_BUCKETS];
};

static unsigned quota_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % QUOTA_BUCKETS;
}

struct quota *quota_new(const struct quota_config *cfg, const struct quota_backend *be)
{
	struct quota *q = xcalloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	q->cfg = *cfg;
	q->be = *be;
	return q;
}

void quota_set_config(struct quota *q, const struct quota_config *cfg)
{
	pthread_mutex_lock(&q->lock);
	q->cfg = *cfg;
	pthread_mutex_unlock(&q->lock);
}

void quota_free(struct quota **qp)
{
	struct quota *q = *qp;
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < QUOTA_BUCKETS; i++) {
		while (q->buckets[i] != NULL) {
			struct quota_entry *e = q->buckets[i];

			q->buckets[i] = e->next;
			free(e->login);
			free(e);
		}
	}
	pthread_mutex_destroy(&q->lock);
	xfree(qp);
}

/* quota_find - the entry of login, created when missing (lock held) */
static struct quota_entry *quota_find(struct quota *q, const char *login, int create)
{
	unsigned h = quota_hash(login);
	struct quota_entry *e;

	for (e = q->buckets[h]; e != NULL; e = e->next)
		if (strcmp(e->login, login) == 0)
			return e;
	if (!create)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->login = xstrdup(login);
	e->msg_limit = e->rcpt_limit = -1;
	e->next = q->buckets[h];
	q->buckets[h] = e;
	return e;
}

/* quota_rotate - move the entry to the hour of now (lock held) */
static void quota_rotate(struct quota_entry *e, long long hour)
{
	int k;

	if (e->window == hour)
		return;
	for (k = 0; k < 2; k++) {
		if (e->window == hour - 3600) {
			e->db_prev[k] = e->db_cur[k];
			e->pend_old[k] = e->pend[k];
		} else {
			e->db_prev[k] = 0;
			e->pend_old[k] = 0; /* older than an hour: no longer matters */
		}
		e->db_cur[k] = 0;
		e->pend[k] = 0;
	}
	e->window = hour;
}

/* quota_estimate - sliding estimate of kind at now (lock held) */
static double quota_estimate(const struct quota_entry *e, int k, time_t now)
{
	double frac = (double)(now - e->window) / 3600.0;

	return (double)(e->db_cur[k] + e->pend[k]) +
	       (double)(e->db_prev[k] + e->pend_old[k]) * (1.0 - frac);
}

/* quota_apply_load - take loaded limits and totals (lock held) */
static void quota_apply_load(struct quota_entry *e, long ml, long rl, const struct quota_usage *u,
			     int nu, time_t now)
{
	int i;

	e->msg_limit = ml;
	e->rcpt_limit = rl;
	e->limits_at = now;
	if (!e->loaded) {
		for (i = 0; i < nu; i++) {
			if (u[i].window == e->window) {
				e->db_cur[0] = u[i].messages;
				e->db_cur[1] = u[i].recipients;
			} else if (u[i].window == e->window - 3600) {
				e->db_prev[0] = u[i].messages;
				e->db_prev[1] = u[i].recipients;
			}
		}
	}
	e->loaded = 1;
}

/* quota_ensure_loaded - load limits and usage when missing or stale;
 * called and returns with the lock held */
static int quota_ensure_loaded(struct quota *q, struct quota_entry **ep, const char *login,
			       time_t now, char **error_r)
{
	struct quota_usage u[2];
	long ml, rl;
	int nu = 0;
	long long hour = (long long)now - (long long)now % 3600;

	if ((*ep)->loaded && now - (*ep)->limits_at < q->cfg.limits_ttl)
		return 0;
	pthread_mutex_unlock(&q->lock);
	if (q->be.load(q->be.ctx, login, hour - 3600, &ml, &rl, u, &nu, error_r) < 0) {
		pthread_mutex_lock(&q->lock);
		*ep = quota_find(q, login, 1);
		if (!(*ep)->loaded)
			return -1;
		free(*error_r); /* stale limits beat refusing the user */
		*error_r = NULL;
		return 0;
	}
	pthread_mutex_lock(&q->lock);
	*ep = quota_find(q, login, 1); /* the table may have changed */
	quota_rotate(*ep, hour);
	quota_apply_load(*ep, ml, rl, u, nu, now);
	return 0;
}

enum quota_result quota_charge(struct quota *q, const char *login, enum quota_kind kind, long n,
			       time_t now, long *limit_r, char **error_r)
{
	struct quota_entry *e;
	long long hour = (long long)now - (long long)now % 3600;
	long limit;
	int k = kind == QUOTA_MESSAGES ? 0 : 1;
	enum quota_result rc = QUOTA_OK;

	pthread_mutex_lock(&q->lock);
	e = quota_find(q, login, 1);
	quota_rotate(e, hour);
	if (quota_ensure_loaded(q, &e, login, now, error_r) < 0) {
		pthread_mutex_unlock(&q->lock);
		return QUOTA_ERROR;
	}
	limit = k == 0 ? (e->msg_limit >= 0 ? e->msg_limit : q->cfg.messages_per_hour)
		       : (e->rcpt_limit >= 0 ? e->rcpt_limit : q->cfg.recipients_per_hour);
	*limit_r = limit;
	e->last_used = now;
	/* n = 0 asks whether one more would fit, without counting it */
	if (limit > 0 && quota_estimate(e, k, now) + (double)(n > 0 ? n : 1) > (double)limit)
		rc = QUOTA_OVER;
	else
		e->pend[k] += n;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

double quota_used(struct quota *q, const char *login, enum quota_kind kind, time_t now)
{
	struct quota_entry *e;
	double v = 0;

	pthread_mutex_lock(&q->lock);
	e = quota_find(q, login, 0);
	if (e != NULL) {
		quota_rotate(e, (long long)now - (long long)now % 3600);
		v = quota_estimate(e, kind == QUOTA_MESSAGES ? 0 : 1, now);
	}
	pthread_mutex_unlock(&q->lock);
	return v;
}

static int quota_item_cmp(const void *a, const void *b)
{
	const struct quota_flush_item *x = a, *y = b;
	int c = strcmp(x->login, y->login);

	return c != 0 ? c : (x->window > y->window) - (x->window < y->window);
}

/* quota_collect - snapshot of what to flush and what to refresh (lock
 * held); logins are copied */
static void quota_collect(struct quota *q, time_t now, struct quota_flush_item **fl, int *nf,
			  struct quota_flush_item **rf, int *nr)
{
	size_t i, capf = 16, capr = 16;
	long long hour = (long long)now - (long long)now % 3600;

	*fl = xmalloc(capf * sizeof(**fl));
	*rf = xmalloc(capr * sizeof(**rf));
	*nf = *nr = 0;
	for (i = 0; i < QUOTA_BUCKETS; i++) {
		struct quota_entry *e;

		for (e = q->buckets[i]; e != NULL; e = e->next) {
			quota_rotate(e, hour);
			if ((size_t)*nf + 2 > capf)
				*fl = xrealloc(*fl, (capf *= 2) * sizeof(**fl));
			if ((size_t)*nr + 1 > capr)
				*rf = xrealloc(*rf, (capr *= 2) * sizeof(**rf));
			if (e->pend_old[0] || e->pend_old[1])
				(*fl)[(*nf)++] =
					(struct quota_flush_item){ xstrdup(e->login), hour - 3600,
								   e->pend_old[0], e->pend_old[1] };
			if (e->pend[0] || e->pend[1])
				(*fl)[(*nf)++] =
					(struct quota_flush_item){ xstrdup(e->login), hour,
								   e->pend[0], e->pend[1] };
			else if (e->loaded && now - e->last_used < QUOTA_ACTIVE)
				(*rf)[(*nr)++] =
					(struct quota_flush_item){ xstrdup(e->login), hour, 0, 0 };
		}
	}
}

/* quota_take_back - apply the backend's totals (lock held); flushed
 * items also take their sent deltas off the pending counts */
static void quota_take_back(struct quota *q, struct quota_flush_item *it, int n,
			    const long (*sent)[2])
{
	int i;

	for (i = 0; i < n; i++) {
		struct quota_entry *e = quota_find(q, it[i].login, 0);

		if (e == NULL)
			continue;
		if (it[i].window == e->window) {
			if (sent) {
				e->pend[0] -= sent[i][0];
				e->pend[1] -= sent[i][1];
			}
			e->db_cur[0] = it[i].messages;
			e->db_cur[1] = it[i].recipients;
		} else if (it[i].window == e->window - 3600) {
			if (sent) {
				e->pend_old[0] -= sent[i][0];
				e->pend_old[1] -= sent[i][1];
			}
			e->db_prev[0] = it[i].messages;
			e->db_prev[1] = it[i].recipients;
		}
	}
}

/* quota_evict - drop idle entries without pending counts (lock held) */
static void quota_evict(struct quota *q, time_t now)
{
	size_t i;

	for (i = 0; i < QUOTA_BUCKETS; i++) {
		struct quota_entry **pp = &q->buckets[i];

		while (*pp != NULL) {
			struct quota_entry *e = *pp;

			if (now - e->last_used > QUOTA_EVICT && !e->pend[0] && !e->pend[1] &&
			    !e->pend_old[0] && !e->pend_old[1]) {
				*pp = e->next;
				free(e->login);
				free(e);
			} else
				pp = &e->next;
		}
	}
}

static void quota_items_free(struct quota_flush_item *it, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free((char *)it[i].login);
	free(it);
}

int quota_flush(struct quota *q, time_t now, char **error_r)
{
	struct quota_flush_item *fl, *rf;
	long(*sent)[2] = NULL;
	int nf, nr, i, flushed = 1, refreshed = 1;

	pthread_mutex_lock(&q->lock);
	quota_collect(q, now, &fl, &nf, &rf, &nr);
	pthread_mutex_unlock(&q->lock);
	/* one order for every host: concurrent batches cannot deadlock */
	qsort(fl, (size_t)nf, sizeof(*fl), quota_item_cmp);
	if (nf > 0) {
		sent = xmalloc((size_t)nf * sizeof(*sent));
		for (i = 0; i < nf; i++) {
			sent[i][0] = fl[i].messages;
			sent[i][1] = fl[i].recipients;
		}
		flushed = q->be.flush(q->be.ctx, fl, nf, error_r) == 0;
	}
	if (flushed && nr > 0)
		refreshed = q->be.refresh(q->be.ctx, rf, nr, error_r) == 0;
	pthread_mutex_lock(&q->lock);
	if (flushed)
		quota_take_back(q, fl, nf, (const long(*)[2])sent);
	if (flushed && refreshed)
		quota_take_back(q, rf, nr, NULL);
	quota_evict(q, now);
	pthread_mutex_unlock(&q->lock);
	free(sent);
	quota_items_free(fl, nf);
	quota_items_free(rf, nr);
	return flushed && refreshed ? 0 : -1;
}
