/* policyd.h - postroom-policyd internals shared by its files. */
#ifndef POSTROOM_POLICYD_H
#define POSTROOM_POLICYD_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "conf.h"
#include "dns_dnsbl.h"
#include "quota.h"
#include "request.h"
#include "rules.h"
#include "spf_check.h"

/* The configuration as the request path uses it: read once per load,
 * reference-counted so SIGHUP can swap it while requests run. */
struct policyd_config {
	int refs;
	unsigned long generation; /* distinct for every load */
	struct conf *conf;        /* owns the strings below */
	struct rules_config rules;
	const char *port_roles;
	size_t line_max, request_max;
	int idle_timeout, request_timeout, max_connections;
	int cache_ttl, cache_negative_ttl;
	struct quota_config quota;
	int quota_flush_ms;
	int spf_enabled;
	unsigned spf_spam_mask, spf_reject_mask; /* bit (1 << enum spf_check_result) */
	struct dnsbl_config dnsbl;
	const char *dns_server;
	int dns_timeout, dns_attempts, check_timeout;
	const char *hmac_secret;
	char hostname[256];
	int instance_ttl;
};

/* policyd_config_load - build from a loaded conf (taken over); NULL with
 * *error_r (caller frees) on a value the table cannot check. */
struct policyd_config *policyd_config_new(struct conf *conf, char **error_r);
struct policyd_config *policyd_config_get(void); /* current, referenced */
void policyd_config_put(struct policyd_config *c);
void policyd_config_install(struct policyd_config *c); /* becomes current */
/* policyd_spf_mask - "fail,softfail" into a bit mask; -1 on an unknown name */
int policyd_spf_mask(const char *list, unsigned *mask_r);

/* ---- quota_pg.c: the quota backend in PostgreSQL ------------------- */
struct rules_pg;
/* policyd_quota_pg_backend - the quota backend on rp's pool (rp outlives it) */
void policyd_quota_pg_backend(struct quota_backend *be, struct rules_pg *rp);
/* policyd_quota_pg_expire - delete usage rows older than 3 hours (logged at debug on failure) */
void policyd_quota_pg_expire(struct rules_pg *rp);

/* ---- spam.c: SPF and DNSBL verdicts, cached per message instance ------ */
struct spam_verdict {
	enum spf_check_result spf;
	char spf_identity[12];
	char spf_domain[256];
	char spf_comment[256];
	int nzones;
	struct dnsbl_hit hits[DNSBL_MAX_ZONES];
	int spam, reject;
	int reject_zone; /* DNSBL zone that rejects, -1 = none */
	char reason[160];
	char reject_text[300];
};

/* per-connection DNS state, created lazily */
struct spam_conn {
	struct dns_resolver *resolver;
	struct spf_checker *spf;
	unsigned long made_for; /* generation of the configuration */
};

void spam_init(int cache_max);
void spam_shutdown(void);
void spam_conn_free(struct spam_conn *sc);
/* spam_evaluate - the verdict for this message (cached by instance) */
void spam_evaluate(const struct policyd_config *cfg, struct spam_conn *sc,
		   const struct policy_request *rq, struct spam_verdict *v);
/* spam_header - "X-Postroom-Verdict: <signed value>" (caller frees), or
 * NULL when it cannot be signed */
char *spam_header(const struct policyd_config *cfg, const struct policy_request *rq,
		  const struct spam_verdict *v, time_t now);

/* ---- decide.c: one request -> one action ------------------------------- */
struct policyd_conn_ctx {
	unsigned long id;
	struct spam_conn spam;
};
/* policyd_decide_init - the quotas and the rules lookups (both outlive
 * every request) */
void policyd_decide_init(struct quota *q, const struct rules_lookups *lk);
/* policyd_decide - the action for rq into out (no "action=" prefix) */
void policyd_decide(const struct policyd_config *cfg, struct policyd_conn_ctx *cc,
		    const struct policy_request *rq, struct buf *out);

/* ---- metrics --------------------------------------------------------- */
void policyd_metrics_init(const struct policyd_config *cfg);
void policyd_metric_request(const char *state, const char *action);
void policyd_metric_spf(enum spf_check_result r);
void policyd_metric_dnsbl(const char *zone, enum dnsbl_status st);
void policyd_metric_quota_refusal(enum quota_kind k);
void policyd_metric_malformed(void);
void policyd_metric_connections(int delta);

#endif
