/*
 * NAME
 *	server - connections of postroom-authd: line framing and requests
 * DESCRIPTION
 *	Greets each client at once (VERSION, every MECH, then SPID, CUID,
 *	COOKIE, DONE), then reads LF-terminated lines: VERSION (major 1, or
 *	the connection is closed, as Dovecot does), CPID, AUTH, CONT,
 *	CANCEL. Up to 128 requests may be open on one connection (Postfix
 *	keeps one connection per smtpd and numbers requests; more get FAIL
 *	code=temp_fail); Exim connects once per attempt. The decision
 *	pipeline for credentials: rate limiter on failures (refusal answered
 *	at once), cache of verified results (answered at once), a place on
 *	the job of an identical attempt being verified (one bcrypt for a
 *	burst of identical attempts, e.g. after a purge), else -- once the
 *	rate limiter, counting the verifications in flight, and the queue
 *	admit it -- a job for the worker pool; the answer comes back through
 *	authd_server_jobs_done. The queue is as long as the workers can
 *	answer within authd.queue_time_max at the measured bcrypt time
 *	(capped by authd.queue_max), and one client IP holds at most a
 *	quarter of it.
 *	Broken requests get a FAIL with their id; a line over 16384 bytes is
 *	refused (its request failed, the rest of the line discarded) and the
 *	connection lives on.
 * NEVER
 *	delays a reply on purpose; logs a password or key; keeps one in its
 *	buffers once the line is handled (input is wiped); blocks on a
 *	socket (all sockets are non-blocking, output is buffered).
 */
#include "authd.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "xalloc.h"

/* An AUTH in progress: waiting for a CONT, or for the worker pool. */
struct authd_request {
	struct authd_request *next;
	unsigned int id;
	enum authd_mech mech;
	int step; /* LOGIN: 1 wants user, 2 wants password */
	char *login_user;
	char rip[64];
	struct authd_ticket *ticket; /* non-NULL while verifying */
};

struct authd_conn {
	int kind; /* AUTHD_EV_CONN, first */
	int fd;
	unsigned long cuid;
	struct buf in, out;
	int version_ok, discarding, dead, refs;
	unsigned int events; /* registered epoll mask */
	unsigned int nreqs;
	struct authd_request *reqs;
	struct authd_conn *prev, *next;
};

struct authd_metrics {
	struct metric *attempts, *ok_cache, *ok_verify, *fail_invalid, *fail_scope, *fail_expired,
		*fail_ip, *fail_pair, *fail_account, *fail_temp, *fail_busy, *fail_protocol,
		*cache_hits, *cache_misses, *cache_entries, *lockouts, *bcrypts, *queue_depth,
		*queue_limit, *bcrypt_seconds, *connections, *db_up, *verify_seconds, *coalesced;
};

static const double authd_verify_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
					       0.25,  0.5,   1,    2.5,   5,    10 };

