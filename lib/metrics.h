/* metrics.h - Prometheus counters, gauges and histograms, served with
 * /healthz over libmicrohttpd. Thread-safe. */
#ifndef POSTROOM_METRICS_H
#define POSTROOM_METRICS_H

#include <stddef.h>

struct metric;

/* Registering: name and help are static strings; labels is NULL or a
 * Prometheus label set without braces, e.g. "verdict=\"accept\"". The same
 * name with other labels is another series of the same metric family.
 * Registering the same (name, labels) twice returns the same metric. */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* buckets: ascending upper bounds (seconds, bytes...), n of them */
struct metric *metrics_histogram(const char *name, const char *help, const char *labels,
				 const double *buckets, size_t n);

void metric_inc(struct metric *m);
void metric_add(struct metric *m, double v);
void metric_set(struct metric *m, double v);     /* gauges */
void metric_observe(struct metric *m, double v); /* histograms */
double metric_value(const struct metric *m);     /* counters and gauges */

/* metrics_render - the whole registry in Prometheus text format 0.0.4
 * (caller frees) */
char *metrics_render(void);

/* metrics_http_start - serve GET /metrics and GET /healthz on listen
 * ("HOST:PORT"). health returns 0 when healthy, else -1 with a static
 * *reason_r; NULL health = always healthy. 0 ok, -1 with *error_r. */
typedef int metrics_health_fn(void *arg, const char **reason_r);
int metrics_http_start(const char *listen, metrics_health_fn *health, void *arg, char **error_r);
void metrics_http_stop(void);

#endif
