/*
 * NAME
 *	lmtpd_budget - the memory budget of the messages in flight
 * DESCRIPTION
 *	Each DATA transaction is charged LMTPD_BUDGET_FACTOR (5) x its size
 *	+ LMTPD_BUDGET_FIXED (256 KiB): the spool (the memfd, 1x) and what
 *	parsing and storing it may cost (4x). The size is first the SIZE= of
 *	MAIL FROM (or 64 KiB without one), and the charge grows while the
 *	data arrives. A charge that does not fit in lmtpd.memory_budget
 *	waits, on a condition variable, for others to be released, up to
 *	lmtpd.memory_wait seconds; then the caller answers 451 4.3.2. A
 *	message alone in flight is always granted, however large: one
 *	message larger than the budget never deadlocks.
 *	GLib's slice allocator (before GLib 2.76) keeps all it ever held, and
 *	glibc keeps what a thread freed in its arena: postroom-lmtpd runs
 *	with G_SLICE=always-malloc, and after a large message, and once the
 *	server has been idle (nothing in flight) for a second, malloc_trim(0)
 *	gives the free pages of every arena back to the kernel (trimming
 *	whenever the last message in flight ended cost 8% of the throughput
 *	of one LMTP session: the pages were faulted in again at once).
 *	Measured (GLib 2.74, the parser before issue 16's rewrite, 4
 *	messages of 1,000,000 header lines at once, idle RSS 11 MB): 2.4 GB
 *	stayed without either, 1.4 GB with G_SLICE alone, 14 MB with both.
 * NEVER
 *	lets a charge outlive its transaction (the caller releases on every
 *	path); refuses a message that is alone in flight.
 * CONFIGURATION
 *	lmtpd.memory_budget, lmtpd.memory_wait (read by the caller,
 *	lmtpd_data, from the settings of its transaction)
 */
#include "lmtpd_budget.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* Released bytes after which a server idle for BUDGET_IDLE_MS trims its
 * heap, and the charge of one message after which it trims at once. */
#define BUDGET_TRIM_IDLE (1024 * 1024)
#define BUDGET_TRIM_LARGE (32 * 1024 * 1024)
#define BUDGET_IDLE_MS 1000

static pthread_mutex_t budget_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t budget_freed;
static pthread_once_t budget_once = PTHREAD_ONCE_INIT;
static size_t budget_used;              /* bytes charged, all messages */
static unsigned budget_holders;         /* messages holding a charge */
static size_t budget_untrimmed;         /* released since the last trim */
static struct timespec budget_released; /* the last release (monotonic) */
static struct metric *m_charged, *m_waits, *m_refused;

/* budget_cond_init - the condition variable on the monotonic clock */
static void budget_cond_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&budget_freed, &a);
	pthread_condattr_destroy(&a);
}

void lmtpd_budget_allocator(char **argv)
{
	if (getenv("G_SLICE") != NULL)
		return;
	setenv("G_SLICE", "always-malloc", 1);
	execv("/proc/self/exe", argv);
	unsetenv("G_SLICE"); /* no /proc: GLib's slices stay as they are */
}

void lmtpd_budget_init(void)
{
	pthread_once(&budget_once, budget_cond_init);
	m_charged = metrics_gauge("postroom_lmtpd_memory_charged_bytes",
				  "memory budget charged to the messages in flight", NULL);
	m_waits = metrics_counter("postroom_lmtpd_memory_waits_total",
				  "messages that waited for the memory budget", NULL);
	m_refused =
		metrics_counter("postroom_lmtpd_memory_refused_total",
				"messages deferred (451 4.3.2): no memory budget in time", NULL);
}

size_t lmtpd_budget_cost(long long size)
{
	if (size < 0)
		size = 0;
	return (size_t)size * LMTPD_BUDGET_FACTOR + LMTPD_BUDGET_FIXED;
}

/* budget_fits - may ch hold want bytes now? (lock held) */
static int budget_fits(const struct lmtpd_charge *ch, size_t want, size_t limit)
{
	unsigned others = budget_holders - (ch->bytes > 0 ? 1 : 0);

	return limit == 0 || others == 0 || budget_used - ch->bytes + want <= limit;
}

/* budget_set - ch holds want bytes from now (lock held) */
static void budget_set(struct lmtpd_charge *ch, size_t want, long long basis)
{
	if (ch->bytes == 0 && want > 0)
		budget_holders++;
	budget_used = budget_used - ch->bytes + want;
	if (want < ch->bytes) {
		budget_untrimmed += ch->bytes - want;
		pthread_cond_broadcast(&budget_freed);
	}
	ch->bytes = want;
	ch->basis = basis;
	if (m_charged)
		metric_set(m_charged, (double)budget_used);
}

int lmtpd_budget_take(struct lmtpd_charge *ch, long long basis, size_t limit, int wait_s)
{
	size_t want = lmtpd_budget_cost(basis);
	struct timespec until;
	int rc = 0, waited = 0;

	if (want <= ch->bytes)
		return 0;
	pthread_once(&budget_once, budget_cond_init);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&budget_lock);
	while (!budget_fits(ch, want, limit)) {
		waited = 1;
		if (wait_s <= 0 ||
		    pthread_cond_timedwait(&budget_freed, &budget_lock, &until) == ETIMEDOUT) {
			rc = budget_fits(ch, want, limit) ? 0 : -1;
			break;
		}
	}
	if (rc == 0)
		budget_set(ch, want, basis);
	pthread_mutex_unlock(&budget_lock);
	if (waited && m_waits)
		metric_inc(m_waits);
	if (rc < 0 && m_refused)
		metric_inc(m_refused);
	return rc;
}

void lmtpd_budget_lower(struct lmtpd_charge *ch, long long basis)
{
	size_t want = lmtpd_budget_cost(basis);

	if (ch->bytes == 0 || want >= ch->bytes)
		return;
	pthread_mutex_lock(&budget_lock);
	budget_set(ch, want, basis);
	pthread_mutex_unlock(&budget_lock);
}

void lmtpd_budget_release(struct lmtpd_charge *ch)
{
	size_t had = ch->bytes;
	int trim;

	if (had == 0)
		return;
	pthread_mutex_lock(&budget_lock);
	budget_set(ch, 0, 0);
	budget_holders--;
	clock_gettime(CLOCK_MONOTONIC, &budget_released);
	trim = had >= BUDGET_TRIM_LARGE;
	if (trim)
		budget_untrimmed = 0;
	pthread_mutex_unlock(&budget_lock);
	if (trim)
		malloc_trim(0);
}

void lmtpd_budget_idle(void)
{
	struct timespec now;
	long ms;
	int trim;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&budget_lock);
	ms = (now.tv_sec - budget_released.tv_sec) * 1000L +
	     (now.tv_nsec - budget_released.tv_nsec) / 1000000L;
	trim = budget_holders == 0 && budget_untrimmed >= BUDGET_TRIM_IDLE && ms >= BUDGET_IDLE_MS;
	if (trim)
		budget_untrimmed = 0;
	pthread_mutex_unlock(&budget_lock);
	if (trim)
		malloc_trim(0);
}

size_t lmtpd_budget_in_use(void)
{
	size_t n;

	pthread_mutex_lock(&budget_lock);
	n = budget_used;
	pthread_mutex_unlock(&budget_lock);
	return n;
}
