/* lmtpd_conn.h - one LMTP connection's buffers and blocking I/O: input
 * read in pieces, command lines, replies queued and sent together.
 *
 * CONTRACT: used by one thread at a time (its session's). Functions
 * return as documented; after -1 the connection is only closed. */
#ifndef POSTROOM_LMTPD_CONN_H
#define POSTROOM_LMTPD_CONN_H

#include <stddef.h>

#include "buf.h"

#define LMTPD_IN_SIZE 65536

struct lmtpd_conn {
	int fd;
	const volatile int *stopping; /* the server is stopping (for interruptible reads) */
	char in[LMTPD_IN_SIZE];
	size_t in_start, in_end; /* unread input: in[in_start..in_end) */
	struct buf out;          /* queued replies */
};

/* lmtpd_conn_reply - queue a reply line (CRLF added) */
void lmtpd_conn_reply(struct lmtpd_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* lmtpd_conn_flush - send the queued replies; 0 or -1 */
int lmtpd_conn_flush(struct lmtpd_conn *c);
/* lmtpd_conn_fill - send the queued replies, then read more input,
 * waiting at most timeout seconds: 1 read, 0 end of input, -1 error or
 * timeout, -2 the server is stopping (only when interruptible) */
int lmtpd_conn_fill(struct lmtpd_conn *c, int timeout, int interruptible);
/* lmtpd_conn_line - the next command line (NUL-terminated in the input
 * buffer, no CR LF): 1 a line, 0 end or timeout, -1 too long, -2
 * stopping (only when interruptible) */
int lmtpd_conn_line(struct lmtpd_conn *c, int timeout, int interruptible, char **line_r);

#endif
