/*
 * NAME
 *	spam - SPF and DNSBL verdicts of unauthenticated inbound mail
 * DESCRIPTION
 *	Runs SPF (libspf2, lib/spf_check.c) on the MAIL FROM domain (the
 *	HELO name for the null sender) and looks the client address up in
 *	the configured block lists (lib/dns_dnsbl.c), within
 *	policyd.check_timeout for all queries together. The verdict is
 *	cached per message (Postfix's instance attribute with the client,
 *	sender and HELO), so every RCPT of a message and its DATA request
 *	share one evaluation. Default policy: tag, not reject; a DNS
 *	failure is temperror and never rejects.
 *	spam_header() formats the verdict as postroom's signed internal
 *	header (lib/sighdr.c), bound to the queue id, client and time.
 * NEVER
 *	rejects on a DNS failure; emits an unsigned verdict.
 * PARAMETERS
 *	policyd.spf, spf_spam, spf_reject, dnsbl_zones, dns_server,
 *	dns_timeout, dns_attempts, check_timeout, instance_ttl;
 *	security.hmac_secret.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ttl_cache.h"
#include "log.h"
#include "policyd.h"
#include "sighdr.h"
#include "xalloc.h"

static struct ttl_cache *spam_cache;

void spam_init(int cache_max)
{
	spam_cache = ttl_cache_new(sizeof(struct spam_verdict), (size_t)cache_max);
}

void spam_shutdown(void) { ttl_cache_free(&spam_cache); }

void spam_conn_free(struct spam_conn *sc)
{
	spf_checker_free(&sc->spf);
	dns_resolver_free(&sc->resolver);
	sc->made_for = 0;
}

/* spam_conn_ready - the connection's resolver for this configuration */
static int spam_conn_ready(const struct policyd_config *cfg, struct spam_conn *sc)
{
	char *err = NULL;

	if (sc->resolver != NULL && sc->made_for == cfg->generation)
		return 0;
	spam_conn_free(sc);
	sc->resolver = dns_resolver_new(cfg->dns_server, cfg->dns_timeout, cfg->dns_attempts, &err);
	if (sc->resolver == NULL) {
		log_error("DNS resolver: %s", err); /* checked at start: not reached */
		free(err);
		return -1;
	}
	sc->spf = spf_checker_new(sc->resolver, cfg->hostname);
	sc->made_for = cfg->generation;
	return 0;
}

/* spam_key - the cache key of a message */
static char *spam_key(const struct policy_request *rq)
{
	return xasprintf("%s|%s|%s|%s", rq->instance ? rq->instance : "",
			 rq->client_address ? rq->client_address : "", rq->sender ? rq->sender : "",
			 rq->helo_name ? rq->helo_name : "");
}

/* spam_add_reason - append to the reason list */
static void spam_add_reason(struct spam_verdict *v, const char *what, const char *a)
{
	size_t n = strlen(v->reason);

	snprintf(v->reason + n, sizeof(v->reason) - n, "%s%s=%.100s", n ? "," : "", what, a);
}

/* spam_decide - tag and reject decisions from the raw results */
static void spam_decide(const struct policyd_config *cfg, struct spam_verdict *v)
{
	int z;

	if (cfg->spf_enabled && (cfg->spf_spam_mask & (1u << v->spf))) {
		v->spam = 1;
		spam_add_reason(v, "spf", spf_result_name(v->spf));
	}
	if (cfg->spf_enabled && (cfg->spf_reject_mask & (1u << v->spf))) {
		v->reject = 1;
		snprintf(v->reject_text, sizeof(v->reject_text),
			 "550 5.7.23 SPF %s for %.100s: %.160s", spf_result_name(v->spf),
			 v->spf_domain, v->spf_comment);
	}
	for (z = 0; z < v->nzones; z++) {
		if (v->hits[z].status != DNSBL_LISTED)
			continue;
		v->spam = 1;
		spam_add_reason(v, "dnsbl", cfg->dnsbl.zones[z].name);
		if (cfg->dnsbl.zones[z].action == DNSBL_REJECT && !v->reject) {
			v->reject = 1;
			v->reject_zone = z; /* the text names the client: per request */
		}
	}
}

