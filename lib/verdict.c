/*
 * NAME
 *	verdict - spam flag and reason from this hop's trusted headers
 * DESCRIPTION
 *	Used by postroom-deliver. The trusted zones (see verdict.h): above
 *	the first Received: header the topmost X-Postroom-Verdict, verified
 *	with lib/sighdr.c (HMAC, queue id, age), gives spam=yes|no and the
 *	reason; above the second Received: header (milters insert below
 *	the MTA's own) Authentication-Results whose authserv-id is the
 *	configured one give spf=, dkim= (with the passing signing domains)
 *	and dmarc= (with the policy and the From domain); dmarc=fail under
 *	a policy of deliver.dmarc_spam_policies tags the message as spam.
 * NEVER
 *	trusts a verdict below the first Received: header or one that does
 *	not verify, Authentication-Results below the second Received: or of
 *	another authserv-id, or a dkim=fail alone as spam.
 */
#include "verdict.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sighdr.h"

/* verdict_add_reason - append a comma-separated reason */
static void verdict_add_reason(struct verdict_result *out, const char *r)
{
	size_t n = strlen(out->reason);

	if (n + strlen(r) + 2 >= sizeof(out->reason))
		return;
	snprintf(out->reason + n, sizeof(out->reason) - n, "%s%s", n ? "," : "", r);
}

/* verdict_skip_cfws - skip white space and (nested) comments */
static const char *verdict_skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		{
			int depth = 0;

			do {
				if (*p == '\\' && p[1] != '\0')
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')')
					depth--;
				p++;
			} while (*p != '\0' && depth > 0);
		}
	}
}

int verdict_ar_id_matches(const char *value, const char *id)
{
	const char *p = verdict_skip_cfws(value), *start = p;
	size_t len;

	while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
	       *p != '(')
		p++;
	len = (size_t)(p - start);
	return len == strlen(id) && strncasecmp(start, id, len) == 0;
}

/* verdict_next_semi - the next ';' outside comments and quoted strings */
static const char *verdict_next_semi(const char *p)
{
	int depth = 0, quoted = 0;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (quoted)
			quoted = *p != '"';
		else if (*p == '"')
			quoted = 1;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (*p == ';' && depth == 0)
			return p;
	}
	return NULL;
}

/* verdict_tok - copy a token of [A-Za-z0-9._-] (lower case) from p into
 * out; returns the end of the token */
static const char *verdict_tok(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	while (isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-') {
		if (n + 1 < outlen)
			out[n++] = (char)tolower((unsigned char)*p);
		p++;
	}
	if (outlen > 0)
		out[n] = '\0';
	return p;
}

/* verdict_word - a method or result: [A-Za-z0-9] (lower case), like
 * verdict_tok */
static const char *verdict_word(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	while (isalnum((unsigned char)*p)) {
		if (n + 1 < outlen)
			out[n++] = (char)tolower((unsigned char)*p);
		p++;
	}
	if (outlen > 0)
		out[n] = '\0';
	return p;
}

