/*
 * NAME
 *	server - policyd's connections: one thread each, requests in order
 * DESCRIPTION
 *	Postfix keeps a connection per smtpd process and sends request after
 *	request on it; Exim's ${readsocket} sends one request, half-closes
 *	its side and reads until end of file. Both are served by the same
 *	loop: answer every complete request in the buffer, then read more;
 *	at end of file close (after answering what was complete). A request
 *	that can never be valid (binary data, a line over policyd.line_max,
 *	no empty line within policyd.request_max), a request without
 *	request=, a partial request at end of file or after
 *	policyd.request_timeout is logged and the connection closed without
 *	a reply (Postfix then logs a policy service problem and answers per
 *	its own default; Exim uses the readsocket failure string).
 * NEVER
 *	lets one client's malformed input affect another connection; reads
 *	a request into unbounded memory.
 */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "policyd.h"
#include "server.h"
#include "xalloc.h"

struct server_conn {
	int fd;
	unsigned long id;
	char peer[64];
};

static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t srv_cond = PTHREAD_COND_INITIALIZER;
static int srv_active;
static int srv_fds[65536];
static int srv_nfds;
static int srv_stopping;
static unsigned long srv_next_id;

/* server_write_all - send the whole reply; -1 when the peer is gone */
static int server_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* server_answer - answer one framed request; -1 closes the connection */
static int server_answer(struct server_conn *c, struct policyd_conn_ctx *cc,
			 const struct policyd_config *cfg, const char *data, size_t len,
			 struct buf *action, struct buf *reply)
{
	struct policy_request rq;
	const char *err = NULL;

	if (policy_request_parse(data, len, &rq, &err) < 0) {
		log_warn("conn %lu from %s: malformed request (%s): closing", c->id, c->peer, err);
		policyd_metric_malformed();
		return -1;
	}
	if (strcmp(rq.request, "smtpd_access_policy") != 0) {
		log_warn("conn %lu from %s: unknown request type '%.64s': closing", c->id, c->peer,
			 rq.request);
		policyd_metric_malformed();
		policy_request_free(&rq);
		return -1;
	}
	policyd_decide(cfg, cc, &rq, action);
	log_debug("conn %lu: %s %s -> %s", c->id, rq.protocol_state ? rq.protocol_state : "-",
		  rq.recipient ? rq.recipient : "", buf_cstr(action));
	policyd_metric_request(rq.protocol_state, buf_cstr(action));
	policy_request_free(&rq);
	buf_truncate(reply, 0);
	buf_printf(reply, "action=%s\n\n", buf_cstr(action));
	return server_write_all(c->fd, reply->data, reply->len);
}

/* server_drain - answer every complete request at the start of in;
 * returns the bytes consumed, or -1 to close */
static long server_drain(struct server_conn *c, struct policyd_conn_ctx *cc, struct buf *in,
			 struct buf *action, struct buf *reply)
{
	size_t off = 0;

	for (;;) {
		struct policyd_config *cfg = policyd_config_get();
		long n = policy_frame(in->data + off, in->len - off, cfg->line_max,
				      cfg->request_max);
		int rc = 0;

		if (n < 0) {
			log_warn("conn %lu from %s: %s: closing", c->id, c->peer,
				 policy_frame_error(n));
			policyd_metric_malformed();
			rc = -1;
		} else if (n > 0)
			rc = server_answer(c, cc, cfg, in->data + off, (size_t)n, action, reply);
		policyd_config_put(cfg);
		if (rc < 0)
			return -1;
		if (n == 0)
			return (long)off;
		off += (size_t)n;
	}
}

/* server_set_timeout - receive timeout of the socket (one setsockopt
 * when it changes, instead of a poll() per request) */
static void server_set_timeout(int fd, int seconds, int *current)
{
	struct timeval tv = { seconds, 0 };

	if (*current == seconds)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*current = seconds;
}

