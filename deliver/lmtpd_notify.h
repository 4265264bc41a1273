/* lmtpd_notify.h - the HTTP notifications of postroom-lmtpd, sent from a
 * background thread so that a slow application never slows delivery.
 *
 * CONTRACT: lmtpd_notify_push never blocks on the network: it queues (or,
 * with the queue full, drops and counts) and returns. Thread-safe. */
#ifndef POSTROOM_LMTPD_NOTIFY_H
#define POSTROOM_LMTPD_NOTIFY_H

#include "store_notify.h"

#define LMTPD_NOTIFY_QUEUE_MAX 10000

/* lmtpd_notify_start - start the sender thread */
void lmtpd_notify_start(void);
/* lmtpd_notify_push - queue body (taken over, freed by the queue) for
 * the endpoint in cf (copied); email_id names it in the log */
void lmtpd_notify_push(const struct store_notify_conf *cf, const char *email_id, char *body);
/* lmtpd_notify_stop - send what is queued for at most drain_seconds,
 * drop the rest (logged), join the thread */
void lmtpd_notify_stop(int drain_seconds);

#endif
