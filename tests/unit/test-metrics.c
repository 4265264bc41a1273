/* test-metrics - Prometheus text rendering of counters, labelled series,
 * gauges and histograms (expected text written from the format spec). */
#include <stdlib.h>
#include "metrics.h"
#include "unit.h"

static const double bounds[] = { 0.01, 0.1, 1 };

int main(void)
{
	struct metric *a = metrics_counter("postroom_test_total", "Things.", "verdict=\"accept\"");
	struct metric *r = metrics_counter("postroom_test_total", "Things.", "verdict=\"reject\"");
	struct metric *g = metrics_gauge("postroom_queue", "Queue depth.", NULL);
	struct metric *h = metrics_histogram("postroom_seconds", "Durations.", NULL, bounds, 3);
	char *text;

	UNIT_OK(metrics_counter("postroom_test_total", "Things.", "verdict=\"accept\"") == a,
		"registering twice returns the same series");
	metric_inc(a);
	metric_inc(a);
	metric_add(r, 3);
	metric_set(g, 7);
	metric_set(g, 5);
	metric_observe(h, 0.005);
	metric_observe(h, 0.5);
	metric_observe(h, 2);
	UNIT_OK(metric_value(a) == 2 && metric_value(r) == 3 && metric_value(g) == 5,
		"values kept");
	text = metrics_render();
	UNIT_STR_EQ(text,
		    "# HELP postroom_test_total Things.\n"
		    "# TYPE postroom_test_total counter\n"
		    "postroom_test_total{verdict=\"accept\"} 2\n"
		    "postroom_test_total{verdict=\"reject\"} 3\n"
		    "# HELP postroom_queue Queue depth.\n"
		    "# TYPE postroom_queue gauge\n"
		    "postroom_queue 5\n"
		    "# HELP postroom_seconds Durations.\n"
		    "# TYPE postroom_seconds histogram\n"
		    "postroom_seconds_bucket{le=\"0.01\"} 1\n"
		    "postroom_seconds_bucket{le=\"0.1\"} 1\n"
		    "postroom_seconds_bucket{le=\"1\"} 2\n"
		    "postroom_seconds_bucket{le=\"+Inf\"} 3\n"
		    "postroom_seconds_sum 2.5049999999999999\n"
		    "postroom_seconds_count 3\n",
		    "rendered text format");
	free(text);
	return unit_done();
}
