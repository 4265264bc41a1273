/* quota.h - sending quotas: messages and recipients per hour per
 * authenticated user, counted in memory and flushed to PostgreSQL in
 * batches (no database write per request).
 *
 * Window: fixed clock hours in the database; the check uses the sliding
 * estimate used(now) = current_hour + previous_hour * (1 - elapsed/3600),
 * so a user cannot send twice the quota across an hour boundary.
 * Bound: every flush interval each host adds its pending counts to the
 * shared rows and reads back the totals (also for active users without
 * pending counts), so a user can overshoot by at most what the other
 * hosts admit within one flush interval; a crash loses at most the
 * counts of one flush interval of that host. */
#ifndef POSTROOM_POLICYD_QUOTA_H
#define POSTROOM_POLICYD_QUOTA_H

#include <time.h>

enum quota_kind { QUOTA_MESSAGES, QUOTA_RECIPIENTS };
enum quota_result { QUOTA_OK, QUOTA_OVER, QUOTA_ERROR };

/* one user's rows as the backend sees them */
struct quota_usage {
	long long window; /* hour start, unix seconds */
	long messages, recipients;
};

struct quota_flush_item {
	const char *login;
	long long window;
	long messages, recipients; /* in: to add; out: new totals */
};

/* The database side, as a struct of function pointers (tests use a
 * table in memory). All return 0 ok, -1 with *error_r (caller frees). */
struct quota_backend {
	void *ctx;
	/* limits: -1 = the default; usage of windows >= since, up to 2 */
	int (*load)(void *ctx, const char *login, long long since, long *msg_limit,
		    long *rcpt_limit, struct quota_usage usage[2], int *nusage, char **error_r);
	/* add the deltas and write the new totals back into items */
	int (*flush)(void *ctx, struct quota_flush_item *items, int n, char **error_r);
	/* current totals of (login, window) pairs, written into items */
	int (*refresh)(void *ctx, struct quota_flush_item *items, int n, char **error_r);
};

struct quota_config {
	long messages_per_hour; /* 0 = unlimited */
	long recipients_per_hour;
	int limits_ttl; /* seconds a user's limits are cached */
};

struct quota;

struct quota *quota_new(const struct quota_config *cfg, const struct quota_backend *be);
void quota_free(struct quota **q);
void quota_set_config(struct quota *q, const struct quota_config *cfg);

/* quota_charge - count n messages or recipients for login (lower-cased
 * by the caller) at time now unless that would exceed the limit; n = 0
 * only asks whether one more would fit.
 * QUOTA_OVER: nothing counted, *limit_r says the limit; QUOTA_ERROR: the
 * user's limits could not be loaded (*error_r, caller frees). */
enum quota_result quota_charge(struct quota *q, const char *login, enum quota_kind kind, long n,
			       time_t now, long *limit_r, char **error_r);

/* quota_flush - push pending counts, refresh active users' totals; 0 ok,
 * -1 with *error_r (pending counts are kept for the next try). */
int quota_flush(struct quota *q, time_t now, char **error_r);

/* quota_used - the sliding estimate for login (tests, postroomctl) */
double quota_used(struct quota *q, const char *login, enum quota_kind kind, time_t now);

#endif
