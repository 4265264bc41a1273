/*
 * NAME
 *	webhookd - postroom-webhookd: sends the outbox's events to webhooks
 * DESCRIPTION
 *	A small daemon of its own (not a thread of postroom-lmtpd): sites that
 *	store through the pipe (postroom-deliver) have no lmtpd, and retries
 *	must never depend on the storing program. Any number may run, on any
 *	number of hosts. Each registers its configured endpoints (webhook.url
 *	in the signed format, deliver.notify_url in MISSION's legacy format)
 *	with postroom_webhook_register; the events trigger of
 *	sql/021_webhooks.sql queues one delivery per endpoint and event.
 *	LISTEN postroom_events wakes it for new events (also one libpq read
 *	along with a statement's answer), webhook.poll_interval for due
 *	retries. postroom_webhook_claim leases up to webhook.batch due
 *	deliveries in one autocommitted statement (FOR UPDATE SKIP LOCKED: no
 *	transaction is open during a request); they are POSTed
 *	webhook.concurrency at a time (libcurl's multi interface, one easy
 *	handle per slot kept from request to request, so its connection is
 *	reused; no redirects, TLS verified, bounded by
 *	webhook.connect_timeout and webhook.timeout). A failure is recorded at
 *	once (rescheduled or parked: postroom_webhook_failed); the 2xx
 *	answers of a batch are finished together in one statement after it.
 *	A worker killed mid-send leaves its lease to expire: resent, not lost.
 *	Signed requests carry webhook-id (the event's id, the same on every
 *	retry), webhook-timestamp (fresh on each attempt) and webhook-signature
 *	(webhook_sign.c). The legacy endpoint replaces the once-only POST
 *	that postroom-deliver and postroom-lmtpd used to make themselves,
 *	with its timeouts (deliver.notify_connect_timeout,
 *	deliver.notify_timeout). With webhook.metrics_listen, /metrics and
 *	/healthz (webhook_metrics.c).
 * NEVER
 *	holds a transaction across an HTTP request; follows a redirect; skips
 *	TLS verification; logs a secret or the API key.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "conf.h"
#include "daemon.h"
#include "db.h"
#include "deliver_params.h"
#include "log.h"
#include "schema_check.h"
#include "webhook_metrics.h"
#include "webhook_params.h"
#include "webhook_sign.h"
#include "xalloc.h"

#define WH_PROG "postroom-webhookd"

/* One configured endpoint. */
struct wh_endpoint {
	const char *name, *url, *format, *kinds; /* kinds: "{a,b}" */
	int legacy;
	const char *api_key;
	long connect_timeout, timeout; /* seconds */
	struct webhook_secret secrets[2];
	size_t nsecrets;
};

static volatile sig_atomic_t wh_stop;

static void wh_on_signal(int sig)
{
	(void)sig;
	wh_stop = 1;
}

/* One request slot of a worker: its easy handle is kept from request to
 * request, so the connection to an endpoint is reused (keep-alive). */
struct wh_slot {
	CURL *h;
	struct curl_slist *hdrs;
	char *body;
	int row; /* the claimed row it sends; -1: free */
};

/* The requests a worker has in flight at once (webhook.concurrency). */
struct wh_pool {
	CURLM *m;
	struct wh_slot *slot;
	size_t n;
};

/* wh_discard - ignore the response body */
static size_t wh_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* wh_pool_init - n slots and the multi handle; exits when curl cannot */
static void wh_pool_init(struct wh_pool *pool, size_t n)
{
	size_t i;

	pool->m = curl_multi_init();
	if (pool->m == NULL)
		log_fatal(EX_SOFTWARE, "curl_multi_init failed");
	/* keep every slot's connection between batches */
	curl_multi_setopt(pool->m, CURLMOPT_MAXCONNECTS, (long)(2 * n));
	pool->slot = xcalloc(n, sizeof *pool->slot);
	pool->n = n;
	for (i = 0; i < n; i++) {
		pool->slot[i].row = -1;
		if ((pool->slot[i].h = curl_easy_init()) == NULL)
			log_fatal(EX_SOFTWARE, "curl_easy_init failed");
	}
}

/* wh_pool_free - the slots (none in flight) and the multi handle */
static void wh_pool_free(struct wh_pool *pool)
{
	size_t i;

	for (i = 0; i < pool->n; i++)
		curl_easy_cleanup(pool->slot[i].h);
	free(pool->slot);
	curl_multi_cleanup(pool->m);
	memset(pool, 0, sizeof *pool);
}

