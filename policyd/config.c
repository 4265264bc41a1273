/*
 * NAME
 *	config - policyd's view of postroom.conf, swapped on SIGHUP
 * DESCRIPTION
 *	Everything the request path needs is read once from the parameter
 *	table into struct policyd_config and checked (zone list, SPF result
 *	names, DNS server, secret). The current configuration is reference
 *	counted: a request keeps the one it started with, a reload installs
 *	a new one and the old one goes away with its last request.
 * NEVER
 *	lets a request see a half-built configuration.
 * PARAMETERS
 *	policyd.*, rules.*, limits.message_size_max, security.hmac_secret.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "policyd.h"
#include "xalloc.h"

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static struct policyd_config *config_current;

int policyd_spf_mask(const char *list, unsigned *mask_r)
{
	char *copy, *save = NULL, *tok;
	int rc = 0;

	*mask_r = 0;
	if (list == NULL)
		return 0;
	copy = xstrdup(list);
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		int r = spf_result_parse(tok);

		if (r < 0 || r == SPFR_TEMPERROR || r == SPFR_PASS) {
			rc = -1; /* a DNS failure never rejects; pass never is spam */
			break;
		}
		*mask_r |= 1u << r;
	}
	free(copy);
	return rc;
}

static void config_free(struct policyd_config *c)
{
	conf_free(&c->conf);
	free(c);
}

struct policyd_config *policyd_config_new(struct conf *conf, char **error_r)
{
	struct policyd_config *c = xcalloc(1, sizeof(*c));
	const char *host = conf_str(conf, "policyd.hostname");

	static unsigned long generations;

	c->conf = conf;
	c->refs = 1;
	c->generation = __atomic_add_fetch(&generations, 1, __ATOMIC_RELAXED);
	rules_config_from_conf(conf, &c->rules);
	c->port_roles = conf_str(conf, "rules.port_roles");
	c->line_max = (size_t)conf_int(conf, "policyd.line_max");
	c->request_max = (size_t)conf_int(conf, "policyd.request_max");
	c->idle_timeout = (int)conf_int(conf, "policyd.idle_timeout");
	c->request_timeout = (int)conf_int(conf, "policyd.request_timeout");
	c->max_connections = (int)conf_int(conf, "policyd.max_connections");
	c->cache_ttl = (int)conf_int(conf, "policyd.cache_ttl");
	c->cache_negative_ttl = (int)conf_int(conf, "policyd.cache_negative_ttl");
	c->quota.messages_per_hour = (long)conf_int(conf, "policyd.quota_messages");
	c->quota.recipients_per_hour = (long)conf_int(conf, "policyd.quota_recipients");
	c->quota.limits_ttl = c->cache_ttl;
	c->quota_flush_ms = (int)conf_int(conf, "policyd.quota_flush_interval");
	c->spf_enabled = conf_bool(conf, "policyd.spf");
	c->dns_server = conf_str(conf, "policyd.dns_server");
	c->dns_timeout = (int)conf_int(conf, "policyd.dns_timeout");
	c->dns_attempts = (int)conf_int(conf, "policyd.dns_attempts");
	c->check_timeout = (int)conf_int(conf, "policyd.check_timeout");
	c->instance_ttl = (int)conf_int(conf, "policyd.instance_ttl");
	c->hmac_secret = conf_str(conf, "security.hmac_secret");
	if (host != NULL && *host != '\0')
		snprintf(c->hostname, sizeof(c->hostname), "%s", host);
	else if (gethostname(c->hostname, sizeof(c->hostname) - 1) < 0)
		snprintf(c->hostname, sizeof(c->hostname), "localhost");
	if (c->port_roles != NULL && rules_role_map_check(c->port_roles, error_r) < 0)
		goto fail;
	if (policyd_spf_mask(conf_str(conf, "policyd.spf_spam"), &c->spf_spam_mask) < 0) {
		*error_r = xasprintf("policyd.spf_spam: expected SPF results among fail, softfail, "
				     "neutral, none, permerror");
		goto fail;
	}
	if (policyd_spf_mask(conf_str(conf, "policyd.spf_reject"), &c->spf_reject_mask) < 0) {
		*error_r =
			xasprintf("policyd.spf_reject: expected SPF results among fail, softfail, "
				  "neutral, none, permerror (temperror is never refused)");
		goto fail;
	}
	if (dnsbl_parse(conf_str(conf, "policyd.dnsbl_zones"), &c->dnsbl, error_r) < 0 ||
	    dns_check_server_spec(c->dns_server, error_r) < 0)
		goto fail;
	if ((c->spf_enabled || c->dnsbl.nzones > 0) &&
	    (c->hmac_secret == NULL || strlen(c->hmac_secret) < 32)) {
		*error_r = xasprintf(
			"security.hmac_secret must be set (32+ characters) to sign "
			"spam verdicts (or turn off policyd.spf and policyd.dnsbl_zones)");
		goto fail;
	}
	return c;
fail:
	c->conf = NULL; /* stays the caller's */
	free(c);
	return NULL;
}

struct policyd_config *policyd_config_get(void)
{
	struct policyd_config *c;

	pthread_mutex_lock(&config_lock);
	c = config_current;
	c->refs++;
	pthread_mutex_unlock(&config_lock);
	return c;
}

void policyd_config_put(struct policyd_config *c)
{
	int last;

	if (c == NULL)
		return;
	pthread_mutex_lock(&config_lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&config_lock);
	if (last)
		config_free(c);
}

void policyd_config_install(struct policyd_config *c)
{
	struct policyd_config *old;

	pthread_mutex_lock(&config_lock);
	old = config_current;
	config_current = c;
	pthread_mutex_unlock(&config_lock);
	policyd_config_put(old);
}
