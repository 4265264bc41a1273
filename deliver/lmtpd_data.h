/* lmtpd_data.h - postroom-lmtpd's DATA step: read the message, deliver
 * it through the delivery core (delivery.h), one reply per recipient.
 *
 * CONTRACT: lmtpd_data reads from and queues its replies on the
 * connection; it never calls back into the session. Thread-safe (each
 * session on its own connection). */
#ifndef POSTROOM_LMTPD_DATA_H
#define POSTROOM_LMTPD_DATA_H

#include <stddef.h>

#include "lmtpd.h"
#include "lmtpd_conn.h"

#define LMTPD_RCPTS_MAX 1000

/* A transaction's envelope, as the session accepted it. */
struct lmtpd_envelope {
	char *sender;
	char *auth_user; /* AUTH= of a trusted client, or NULL */
	char *rcpts[LMTPD_RCPTS_MAX];
	int rcpt_sent[LMTPD_RCPTS_MAX]; /* the sent-copy route marker */
	size_t nrcpts;
	char *xf_addr, *xf_ident; /* XFORWARD ADDR= and IDENT= */
	long long size;           /* SIZE= of MAIL FROM, 0 = none */
};

/* lmtpd_data - DATA with at least one recipient: wait for the memory
 * budget (lmtpd_budget; none in time: one 451 4.3.2 reply, no data
 * read), reply "354", read the message from c, store it and queue one
 * reply per recipient of env; id names the session in the log. 0, or -1
 * when the connection is lost (nothing stored) */
int lmtpd_data(struct lmtpd_server *srv, struct lmtpd_conn *c, const char *id,
	       const struct lmtpd_envelope *env);

#endif