/* wh_headers - the request's headers: the signature or the API key */
static struct curl_slist *wh_headers(const struct wh_endpoint *ep, const char *id, const char *body)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	char *line;

	if (ep->legacy) {
		if (ep->api_key && *ep->api_key) {
			line = xasprintf("Authorization: ApiKey %s", ep->api_key);
			hdrs = curl_slist_append(hdrs, line);
			explicit_bzero(line, strlen(line));
			free(line);
		}
	} else {
		long long ts = (long long)time(NULL);
		char *sig = webhook_signature(ep->secrets, ep->nsecrets, id, ts, body);

		line = xasprintf("webhook-id: %s", id);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
		line = xasprintf("webhook-timestamp: %lld", ts);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
		if (ep->nsecrets > 0) {
			line = xasprintf("webhook-signature: %s", sig);
			hdrs = curl_slist_append(hdrs, line);
			free(line);
		}
		free(sig);
	}
	return hdrs;
}

/* wh_start - start one attempt in slot s (it owns body): 0, or -1 when
 * curl refused it (the slot is free again) */
static int wh_start(struct wh_pool *pool, struct wh_slot *s, const struct wh_endpoint *ep,
		    const char *id, char *body, int row)
{
	CURL *h = s->h;

	s->hdrs = wh_headers(ep, id, body);
	s->body = body;
	s->row = row;
	curl_easy_setopt(h, CURLOPT_URL, ep->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, ep->connect_timeout);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, ep->timeout);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, wh_discard);
	curl_easy_setopt(h, CURLOPT_USERAGENT, WH_PROG);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)s);
	if (curl_multi_add_handle(pool->m, h) != CURLM_OK) {
		curl_slist_free_all(s->hdrs);
		s->hdrs = NULL;
		free(s->body);
		s->body = NULL;
		s->row = -1;
		return -1;
	}
	return 0;
}

/* wh_slot_done - take slot s out of the multi handle; it is free again */
static void wh_slot_done(struct wh_pool *pool, struct wh_slot *s)
{
	curl_multi_remove_handle(pool->m, s->h);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	free(s->body);
	s->body = NULL;
	s->row = -1;
}

/* wh_free_slot - a slot with no request, or NULL */
static struct wh_slot *wh_free_slot(struct wh_pool *pool)
{
	size_t i;

	for (i = 0; i < pool->n; i++)
		if (pool->slot[i].row < 0)
			return &pool->slot[i];
	return NULL;
}

/* The claim: postroom_webhook_claim's rows with text for the body. */
static const char wh_claim_sql[] =
	"SELECT position, event_id, kind, user_id, user_address, to_json(addresses)::text, "
	"email_id, thread_id, message_id, subject, from_address, from_display_name, spam, "
	"to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
	"has_attachments, data::text, "
	"to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
	"FROM postroom_webhook_claim($1, $2::integer, $3::interval)";

