/* front_client_io.h - a line-oriented LMTP client connection over a unix
 * socket, every read and write bounded by one deadline.
 *
 * CONTRACT: functions return 0 or -1 with *error_r (static text or the
 * connection's error buffer; never freed by the caller). After -1 the
 * connection is unusable except for lmtp_close. */
#ifndef POSTROOM_DELIVER_FRONT_CLIENT_IO_H
#define POSTROOM_DELIVER_FRONT_CLIENT_IO_H

#include <stddef.h>
#include <time.h>

#define LMTP_REPLY_MAX 8192 /* longest (multi-line) reply kept */

struct lmtp_conn {
	int fd;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	char rbuf[4096];
	size_t rlen, rpos;
	char err[256];
};

struct lmtp_reply {
	int code;                  /* 250, 451, ... */
	char text[LMTP_REPLY_MAX]; /* every line without its code, LF-separated */
	const char *last;          /* the last line's text (points into text) */
};

/* lmtp_connect - connect to the unix socket path; 0 or -1 */
int lmtp_connect(struct lmtp_conn *c, const char *path, int timeout_s, const char **error_r);
/* lmtp_set_deadline - every later read and write ends by now + seconds */
void lmtp_set_deadline(struct lmtp_conn *c, int seconds);
/* lmtp_write - write all of buf before the deadline */
int lmtp_write(struct lmtp_conn *c, const void *buf, size_t len, const char **error_r);
/* lmtp_read_reply - one complete reply, multi-line replies joined */
int lmtp_read_reply(struct lmtp_conn *c, struct lmtp_reply *r, const char **error_r);
void lmtp_close(struct lmtp_conn *c);

/* lmtp_xtext - RFC 3461 xtext of s into out (size outsz, truncated
 * safely); returns out */
char *lmtp_xtext(const char *s, char *out, size_t outsz);

#endif
