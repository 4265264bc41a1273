/* test-lmtpd-budget - postroom-lmtpd's memory budget (deliver/lmtpd_budget.c):
 * the charge of a message, what fits, a message alone over the budget,
 * a refusal after the wait, a waiter woken by a release from another
 * thread, lowering, and nothing held once everything is released. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "../../deliver/lmtpd_budget.h"
#include "unit.h"

#define MiB (1024LL * 1024LL)

static struct lmtpd_charge releaser_charge;

/* releaser - give its charge back after 200 ms */
static void *releaser(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	lmtpd_budget_release(&releaser_charge);
	return NULL;
}

/* now_ms - the monotonic clock in milliseconds */
static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void)
{
	struct lmtpd_charge a = { 0, 0 }, b = { 0, 0 }, big = { 0, 0 };
	size_t limit = 10 * MiB;
	pthread_t t;
	long t0, ms;
	int rc, rc2;

	/* UNIT_OK evaluates its condition twice: every call is made before */
	UNIT_OK(lmtpd_budget_cost(0) == LMTPD_BUDGET_FIXED, "cost of nothing: the fixed part");
	UNIT_OK(lmtpd_budget_cost(MiB) == 5 * MiB + LMTPD_BUDGET_FIXED, "cost: 5 x size + fixed");

	rc = lmtpd_budget_take(&big, 4 * MiB, limit, 0);
	UNIT_OK(rc == 0 && big.bytes > limit, "alone, a message over the whole budget is granted");
	rc = lmtpd_budget_take(&a, 0, limit, 0);
	UNIT_OK(rc == -1 && a.bytes == 0,
		"while it is in flight, nothing else fits (no wait: refused at once)");
	lmtpd_budget_release(&big);
	UNIT_OK(lmtpd_budget_in_use() == 0 && big.bytes == 0, "released: nothing in use");

	rc = lmtpd_budget_take(&a, MiB, limit, 0);
	rc2 = lmtpd_budget_take(&a, MiB, limit, 0);
	UNIT_OK(rc == 0 && rc2 == 0 && a.bytes == lmtpd_budget_cost(MiB),
		"5.25 MiB of 10 MiB; the same again: a no-op");
	rc = lmtpd_budget_take(&b, MiB / 2, limit, 0);
	UNIT_OK(rc == 0 && lmtpd_budget_in_use() == 8 * MiB, "and 2.75 MiB more fit");
	t0 = now_ms();
	rc = lmtpd_budget_take(&b, MiB, limit, 1);
	ms = now_ms() - t0;
	UNIT_OK(rc == -1 && b.bytes == lmtpd_budget_cost(MiB / 2),
		"growing it past the budget: refused after the wait, the charge unchanged");
	UNIT_OK(ms >= 900 && ms < 3000, "... after memory_wait, 1 s (%ld ms)", ms);

	/* a waiter is woken when another thread releases */
	lmtpd_budget_release(&b);
	rc = lmtpd_budget_take(&releaser_charge, MiB / 2, limit, 0);
	UNIT_OK(rc == 0, "a third charge");
	pthread_create(&t, NULL, releaser, NULL);
	t0 = now_ms();
	rc = lmtpd_budget_take(&b, MiB * 4 / 5, limit, 5);
	ms = now_ms() - t0;
	UNIT_OK(rc == 0, "a charge that must wait is granted");
	UNIT_OK(ms >= 150 && ms < 3000, "... as soon as the other is released (%ld ms)", ms);
	pthread_join(t, NULL);

	lmtpd_budget_lower(&b, 1000);
	UNIT_OK(b.bytes == lmtpd_budget_cost(1000) && b.basis == 1000, "lowered to the real size");
	lmtpd_budget_release(&a);
	lmtpd_budget_release(&b);
	lmtpd_budget_release(&b);
	UNIT_OK(lmtpd_budget_in_use() == 0, "everything released (twice is harmless)");
	rc = lmtpd_budget_take(&a, 0, 0, 0);
	UNIT_OK(rc == 0, "budget 0: no budget");
	lmtpd_budget_release(&a);
	return unit_done();
}
