/*
 * NAME
 *	metrics - policyd's Prometheus series
 * DESCRIPTION
 *	Requests by protocol state and action class, SPF results, DNSBL
 *	outcomes per configured zone, quota refusals, malformed requests,
 *	open connections and DNS query latency. Label values come from
 *	fixed lists (never from request data), so the number of series is
 *	bounded.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dns_resolver.h"
#include "metrics.h"
#include "policyd.h"

static const char *const m_states[] = { "CONNECT", "EHLO",           "HELO", "MAIL", "RCPT",
					"DATA",    "END-OF-MESSAGE", "VRFY", "ETRN", "other" };
static const char *const m_actions[] = { "dunno", "prepend", "reject", "defer" };
#define M_NSTATES (sizeof(m_states) / sizeof(m_states[0]))
#define M_NACTIONS (sizeof(m_actions) / sizeof(m_actions[0]))

static struct metric *m_requests[M_NSTATES][M_NACTIONS];
static struct metric *m_spf[7];
static struct metric *m_quota[2];
static struct metric *m_malformed, *m_conns, *m_dns;

static void m_dns_observe(double seconds, enum dns_status st) { metric_observe(m_dns, seconds); }

void policyd_metrics_init(const struct policyd_config *cfg)
{
	static const double buckets[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5 };
	char labels[128];
	size_t s, a;
	int z;

	for (s = 0; s < M_NSTATES; s++)
		for (a = 0; a < M_NACTIONS; a++) {
			snprintf(labels, sizeof(labels), "state=\"%s\",action=\"%s\"", m_states[s],
				 m_actions[a]);
			m_requests[s][a] = metrics_counter(
				"postroom_policyd_requests_total",
				"policy requests by protocol state and action", labels);
		}
	for (z = 0; z < 7; z++) {
		snprintf(labels, sizeof(labels), "result=\"%s\"",
			 spf_result_name((enum spf_check_result)z));
		m_spf[z] = metrics_counter("postroom_policyd_spf_total", "SPF results", labels);
	}
	for (z = 0; z < cfg->dnsbl.nzones; z++) {
		static const char *const outcome[] = { "not_listed", "listed", "error" };
		int o;

		for (o = 0; o < 3; o++) {
			snprintf(labels, sizeof(labels), "zone=\"%s\",outcome=\"%s\"",
				 cfg->dnsbl.zones[z].name, outcome[o]);
			metrics_counter("postroom_policyd_dnsbl_total",
					"DNSBL lookups by zone and outcome", labels);
		}
	}
	m_quota[0] = metrics_counter("postroom_policyd_quota_refusals_total",
				     "requests deferred over quota", "kind=\"messages\"");
	m_quota[1] = metrics_counter("postroom_policyd_quota_refusals_total",
				     "requests deferred over quota", "kind=\"recipients\"");
	m_malformed = metrics_counter("postroom_policyd_malformed_total",
				      "connections closed because of a malformed request", NULL);
	m_conns = metrics_gauge("postroom_policyd_connections", "open client connections", NULL);
	m_dns = metrics_histogram("postroom_policyd_dns_seconds", "DNS query latency", NULL,
				  buckets, sizeof(buckets) / sizeof(buckets[0]));
	dns_resolver_set_observer(m_dns_observe);
}

void policyd_metric_request(const char *state, const char *action)
{
	size_t s, a = 0;

	for (s = 0; s < M_NSTATES - 1; s++)
		if (state != NULL && strcasecmp(state, m_states[s]) == 0)
			break;
	if (strncmp(action, "PREPEND", 7) == 0)
		a = 1;
	else if (action[0] == '5' || strncmp(action, "REJECT", 6) == 0)
		a = 2;
	else if (action[0] == '4' || strncmp(action, "DEFER", 5) == 0)
		a = 3;
	if (m_requests[s][a] != NULL)
		metric_inc(m_requests[s][a]);
}

void policyd_metric_spf(enum spf_check_result r)
{
	if ((unsigned)r < 7 && m_spf[r] != NULL)
		metric_inc(m_spf[r]);
}

void policyd_metric_dnsbl(const char *zone, enum dnsbl_status st)
{
	static const char *const outcome[] = { "not_listed", "listed", "error" };
	char labels[384];

	/* registered at start for every configured zone: this finds it */
	snprintf(labels, sizeof(labels), "zone=\"%s\",outcome=\"%s\"", zone, outcome[st]);
	metric_inc(metrics_counter("postroom_policyd_dnsbl_total",
				   "DNSBL lookups by zone and outcome", labels));
}

void policyd_metric_quota_refusal(enum quota_kind k)
{
	if (m_quota[k == QUOTA_MESSAGES ? 0 : 1] != NULL)
		metric_inc(m_quota[k == QUOTA_MESSAGES ? 0 : 1]);
}

void policyd_metric_malformed(void)
{
	if (m_malformed != NULL)
		metric_inc(m_malformed);
}

void policyd_metric_connections(int delta)
{
	if (m_conns != NULL)
		metric_add(m_conns, delta);
}
