/*
 * NAME
 *	webhook_metrics - postroom-webhookd's /metrics and /healthz
 * DESCRIPTION
 *	Two gauges per endpoint (label endpoint="webhook" or "notify_url"):
 *	postroom_webhook_oldest_unsent_seconds, the age of the oldest
 *	delivery still pending (not parked; 0 when none), and
 *	postroom_webhook_parked, the deliveries parked (410 or the attempt
 *	or time limit) and waiting for postroomctl events retry. The worker
 *	reads them from webhook_deliveries at most once a second, between
 *	batches; lib/metrics serves them. /healthz fails while the worker
 *	has no database connection.
 * NEVER
 *	queries the database from the HTTP thread; exposes a URL or secret.
 * CONFIGURATION
 *	webhook.metrics_listen (read by the caller)
 */
#include "webhook_metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "metrics.h"
#include "xalloc.h"

static struct wm_endpoint {
	const char *name;
	struct metric *oldest, *parked;
} wm_ep[WEBHOOK_METRICS_MAX];
static size_t wm_n;
static atomic_int wm_db_up;
static time_t wm_last;

/* wm_health - /healthz: the worker has its database connection */
static int wm_health(void *arg, const char **reason_r)
{
	(void)arg;
	if (!atomic_load(&wm_db_up)) {
		*reason_r = "database unreachable: no events are sent";
		return -1;
	}
	return 0;
}

int webhook_metrics_start(const char *listen, const char *const *names, size_t n, char **error_r)
{
	size_t i;

	for (i = 0; i < n && i < WEBHOOK_METRICS_MAX; i++) {
		char *label = xasprintf("endpoint=\"%s\"", names[i]);

		wm_ep[i].name = names[i];
		wm_ep[i].oldest =
			metrics_gauge("postroom_webhook_oldest_unsent_seconds",
				      "age of the oldest pending (not parked) delivery", label);
		wm_ep[i].parked = metrics_gauge(
			"postroom_webhook_parked",
			"parked deliveries waiting for postroomctl events retry", label);
		free(label);
	}
	wm_n = i;
	return metrics_http_start(listen, wm_health, NULL, error_r);
}

void webhook_metrics_db(int up) { atomic_store(&wm_db_up, up); }

/* The gauges of one endpoint. */
static const char wm_sql[] =
	"SELECT COALESCE(EXTRACT(epoch FROM now() - min(created_at) FILTER "
	"(WHERE parked_at IS NULL)), 0)::float8, count(*) FILTER (WHERE parked_at IS NOT NULL) "
	"FROM webhook_deliveries WHERE endpoint = $1";

int webhook_metrics_refresh(PGconn *c)
{
	time_t now = time(NULL);
	size_t i;

	webhook_metrics_db(c != NULL && PQstatus(c) == CONNECTION_OK);
	if (c == NULL || now == wm_last)
		return 0;
	wm_last = now;
	for (i = 0; i < wm_n; i++) {
		const char *p[1] = { wm_ep[i].name };
		PGresult *r = PQexecParams(c, wm_sql, 1, NULL, p, NULL, NULL, 0);

		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			PQclear(r);
			webhook_metrics_db(0);
			return -1;
		}
		metric_set(wm_ep[i].oldest, strtod(PQgetvalue(r, 0, 0), NULL));
		metric_set(wm_ep[i].parked, strtod(PQgetvalue(r, 0, 1), NULL));
		PQclear(r);
	}
	return 0;
}

void webhook_metrics_stop(void) { metrics_http_stop(); }
