/*
 * NAME
 *	lmtpd_session - one LMTP connection: commands and the envelope
 * DESCRIPTION
 *	Each connection is served by a thread of its own, which then waits a
 *	while to serve a next one (session_next); its input and
 *	replies are lmtpd_conn's (a pipelining client, RFC 2920, gets its
 *	replies in one write). The envelope: LHLO, MAIL FROM (SIZE, BODY,
 *	SMTPUTF8, and AUTH= from trusted clients), RCPT TO (recipient
 *	validation at RCPT time on a pool connection: 550 5.1.1, never for
 *	postmaster@ a hosted domain; a bare <Postmaster> taken as
 *	postmaster@rules.postmaster_domain; X-POSTROOM-SENT from trusted
 *	clients), XFORWARD ADDR/IDENT from
 *	trusted clients, then DATA, which the session hands with the
 *	envelope to lmtpd_data. Trusted: the unix socket always, TCP clients
 *	listed in lmtpd.trusted_clients. On SIGTERM a transaction in flight
 *	is finished; a new one is refused with 421 4.3.2.
 * NEVER
 *	accepts AUTH= or the sent-copy marker from an untrusted client;
 *	replies before a pipelined batch is read.
 * CONFIGURATION
 *	lmtpd.timeout, lmtpd.trusted_clients, limits.message_size_max,
 *	rules.recipient_validation, rules.subaddress_delimiters,
 *	rules.sent_recipient, rules.postmaster_domain
 */
#include "lmtpd_session.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "log.h"
#include "metrics.h"
#include "rules.h"
#include "store_mail.h"
#include "xalloc.h"

#include "lmtpd_conf.h"
#include "lmtpd_conn.h"
#include "lmtpd_data.h"
#include "lmtpd_proto.h"

#define SESSION_XFORWARD_ATTRS "NAME ADDR PORT PROTO HELO IDENT SOURCE"

/* One LMTP connection. */
struct lmtpd_session {
	struct lmtpd_server *srv;
	struct lmtpd_conn conn;
	int trusted; /* may use AUTH=, XFORWARD, X-POSTROOM-SENT */
	char id[24]; /* for the log */
	char peer[64];
	int lhlo;
	int have_mail; /* a transaction: MAIL was accepted */
	struct lmtpd_envelope env;
	struct lmtpd_session *next; /* in srv->queue */
};

/* session_rcpt_lookup - RCPT-time validation: 0 known (or validation
 * off), 1 unknown, -1 database trouble (*error_r, caller frees) */
static int session_rcpt_lookup(struct lmtpd_session *s, const struct lmtpd_settings *set,
			       const char *rcpt, char **error_r)
{
	struct db *db;
	int rc = -1, attempt, broken;

	if (!set->dc.recipient_validation)
		return 0;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((db = lmtpd_pool_get(s->srv->pool, error_r)) == NULL)
			return -1;
		rc = store_rcpt_known(db, rcpt, set->dc.subaddress_delims, error_r);
		broken = rc < 0 && PQstatus(db_conn(db)) != CONNECTION_OK;
		lmtpd_pool_put(s->srv->pool, &db);
		if (!broken || attempt == 1)
			break;
		xfree(error_r); /* a connection that died idle: once more on a fresh one */
	}
	return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

/* session_reset - forget the transaction */
static void session_reset(struct lmtpd_session *s)
{
	size_t i;

	for (i = 0; i < s->env.nrcpts; i++)
		xfree(&s->env.rcpts[i]);
	s->env.nrcpts = 0;
	s->env.size = 0;
	s->have_mail = 0;
	xfree(&s->env.sender);
	xfree(&s->env.auth_user);
	xfree(&s->env.xf_addr);
	xfree(&s->env.xf_ident);
}