/* spam_run - evaluate without the cache */
static void spam_run(const struct policyd_config *cfg, struct spam_conn *sc,
		     const struct policy_request *rq, struct spam_verdict *v)
{
	const char *ip = rq->client_address ? rq->client_address : "";
	struct spf_check_outcome o;
	int z;

	memset(v, 0, sizeof(*v));
	v->spf = SPFR_NONE;
	v->reject_zone = -1;
	v->nzones = cfg->dnsbl.nzones;
	if (spam_conn_ready(cfg, sc) < 0) {
		v->spf = SPFR_TEMPERROR;
		for (z = 0; z < v->nzones; z++)
			v->hits[z].status = DNSBL_ERROR;
		return;
	}
	dns_resolver_set_budget(sc->resolver, cfg->check_timeout);
	if (cfg->spf_enabled) {
		spf_check(sc->spf, ip, rq->helo_name, rq->sender ? rq->sender : "", &o);
		v->spf = o.result;
		snprintf(v->spf_identity, sizeof(v->spf_identity), "%s", o.identity);
		snprintf(v->spf_domain, sizeof(v->spf_domain), "%s", o.domain);
		snprintf(v->spf_comment, sizeof(v->spf_comment), "%s", o.comment);
		policyd_metric_spf(v->spf);
	}
	if (v->nzones > 0)
		dnsbl_check(sc->resolver, &cfg->dnsbl, ip, v->hits);
	for (z = 0; z < v->nzones; z++)
		policyd_metric_dnsbl(cfg->dnsbl.zones[z].name, v->hits[z].status);
	dns_resolver_set_budget(sc->resolver, 0);
	spam_decide(cfg, v);
}

void spam_evaluate(const struct policyd_config *cfg, struct spam_conn *sc,
		   const struct policy_request *rq, struct spam_verdict *v)
{
	char *key = spam_key(rq);
	time_t now = time(NULL);

	if (!ttl_cache_get(spam_cache, key, v, now)) {
		spam_run(cfg, sc, rq, v);
		ttl_cache_put(spam_cache, key, v, cfg->instance_ttl, now);
	}
	if (v->reject && v->reject_zone >= 0 && v->reject_zone < v->nzones)
		snprintf(v->reject_text, sizeof(v->reject_text),
			 "554 5.7.1 Service unavailable; client [%.46s] blocked using %.200s",
			 rq->client_address ? rq->client_address : "",
			 cfg->dnsbl.zones[v->reject_zone].name);
	free(key);
}

/* spam_dnsbl_field - "zone=code,zone=temperror" or "none" */
static void spam_dnsbl_field(const struct policyd_config *cfg, const struct spam_verdict *v,
			     struct buf *b)
{
	int z;

	for (z = 0; z < v->nzones; z++) {
		const char *what = v->hits[z].status == DNSBL_LISTED  ? v->hits[z].code
				   : v->hits[z].status == DNSBL_ERROR ? "temperror"
								      : NULL;

		if (what != NULL)
			buf_printf(b, "%s%s=%s", b->len ? "," : "", cfg->dnsbl.zones[z].name, what);
	}
	if (b->len == 0)
		buf_append_str(b, "none");
}

char *spam_header(const struct policyd_config *cfg, const struct policy_request *rq,
		  const struct spam_verdict *v, time_t now)
{
	struct sighdr h;
	struct buf dnsbl = BUF_INIT;
	char *value, *out;
	size_t n = 0;

	spam_dnsbl_field(cfg, v, &dnsbl);
	memset(&h, 0, sizeof(h));
#define F(nm, val)                         \
	do {                               \
		h.fields[n].name = (nm);   \
		h.fields[n].value = (val); \
		n++;                       \
	} while (0)
	F("spam", v->spam ? "yes" : "no");
	F("reason", v->reason[0] ? v->reason : "none");
	F("spf", cfg->spf_enabled ? spf_result_name(v->spf) : "off");
	if (cfg->spf_enabled) {
		F("spf_identity", v->spf_identity[0] ? v->spf_identity : "mailfrom");
		F("spf_domain", v->spf_domain);
		F("spf_detail", v->spf_comment);
	}
	F("dnsbl", buf_cstr(&dnsbl));
	F("envelope_from", rq->sender ? rq->sender : "");
	F("client", rq->client_address ? rq->client_address : "");
	F("helo", rq->helo_name ? rq->helo_name : "");
	F("receiver", cfg->hostname);
	if (rq->queue_id != NULL && *rq->queue_id != '\0')
		F("qid", rq->queue_id);
#undef F
	h.nfields = n;
	value = sighdr_sign(cfg->hmac_secret, SIGHDR_VERDICT, &h, now);
	buf_free(&dnsbl);
	if (value == NULL)
		return NULL;
	out = xasprintf("%s: %s", SIGHDR_VERDICT, value);
	free(value);
	return out;
}