double authd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void authd_server_metrics_init(struct authd_server *s)
{
	static struct authd_metrics m;
	static const char fh[] = "Authentication attempts that failed, by reason";
	static const char oh[] = "Successful authentications, by where the answer came from";

	m.attempts = metrics_counter("postroom_authd_auth_attempts_total",
				     "Authentication attempts (credentials received)", NULL);
	m.ok_cache = metrics_counter("postroom_authd_auth_success_total", oh, "source=\"cache\"");
	m.ok_verify = metrics_counter("postroom_authd_auth_success_total", oh, "source=\"verify\"");
	m.fail_invalid =
		metrics_counter("postroom_authd_auth_failures_total", fh, "reason=\"invalid\"");
	m.fail_scope =
		metrics_counter("postroom_authd_auth_failures_total", fh, "reason=\"scope\"");
	m.fail_expired =
		metrics_counter("postroom_authd_auth_failures_total", fh, "reason=\"expired\"");
	m.fail_ip = metrics_counter("postroom_authd_auth_failures_total", fh,
				    "reason=\"throttled_ip\"");
	m.fail_pair = metrics_counter("postroom_authd_auth_failures_total", fh,
				      "reason=\"throttled_ip_account\"");
	m.fail_account = metrics_counter("postroom_authd_auth_failures_total", fh,
					 "reason=\"throttled_account\"");
	m.fail_temp =
		metrics_counter("postroom_authd_auth_failures_total", fh, "reason=\"tempfail\"");
	m.fail_busy = metrics_counter("postroom_authd_auth_failures_total", fh, "reason=\"busy\"");
	m.fail_protocol =
		metrics_counter("postroom_authd_auth_failures_total", fh, "reason=\"protocol\"");
	m.cache_hits = metrics_counter("postroom_authd_cache_hits_total",
				       "Attempts answered from the verified-result cache", NULL);
	m.cache_misses =
		metrics_counter("postroom_authd_cache_misses_total",
				"Attempts not in the cache (sent to a bcrypt worker)", NULL);
	m.cache_entries = metrics_gauge("postroom_authd_cache_entries",
					"Entries in the verified-result cache", NULL);
	m.lockouts = metrics_counter("postroom_authd_lockouts_total",
				     "Client IPs locked out after too many failures", NULL);
	m.coalesced = metrics_counter(
		"postroom_authd_coalesced_total",
		"Uncached attempts that waited for an identical one being verified (no bcrypt)",
		NULL);
	m.bcrypts = metrics_counter("postroom_authd_bcrypt_total",
				    "bcrypt verifications run (dummy ones included)", NULL);
	m.queue_depth = metrics_gauge("postroom_authd_bcrypt_queue_depth",
				      "Verifications waiting for or running on a worker", NULL);
	m.queue_limit = metrics_gauge(
		"postroom_authd_bcrypt_queue_limit",
		"Verifications admitted at most (workers x (bound / bcrypt time - 1))", NULL);
	m.bcrypt_seconds = metrics_gauge("postroom_authd_bcrypt_seconds",
					 "Moving average of one verification's wall time", NULL);
	m.connections =
		metrics_gauge("postroom_authd_connections", "Open client connections", NULL);
	m.db_up = metrics_gauge("postroom_authd_db_up", "1 when the database answers", NULL);
	m.verify_seconds = metrics_histogram(
		"postroom_authd_verify_seconds",
		"Time from request to answer of uncached verifications", NULL, authd_verify_buckets,
		sizeof(authd_verify_buckets) / sizeof(authd_verify_buckets[0]));
	metric_set(m.db_up, 1);
	s->m = &m;
}

/* authd_sanitize - a client-supplied string fit for a log line */
static const char *authd_sanitize(const char *in, char *out, size_t size)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < size && i < 80; i++)
		out[i] = isprint((unsigned char)in[i]) ? in[i] : '?';
	out[i] = '\0';
	return out;
}

/* ---- output --------------------------------------------------------------- */

static void authd_conn_close(struct authd_server *s, struct authd_conn *c);

static void authd_conn_set_events(struct authd_server *s, struct authd_conn *c, unsigned int ev)
{
	struct epoll_event e;

	if (c->dead || ev == c->events)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.ptr = c;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
		log_error("authd: epoll_ctl: %s", strerror(errno));
	c->events = ev;
}