/* verdict_add_word - append a word to a space-separated list (once) */
static void verdict_add_word(char *list, size_t size, const char *w)
{
	size_t n = strlen(list), wl = strlen(w);
	const char *p = list;

	if (wl == 0)
		return;
	while ((p = strstr(p, w)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0'))
			return;
		p += wl;
	}
	if (n + wl + 2 > size)
		return;
	snprintf(list + n, size - n, "%s%s", n ? " " : "", w);
}

/* verdict_resinfo - one "method=result (comment) ptype.prop=value ..."
 * of a trusted A-R, from p up to end (a ';' or the end of the value) */
static void verdict_resinfo(const char *p, const char *end, struct verdict_result *out,
			    int *dmarc_seen)
{
	char method[16], result[16], prop[32], val[128], policy[16] = "";
	const char *q;

	p = verdict_word(verdict_skip_cfws(p), method, sizeof(method));
	if (*p == '/') /* method version */
		p = verdict_tok(p + 1, val, sizeof(val));
	p = verdict_skip_cfws(p);
	if (*p != '=' || p >= end)
		return;
	p = verdict_word(verdict_skip_cfws(p + 1), result, sizeof(result));
	if (result[0] == '\0')
		return;
	if (strcmp(method, "dkim") == 0 && out->dkim[0] == '\0')
		snprintf(out->dkim, sizeof(out->dkim), "%s", result);
	else if (strcmp(method, "spf") == 0 && out->spf_ar[0] == '\0')
		snprintf(out->spf_ar, sizeof(out->spf_ar), "%s", result);
	else if (strcmp(method, "dmarc") == 0 && !*dmarc_seen) {
		*dmarc_seen = 1;
		snprintf(out->dmarc, sizeof(out->dmarc), "%s", result);
	} else if (strcmp(method, "dmarc") == 0 || strcmp(method, "dkim") != 0)
		return;
	/* OpenDKIM: one dkim= per signature, the first one's result
	 * stands unless a later one passes */
	if (strcmp(method, "dkim") == 0 && strcmp(result, "pass") == 0)
		snprintf(out->dkim, sizeof(out->dkim), "pass");
	while (p < end && *p != '\0') {
		if (*p == '(') { /* OpenDMARC: "(p=reject dis=none)" */
			for (q = p + 1; q < end && *q != ')' && *q != '\0'; q++)
				if ((q[-1] == '(' || q[-1] == ' ') && q[0] == 'p' && q[1] == '=')
					verdict_word(q + 2, policy, sizeof(policy));
			p = verdict_skip_cfws(p);
			continue;
		}
		q = verdict_tok(p, prop, sizeof(prop));
		if (q == p) {
			p++;
			continue;
		}
		p = verdict_skip_cfws(q);
		if (*p != '=')
			continue;
		p = verdict_skip_cfws(p + 1);
		if (*p == '"')
			p++;
		if (*p == '@')
			p++;
		p = verdict_tok(p, val, sizeof(val));
		if (strcmp(method, "dkim") == 0 && strcmp(prop, "header.d") == 0 &&
		    strcmp(result, "pass") == 0)
			verdict_add_word(out->dkim_domains, sizeof(out->dkim_domains), val);
		else if (strcmp(method, "dmarc") == 0 && strcmp(prop, "header.from") == 0)
			snprintf(out->dmarc_from, sizeof(out->dmarc_from), "%s", val);
	}
	if (strcmp(method, "dmarc") == 0)
		snprintf(out->dmarc_policy, sizeof(out->dmarc_policy), "%s", policy);
}

/* verdict_ar - the results of one trusted A-R value */
static void verdict_ar(const char *value, struct verdict_result *out, int *dmarc_seen)
{
	const char *p = verdict_next_semi(value), *e;

	while (p != NULL) {
		e = verdict_next_semi(p + 1);
		verdict_resinfo(p + 1, e ? e : p + 1 + strlen(p + 1), out, dmarc_seen);
		p = e;
	}
}

/* verdict_policy_listed - policy is a word of the list (NULL = default) */
static int verdict_policy_listed(const char *list, const char *policy)
{
	char buf[256], *save = NULL;

	if (policy[0] == '\0')
		return 0;
	snprintf(buf, sizeof(buf), "%s", list ? list : "reject quarantine");
	for (char *w = strtok_r(buf, " ,\t", &save); w != NULL; w = strtok_r(NULL, " ,\t", &save))
		if (strcasecmp(w, policy) == 0)
			return 1;
	return 0;
}

/* verdict_use_policyd - the topmost verdict header of the zone */
static void verdict_use_policyd(const struct verdict_config *cfg, const char *value,
				struct verdict_result *out)
{
	struct sighdr_binding b;
	struct sighdr h;
	char *storage = NULL;
	const char *err = NULL, *v;

	memset(&b, 0, sizeof(b));
	b.queue_id = cfg->queue_id && *cfg->queue_id ? cfg->queue_id : NULL;
	b.now = cfg->now ? cfg->now : time(NULL);
	b.max_age = cfg->max_age;
	if (cfg->hmac_secret == NULL || *cfg->hmac_secret == '\0') {
		out->ignored = "no HMAC secret configured";
		return;
	}
	if (sighdr_verify(cfg->hmac_secret, SIGHDR_VERDICT, value, &b, &h, &storage, &err) < 0) {
		out->ignored = err ? err : "verdict does not verify";
		return;
	}
	out->verdict_valid = 1;
	if ((v = sighdr_get(&h, "spf")) != NULL)
		snprintf(out->spf, sizeof(out->spf), "%s", v);
	if ((v = sighdr_get(&h, "spam")) != NULL && strcmp(v, "yes") == 0) {
		out->spam = 1;
		v = sighdr_get(&h, "reason");
		verdict_add_reason(out, v && *v && strcmp(v, "none") != 0 ? v : "policyd");
		if (out->reason[0] == '\0') /* too long to keep: never spam without a reason */
			verdict_add_reason(out, "policyd");
	}
	free(storage);
}

void verdict_from_headers(const struct verdict_config *cfg, const struct verdict_header *h,
			  size_t n, struct verdict_result *out)
{
	size_t i;
	int seen_verdict = 0, received = 0, dmarc_seen = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].value == NULL)
			continue;
		if (strcasecmp(h[i].name, "Received") == 0) {
			/* the first is this hop's own; below the second an
			 * earlier hop's (or the sender's) headers */
			if (++received == 2)
				break;
		} else if (strcasecmp(h[i].name, SIGHDR_VERDICT) == 0) {
			if (!seen_verdict && received == 0)
				verdict_use_policyd(cfg, h[i].value, out);
			seen_verdict = 1;
		} else if (strcasecmp(h[i].name, "Authentication-Results") == 0 &&
			   cfg->authserv_id != NULL && *cfg->authserv_id != '\0' &&
			   verdict_ar_id_matches(h[i].value, cfg->authserv_id)) {
			verdict_ar(h[i].value, out, &dmarc_seen);
		}
	}
	if (strcmp(out->dmarc, "fail") == 0 &&
	    verdict_policy_listed(cfg->dmarc_spam_policies, out->dmarc_policy)) {
		char r[48];

		snprintf(r, sizeof(r), "dmarc=fail(p=%s)", out->dmarc_policy);
		out->spam = 1;
		verdict_add_reason(out, r);
	}
}

