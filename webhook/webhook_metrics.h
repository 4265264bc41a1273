/* webhook_metrics.h - postroom-webhookd's /metrics and /healthz
 * (webhook.metrics_listen): per endpoint, the age of the oldest pending
 * delivery and the parked count, read from the database.
 *
 * CONTRACT: webhook_metrics_refresh runs in the worker's thread with its
 * connection; the HTTP thread only renders the gauges and reads the
 * health flag. Not for more than WEBHOOK_METRICS_MAX endpoints. */
#ifndef POSTROOM_WEBHOOK_METRICS_H
#define POSTROOM_WEBHOOK_METRICS_H

#include <libpq-fe.h>

#define WEBHOOK_METRICS_MAX 2

/* webhook_metrics_start - register the gauges of the n endpoints names
 * and serve them on listen ("HOST:PORT"); 0 ok, -1 with *error_r (caller
 * frees) */
int webhook_metrics_start(const char *listen, const char *const *names, size_t n, char **error_r);
/* webhook_metrics_refresh - read the gauges' values (at most once a
 * second; c NULL or broken: /healthz says unhealthy); -1 on a database
 * error */
int webhook_metrics_refresh(PGconn *c);
/* webhook_metrics_db - the worker has (1) or lacks (0) a connection */
void webhook_metrics_db(int up);
/* webhook_metrics_stop - stop serving */
void webhook_metrics_stop(void);

#endif
