/* test-policyd-quota - quota counting against an in-memory backend:
 * limits and overrides, the sliding hour, flushes that add pending counts
 * and read back other hosts' totals, a failed flush keeps the counts,
 * and concurrent charges never admit more than the limit. */
#include <pthread.h>
#include <stdlib.h>
#include "quota.h"
#include "unit.h"

/* T - UNIT_OK evaluating cond once (the assertions here have side effects) */
#define T(cond, ...)                      \
	do {                              \
		int t_ = !!(cond);        \
		UNIT_OK(t_, __VA_ARGS__); \
	} while (0)
#include "xalloc.h"

/* the "database": one user's overrides and rows of (window, msgs, rcpts) */
static struct {
	long ml, rl;
	struct quota_usage rows[8];
	int nrows;
	int fail;
	int loads, flushes;
} db;

static struct quota_usage *db_row(long long w, int create)
{
	int i;

	for (i = 0; i < db.nrows; i++)
		if (db.rows[i].window == w)
			return &db.rows[i];
	if (!create)
		return NULL;
	db.rows[db.nrows] = (struct quota_usage){ w, 0, 0 };
	return &db.rows[db.nrows++];
}

static int be_load(void *ctx, const char *login, long long since, long *ml, long *rl,
		   struct quota_usage u[2], int *nu, char **error_r)
{
	int i;

	db.loads++;
	if (db.fail) {
		*error_r = xstrdup("database down");
		return -1;
	}
	*ml = db.ml;
	*rl = db.rl;
	*nu = 0;
	for (i = 0; i < db.nrows && *nu < 2; i++)
		if (db.rows[i].window >= since)
			u[(*nu)++] = db.rows[i];
	return 0;
}

static int be_flush(void *ctx, struct quota_flush_item *it, int n, char **error_r)
{
	int i;

	if (db.fail) {
		*error_r = xstrdup("database down");
		return -1;
	}
	db.flushes++;
	for (i = 0; i < n; i++) {
		struct quota_usage *r = db_row(it[i].window, 1);

		r->messages += it[i].messages;
		r->recipients += it[i].recipients;
		it[i].messages = r->messages;
		it[i].recipients = r->recipients;
	}
	return 0;
}

static int be_refresh(void *ctx, struct quota_flush_item *it, int n, char **error_r)
{
	int i;

	for (i = 0; i < n; i++) {
		struct quota_usage *r = db_row(it[i].window, 0);

		it[i].messages = r ? r->messages : 0;
		it[i].recipients = r ? r->recipients : 0;
	}
	return 0;
}

static struct quota *shared_q;
static int admitted;
static pthread_mutex_t admitted_lock = PTHREAD_MUTEX_INITIALIZER;

static void *racer(void *arg)
{
	time_t now = *(time_t *)arg;
	long lim;
	char *err = NULL;
	int i;

	for (i = 0; i < 1000; i++)
		if (quota_charge(shared_q, "racer@x.example", QUOTA_RECIPIENTS, 1, now, &lim,
				 &err) == QUOTA_OK) {
			pthread_mutex_lock(&admitted_lock);
			admitted++;
			pthread_mutex_unlock(&admitted_lock);
		}
	return NULL;
}

