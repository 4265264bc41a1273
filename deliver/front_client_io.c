/*
 * NAME
 *	front_client_io - the unix-socket connection of postroom-deliver's LMTP
 *	client mode
 * DESCRIPTION
 *	Connects to postroom-lmtpd's socket (deliver.lmtpd_socket), writes
 *	commands and data, reads complete (multi-line) replies; every wait
 *	is a poll() bounded by one deadline (deliver.timeout), so a hung
 *	server defers the mail instead of holding the MTA's process.
 * NEVER
 *	blocks past the deadline; raises SIGPIPE (the caller ignores it).
 */
#include "front_client_io.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void lmtp_set_deadline(struct lmtp_conn *c, int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, &c->deadline);
	c->deadline.tv_sec += seconds;
}

/* lmtp_ms_left - milliseconds before the deadline (0 when past) */
static int lmtp_ms_left(const struct lmtp_conn *c)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(c->deadline.tv_sec - now.tv_sec) * 1000 +
	     (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms <= 0 ? 0 : ms > 3600000 ? 3600000 : (int)ms;
}

/* lmtp_wait - poll fd for events until the deadline; 0 ready, -1 */
static int lmtp_wait(struct lmtp_conn *c, short events, const char **error_r)
{
	struct pollfd p = { c->fd, events, 0 };
	int n;

	do
		n = poll(&p, 1, lmtp_ms_left(c));
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		*error_r = "timed out";
		return -1;
	}
	if (n < 0) {
		snprintf(c->err, sizeof(c->err), "poll: %s", strerror(errno));
		*error_r = c->err;
		return -1;
	}
	return 0;
}

int lmtp_connect(struct lmtp_conn *c, const char *path, int timeout_s, const char **error_r)
{
	struct sockaddr_un sun;

	memset(c, 0, sizeof(*c));
	lmtp_set_deadline(c, timeout_s);
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = "socket path too long";
		c->fd = -1;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(c->err, sizeof(c->err), "connect: %s", strerror(errno));
		*error_r = c->err;
		return -1;
	}
	return 0;
}

int lmtp_write(struct lmtp_conn *c, const void *buf, size_t len, const char **error_r)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if (lmtp_wait(c, POLLOUT, error_r) < 0)
			return -1;
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			snprintf(c->err, sizeof(c->err), "write: %s", strerror(errno));
			*error_r = c->err;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* lmtp_getc - the next byte of input; -1 on EOF, error or timeout */
static int lmtp_getc(struct lmtp_conn *c, const char **error_r)
{
	ssize_t n;

	while (c->rpos == c->rlen) {
		if (lmtp_wait(c, POLLIN, error_r) < 0)
			return -1;
		n = recv(c->fd, c->rbuf, sizeof(c->rbuf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(c->err, sizeof(c->err), "%s",
				 n == 0 ? "connection closed by the server" : strerror(errno));
			*error_r = c->err;
			return -1;
		}
		c->rlen = (size_t)n;
		c->rpos = 0;
	}
	return (unsigned char)c->rbuf[c->rpos++];
}

/* lmtp_read_line - one line without CRLF into line (truncated to size) */
static int lmtp_read_line(struct lmtp_conn *c, char *line, size_t size, const char **error_r)
{
	size_t n = 0;
	int ch;

	while ((ch = lmtp_getc(c, error_r)) != '\n') {
		if (ch < 0)
			return -1;
		if (n + 1 < size)
			line[n++] = (char)ch;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return 0;
}

int lmtp_read_reply(struct lmtp_conn *c, struct lmtp_reply *r, const char **error_r)
{
	char line[1024];
	size_t used = 0, len;
	int more;

	r->code = 0;
	r->text[0] = '\0';
	r->last = r->text;
	do {
		if (lmtp_read_line(c, line, sizeof(line), error_r) < 0)
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] != '\0' && line[3] != ' ' && line[3] != '-') ||
		    (r->code &&
		     r->code != (line[0] - '0') * 100 + (line[1] - '0') * 10 + line[2] - '0')) {
			snprintf(c->err, sizeof(c->err), "malformed reply line '%.100s'", line);
			*error_r = c->err;
			return -1;
		}
		r->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		more = line[3] == '-';
		len = line[3] ? strlen(line + 4) : 0;
		if (used + len + 2 < sizeof(r->text)) {
			if (used)
				r->text[used++] = '\n';
			r->last = r->text + used;
			memcpy(r->text + used, line[3] ? line + 4 : "", len + 1);
			used += len;
		}
	} while (more);
	return 0;
}

void lmtp_close(struct lmtp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

char *lmtp_xtext(const char *s, char *out, size_t outsz)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	unsigned char ch;

	for (; *s && n + 4 < outsz; s++) {
		ch = (unsigned char)*s;
		if (ch < 33 || ch > 126 || ch == '+' || ch == '=') {
			out[n++] = '+';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		} else {
			out[n++] = (char)ch;
		}
	}
	out[n] = '\0';
	return out;
}