/* verdict_json_str - append ,"key":"value" when value is a token */
static void verdict_json_str(char *buf, size_t size, const char *key, const char *value)
{
	size_t n = strlen(buf);

	/* policyd's spf is signed, but is the sender's byte for byte
	 * otherwise: a value that is not a token is left out */
	if (value[0] == '\0' || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					      "0123456789._-") != strlen(value))
		return;
	if (n < size)
		snprintf(buf + n, size - n, "%s\"%s\":\"%s\"", n > 1 ? "," : "", key, value);
}

char *verdict_auth_json(const struct verdict_result *r)
{
	char buf[1024] = "{", doms[300] = "", dup[sizeof(r->dkim_domains)];
	const char *spf = r->spf_ar[0] ? r->spf_ar : r->spf;
	char *save = NULL;
	size_t n;

	if (spf[0] == '\0' && r->dkim[0] == '\0' && r->dmarc[0] == '\0')
		return NULL;
	verdict_json_str(buf, sizeof(buf), "spf", spf);
	verdict_json_str(buf, sizeof(buf), "dkim", r->dkim);
	if (r->dkim_domains[0] != '\0') {
		snprintf(dup, sizeof(dup), "%s", r->dkim_domains);
		for (char *w = strtok_r(dup, " ", &save); w != NULL;
		     w = strtok_r(NULL, " ", &save)) {
			n = strlen(doms);
			snprintf(doms + n, sizeof(doms) - n, "%s\"%s\"", n ? "," : "", w);
		}
		n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, "%s\"dkim_domains\":[%s]", n > 1 ? "," : "",
			 doms);
	}
	verdict_json_str(buf, sizeof(buf), "dmarc", r->dmarc);
	verdict_json_str(buf, sizeof(buf), "dmarc_policy", r->dmarc_policy);
	verdict_json_str(buf, sizeof(buf), "dmarc_from", r->dmarc_from);
	n = strlen(buf);
	snprintf(buf + n, sizeof(buf) - n, "}");
	return strdup(buf);
}
