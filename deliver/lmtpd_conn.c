/*
 * NAME
 *	lmtpd_conn - one LMTP connection's input and replies
 * DESCRIPTION
 *	Blocking I/O with a poll()ed timeout (lmtpd.timeout, passed by the
 *	caller). Replies are queued and sent when more input is needed, so
 *	a pipelining client (RFC 2920) gets its replies in one write; input
 *	is read in pieces of up to LMTPD_IN_SIZE bytes, which command lines
 *	(lmtpd_session) and message data (lmtpd_data) consume.
 * NEVER
 *	replies before a pipelined batch is read; raises SIGPIPE; lets a
 *	command line grow past LMTPD_LINE_MAX.
 * CONFIGURATION
 *	none (the timeout is the caller's)
 */
#include "lmtpd_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lmtpd_proto.h"

void lmtpd_conn_reply(struct lmtpd_conn *c, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_append_str(&c->out, line);
	buf_append(&c->out, "\r\n", 2);
}

int lmtpd_conn_flush(struct lmtpd_conn *c)
{
	size_t off = 0;
	ssize_t w;

	while (off < c->out.len) {
		w = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	buf_truncate(&c->out, 0);
	return 0;
}

int lmtpd_conn_fill(struct lmtpd_conn *c, int timeout, int interruptible)
{
	struct pollfd p = { c->fd, POLLIN, 0 };
	int waited = 0, n;
	ssize_t r;

	if (c->in_start == c->in_end)
		c->in_start = c->in_end = 0;
	else if (c->in_start > 0 && c->in_end == sizeof(c->in)) {
		memmove(c->in, c->in + c->in_start, c->in_end - c->in_start);
		c->in_end -= c->in_start;
		c->in_start = 0;
	}
	if (c->in_end == sizeof(c->in))
		return -1; /* the caller lets no line grow this long */
	if (lmtpd_conn_flush(c) < 0)
		return -1;
	for (;;) {
		if (interruptible && *c->stopping)
			return -2;
		n = poll(&p, 1, 1000);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			break;
		if (n == 0 && ++waited >= timeout)
			return -1;
	}
	r = recv(c->fd, c->in + c->in_end, sizeof(c->in) - c->in_end, 0);
	if (r < 0 && errno == EINTR)
		return lmtpd_conn_fill(c, timeout, interruptible);
	if (r <= 0)
		return r == 0 ? 0 : -1;
	c->in_end += (size_t)r;
	return 1;
}

int lmtpd_conn_line(struct lmtpd_conn *c, int timeout, int interruptible, char **line_r)
{
	char *lf;
	int rc;

	for (;;) {
		lf = memchr(c->in + c->in_start, '\n', c->in_end - c->in_start);
		if (lf) {
			*line_r = c->in + c->in_start;
			c->in_start = (size_t)(lf - c->in) + 1;
			if (lf > *line_r && lf[-1] == '\r')
				lf--;
			*lf = '\0';
			return 1;
		}
		if (c->in_end - c->in_start >= LMTPD_LINE_MAX)
			return -1;
		rc = lmtpd_conn_fill(c, timeout, interruptible);
		if (rc <= 0)
			return rc == -1 ? 0 : rc;
	}
}