/* wh_val - a column, or NULL for SQL NULL */
static const char *wh_val(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* wh_body - the request body of claimed row i (caller frees) */
static char *wh_body(const struct wh_endpoint *ep, PGresult *r, int i)
{
	struct webhook_event e = {
		.position = wh_val(r, i, 0),
		.event_id = wh_val(r, i, 1),
		.kind = wh_val(r, i, 2),
		.user_id = wh_val(r, i, 3),
		.user = wh_val(r, i, 4),
		.addresses_json = wh_val(r, i, 5),
		.email_id = wh_val(r, i, 6),
		.thread_id = wh_val(r, i, 7),
		.message_id = wh_val(r, i, 8),
		.subject = wh_val(r, i, 9),
		.from = wh_val(r, i, 10),
		.from_display = wh_val(r, i, 11),
		.spam = wh_val(r, i, 12),
		.received_at = wh_val(r, i, 13),
		.has_attachments = wh_val(r, i, 14),
		.data_json = wh_val(r, i, 15),
		.created_at = wh_val(r, i, 16),
	};

	return ep->legacy ? webhook_body_legacy(&e) : webhook_body_standard(&e);
}

/* wh_failed - record a failed attempt (status 0: no answer); -1 on a
 * database error */
static int wh_failed(const struct conf *cfg, PGconn *c, const struct wh_endpoint *ep,
		     const char *pos, const char *id, long status, const char *err)
{
	char st[24], maxa[24], retry[32], base[32], maxd[32];
	PGresult *r;
	int ok;

	snprintf(st, sizeof st, "%ld", status);
	snprintf(maxa, sizeof maxa, "%lld", conf_int(cfg, "webhook.max_attempts"));
	snprintf(retry, sizeof retry, "%lld seconds", conf_int(cfg, "webhook.retry_period"));
	snprintf(base, sizeof base, "%lld seconds", conf_int(cfg, "webhook.backoff_base"));
	snprintf(maxd, sizeof maxd, "%lld seconds", conf_int(cfg, "webhook.backoff_max"));
	const char *p[8] = { ep->name, pos, st, err ? err : "", maxa, retry, base, maxd };

	r = PQexecParams(c,
			 "SELECT postroom_webhook_failed($1, $2::bigint, $3::integer, $4, "
			 "$5::integer, $6::interval, $7::interval, $8::interval)",
			 8, NULL, p, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (ok && PQntuples(r) == 1)
		log_warn("%s: event %s (position %s): %s%s%s", ep->name, id, pos,
			 status ? "HTTP status " : "", status ? st : (err ? err : "no answer"),
			 strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? ": parked" : ": will retry");
	if (!ok)
		log_warn("%s: recording the attempt: %s", ep->name, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* wh_done - the deliveries answered 2xx, positions "{p,q,...}", finished
 * in one statement; -1 on a database error */
static int wh_done(PGconn *c, const struct wh_endpoint *ep, const char *positions)
{
	const char *p[2] = { ep->name, positions };
	PGresult *r = PQexecParams(c,
				   "SELECT postroom_webhook_done($1, u.p) "
				   "FROM unnest($2::bigint[]) AS u(p)",
				   2, NULL, p, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		log_warn("%s: recording the attempts: %s", ep->name, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* wh_ms - milliseconds of a monotonic clock */
static double wh_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

/* wh_collect - record the attempts that ended: a 2xx's position goes in
 * *done (finished with the batch), a failure is recorded at once; -1 on
 * a database error (the attempt is left to its lease) */
static int wh_collect(const struct conf *cfg, PGconn *c, const struct wh_endpoint *ep,
		      struct wh_pool *pool, PGresult *r, char **done, int *active)
{
	CURLMsg *msg;
	int left, rc = 0;

	while ((msg = curl_multi_info_read(pool->m, &left)) != NULL) {
		struct wh_slot *s = NULL;
		long status = 0;
		const char *err = NULL, *pos, *id;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		if (msg->data.result == CURLE_OK)
			curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		else
			err = curl_easy_strerror(msg->data.result);
		pos = PQgetvalue(r, s->row, 0);
		id = PQgetvalue(r, s->row, 1);
		wh_slot_done(pool, s); /* msg is gone now */
		(*active)--;
		log_debug("%s: event %s: status %ld", ep->name, id, status);
		if (rc < 0)
			continue;
		if (status >= 200 && status < 300) {
			char *d = xasprintf("%s%s%s", *done ? *done : "", *done ? "," : "", pos);

			free(*done);
			*done = d;
		} else if (wh_failed(cfg, c, ep, pos, id, status, err) < 0) {
			rc = -1;
		}
	}
	return rc;
}

/* wh_run - claim one batch of ep and send it, webhook.concurrency
 * requests at a time: how many were claimed, -1 on a database error */
static int wh_run(const struct conf *cfg, PGconn *c, const struct wh_endpoint *ep,
		  struct wh_pool *pool)
{
	long long batch = conf_int(cfg, "webhook.batch");
	long long rounds = (batch + (long long)pool->n - 1) / (long long)pool->n;
	long long lease = rounds * (ep->timeout + ep->connect_timeout) + 5;
	char nb[24], ls[48], *done = NULL;
	const char *p[3] = { ep->name, nb, ls };
	double t0 = wh_ms(), t1, t2;
	PGresult *r;
	int n, next = 0, active = 0, rc = 0;

	snprintf(nb, sizeof nb, "%lld", batch);
	snprintf(ls, sizeof ls, "%lld seconds", lease);
	r = PQexecParams(c, wh_claim_sql, 3, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_warn("%s: claiming deliveries: %s", ep->name, PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	n = PQntuples(r);
	t1 = wh_ms();
	for (;;) {
		struct wh_slot *s;
		int running;

		while (rc == 0 && !wh_stop && next < n && (s = wh_free_slot(pool)) != NULL) {
			if (wh_start(pool, s, ep, PQgetvalue(r, next, 1), wh_body(ep, r, next),
				     next) == 0)
				active++;
			else
				log_warn("%s: curl refused a request", ep->name);
			next++;
		}
		if (active == 0)
			break;
		curl_multi_perform(pool->m, &running);
		if (wh_collect(cfg, c, ep, pool, r, &done, &active) < 0)
			rc = -1;
		if (active > 0)
			curl_multi_poll(pool->m, NULL, 0, 1000, NULL);
	}
	t2 = wh_ms();
	if (rc == 0 && done) {
		char *arr = xasprintf("{%s}", done);

		rc = wh_done(c, ep, arr);
		free(arr);
	}
	free(done);
	if (n > 0)
		log_debug("%s: %d claimed in %.1f ms, sent in %.1f ms, finished in %.1f ms",
			  ep->name, n, t1 - t0, t2 - t1, wh_ms() - t2);
	PQclear(r);
	return rc < 0 ? -1 : n;
}

/* wh_kinds - "a,b" as a text[] literal "{a,b}" (caller frees) */
static char *wh_kinds(const char *list)
{
	char *out = xasprintf("{%s}", list), *s;

	for (s = out; *s; s++)
		if (*s == ' ')
			*s = ',';
	return out;
}

/* wh_endpoints - the configured endpoints; exits on a bad secret */
static size_t wh_endpoints(const struct conf *cfg, struct wh_endpoint *ep)
{
	const char *url = conf_str(cfg, "webhook.url"), *nurl = conf_str(cfg, "deliver.notify_url");
	size_t n = 0;

	if (url && *url) {
		const char *sec = conf_str(cfg, "webhook.secrets");
		char *copy = xstrdup(sec ? sec : ""), *save = NULL, *tok, *err = NULL;

		memset(&ep[n], 0, sizeof ep[n]);
		ep[n].name = "webhook";
		ep[n].url = url;
		ep[n].format = "standard";
		ep[n].kinds = wh_kinds(conf_str(cfg, "webhook.kinds"));
		ep[n].connect_timeout = (long)conf_int(cfg, "webhook.connect_timeout");
		ep[n].timeout = (long)conf_int(cfg, "webhook.timeout");
		for (tok = strtok_r(copy, " ,\t", &save); tok;
		     tok = strtok_r(NULL, " ,\t", &save)) {
			if (ep[n].nsecrets == 2)
				log_fatal(EX_CONFIG,
					  "configuration error: webhook.secrets: at most two");
			if (webhook_secret_parse(tok, &ep[n].secrets[ep[n].nsecrets], &err) < 0)
				log_fatal(EX_CONFIG, "configuration error: webhook.secrets: %s",
					  err);
			ep[n].nsecrets++;
		}
		explicit_bzero(copy, strlen(copy));
		free(copy);
		if (ep[n].nsecrets == 0)
			log_fatal(EX_CONFIG,
				  "configuration error: webhook.url needs webhook.secrets");
		n++;
	}
	if (nurl && *nurl) {
		memset(&ep[n], 0, sizeof ep[n]);
		ep[n].name = "notify_url";
		ep[n].url = nurl;
		ep[n].format = "legacy";
		ep[n].kinds = xstrdup("{new,link}");
		ep[n].legacy = 1;
		ep[n].api_key = conf_str(cfg, "deliver.notify_key");
		ep[n].connect_timeout = (long)conf_int(cfg, "deliver.notify_connect_timeout");
		ep[n].timeout = (long)conf_int(cfg, "deliver.notify_timeout");
		n++;
	}
	return n;
}

/* wh_open - connect, register the endpoints, LISTEN; NULL on failure */
static struct db *wh_open(const struct conf *cfg, const struct wh_endpoint *ep, size_t n)
{
	char *err = NULL;
	struct db *db = schema_check_connect(conf_conninfo(cfg, "webhook"),
					     (int)conf_int(cfg, "database.connect_timeout"), &err);
	PGresult *r;
	size_t i;

	if (db == NULL) {
		log_warn("database: %s", err);
		free(err);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		const char *p[4] = { ep[i].name, ep[i].url, ep[i].format, ep[i].kinds };

		r = PQexecParams(db_conn(db),
				 "SELECT postroom_webhook_register($1, $2, $3, $4::text[])", 4,
				 NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_warn("registering endpoint %s: %s", ep[i].name,
				 PQerrorMessage(db_conn(db)));
			PQclear(r);
			db_close(&db);
			return NULL;
		}
		PQclear(r);
	}
	r = PQexec(db_conn(db), "LISTEN postroom_events");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_warn("LISTEN postroom_events: %s", PQerrorMessage(db_conn(db)));
		PQclear(r);
		db_close(&db);
		return NULL;
	}
	PQclear(r);
	/* A claim or finish lost in a server crash only means a resend (at
	 * least once; webhook-id tells duplicates apart): no WAL flush per
	 * event, which capped a worker below the LMTP load's event rate. */
	r = PQexec(db_conn(db), "SET synchronous_commit = off");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		log_warn("SET synchronous_commit: %s", PQerrorMessage(db_conn(db)));
	PQclear(r);
	return db;
}

/* wh_wait - until a NOTIFY or ms pass; -1 when the connection broke.
 * A notification that libpq read along with a claim's or a finish's
 * answer is already queued, and the socket has nothing more: it counts
 * at once (not after ms). */
static int wh_wait(PGconn *c, int ms)
{
	struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
	PGnotify *nt;
	int rc, queued = 0;

	if (pfd.fd < 0)
		return -1;
	if (!PQconsumeInput(c))
		return -1;
	while ((nt = PQnotifies(c)) != NULL) {
		PQfreemem(nt);
		queued = 1;
	}
	if (queued)
		return 0;
	rc = poll(&pfd, 1, ms);
	if (rc < 0 && errno != EINTR)
		return -1;
	if (rc > 0 && !PQconsumeInput(c))
		return -1;
	while ((nt = PQnotifies(c)) != NULL)
		PQfreemem(nt);
	return PQstatus(c) == CONNECTION_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct daemon_args a;
	struct wh_endpoint ep[2];
	struct sigaction sa;
	struct conf *cfg;
	struct db *db = NULL;
	struct wh_pool pool;
	const char *mlisten, *names[2];
	char *err = NULL;
	size_t n, i;

	conf_register(&deliver_conf_table); /* deliver.notify_* */
	conf_register(&webhook_conf_table);
	daemon_parse_args(argc, argv, WH_PROG, &a);
	cfg = daemon_load_conf(&a, EX_CONFIG);
	n = wh_endpoints(cfg, ep);
	if (a.check_only)
		daemon_check_exit(WH_PROG, cfg);
	if (n == 0)
		log_fatal(EX_CONFIG, "configuration error: neither webhook.url nor "
				     "deliver.notify_url is set: nothing to send");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		log_fatal(EX_SOFTWARE, "curl_global_init failed");
	wh_pool_init(&pool, (size_t)conf_int(cfg, "webhook.concurrency"));
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = wh_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	mlisten = conf_str(cfg, "webhook.metrics_listen");
	for (i = 0; i < n; i++)
		names[i] = ep[i].name;
	if (mlisten && *mlisten && webhook_metrics_start(mlisten, names, n, &err) < 0)
		log_fatal(EX_OSERR, "metrics: %s", err);
	log_info("started: %zu endpoint%s", n, n == 1 ? "" : "s");
	while (!wh_stop) {
		int busy = 0, broken = 0;

		if (db == NULL && (db = wh_open(cfg, ep, n)) == NULL) {
			webhook_metrics_db(0);
			sleep(1);
			continue;
		}
		if (mlisten && *mlisten && webhook_metrics_refresh(db_conn(db)) < 0)
			broken = 1;
		for (i = 0; i < n && !wh_stop; i++) {
			int got = wh_run(cfg, db_conn(db), &ep[i], &pool);

			if (got < 0)
				broken = 1;
			else if (got >= conf_int(cfg, "webhook.batch"))
				busy = 1;
		}
		if (!broken && !busy &&
		    wh_wait(db_conn(db), (int)conf_int(cfg, "webhook.poll_interval")) < 0)
			broken = 1;
		if (broken) {
			db_close(&db);
			sleep(1);
		}
	}
	log_info("stopping");
	if (mlisten && *mlisten)
		webhook_metrics_stop();
	if (db)
		db_close(&db);
	for (i = 0; i < n; i++) {
		webhook_secret_free(&ep[i].secrets[0]);
		webhook_secret_free(&ep[i].secrets[1]);
		free((char *)ep[i].kinds);
	}
	wh_pool_free(&pool);
	conf_free(&cfg);
	curl_global_cleanup();
	return 0;
}