/* server_conn_loop - read, answer, until end of file or trouble */
static void server_conn_loop(struct server_conn *c, struct policyd_conn_ctx *cc)
{
	struct buf in = BUF_INIT, action = BUF_INIT, reply = BUF_INIT;
	char rbuf[16384];
	int current = -1;

	for (;;) {
		struct policyd_config *cfg = policyd_config_get();
		int timeout = in.len > 0 ? cfg->request_timeout : cfg->idle_timeout;
		ssize_t n;
		long used;

		policyd_config_put(cfg);
		server_set_timeout(c->fd, timeout, &current);
		n = recv(c->fd, rbuf, sizeof(rbuf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (in.len > 0)
				log_warn("conn %lu from %s: request not finished in %d s: closing",
					 c->id, c->peer, timeout);
			break;
		}
		if (n <= 0) {
			if (in.len > 0) {
				log_warn(
					"conn %lu from %s: incomplete request at end of input: closing",
					c->id, c->peer);
				policyd_metric_malformed();
			}
			break;
		}
		buf_append(&in, rbuf, (size_t)n);
		used = server_drain(c, cc, &in, &action, &reply);
		if (used < 0)
			break;
		memmove(in.data, in.data + used, in.len - (size_t)used);
		buf_truncate(&in, in.len - (size_t)used);
	}
	buf_free(&in);
	buf_free(&action);
	buf_free(&reply);
}

/* server_register - track an open connection (shutdown wakes it) */
static void server_register(int fd, int add)
{
	int i;

	pthread_mutex_lock(&srv_lock);
	if (add) {
		srv_fds[srv_nfds++] = fd;
		srv_active++;
	} else {
		for (i = 0; i < srv_nfds; i++)
			if (srv_fds[i] == fd) {
				srv_fds[i] = srv_fds[--srv_nfds];
				break;
			}
		srv_active--;
		pthread_cond_broadcast(&srv_cond);
	}
	pthread_mutex_unlock(&srv_lock);
}

static void *server_conn_main(void *arg)
{
	struct server_conn *c = arg;
	struct policyd_conn_ctx cc;

	memset(&cc, 0, sizeof(cc));
	cc.id = c->id;
	policyd_metric_connections(1);
	server_conn_loop(c, &cc);
	spam_conn_free(&cc.spam);
	close(c->fd);
	server_register(c->fd, 0);
	policyd_metric_connections(-1);
	free(c);
	return NULL;
}

/* server_peer_name - "unix" or "ADDR:PORT" of an accepted socket */
static void server_peer_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[48];

	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
		const void *a =
			ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
		unsigned port = ntohs(ss->ss_family == AF_INET
					      ? ((const struct sockaddr_in *)ss)->sin_port
					      : ((const struct sockaddr_in6 *)ss)->sin6_port);

		inet_ntop(ss->ss_family, a, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, port);
	} else
		snprintf(out, len, "unix");
}

int server_accept(int lfd, int max_connections)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct server_conn *c;
	pthread_attr_t attr;
	pthread_t t;
	int fd;

	pthread_mutex_lock(&srv_lock);
	if (srv_active >= max_connections && !srv_stopping) {
		/* full: wait a little, then let the caller see its signals */
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&srv_cond, &srv_lock, &until);
		if (srv_active >= max_connections) {
			pthread_mutex_unlock(&srv_lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&srv_lock);
	fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ? 0 : -1;
	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	server_peer_name(&ss, c->peer, sizeof(c->peer));
	pthread_mutex_lock(&srv_lock);
	c->id = ++srv_next_id;
	pthread_mutex_unlock(&srv_lock);
	server_register(fd, 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	if (pthread_create(&t, &attr, server_conn_main, c) != 0) {
		log_error("cannot start a connection thread: %s", strerror(errno));
		close(fd);
		server_register(fd, 0);
		free(c);
	}
	pthread_attr_destroy(&attr);
	return 0;
}

void server_stop_all(void)
{
	int i;

	pthread_mutex_lock(&srv_lock);
	srv_stopping = 1;
	for (i = 0; i < srv_nfds; i++)
		shutdown(srv_fds[i], SHUT_RDWR);
	pthread_cond_broadcast(&srv_cond);
	while (srv_active > 0)
		pthread_cond_wait(&srv_cond, &srv_lock);
	pthread_mutex_unlock(&srv_lock);
}
