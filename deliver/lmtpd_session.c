/*
 * NAME
 *	lmtpd_session - one LMTP connection: commands and replies
 * DESCRIPTION
 *	Each connection is served by a thread of its own with blocking I/O
 *	and a poll()ed timeout (lmtpd.timeout). Replies are queued and sent
 *	when no more input is buffered, so a pipelining client (RFC 2920)
 *	gets its replies in one write. The envelope: LHLO, MAIL FROM (SIZE,
 *	BODY, SMTPUTF8, and AUTH= from trusted clients), RCPT TO (recipient
 *	validation at RCPT time: 550 5.1.1; X-POSTROOM-SENT from trusted
 *	clients), XFORWARD ADDR/IDENT from trusted clients, then DATA
 *	(lmtpd_data). Trusted: the unix socket always, TCP clients listed
 *	in lmtpd.trusted_clients. On SIGTERM a transaction in flight is
 *	finished; a new one is refused with 421 4.3.2.
 * NEVER
 *	accepts AUTH= or the sent-copy marker from an untrusted client;
 *	replies before a pipelined batch is read.
 * CONFIGURATION
 *	lmtpd.timeout, lmtpd.trusted_clients, limits.message_size_max,
 *	rules.recipient_validation, milter.sent_recipient
 */
#include "lmtpd.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define SESSION_XFORWARD_ATTRS	"NAME ADDR PORT PROTO HELO IDENT SOURCE"

void lmtpd_session_reply(struct lmtpd_session *s, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_append_str(&s->out, line);
	buf_append(&s->out, "\r\n", 2);
}

