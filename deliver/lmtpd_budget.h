/* lmtpd_budget.h - postroom-lmtpd's memory budget for the messages in
 * flight (lmtpd.memory_budget, lmtpd.memory_wait), and giving freed heap
 * back to the kernel.
 *
 * CONTRACT: one process-wide budget. Each DATA transaction holds one
 * struct lmtpd_charge (zeroed to start), raises it with
 * lmtpd_budget_take as the message grows, and must end it with
 * lmtpd_budget_release on every path. A charge is granted when it fits
 * in the budget, or when no other message holds a charge (a message
 * larger than the whole budget is possible alone: nothing deadlocks).
 * Thread-safe. */
#ifndef POSTROOM_LMTPD_BUDGET_H
#define POSTROOM_LMTPD_BUDGET_H

#include <stddef.h>

/* What one message in flight holds: lmtpd_budget_cost(basis) bytes. */
struct lmtpd_charge {
	size_t bytes;    /* charged now; 0 = nothing held */
	long long basis; /* the message size the charge was computed for */
};

/* The smallest basis a message is charged for before its size is known
 * (no SIZE= on MAIL FROM). */
#define LMTPD_BUDGET_MIN_BASIS (64 * 1024LL)
/* The fixed part of a message's charge: buffers, the session, the store
 * request. */
#define LMTPD_BUDGET_FIXED (256 * 1024)
/* The charge per byte of message: the spool (memfd, 1x) plus the parse
 * and the store (4x; issue 16's bound is 4 x size + 32 MiB of RSS). */
#define LMTPD_BUDGET_FACTOR 5

/* lmtpd_budget_allocator - first thing in main(): GLib's slice allocator
 * (GLib < 2.76) keeps what it freed in per-thread magazines and a depot;
 * with G_SLICE=always-malloc those objects come from malloc, whose free
 * pages lmtpd_budget_release gives back. GLib reads G_SLICE in its
 * constructor, before main(): without it in the environment, the
 * program executes itself again (/proc/self/exe) with it set. Returns
 * (without G_SLICE) only when that fails. An operator's G_SLICE is kept. */
void lmtpd_budget_allocator(char **argv);

/* lmtpd_budget_init - the metrics; once, before the first session */
void lmtpd_budget_init(void);

/* lmtpd_budget_cost - pure: the charge of a message of size bytes */
size_t lmtpd_budget_cost(long long size);

/* lmtpd_budget_take - raise ch to the charge of a message of basis bytes
 * (no-op when it holds that much already) under a budget of limit bytes
 * (0 = none: always granted), waiting up to wait_s seconds for other
 * messages to release theirs. 0 granted, -1 not within wait_s (ch is
 * unchanged and still held) */
int lmtpd_budget_take(struct lmtpd_charge *ch, long long basis, size_t limit, int wait_s);

/* lmtpd_budget_lower - lower ch to the charge of basis bytes (the
 * message turned out smaller than charged); never waits */
void lmtpd_budget_lower(struct lmtpd_charge *ch, long long basis);

/* lmtpd_budget_release - give back everything ch holds (no-op on a zero
 * charge). When ch was large, freed heap goes back to the kernel at once
 * (malloc_trim); otherwise lmtpd_budget_idle does it. */
void lmtpd_budget_release(struct lmtpd_charge *ch);

/* lmtpd_budget_idle - called about once a second (the accept loop): when
 * nothing has been in flight for a second and at least a MiB was
 * released since, the freed heap goes back to the kernel (malloc_trim). */
void lmtpd_budget_idle(void);

/* lmtpd_budget_in_use - bytes charged now, over all messages (tests,
 * metrics) */
size_t lmtpd_budget_in_use(void);

#endif
