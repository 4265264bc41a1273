/*
 * NAME
 *	metrics - an in-process Prometheus registry and its HTTP endpoint
 * DESCRIPTION
 *	Counters, gauges and histograms registered by name (+ labels),
 *	updated under one mutex each, rendered in the Prometheus text
 *	format. metrics_http_start serves /metrics and /healthz with
 *	libmicrohttpd on its own thread.
 * NEVER
 *	puts request data (addresses, keys) into label values: callers use
 *	fixed label sets.
 */
#include "metrics.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netdb.h>

#include "buf.h"
#include "xalloc.h"

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric {
	const char *name, *help;
	char *labels;
	enum metric_kind kind;
	pthread_mutex_t lock;
	double value;             /* counter, gauge; histogram sum */
	unsigned long long count; /* histogram */
	const double *bounds;
	unsigned long long *buckets; /* cumulative at render time */
	size_t nbuckets;
	struct metric *next;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric *metrics_head, *metrics_tail;
static struct MHD_Daemon *metrics_httpd;
static metrics_health_fn *metrics_health;
static void *metrics_health_arg;

static struct metric *metrics_register(const char *name, const char *help, const char *labels,
				       enum metric_kind kind, const double *bounds, size_t n)
{
	struct metric *m;

	pthread_mutex_lock(&metrics_lock);
	for (m = metrics_head; m; m = m->next)
		if (strcmp(m->name, name) == 0 && strcmp(m->labels, labels ? labels : "") == 0)
			break;
	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		m->name = name;
		m->help = help;
		m->labels = xstrdup(labels ? labels : "");
		m->kind = kind;
		m->bounds = bounds;
		m->nbuckets = n;
		m->buckets = n ? xcalloc(n, sizeof(*m->buckets)) : NULL;
		pthread_mutex_init(&m->lock, NULL);
		if (metrics_tail)
			metrics_tail->next = m;
		else
			metrics_head = m;
		metrics_tail = m;
	}
	pthread_mutex_unlock(&metrics_lock);
	return m;
}

struct metric *metrics_counter(const char *name, const char *help, const char *labels)
{
	return metrics_register(name, help, labels, METRIC_COUNTER, NULL, 0);
}

struct metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
	return metrics_register(name, help, labels, METRIC_GAUGE, NULL, 0);
}

struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
				 const double *buckets, size_t n)
{
	return metrics_register(name, help, labels, METRIC_HISTOGRAM, buckets, n);
}

void metric_add(struct metric *m, double v)
{
	pthread_mutex_lock(&m->lock);
	m->value += v;
	pthread_mutex_unlock(&m->lock);
}

void metric_inc(struct metric *m) { metric_add(m, 1); }

void metric_set(struct metric *m, double v)
{
	pthread_mutex_lock(&m->lock);
	m->value = v;
	pthread_mutex_unlock(&m->lock);
}

void metric_observe(struct metric *m, double v)
{
	size_t i;

	pthread_mutex_lock(&m->lock);
	m->value += v;
	m->count++;
	for (i = 0; i < m->nbuckets; i++)
		if (v <= m->bounds[i]) {
			m->buckets[i]++;
			break;
		}
	pthread_mutex_unlock(&m->lock);
}

double metric_value(const struct metric *m)
{
	double v;

	pthread_mutex_lock((pthread_mutex_t *)&m->lock);
	v = m->value;
	pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
	return v;
}

static const char *metric_type_name(enum metric_kind k)
{
	return k == METRIC_COUNTER ? "counter" : k == METRIC_GAUGE ? "gauge" : "histogram";
}

/* metric_series - name{labels[,extra]} */
static void metric_series(struct buf *b, const struct metric *m, const char *suffix,
			  const char *extra)
{
	int has = m->labels[0] != '\0';

	buf_printf(b, "%s%s", m->name, suffix);
	if (has || extra)
		buf_printf(b, "{%s%s%s}", m->labels, has && extra ? "," : "", extra ? extra : "");
}

static void metric_render_one(struct buf *b, struct metric *m)
{
	unsigned long long cum = 0;
	char le[64];
	size_t i;

	pthread_mutex_lock(&m->lock);
	if (m->kind != METRIC_HISTOGRAM) {
		metric_series(b, m, "", NULL);
		buf_printf(b, " %.17g\n", m->value);
	} else {
		for (i = 0; i < m->nbuckets; i++) {
			cum += m->buckets[i];
			snprintf(le, sizeof(le), "le=\"%g\"", m->bounds[i]);
			metric_series(b, m, "_bucket", le);
			buf_printf(b, " %llu\n", cum);
		}
		metric_series(b, m, "_bucket", "le=\"+Inf\"");
		buf_printf(b, " %llu\n", m->count);
		metric_series(b, m, "_sum", NULL);
		buf_printf(b, " %.17g\n", m->value);
		metric_series(b, m, "_count", NULL);
		buf_printf(b, " %llu\n", m->count);
	}
	pthread_mutex_unlock(&m->lock);
}

char *metrics_render(void)
{
	struct buf b = BUF_INIT;
	struct metric *m, *f;

	pthread_mutex_lock(&metrics_lock);
	for (m = metrics_head; m; m = m->next) {
		for (f = metrics_head; f != m && strcmp(f->name, m->name) != 0; f = f->next)
			;
		if (f != m)
			continue; /* family already written with its first series */
		buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
			   metric_type_name(m->kind));
		for (f = m; f; f = f->next)
			if (strcmp(f->name, m->name) == 0)
				metric_render_one(&b, f);
	}
	pthread_mutex_unlock(&metrics_lock);
	return buf_steal(&b);
}

static enum MHD_Result metrics_reply(struct MHD_Connection *c, unsigned status, char *body,
				     const char *type)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result metrics_handle(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version, const char *upload,
				      size_t *upload_size, void **state)
{
	const char *reason = NULL;

	(void)cls;
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)state;
	if (strcmp(method, "GET") != 0)
		return metrics_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, xstrdup("GET only\n"),
				     "text/plain");
	if (strcmp(url, "/metrics") == 0)
		return metrics_reply(c, MHD_HTTP_OK, metrics_render(), "text/plain; version=0.0.4");
	if (strcmp(url, "/healthz") == 0) {
		if (metrics_health == NULL || metrics_health(metrics_health_arg, &reason) == 0)
			return metrics_reply(c, MHD_HTTP_OK, xstrdup("ok\n"), "text/plain");
		return metrics_reply(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				     xasprintf("unhealthy: %s\n", reason ? reason : "?"),
				     "text/plain");
	}
	return metrics_reply(c, MHD_HTTP_NOT_FOUND, xstrdup("not found\n"), "text/plain");
}

int metrics_http_start(const char *listen, metrics_health_fn *health, void *arg, char **error_r)
{
	struct addrinfo hints, *ai = NULL;
	char *host;
	const char *colon = strrchr(listen, ':');
	int rc;

	if (colon == NULL) {
		*error_r = xasprintf("bad metrics listen address %s (HOST:PORT)", listen);
		return -1;
	}
	host = xstrndup(listen, (size_t)(colon - listen));
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	free(host);
	if (rc != 0) {
		*error_r = xasprintf("bad metrics listen address %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	metrics_health = health;
	metrics_health_arg = arg;
	metrics_httpd = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
		NULL, NULL, metrics_handle, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (metrics_httpd == NULL) {
		*error_r = xasprintf("cannot serve metrics on %s", listen);
		return -1;
	}
	return 0;
}

void metrics_http_stop(void)
{
	if (metrics_httpd)
		MHD_stop_daemon(metrics_httpd);
	metrics_httpd = NULL;
}