int main(void)
{
	struct quota_backend be = { NULL, be_load, be_flush, be_refresh };
	struct quota_config cfg = { 3, 5, 60 };
	struct quota *q;
	time_t hour = 1700000000 - 1700000000 % 3600, now = hour + 60;
	long lim = 0;
	char *err = NULL;
	int i, ok;

	db.ml = db.rl = -1;
	q = quota_new(&cfg, &be);
	for (i = 0, ok = 0; i < 5; i++)
		ok += quota_charge(q, "a@x.example", QUOTA_MESSAGES, 1, now, &lim, &err) ==
		      QUOTA_OK;
	T(ok == 3 && lim == 3, "default limit 3 messages: 3 of 5 admitted (%d)", ok);
	T(quota_charge(q, "a@x.example", QUOTA_MESSAGES, 0, now, &lim, &err) == QUOTA_OVER,
	  "peek (n = 0) says no room at the limit");
	T(quota_charge(q, "a@x.example", QUOTA_RECIPIENTS, 5, now, &lim, &err) == QUOTA_OK,
	  "recipients are a separate count (5 of 5)");
	T(quota_charge(q, "a@x.example", QUOTA_RECIPIENTS, 1, now, &lim, &err) == QUOTA_OVER,
	  "the sixth recipient is over");
	T(db.flushes == 0 && db.nrows == 0, "nothing written before a flush");
	T(quota_flush(q, now, &err) == 0, "flush");
	T(db.nrows == 1 && db.rows[0].messages == 3 && db.rows[0].recipients == 5 &&
		  db.rows[0].window == hour,
	  "flush added 3 messages, 5 recipients in this hour's row");
	T(quota_flush(q, now, &err) == 0 && db.rows[0].messages == 3,
	  "a second flush adds nothing twice");
	quota_free(&q);

	/* a restart: the counts come back from the database */
	q = quota_new(&cfg, &be);
	T(quota_charge(q, "a@x.example", QUOTA_MESSAGES, 1, now + 10, &lim, &err) == QUOTA_OVER,
	  "after a restart the database's count still refuses");
	quota_free(&q);

	/* another host added counts: seen after a flush/refresh */
	db.nrows = 0;
	q = quota_new(&cfg, &be);
	T(quota_charge(q, "b@x.example", QUOTA_MESSAGES, 1, now, &lim, &err) == QUOTA_OK,
	  "b: first message");
	db_row(hour, 1)->messages += 2; /* the other host */
	T(quota_flush(q, now, &err) == 0 && db_row(hour, 0)->messages == 3,
	  "flush adds to the other host's rows");
	T(quota_charge(q, "b@x.example", QUOTA_MESSAGES, 1, now, &lim, &err) == QUOTA_OVER,
	  "the other host's counts are seen after the flush");

	/* sliding hour: 3 used last hour; 30 minutes in, 1.5 still count */
	T(quota_charge(q, "b@x.example", QUOTA_MESSAGES, 1, hour + 3600 + 1800, &lim, &err) ==
		  QUOTA_OK,
	  "half an hour later one more fits (3 * 0.5 + 1 <= 3)");
	T(quota_charge(q, "b@x.example", QUOTA_MESSAGES, 1, hour + 3600 + 1800, &lim, &err) ==
		  QUOTA_OVER,
	  "but not two (1.5 + 2 > 3)");
	T(quota_charge(q, "b@x.example", QUOTA_MESSAGES, 1, hour + 3600 + 3599, &lim, &err) ==
		  QUOTA_OK,
	  "at the end of the next hour the old hour is almost gone");
	quota_free(&q);

	/* override and unlimited */
	db.nrows = 0;
	db.ml = 0;
	db.rl = 1;
	q = quota_new(&cfg, &be);
	for (i = 0, ok = 0; i < 50; i++)
		ok += quota_charge(q, "c@x.example", QUOTA_MESSAGES, 1, now, &lim, &err) ==
		      QUOTA_OK;
	T(ok == 50, "override 0 = unlimited messages");
	T(quota_charge(q, "c@x.example", QUOTA_RECIPIENTS, 1, now, &lim, &err) == QUOTA_OK &&
		  quota_charge(q, "c@x.example", QUOTA_RECIPIENTS, 1, now, &lim, &err) ==
			  QUOTA_OVER &&
		  lim == 1,
	  "override of 1 recipient per hour");

	/* database down: a failed flush keeps the counts for later */
	db.fail = 1;
	T(quota_flush(q, now, &err) < 0 && err != NULL, "flush fails while the database is down");
	free(err);
	err = NULL;
	db.fail = 0;
	T(quota_flush(q, now, &err) == 0 && db_row(hour, 0) && db_row(hour, 0)->messages == 50,
	  "the kept counts are written by the next flush");
	T(quota_charge(q, "new@x.example", QUOTA_MESSAGES, 1, now, &lim, &err) == QUOTA_OK,
	  "new user");
	db.fail = 1;
	T(quota_charge(q, "other@x.example", QUOTA_MESSAGES, 1, now, &lim, &err) == QUOTA_ERROR,
	  "limits not loadable: QUOTA_ERROR (the caller defers)");
	free(err);
	err = NULL;
	T(quota_charge(q, "new@x.example", QUOTA_MESSAGES, 1, now + 120, &lim, &err) == QUOTA_OK &&
		  err == NULL,
	  "limits stale and not reloadable: the known ones are used");
	free(err);
	err = NULL;
	db.fail = 0;
	quota_free(&q);

	/* concurrency: 8 threads, 1000 tries each, limit 500 */
	{
		struct quota_config c2 = { 0, 500, 60 };
		pthread_t t[8];

		db.ml = db.rl = -1;
		db.nrows = 0;
		shared_q = quota_new(&c2, &be);
		for (i = 0; i < 8; i++)
			pthread_create(&t[i], NULL, racer, &now);
		for (i = 0; i < 8; i++)
			pthread_join(t[i], NULL);
		T(admitted == 500, "8 concurrent threads: exactly 500 admitted (%d)", admitted);
		quota_flush(shared_q, now, &err);
		T(db_row(hour, 0) && db_row(hour, 0)->recipients == 500, "and 500 flushed");
		quota_free(&shared_q);
	}
	return unit_done();
}