/* session_lhlo - the greeting reply with our extensions */
static void session_lhlo(struct lmtpd_session *s, const struct lmtpd_settings *set)
{
	session_reset(s);
	s->lhlo = 1;
	lmtpd_conn_reply(&s->conn, "250-%s", s->srv->hostname);
	lmtpd_conn_reply(&s->conn, "250-PIPELINING");
	lmtpd_conn_reply(&s->conn, "250-ENHANCEDSTATUSCODES");
	lmtpd_conn_reply(&s->conn, "250-8BITMIME");
	lmtpd_conn_reply(&s->conn, "250-SMTPUTF8");
	if (s->trusted)
		lmtpd_conn_reply(&s->conn, "250-XFORWARD " SESSION_XFORWARD_ATTRS);
	lmtpd_conn_reply(&s->conn, "250 SIZE %lld", set->dc.size_max);
}

/* session_mail_params - SIZE, BODY, SMTPUTF8, AUTH; 0 or -1 (replied) */
static int session_mail_params(struct lmtpd_session *s, const struct lmtpd_settings *set,
			       const struct lmtpd_cmd *c, char **auth_r)
{
	const struct lmtpd_param *p;
	size_t i;

	*auth_r = NULL;
	s->env.size = 0;
	for (i = 0; i < c->nparams; i++) {
		p = &c->params[i];
		if (strcasecmp(p->name, "SIZE") == 0 && p->value) {
			s->env.size = atoll(p->value);
			if (s->env.size > set->dc.size_max) {
				lmtpd_conn_reply(
					&s->conn,
					"552 5.3.4 message size exceeds the limit of %lld bytes",
					set->dc.size_max);
				return -1;
			}
		} else if (strcasecmp(p->name, "BODY") == 0 && p->value &&
			   (strcasecmp(p->value, "7BIT") == 0 ||
			    strcasecmp(p->value, "8BITMIME") == 0)) {
			continue;
		} else if (strcasecmp(p->name, "SMTPUTF8") == 0 && p->value == NULL) {
			continue;
		} else if (strcasecmp(p->name, "AUTH") == 0 && p->value) {
			free(*auth_r);
			*auth_r = NULL;
			if (s->trusted && strcmp(p->value, "<>") != 0 &&
			    lmtpd_xtext_decode(p->value, auth_r) < 0) {
				lmtpd_conn_reply(&s->conn, "501 5.5.4 malformed AUTH= parameter");
				return -1;
			}
		} else {
			free(*auth_r);
			*auth_r = NULL;
			lmtpd_conn_reply(&s->conn, "555 5.5.4 unsupported parameter %.64s",
					 p->name);
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
		lmtpd_conn_reply(&s->conn, "503 5.5.1 send LHLO first");
		return;
	}
	if (s->have_mail) {
		lmtpd_conn_reply(&s->conn, "503 5.5.1 nested MAIL command");
		return;
	}
	if (session_mail_params(s, set, c, &auth) < 0)
		return;
	s->env.sender = xstrdup(c->path);
	s->env.auth_user = auth && *auth ? auth : NULL;
	if (s->env.auth_user == NULL)
		free(auth);
	s->have_mail = 1;
	lmtpd_conn_reply(&s->conn, "250 2.1.0 Ok");
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
			lmtpd_conn_reply(&s->conn, "555 5.5.4 unsupported parameter %.64s",
					 c->params[i].name);
			return -1;
		}
		if (!s->trusted) {
			lmtpd_conn_reply(
				&s->conn,
				"555 5.5.4 X-POSTROOM-SENT is not accepted from this client");
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
	const char *perr, *path;
	char *err = NULL, *pm;
	int marker, rc;

	if (!s->have_mail) {
		lmtpd_conn_reply(&s->conn, "503 5.5.1 need MAIL before RCPT");
		return;
	}
	if (s->env.nrcpts == LMTPD_RCPTS_MAX) {
		lmtpd_conn_reply(&s->conn, "452 4.5.3 too many recipients");
		return;
	}
	/* RFC 5321 4.5.1: a bare <Postmaster> is rules.postmaster_domain's */
	pm = rules_postmaster_qualify(set->dc.postmaster_domain, c->path);
	path = pm ? pm : c->path;
	if (addr_parse(path, strlen(path), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb, &perr) < 0) {
		lmtpd_conn_reply(&s->conn, "501 5.1.3 bad recipient address syntax: %s", perr);
		free(pm);
		return;
	}
	addr_free(&mb);
	if ((marker = session_rcpt_marker(s, set, c)) < 0) {
		free(pm);
		return;
	}
	rc = marker ? 0 : session_rcpt_lookup(s, set, path, &err);
	if (rc < 0) {
		log_warn("%s: recipient <%s> deferred: %s", s->id, path, err);
		free(err);
		lmtpd_conn_reply(&s->conn,
				 "451 4.3.0 <%.256s>: mail store unavailable, try again later",
				 path);
	} else if (rc == 1) {
		log_info("%s: recipient <%s> rejected: unknown", s->id, path);
		lmtpd_conn_reply(&s->conn, "550 5.1.1 <%.256s>: recipient address unknown", path);
	} else {
		if (pm)
			log_info("%s: recipient <%s> stored for %s", s->id, c->path, pm);
		s->env.rcpt_sent[s->env.nrcpts] = marker;
		s->env.rcpts[s->env.nrcpts++] = xstrdup(path);
		lmtpd_conn_reply(&s->conn, "250 2.1.5 Ok");
	}
	free(pm);
}

/* session_xforward - Postfix's XFORWARD: client address, queue id */
static void session_xforward(struct lmtpd_session *s, const struct lmtpd_cmd *c)
{
	struct lmtpd_cmd attrs;
	const char *err;
	char *copy;
	size_t i;

	if (!s->trusted) {
		lmtpd_conn_reply(&s->conn, "550 5.7.0 XFORWARD is not accepted from this client");
		return;
	}
	if (s->have_mail) {
		lmtpd_conn_reply(&s->conn, "503 5.5.1 XFORWARD inside a transaction");
		return;
	}
	copy = xasprintf("MAIL FROM:<> %s", c->arg);
	if (c->arg[0] == '\0' || lmtpd_cmd_parse(copy, &attrs, &err) < 0) {
		free(copy);
		lmtpd_conn_reply(&s->conn, "501 5.5.4 syntax: XFORWARD attribute=value...");
		return;
	}
	for (i = 0; i < attrs.nparams; i++) {
		if (attrs.params[i].value == NULL)
			continue;
		if (strcasecmp(attrs.params[i].name, "ADDR") == 0) {
			free(s->env.xf_addr);
			s->env.xf_addr = lmtpd_xforward_value(attrs.params[i].value);
		} else if (strcasecmp(attrs.params[i].name, "IDENT") == 0) {
			free(s->env.xf_ident);
			s->env.xf_ident = lmtpd_xforward_value(attrs.params[i].value);
		}
	}
	free(copy);
	lmtpd_conn_reply(&s->conn, "250 2.0.0 Ok");
}

/* session_data - DATA: 354, the message, the replies; -1 to close */
static int session_data(struct lmtpd_session *s)
{
	int rc;

	if (!s->have_mail) {
		lmtpd_conn_reply(&s->conn, "503 5.5.1 need MAIL before DATA");
		return 0;
	}
	if (s->env.nrcpts == 0) {
		lmtpd_conn_reply(&s->conn, "554 5.5.1 no valid recipients");
		return 0;
	}
	rc = lmtpd_data(s->srv, &s->conn, s->id, &s->env);
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
		lmtpd_conn_reply(&s->conn, "501 %s", err);
		lmtpd_settings_put(&set);
		return 0;
	}
	switch (c.verb) {
	case LMTPD_LHLO: session_lhlo(s, set); break;
	case LMTPD_HELO: lmtpd_conn_reply(&s->conn, "500 5.5.1 this is LMTP: use LHLO"); break;
	case LMTPD_MAIL:
		if (s->srv->stopping) {
			lmtpd_conn_reply(&s->conn, "421 4.3.2 %s shutting down", s->srv->hostname);
			rc = -1;
		} else {
			session_mail(s, set, &c);
		}
		break;
	case LMTPD_RCPT: session_rcpt(s, set, &c); break;
	case LMTPD_DATA: rc = session_data(s); break;
	case LMTPD_RSET:
		session_reset(s);
		lmtpd_conn_reply(&s->conn, "250 2.0.0 Ok");
		break;
	case LMTPD_NOOP: lmtpd_conn_reply(&s->conn, "250 2.0.0 Ok"); break;
	case LMTPD_VRFY:
		lmtpd_conn_reply(&s->conn, "252 2.5.0 cannot verify, send some mail");
		break;
	case LMTPD_XFORWARD: session_xforward(s, &c); break;
	case LMTPD_QUIT:
		lmtpd_conn_reply(&s->conn, "221 2.0.0 Bye");
		rc = -1;
		break;
	case LMTPD_BDAT: lmtpd_conn_reply(&s->conn, "502 5.5.1 BDAT is not supported"); break;
	default: lmtpd_conn_reply(&s->conn, "500 5.5.2 command unrecognized"); break;
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
		lmtpd_conn_reply(&s->conn, "421 4.3.2 %s shutting down", s->srv->hostname);
		return;
	}
	lmtpd_conn_reply(&s->conn, "220 %s LMTP %s ready", s->srv->hostname, LMTPD_PROG);
	for (;;) {
		rc = lmtpd_conn_line(&s->conn, timeout, !s->have_mail, &line);
		if (rc == -2) {
			lmtpd_conn_reply(&s->conn, "421 4.3.2 %s shutting down", s->srv->hostname);
			return;
		}
		if (rc == -1) {
			lmtpd_conn_reply(&s->conn, "500 5.5.2 line too long");
			return;
		}
		if (rc == 0) {
			if (s->have_mail)
				log_info("%s: connection lost or timed out during a transaction",
					 s->id);
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
	struct pollfd p = { s->conn.fd, POLLIN, 0 };
	char sink[4096];
	int i;

	if (shutdown(s->conn.fd, SHUT_WR) < 0)
		return;
	for (i = 0; i < 16 && poll(&p, 1, 200) > 0; i++)
		if (recv(s->conn.fd, sink, sizeof(sink), 0) <= 0)
			break;
}

/* A session thread outlives its connection: it waits up to
 * SESSION_IDLE_SECONDS for the next one, so that a client connecting once
 * a message (postroom-deliver in client mode: one connection a message)
 * does not pay a thread's start and end, and OpenSSL's and GLib's
 * per-thread set-up, each time (measured: 0.5-0.7 ms of lmtpd's CPU a
 * connection on 2 vCPUs, doc/BENCHMARKS.md). At most SESSION_IDLE_MAX
 * wait; the others end as before. */
#define SESSION_IDLE_SECONDS 30
#define SESSION_IDLE_MAX 32

/* session_end - the bookkeeping of a session that is over */
static void session_end(struct lmtpd_session *s)
{
	struct lmtpd_server *srv = s->srv;

	if (lmtpd_conn_flush(&s->conn) == 0)
		session_linger(s);
	session_reset(s);
	close(s->conn.fd);
	buf_free(&s->conn.out);
	free(s);
	pthread_mutex_lock(&srv->lock);
	srv->nsessions--;
	metric_set(srv->m_sessions, srv->nsessions);
	pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
}

/* session_next - wait for the next session handed to this thread; NULL:
 * none came in time, too many wait already, or the daemon stops (then
 * the thread is listed for lmtpd_session_reap) */
static struct lmtpd_session *session_next(struct lmtpd_server *srv)
{
	struct lmtpd_session *s = NULL;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SESSION_IDLE_SECONDS;
	pthread_mutex_lock(&srv->lock);
	if (srv->nwaiting < SESSION_IDLE_MAX && !srv->stopping) {
		srv->nwaiting++;
		while (srv->queue == NULL && !srv->stopping)
			if (pthread_cond_timedwait(&srv->work, &srv->lock, &until) == ETIMEDOUT)
				break;
		srv->nwaiting--;
	}
	/* a session handed over is served, whatever else happened */
	if ((s = srv->queue) != NULL)
		srv->queue = s->next;
	if (s == NULL) {
		if (srv->nended == srv->ended_cap) {
			srv->ended_cap = srv->ended_cap ? 2 * srv->ended_cap : 16;
			srv->ended = xrealloc(srv->ended, srv->ended_cap * sizeof(*srv->ended));
		}
		srv->ended[srv->nended++] = pthread_self();
		srv->nthreads--;
		pthread_cond_broadcast(&srv->idle);
	}
	pthread_mutex_unlock(&srv->lock);
	return s;
}

/* session_main - a session thread: its connection, then the next ones
 * handed to it */
static void *session_main(void *arg)
{
	struct lmtpd_session *s = arg;
	struct lmtpd_server *srv = s->srv;

	do {
		session_serve(s);
		session_end(s);
	} while ((s = session_next(srv)) != NULL);
	return NULL;
}

/* Session threads are joined, not detached: a detached thread could still
 * be running its thread-local destructors (OpenSSL's per-thread state)
 * when the daemon exits after the last session said it ended, which
 * LeakSanitizer saw under load (tests/integration/lmtpd-ops.sh). */
void lmtpd_session_reap(struct lmtpd_server *srv)
{
	pthread_t *t;
	size_t n, i;

	pthread_mutex_lock(&srv->lock);
	t = srv->ended;
	n = srv->nended;
	srv->ended = NULL;
	srv->nended = srv->ended_cap = 0;
	pthread_mutex_unlock(&srv->lock);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	free(t);
}

/* lmtpd_session_stop - wake the threads waiting for a session (the
 * daemon stops: srv->stopping is set); when no session is open, wait
 * until every session thread has listed itself as ended (one whose
 * session has just ended may not wait yet); join them all */
void lmtpd_session_stop(struct lmtpd_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	pthread_cond_broadcast(&srv->work);
	while (srv->nsessions == 0 && srv->nthreads > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	lmtpd_session_reap(srv);
}

/* session_hand_over - give s to a waiting thread: 1 done, 0 none waits
 * for one (each waiting thread takes one session) */
static int session_hand_over(struct lmtpd_server *srv, struct lmtpd_session *s)
{
	struct lmtpd_session **tail;
	int queued = 0, done = 0;

	pthread_mutex_lock(&srv->lock);
	for (tail = &srv->queue; *tail != NULL; tail = &(*tail)->next)
		queued++;
	if (srv->nwaiting > queued) {
		*tail = s;
		pthread_cond_signal(&srv->work);
		done = 1;
	}
	pthread_mutex_unlock(&srv->lock);
	return done;
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
	s->conn.fd = fd;
	s->conn.stopping = &srv->stopping;
	s->trusted = trusted;
	snprintf(s->id, sizeof(s->id), "lmtp%lu", counter);
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	if (session_hand_over(srv, s))
		return;
	lmtpd_session_reap(srv);
	pthread_attr_init(&attr);
	/* the main thread's 8 MiB: GMime's parsers recurse (a header of
	 * thousands of encoded words goes ~2,500 frames deep); a smaller
	 * stack crashed the whole daemon on a corpus message that pipe mode
	 * stores. Address space only, until touched. */
	pthread_attr_setstacksize(&attr, 8 * 1024 * 1024);
	pthread_mutex_lock(&srv->lock);
	srv->nthreads++;
	pthread_mutex_unlock(&srv->lock);
	if (pthread_create(&t, &attr, session_main, s) != 0) {
		log_error("lmtp: cannot start a session thread for %s", peer);
		close(fd);
		free(s);
		pthread_mutex_lock(&srv->lock);
		srv->nthreads--;
		srv->nsessions--;
		pthread_cond_broadcast(&srv->idle);
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_attr_destroy(&attr);
}