int lmtpd_session_flush(struct lmtpd_session *s)
{
	size_t off = 0;
	ssize_t w;

	while (off < s->out.len) {
		w = send(s->fd, s->out.data + off, s->out.len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	buf_truncate(&s->out, 0);
	return 0;
}

int lmtpd_session_fill(struct lmtpd_session *s, int timeout, int interruptible)
{
	struct pollfd p = { s->fd, POLLIN, 0 };
	int waited = 0, n;
	ssize_t r;

	if (s->in_start == s->in_end)
		s->in_start = s->in_end = 0;
	else if (s->in_start > 0 && s->in_end == sizeof(s->in)) {
		memmove(s->in, s->in + s->in_start, s->in_end - s->in_start);
		s->in_end -= s->in_start;
		s->in_start = 0;
	}
	if (s->in_end == sizeof(s->in))
		return -1;	/* the caller lets no line grow this long */
	if (lmtpd_session_flush(s) < 0)
		return -1;
	for (;;) {
		if (interruptible && s->srv->stopping)
			return -2;
		n = poll(&p, 1, 1000);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			break;
		if (n == 0 && ++waited >= timeout)
			return -1;
	}
	r = recv(s->fd, s->in + s->in_end, sizeof(s->in) - s->in_end, 0);
	if (r < 0 && errno == EINTR)
		return lmtpd_session_fill(s, timeout, interruptible);
	if (r <= 0)
		return r == 0 ? 0 : -1;
	s->in_end += (size_t)r;
	return 1;
}

/* session_line - the next command line (NUL-terminated, no CR LF):
 * 1 a line, 0 end/timeout, -1 too long, -2 stopping */
static int session_line(struct lmtpd_session *s, int timeout, char **line_r)
{
	char *lf;
	int rc;

	for (;;) {
		lf = memchr(s->in + s->in_start, '\n', s->in_end - s->in_start);
		if (lf) {
			*line_r = s->in + s->in_start;
			s->in_start = (size_t)(lf - s->in) + 1;
			if (lf > *line_r && lf[-1] == '\r')
				lf--;
			*lf = '\0';
			return 1;
		}
		if (s->in_end - s->in_start >= LMTPD_LINE_MAX)
			return -1;
		rc = lmtpd_session_fill(s, timeout, !s->have_mail);
		if (rc <= 0)
			return rc == -1 ? 0 : rc;
	}
}

/* session_reset - forget the transaction */
static void session_reset(struct lmtpd_session *s)
{
	size_t i;

	for (i = 0; i < s->nrcpts; i++)
		xfree(&s->rcpts[i]);
	s->nrcpts = 0;
	s->have_mail = 0;
	xfree(&s->sender);
	xfree(&s->auth_user);
	xfree(&s->xf_addr);
	xfree(&s->xf_ident);
}

/* session_lhlo - the greeting reply with our extensions */
static void session_lhlo(struct lmtpd_session *s, const struct lmtpd_settings *set)
{
	session_reset(s);
	s->lhlo = 1;
	lmtpd_session_reply(s, "250-%s", s->srv->hostname);
	lmtpd_session_reply(s, "250-PIPELINING");
	lmtpd_session_reply(s, "250-ENHANCEDSTATUSCODES");
	lmtpd_session_reply(s, "250-8BITMIME");
	lmtpd_session_reply(s, "250-SMTPUTF8");
	if (s->trusted)
		lmtpd_session_reply(s, "250-XFORWARD " SESSION_XFORWARD_ATTRS);
	lmtpd_session_reply(s, "250 SIZE %lld", set->size_max);
}

/* session_mail_params - SIZE, BODY, SMTPUTF8, AUTH; 0 or -1 (replied) */
static int session_mail_params(struct lmtpd_session *s, const struct lmtpd_settings *set,
			       const struct lmtpd_cmd *c, char **auth_r)
{
	const struct lmtpd_param *p;
	size_t i;

	*auth_r = NULL;
	for (i = 0; i < c->nparams; i++) {
		p = &c->params[i];
		if (strcasecmp(p->name, "SIZE") == 0 && p->value) {
			if (atoll(p->value) > set->size_max) {
				lmtpd_session_reply(s, "552 5.3.4 message size exceeds the limit of %lld bytes",
						    set->size_max);
				return -1;
			}
		} else if (strcasecmp(p->name, "BODY") == 0 && p->value &&
			   (strcasecmp(p->value, "7BIT") == 0 || strcasecmp(p->value, "8BITMIME") == 0)) {
			continue;
		} else if (strcasecmp(p->name, "SMTPUTF8") == 0 && p->value == NULL) {
			continue;
		} else if (strcasecmp(p->name, "AUTH") == 0 && p->value) {
			free(*auth_r);
			*auth_r = NULL;
			if (s->trusted && strcmp(p->value, "<>") != 0 &&
			    lmtpd_xtext_decode(p->value, auth_r) < 0) {
				lmtpd_session_reply(s, "501 5.5.4 malformed AUTH= parameter");
				return -1;
			}
		} else {
			free(*auth_r);
			*auth_r = NULL;
			lmtpd_session_reply(s, "555 5.5.4 unsupported parameter %.64s", p->name);
			return -1;
		}
	}
	return 0;
}

/* session_mail - MAIL FROM */
static void session_mail(struct lmtpd_session *s, const struct lmtpd_settings *set,
			 const struct lmtpd_cmd *c)
{
	char *auth;

	if (!s->lhlo) {
		lmtpd_session_reply(s, "503 5.5.1 send LHLO first");
		return;
	}
	if (s->have_mail) {
		lmtpd_session_reply(s, "503 5.5.1 nested MAIL command");
		return;
	}
	if (session_mail_params(s, set, c, &auth) < 0)
		return;
	s->sender = xstrdup(c->path);
	s->auth_user = auth && *auth ? auth : NULL;
	if (s->auth_user == NULL)
		free(auth);
	s->have_mail = 1;
	lmtpd_session_reply(s, "250 2.1.0 Ok");
}

/* session_rcpt_marker - is this recipient the sent-copy route marker?
 * 1 yes, 0 no, -1 refused (replied) */
static int session_rcpt_marker(struct lmtpd_session *s, const struct lmtpd_settings *set,
			       const struct lmtpd_cmd *c)
{
	size_t i;
	int marker = 0;

	for (i = 0; i < c->nparams; i++) {
		if (strcasecmp(c->params[i].name, "X-POSTROOM-SENT") != 0) {
			lmtpd_session_reply(s, "555 5.5.4 unsupported parameter %.64s", c->params[i].name);
			return -1;
		}
		if (!s->trusted) {
			lmtpd_session_reply(s, "555 5.5.4 X-POSTROOM-SENT is not accepted from this client");
			return -1;
		}
		marker = 1;
	}
	if (set->sent_recipient && strcasecmp(c->path, set->sent_recipient) == 0)
		marker = 1;
	return marker;
}

/* session_rcpt - RCPT TO */
static void session_rcpt(struct lmtpd_session *s, const struct lmtpd_settings *set,
			 const struct lmtpd_cmd *c)
{
	struct mailbox mb;
	const char *perr;
	char *err = NULL;
	int marker, rc;

	if (!s->have_mail) {
		lmtpd_session_reply(s, "503 5.5.1 need MAIL before RCPT");
		return;
	}
	if (s->nrcpts == LMTPD_RCPTS_MAX) {
		lmtpd_session_reply(s, "452 4.5.3 too many recipients");
		return;
	}
	if (addr_parse(c->path, strlen(c->path), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb, &perr) < 0) {
		lmtpd_session_reply(s, "501 5.1.3 bad recipient address syntax: %s", perr);
		return;
	}
	addr_free(&mb);
	if ((marker = session_rcpt_marker(s, set, c)) < 0)
		return;
	rc = marker ? 0 : lmtpd_rcpt_lookup(s, set, c->path, &err);
	if (rc < 0) {
		log_warn("%s: recipient <%s> deferred: %s", s->id, c->path, err);
		free(err);
		lmtpd_session_reply(s, "451 4.3.0 <%.256s>: mail store unavailable, try again later", c->path);
		return;
	}
	if (rc == 1) {
		log_info("%s: recipient <%s> rejected: unknown", s->id, c->path);
		lmtpd_session_reply(s, "550 5.1.1 <%.256s>: recipient address unknown", c->path);
		return;
	}
	s->rcpt_sent[s->nrcpts] = marker;
	s->rcpts[s->nrcpts++] = xstrdup(c->path);
	lmtpd_session_reply(s, "250 2.1.5 Ok");
}

/* session_xforward - Postfix's XFORWARD: client address, queue id */
static void session_xforward(struct lmtpd_session *s, const struct lmtpd_cmd *c)
{
	struct lmtpd_cmd attrs;
	const char *err;
	char *copy;
	size_t i;

	if (!s->trusted) {
		lmtpd_session_reply(s, "550 5.7.0 XFORWARD is not accepted from this client");
		return;
	}
	if (s->have_mail) {
		lmtpd_session_reply(s, "503 5.5.1 XFORWARD inside a transaction");
		return;
	}
	copy = xasprintf("MAIL FROM:<> %s", c->arg);
	if (c->arg[0] == '\0' || lmtpd_cmd_parse(copy, &attrs, &err) < 0) {
		free(copy);
		lmtpd_session_reply(s, "501 5.5.4 syntax: XFORWARD attribute=value...");
		return;
	}
	for (i = 0; i < attrs.nparams; i++) {
		if (attrs.params[i].value == NULL)
			continue;
		if (strcasecmp(attrs.params[i].name, "ADDR") == 0) {
			free(s->xf_addr);
			s->xf_addr = lmtpd_xforward_value(attrs.params[i].value);
		} else if (strcasecmp(attrs.params[i].name, "IDENT") == 0) {
			free(s->xf_ident);
			s->xf_ident = lmtpd_xforward_value(attrs.params[i].value);
		}
	}
	free(copy);
	lmtpd_session_reply(s, "250 2.0.0 Ok");
}

/* session_data - DATA: 354, the message, the replies; -1 to close */
static int session_data(struct lmtpd_session *s)
{
	int rc;

	if (!s->have_mail) {
		lmtpd_session_reply(s, "503 5.5.1 need MAIL before DATA");
		return 0;
	}
	if (s->nrcpts == 0) {
		lmtpd_session_reply(s, "554 5.5.1 no valid recipients");
		return 0;
	}
	lmtpd_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	rc = lmtpd_data(s);
	session_reset(s);
	return rc;
}

/* session_command - one command line; -1 to close the connection */
static int session_command(struct lmtpd_session *s, char *line)
{
	struct lmtpd_settings *set = lmtpd_settings_get();
	struct lmtpd_cmd c;
	const char *err;
	int rc = 0;

	if (lmtpd_cmd_parse(line, &c, &err) < 0) {
		lmtpd_session_reply(s, "501 %s", err);
		lmtpd_settings_put(&set);
		return 0;
	}
	switch (c.verb) {
	case LMTPD_LHLO: session_lhlo(s, set); break;
	case LMTPD_HELO: lmtpd_session_reply(s, "500 5.5.1 this is LMTP: use LHLO"); break;
	case LMTPD_MAIL:
		if (s->srv->stopping) {
			lmtpd_session_reply(s, "421 4.3.2 %s shutting down", s->srv->hostname);
			rc = -1;
		} else {
			session_mail(s, set, &c);
		}
		break;
	case LMTPD_RCPT: session_rcpt(s, set, &c); break;
	case LMTPD_DATA: rc = session_data(s); break;
	case LMTPD_RSET: session_reset(s); lmtpd_session_reply(s, "250 2.0.0 Ok"); break;
	case LMTPD_NOOP: lmtpd_session_reply(s, "250 2.0.0 Ok"); break;
	case LMTPD_VRFY: lmtpd_session_reply(s, "252 2.5.0 cannot verify, send some mail"); break;
	case LMTPD_XFORWARD: session_xforward(s, &c); break;
	case LMTPD_QUIT: lmtpd_session_reply(s, "221 2.0.0 Bye"); rc = -1; break;
	case LMTPD_BDAT: lmtpd_session_reply(s, "502 5.5.1 BDAT is not supported"); break;
	default: lmtpd_session_reply(s, "500 5.5.2 command unrecognized"); break;
	}
	lmtpd_settings_put(&set);
	return rc;
}

/* session_serve - the command loop */
static void session_serve(struct lmtpd_session *s)
{
	struct lmtpd_settings *set = lmtpd_settings_get();
	int timeout = set->timeout, rc;
	char *line = NULL;

	lmtpd_settings_put(&set);
	if (s->srv->stopping) {
		lmtpd_session_reply(s, "421 4.3.2 %s shutting down", s->srv->hostname);
		return;
	}
	lmtpd_session_reply(s, "220 %s LMTP %s ready", s->srv->hostname, LMTPD_PROG);
	for (;;) {
		rc = session_line(s, timeout, &line);
		if (rc == -2) {
			lmtpd_session_reply(s, "421 4.3.2 %s shutting down", s->srv->hostname);
			return;
		}
		if (rc == -1) {
			lmtpd_session_reply(s, "500 5.5.2 line too long");
			return;
		}
		if (rc == 0) {
			if (s->have_mail)
				log_info("%s: connection lost or timed out during a transaction", s->id);
			return;
		}
		if (session_command(s, line) < 0)
			return;
	}
}

/* session_linger - after the last reply: half-close, then read what the
 * client still sends (briefly), so that closing with unread input does
 * not reset the connection before the client has read that reply */
static void session_linger(struct lmtpd_session *s)
{
	struct pollfd p = { s->fd, POLLIN, 0 };
	char sink[4096];
	int i;

	if (shutdown(s->fd, SHUT_WR) < 0)
		return;
	for (i = 0; i < 16 && poll(&p, 1, 200) > 0; i++)
		if (recv(s->fd, sink, sizeof(sink), 0) <= 0)
			break;
}

/* session_main - the thread of one connection */
static void *session_main(void *arg)
{
	struct lmtpd_session *s = arg;
	struct lmtpd_server *srv = s->srv;

	session_serve(s);
	if (lmtpd_session_flush(s) == 0)
		session_linger(s);
	session_reset(s);
	close(s->fd);
	buf_free(&s->out);
	free(s);
	pthread_mutex_lock(&srv->lock);
	srv->nsessions--;
	metric_set(srv->m_sessions, srv->nsessions);
	pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

void lmtpd_session_spawn(struct lmtpd_server *srv, int fd, int trusted, const char *peer)
{
	static unsigned long counter;
	struct lmtpd_session *s;
	pthread_attr_t attr;
	pthread_t t;
	int full;

	pthread_mutex_lock(&srv->lock);
	full = srv->nsessions >= srv->max_sessions;
	if (!full) {
		srv->nsessions++;
		metric_set(srv->m_sessions, srv->nsessions);
	}
	counter++;
	pthread_mutex_unlock(&srv->lock);
	if (full) {
		static const char msg[] = "421 4.3.2 too many sessions, try again later\r\n";

		log_warn("lmtp: too many sessions (%d): refusing %s", srv->max_sessions, peer);
		if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			(void)0;
		close(fd);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->fd = fd;
	s->trusted = trusted;
	snprintf(s->id, sizeof(s->id), "lmtp%lu", counter);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* the main thread's 8 MiB: GMime's parsers recurse (a header of
	 * thousands of encoded words goes ~2,500 frames deep); a smaller
	 * stack crashed the whole daemon on a corpus message that pipe mode
	 * stores. Address space only, until touched. */
	pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);
	if (pthread_create(&t, &attr, session_main, s) != 0) {
		log_error("lmtp: cannot start a session thread for %s", peer);
		close(fd);
		free(s);
		pthread_mutex_lock(&srv->lock);
		srv->nsessions--;
		pthread_cond_broadcast(&srv->idle);
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_attr_destroy(&attr);
}