/* authd_conn_flush - write what we can; 0 ok, -1 when the peer is gone */
static int authd_conn_flush(struct authd_server *s, struct authd_conn *c)
{
	size_t done = 0;

	while (done < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + done, c->out.len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	if (done > 0) {
		memmove(c->out.data, c->out.data + done, c->out.len - done);
		buf_truncate(&c->out, c->out.len - done);
	}
	if (c->out.len > AUTHD_OUT_MAX) {
		log_warn("authd: connection %lu does not read its replies; closing", c->cuid);
		return -1;
	}
	authd_conn_set_events(s, c, EPOLLIN | (c->out.len ? EPOLLOUT : 0u));
	return 0;
}

static void authd_reply_ok(struct authd_conn *c, unsigned int id, const char *user)
{
	buf_printf(&c->out, "OK\t%u\tuser=", id);
	authd_proto_escape(&c->out, user);
	buf_append_char(&c->out, '\n');
}

static void authd_reply_fail(struct authd_conn *c, unsigned int id, const char *code,
			     const char *reason)
{
	buf_printf(&c->out, "FAIL\t%u", id);
	if (code)
		buf_printf(&c->out, "\tcode=%s", code);
	buf_append_str(&c->out, "\treason=");
	authd_proto_escape(&c->out, reason);
	buf_append_char(&c->out, '\n');
}

static void authd_reply_cont(struct authd_conn *c, unsigned int id, const char *b64)
{
	buf_printf(&c->out, "CONT\t%u\t%s\n", id, b64);
}

/* ---- requests ------------------------------------------------------------- */

static struct authd_request *authd_req_find(struct authd_conn *c, unsigned int id)
{
	struct authd_request *r;

	for (r = c->reqs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

/* authd_req_free - unlink and free r; a verification under way for it
 * is abandoned (its answer dropped) */
static void authd_req_free(struct authd_conn *c, struct authd_request *r)
{
	struct authd_request **pp = &c->reqs;

	while (*pp && *pp != r)
		pp = &(*pp)->next;
	if (*pp)
		*pp = r->next;
	if (r->ticket)
		r->ticket->abandoned = 1;
	if (r->login_user) {
		crypto_wipe(r->login_user, strlen(r->login_user));
		free(r->login_user);
	}
	free(r);
	c->nreqs--;
}

static void authd_fail_protocol(struct authd_server *s, struct authd_conn *c,
				struct authd_request *r, unsigned int id, const char *code,
				const char *reason)
{
	metric_inc(s->m->fail_protocol);
	log_info("authd: connection %lu request %u failed: %s", c->cuid, id, reason);
	authd_reply_fail(c, id, code, reason);
	if (r)
		authd_req_free(c, r);
}

/* authd_account_of - the canonical address of user, or NULL; *account_r
 * is what the rate limiter keys on (caller frees both) */
static char *authd_account_of(const char *user, char **account_r)
{
	const char *err;
	char *canon = addr_canonicalize(user, &err);
	size_t i;

	if (canon) {
		*account_r = xstrdup(canon);
		return canon;
	}
	*account_r = xstrndup(user, 320);
	for (i = 0; (*account_r)[i]; i++)
		(*account_r)[i] = (char)tolower((unsigned char)(*account_r)[i]);
	return NULL;
}

/* authd_conn_unref - drop a job's reference; free a closed connection */
static void authd_conn_unref(struct authd_conn *c)
{
	if (--c->refs > 0 || !c->dead)
		return;
	if (c->in.data)
		crypto_wipe(c->in.data, c->in.cap);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

static void authd_job_free(struct authd_job *j)
{
	if (j->key) {
		crypto_wipe(j->key, strlen(j->key));
		free(j->key);
	}
	free(j->address);
	free(j->result.error);
	free(j);
}

/* An entry of the in-flight table: the job verifying a cache key. */
struct authd_inflight {
	struct lru_entry lru;
	struct authd_job *job;
};

static void authd_inflight_free(struct lru_entry *e) { free(e); }

void authd_server_init(struct authd_server *s)
{
	double start = authd_now();

	/* at most one entry per queued job: never full, never evicts */
	lru_init(&s->inflight, 1u << 20, authd_inflight_free);
	/* the first estimate of the bcrypt time, until verifications tell */
	(void)apikey_verify("pr_0000000000000000000000000000000000000000", s->dummy_hash);
	s->bcrypt_seconds = authd_now() - start;
}

/* authd_queue_limit - verifications admitted at most: the last one
 * admitted waits n / workers bcrypt times and then runs one, all within
 * authd.queue_time_max; at least one per worker, at most authd.queue_max */
static size_t authd_queue_limit(struct authd_server *s)
{
	double workers = (double)authd_pool_threads(s->pool);
	double t = s->bcrypt_seconds > 1e-6 ? s->bcrypt_seconds : 1e-6;
	double n = workers * (s->set.queue_time_max / t - 1);

	if (n < workers)
		n = workers;
	return n >= (double)s->set.queue_max ? s->set.queue_max : (size_t)n;
}

/* authd_queue_gauges - the queue's depth, limit and bcrypt time */
static void authd_queue_gauges(struct authd_server *s)
{
	metric_set(s->m->queue_depth, (double)authd_pool_queued(s->pool));
	metric_set(s->m->queue_limit, (double)authd_queue_limit(s));
	metric_set(s->m->bcrypt_seconds, s->bcrypt_seconds);
}

void authd_server_deinit(struct authd_server *s) { lru_deinit(&s->inflight); }

/* authd_ticket_new - a ticket for request r (takes account) */
static struct authd_ticket *authd_ticket_new(struct authd_conn *c, struct authd_request *r,
					     char *account, double now)
{
	struct authd_ticket *t = xcalloc(1, sizeof(*t));

	t->conn = c;
	c->refs++;
	t->id = r->id;
	t->account = account;
	snprintf(t->rip, sizeof(t->rip), "%s", r->rip);
	t->queued_at = now;
	r->ticket = t;
	return t;
}

/* authd_answer_cached - answer from the cache; 1 done, 0 not cached */
static int authd_answer_cached(struct authd_server *s, struct authd_conn *c,
			       struct authd_request *r, const unsigned char key[LRU_KEY_LEN],
			       const char *account, double now)
{
	struct authd_cache_val val;

	if (!authd_cache_lookup(s->cache, key, now, &val) ||
	    (val.expires_at != 0 && val.expires_at <= (long long)time(NULL)))
		return 0;
	metric_inc(s->m->cache_hits);
	metric_inc(s->m->ok_cache);
	authd_limiter_success(s->limiter, r->rip, account, now);
	authd_pg_house_touch(s->house, val.key_id, val.user_id);
	/* debug only: at thousands per second, logging each cached success
	 * would cost more than answering it */
	log_debug("authd: ok user=%s rip=%s (cached)", val.address, r->rip);
	authd_reply_ok(c, r->id, val.address);
	authd_req_free(c, r);
	return 1;
}

/* authd_join - wait for an identical verification under way, if there is
 * one that started after the last purge (an older one may have read a key
 * since revoked); 1 joined (account taken), 0 not */
static int authd_join(struct authd_server *s, struct authd_conn *c, struct authd_request *r,
		      const unsigned char key[LRU_KEY_LEN], char *account, double now)
{
	struct authd_inflight *inf = (struct authd_inflight *)lru_get(&s->inflight, key);
	struct authd_ticket **pp;

	if (inf == NULL || inf->job->epoch != authd_cache_epoch(s->cache))
		return 0;
	for (pp = &inf->job->tickets; *pp; pp = &(*pp)->next)
		;
	*pp = authd_ticket_new(c, r, account, now);
	metric_inc(s->m->coalesced);
	return 1;
}

/* authd_submit - a job for the worker pool (takes j, canon and account) */
static void authd_submit(struct authd_server *s, struct authd_conn *c, struct authd_request *r,
			 struct authd_job *j, char *canon, char *account, const char *pass,
			 double now)
{
	struct authd_inflight *inf;

	j->tickets = authd_ticket_new(c, r, account, now);
	j->address = canon;
	j->key = xstrdup(pass);
	j->epoch = authd_cache_epoch(s->cache);
	if (canon) {
		inf = xcalloc(1, sizeof(*inf));
		memcpy(inf->lru.key, j->cache_key, LRU_KEY_LEN);
		inf->job = j;
		lru_put(&s->inflight, &inf->lru);
		j->coalescable = 1;
	}
	authd_limiter_begin(s->limiter, r->rip, j->tickets->account, now);
	authd_pool_submit(s->pool, j);
	authd_queue_gauges(s);
}

/* authd_refuse_limited - answer an attempt the rate limiter refused */
static void authd_refuse_limited(struct authd_server *s, struct authd_conn *c,
				 struct authd_request *r, const char *account,
				 enum authd_limit_verdict lv)
{
	char san[96];

	metric_inc(lv == AUTHD_LIMIT_IP     ? s->m->fail_ip
		   : lv == AUTHD_LIMIT_PAIR ? s->m->fail_pair
					    : s->m->fail_account);
	log_info("authd: refused user=%s rip=%s: %s", authd_sanitize(account, san, sizeof(san)),
		 r->rip,
		 lv == AUTHD_LIMIT_IP     ? "client IP throttled"
		 : lv == AUTHD_LIMIT_PAIR ? "client IP throttled for this account"
					  : "account under attack, IP not known");
	authd_reply_fail(c, r->id, NULL, "Too many failed attempts, try again later");
	authd_req_free(c, r);
}

/* authd_queue_full - refuse (temp_fail) when the queue, or this client
 * IP's share of it, is full; 1 refused */
static int authd_queue_full(struct authd_server *s, struct authd_conn *c, struct authd_request *r,
			    const char *account)
{
	size_t limit = authd_queue_limit(s), share = limit / AUTHD_IP_QUEUE_SHARE;
	char san[96];

	if (share == 0)
		share = 1;
	if (authd_pool_queued(s->pool) >= limit) {
		log_warn("authd: verification queue full (%zu); refusing user=%s rip=%s", limit,
			 authd_sanitize(account, san, sizeof(san)), r->rip);
	} else if (authd_limiter_ip_in_flight(s->limiter, r->rip) >= share) {
		log_info("authd: client IP holds its share of the queue (%zu); refusing user=%s "
			 "rip=%s",
			 share, authd_sanitize(account, san, sizeof(san)), r->rip);
	} else {
		return 0;
	}
	metric_inc(s->m->fail_busy);
	authd_reply_fail(c, r->id, "temp_fail", "Server busy, try again later");
	authd_req_free(c, r);
	return 1;
}

/* authd_credentials - the pipeline for one (user, password) pair */
static void authd_credentials(struct authd_server *s, struct authd_conn *c, struct authd_request *r,
			      const char *user, const char *pass)
{
	struct authd_job *j;
	enum authd_limit_verdict lv;
	char *account, *canon = authd_account_of(user, &account);
	double now = authd_now();

	metric_inc(s->m->attempts);
	/* failures only: a join or a cached answer costs no bcrypt */
	lv = authd_limiter_check(s->limiter, r->rip, account, now, 0);
	if (lv != AUTHD_LIMIT_PASS) {
		authd_refuse_limited(s, c, r, account, lv);
		goto out;
	}
	j = xcalloc(1, sizeof(*j));
	if (canon) {
		authd_cache_key(s->cache, canon, pass, j->cache_key);
		if (authd_answer_cached(s, c, r, j->cache_key, account, now)) {
			free(j);
			goto out;
		}
	}
	metric_inc(s->m->cache_misses);
	if (canon && authd_join(s, c, r, j->cache_key, account, now)) {
		free(j);
		account = NULL;
		goto out;
	}
	/* a new verification: those in flight count as failures */
	lv = authd_limiter_check(s->limiter, r->rip, account, now, 1);
	if (lv != AUTHD_LIMIT_PASS) {
		authd_refuse_limited(s, c, r, account, lv);
		free(j);
		goto out;
	}
	if (authd_queue_full(s, c, r, account)) {
		free(j);
		goto out;
	}
	authd_submit(s, c, r, j, canon, account, pass, now);
	canon = account = NULL;
out:
	free(canon);
	free(account);
}

/* authd_plain - a PLAIN response arrived (decoded in data) */
static void authd_plain(struct authd_server *s, struct authd_conn *c, struct authd_request *r,
			struct buf *data)
{
	const char *authzid, *authcid, *pass, *err;

	if (authd_sasl_plain(data->data, data->len, &authzid, &authcid, &pass, &err) < 0) {
		authd_fail_protocol(s, c, r, r->id, NULL, err);
		return;
	}
	if (*authzid && strcasecmp(authzid, authcid) != 0) {
		authd_fail_protocol(s, c, r, r->id, NULL,
				    "Authorization identity differs from the user: not allowed");
		return;
	}
	authd_credentials(s, c, r, authcid, pass);
}

/* authd_step - feed one decoded client response to the mechanism */
static void authd_step(struct authd_server *s, struct authd_conn *c, struct authd_request *r,
		       struct buf *data)
{
	if (r->mech == AUTHD_MECH_PLAIN) {
		authd_plain(s, c, r, data);
		return;
	}
	if (!authd_sasl_text_ok(data->data, data->len)) {
		authd_fail_protocol(s, c, r, r->id, NULL, "Invalid LOGIN response");
		return;
	}
	if (r->step == 1) {
		r->login_user = xstrdup(data->data);
		r->step = 2;
		authd_reply_cont(c, r->id, AUTHD_LOGIN_PROMPT_PASS);
		return;
	}
	authd_credentials(s, c, r, r->login_user, data->data);
}

static void authd_cmd_auth(struct authd_server *s, struct authd_conn *c, char **f, size_t n)
{
	struct authd_auth_req a;
	struct authd_request *r, *old;
	struct buf data = BUF_INIT;
	const char *err;

	if (authd_proto_parse_auth(f, n, &a, &err) < 0) {
		if (a.id == 0)
			log_warn("authd: connection %lu: %s; line ignored", c->cuid, err);
		else
			authd_fail_protocol(s, c, NULL, a.id, NULL, err);
		return;
	}
	if ((old = authd_req_find(c, a.id)) != NULL) {
		/* a client reusing an id gave up on the old request */
		log_warn("authd: connection %lu reused request id %u", c->cuid, a.id);
		authd_req_free(c, old);
	}
	if (a.mech == AUTHD_MECH_NONE) {
		authd_fail_protocol(s, c, NULL, a.id, NULL, "Unsupported authentication mechanism");
		return;
	}
	if (c->nreqs >= AUTHD_REQUESTS_MAX) {
		authd_fail_protocol(s, c, NULL, a.id, "temp_fail",
				    "Too many requests on this connection");
		return;
	}
	if (a.resp && authd_b64_decode(a.resp, &data) < 0) {
		authd_fail_protocol(s, c, NULL, a.id, "invalid_base64",
				    "Invalid base64 data in initial response");
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->id = a.id;
	r->mech = a.mech;
	r->step = 1;
	snprintf(r->rip, sizeof(r->rip), "%s", a.rip);
	r->next = c->reqs;
	c->reqs = r;
	c->nreqs++;
	if (a.resp == NULL)
		authd_reply_cont(c, r->id,
				 r->mech == AUTHD_MECH_LOGIN ? AUTHD_LOGIN_PROMPT_USER : "");
	else if (r->mech == AUTHD_MECH_LOGIN && data.len == 0)
		authd_reply_cont(c, r->id, AUTHD_LOGIN_PROMPT_USER);
	else
		authd_step(s, c, r, &data);
	if (data.data)
		crypto_wipe(data.data, data.len);
	buf_free(&data);
}

static void authd_cmd_cont(struct authd_server *s, struct authd_conn *c, char **f, size_t n)
{
	struct authd_request *r;
	struct buf data = BUF_INIT;
	unsigned int id;

	if (n < 2 || authd_proto_parse_id(f[1], &id) < 0) {
		log_warn("authd: connection %lu: broken CONT request; line ignored", c->cuid);
		return;
	}
	if ((r = authd_req_find(c, id)) == NULL) {
		authd_fail_protocol(s, c, NULL, id, NULL, "Authentication request timed out");
		return;
	}
	if (r->ticket) {
		authd_fail_protocol(s, c, r, id, NULL, "Unexpected CONT while verifying");
		return;
	}
	if (authd_b64_decode(n >= 3 ? f[2] : "", &data) < 0) {
		authd_fail_protocol(s, c, r, id, "invalid_base64",
				    "Invalid base64 data in continued response");
		return;
	}
	authd_step(s, c, r, &data);
	if (data.data)
		crypto_wipe(data.data, data.len);
	buf_free(&data);
}

/* authd_conn_line - one complete line from the client */
static void authd_conn_line(struct authd_server *s, struct authd_conn *c, char *line)
{
	char *f[AUTHD_FIELDS_MAX];
	size_t n = authd_proto_split(line, f, AUTHD_FIELDS_MAX);
	unsigned int id;

	if (!c->version_ok) {
		if (strcmp(f[0], "VERSION") != 0 || n < 2 || strcmp(f[1], "1") != 0) {
			log_warn(
				"authd: connection %lu: client is not an auth client of protocol 1; closing",
				c->cuid);
			c->discarding = -1; /* close after flushing */
			return;
		}
		c->version_ok = 1;
		return;
	}
	if (strcmp(f[0], "AUTH") == 0)
		authd_cmd_auth(s, c, f, n);
	else if (strcmp(f[0], "CONT") == 0)
		authd_cmd_cont(s, c, f, n);
	else if (strcmp(f[0], "CANCEL") == 0) {
		struct authd_request *r;

		if (n >= 2 && authd_proto_parse_id(f[1], &id) == 0 && (r = authd_req_find(c, id)))
			authd_req_free(c, r);
	} else if (strcmp(f[0], "CPID") != 0 && strcmp(f[0], "VERSION") != 0) {
		char san[96];

		log_warn("authd: connection %lu: unknown command '%s' ignored", c->cuid,
			 authd_sanitize(f[0], san, sizeof(san)));
	}
}

/* authd_refuse_line - a line over the limit: fail its request, if the
 * head of the line names one */
static void authd_refuse_line(struct authd_server *s, struct authd_conn *c, const char *line)
{
	char head[32], *tab, *f[3];
	size_t n, len = strnlen(line, sizeof(head) - 1);
	unsigned int id;
	struct authd_request *r;

	memcpy(head, line, len);
	head[len] = '\0';
	log_warn("authd: connection %lu sent a line over %d bytes; refused", c->cuid,
		 AUTHD_LINE_MAX);
	if ((tab = strchr(head, '\t')) != NULL && (tab = strchr(tab + 1, '\t')) != NULL)
		*tab = '\0';
	n = authd_proto_split(head, f, 2);
	if (c->version_ok && n == 2 && (strcmp(f[0], "AUTH") == 0 || strcmp(f[0], "CONT") == 0) &&
	    authd_proto_parse_id(f[1], &id) == 0) {
		r = authd_req_find(c, id);
		if (r == NULL || r->ticket == NULL) /* a verifying one gets its answer */
			authd_fail_protocol(s, c, r, id, NULL, "Line too long");
	}
}

/* authd_conn_lines - handle every complete line in the input buffer */
static void authd_conn_lines(struct authd_server *s, struct authd_conn *c)
{
	size_t pos = 0;
	char *lf;

	while (!c->dead && c->discarding == 0 &&
	       (lf = memchr(c->in.data + pos, '\n', c->in.len - pos)) != NULL) {
		char *line = c->in.data + pos;
		size_t len = (size_t)(lf - line);

		*lf = '\0';
		pos += len + 1;
		if (len > AUTHD_LINE_MAX) {
			authd_refuse_line(s, c, line);
			continue;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		authd_conn_line(s, c, line);
	}
	if (c->dead)
		return;
	if (pos > 0) {
		size_t left = c->in.len - pos;

		memmove(c->in.data, c->in.data + pos, left);
		/* the lines handled carried credentials (base64): wipe them */
		crypto_wipe(c->in.data + left, pos);
		buf_truncate(&c->in, left);
	}
	if (c->discarding == 0 && c->in.len > AUTHD_LINE_MAX) {
		/* no LF yet and already too long: refuse, drop until the LF */
		authd_refuse_line(s, c, buf_cstr(&c->in));
		c->discarding = 1;
		crypto_wipe(c->in.data, c->in.len);
		buf_truncate(&c->in, 0);
	}
}

/* authd_conn_input - read and handle every complete line */
static void authd_conn_input(struct authd_server *s, struct authd_conn *c)
{
	char chunk[16384];

	for (;;) {
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		size_t start = 0;
		char *lf;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			authd_conn_close(s, c);
			return;
		}
		if (c->discarding == -1)
			continue; /* closing: ignore the rest */
		if (c->discarding == 1) {
			if ((lf = memchr(chunk, '\n', (size_t)n)) == NULL)
				continue;
			c->discarding = 0;
			start = (size_t)(lf - chunk) + 1;
		}
		buf_append(&c->in, chunk + start, (size_t)n - start);
		crypto_wipe(chunk, (size_t)n);
		authd_conn_lines(s, c);
		if (c->dead)
			return;
		if ((size_t)n < sizeof(chunk))
			break; /* drained: epoll (level-triggered) reports more */
	}
	if (authd_conn_flush(s, c) < 0 || (c->discarding == -1 && c->out.len == 0))
		authd_conn_close(s, c);
}

/* ---- connections ---------------------------------------------------------- */

static void authd_conn_close(struct authd_server *s, struct authd_conn *c)
{
	if (c->dead)
		return;
	while (c->reqs)
		authd_req_free(c, c->reqs);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->dead = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	metric_set(s->m->connections, (double)s->nconns);
	log_debug("authd: connection %lu closed", c->cuid);
	c->refs++;
	authd_conn_unref(c);
}

void authd_server_conn_event(struct authd_server *s, void *ptr, unsigned int events)
{
	struct authd_conn *c = ptr;

	c->refs++; /* c stays allocated until we are done with it */
	if (events & EPOLLIN)
		authd_conn_input(s, c);
	else if (events & (EPOLLERR | EPOLLHUP))
		authd_conn_close(s, c);
	if (!c->dead && (events & EPOLLOUT) && authd_conn_flush(s, c) < 0)
		authd_conn_close(s, c);
	else if (!c->dead && c->discarding == -1 && c->out.len == 0)
		authd_conn_close(s, c);
	authd_conn_unref(c);
}

void authd_server_accept(struct authd_server *s, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct authd_conn *c;
		struct epoll_event e;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_warn("authd: accept: %s", strerror(errno));
			return;
		}
		if (s->stopping || s->nconns >= s->set.max_connections) {
			log_warn("authd: %s; connection refused",
				 s->stopping ? "shutting down" : "too many connections");
			close(fd);
			continue;
		}
		c = xcalloc(1, sizeof(*c));
		c->kind = AUTHD_EV_CONN;
		c->fd = fd;
		c->cuid = ++s->next_cuid;
		c->events = EPOLLIN;
		memset(&e, 0, sizeof(e));
		e.events = EPOLLIN;
		e.data.ptr = c;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
			log_error("authd: epoll_ctl: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
		metric_set(s->m->connections, (double)s->nconns);
		/* the greeting, at once: every MECH before SPID */
		buf_printf(&c->out,
			   "VERSION\t%d\t%d\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n"
			   "SPID\t%ld\nCUID\t%lu\nCOOKIE\t%s\nDONE\n",
			   AUTHD_PROTO_MAJOR, AUTHD_PROTO_MINOR, (long)getpid(), c->cuid,
			   s->cookie);
		log_debug("authd: connection %lu opened", c->cuid);
		if (authd_conn_flush(s, c) < 0)
			authd_conn_close(s, c);
	}
}

/* authd_ticket_answer - the limiter, the metrics and the reply for one
 * request that waited for the verification; count_failure 0: a failure
 * is not counted again for the rate limiter */
static void authd_ticket_answer(struct authd_server *s, struct authd_job *j, struct authd_ticket *t,
				int count_failure, double now)
{
	struct authd_verify_result *res = &j->result;
	struct authd_conn *c = t->conn;
	struct authd_request *r;

	metric_observe(s->m->verify_seconds, now - t->queued_at);
	if (res->verdict == AUTHD_OK) {
		metric_inc(s->m->ok_verify);
		authd_limiter_success(s->limiter, t->rip, t->account, now);
	} else if (res->verdict == AUTHD_TEMPFAIL) {
		metric_inc(s->m->fail_temp);
	} else {
		metric_inc(res->verdict == AUTHD_FAIL_SCOPE     ? s->m->fail_scope
			   : res->verdict == AUTHD_FAIL_EXPIRED ? s->m->fail_expired
								: s->m->fail_invalid);
		if (count_failure && authd_limiter_failure(s->limiter, t->rip, t->account, now)) {
			metric_inc(s->m->lockouts);
			log_warn("authd: client %s locked out after repeated failures", t->rip);
		}
	}
	if (!t->abandoned && !c->dead && (r = authd_req_find(c, t->id)) != NULL && r->ticket == t) {
		r->ticket = NULL;
		if (res->verdict == AUTHD_OK)
			authd_reply_ok(c, t->id, res->val.address);
		else
			authd_reply_fail(c, t->id,
					 res->verdict == AUTHD_TEMPFAIL ? "temp_fail" : NULL,
					 authd_verdict_reason(res->verdict));
		authd_req_free(c, r);
		if (authd_conn_flush(s, c) < 0)
			authd_conn_close(s, c);
	}
	authd_conn_unref(c);
	free(t->account);
	free(t);
}

/* authd_job_answer - account for a finished verification, answer every
 * request that waited for it */
static void authd_job_answer(struct authd_server *s, struct authd_job *j)
{
	struct authd_verify_result *res = &j->result;
	struct authd_ticket *t, *next;
	struct lru_entry *e;
	double now = authd_now();
	char san[96], rip0[64];
	unsigned n = 0;
	int stored = 0, first = 1;

	if (j->coalescable && (e = lru_get(&s->inflight, j->cache_key)) != NULL &&
	    ((struct authd_inflight *)e)->job == j)
		lru_remove(&s->inflight, e);
	metric_add(s->m->bcrypts, res->bcrypts);
	if (res->bcrypts)
		s->bcrypt_seconds = 0.8 * s->bcrypt_seconds + 0.2 * res->seconds;
	authd_limiter_end(s->limiter, j->tickets->rip, j->tickets->account);
	for (t = j->tickets; t; t = t->next)
		n++;
	t = j->tickets;
	if (res->verdict == AUTHD_OK) {
		stored = authd_cache_insert(s->cache, j->cache_key, &res->val, j->epoch, now);
		authd_pg_house_touch(s->house, res->val.key_id, res->val.user_id);
		log_info("authd: ok user=%s rip=%s key=%s%s (%u request%s)", res->val.address,
			 t->rip, res->val.key_id, stored ? "" : " not cached", n,
			 n == 1 ? "" : "s");
	} else if (res->verdict == AUTHD_TEMPFAIL) {
		metric_set(s->m->db_up, 0);
		log_warn("authd: temporary failure for user=%s rip=%s: %s",
			 authd_sanitize(t->account, san, sizeof(san)), t->rip,
			 res->error ? res->error : "unknown");
	} else {
		log_info("authd: failed user=%s rip=%s: %s (%u request%s)",
			 authd_sanitize(t->account, san, sizeof(san)), t->rip,
			 authd_verdict_reason(res->verdict), n, n == 1 ? "" : "s");
	}
	/* one failure per distinct verification and client IP: the
	 * identical attempts of the first one's IP that waited add none */
	snprintf(rip0, sizeof(rip0), "%s", j->tickets->rip);
	for (t = j->tickets; t; t = next) {
		next = t->next;
		authd_ticket_answer(s, j, t, first || strcmp(t->rip, rip0) != 0, now);
		first = 0;
	}
	authd_job_free(j);
}

void authd_server_jobs_answer(struct authd_server *s, struct authd_job *j)
{
	struct authd_job *next;

	for (; j; j = next) {
		next = j->next;
		authd_job_answer(s, j);
	}
}

void authd_server_jobs_done(struct authd_server *s)
{
	authd_server_jobs_answer(s, authd_pool_done(s->pool));
	authd_queue_gauges(s);
}

void authd_server_tick(struct authd_server *s)
{
	metric_set(s->m->cache_entries, (double)authd_cache_count(s->cache));
	authd_queue_gauges(s);
	metric_set(s->m->db_up, authd_pg_up() ? 1 : 0);
}

int authd_server_idle(struct authd_server *s)
{
	struct authd_conn *c;

	if (authd_pool_queued(s->pool) > 0)
		return 0;
	for (c = s->conns; c; c = c->next)
		if (c->out.len > 0)
			return 0;
	return 1;
}

void authd_server_close_all(struct authd_server *s)
{
	while (s->conns)
		authd_conn_close(s, s->conns);
}
