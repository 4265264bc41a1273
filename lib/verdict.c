/*
 * NAME
 *	verdict - spam flag and reason from this hop's trusted headers
 * DESCRIPTION
 *	Used by postroom-deliver. The trusted zone is the headers above the
 *	first Received: header (see verdict.h). Within it: the topmost
 *	X-Postroom-Verdict, verified with lib/sighdr.c (HMAC, queue id,
 *	age), gives spam=yes|no and the reason; Authentication-Results
 *	headers whose authserv-id is the configured one give dkim=/dmarc=
 *	results, and dmarc=fail tags the message as spam.
 * NEVER
 *	trusts a header below the first Received: header, a verdict that
 *	does not verify, or Authentication-Results of another authserv-id.
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

/* verdict_ar_id_matches - the authserv-id of an A-R value equals id */
static int verdict_ar_id_matches(const char *value, const char *id)
{
	const char *p = verdict_skip_cfws(value), *start = p;
	size_t len;

	while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
	       *p != '(')
		p++;
	len = (size_t)(p - start);
	return len == strlen(id) && strncasecmp(start, id, len) == 0;
}

/* verdict_ar_result - the result of method ("dkim") in an A-R value:
 * the first "method=result" after the authserv-id, copied into out */
static void verdict_ar_result(const char *value, const char *method, char *out, size_t outlen)
{
	const char *p = strchr(value, ';');
	size_t mlen = strlen(method);

	while (p != NULL) {
		const char *q = verdict_skip_cfws(p + 1);

		if (strncasecmp(q, method, mlen) == 0) {
			const char *r = verdict_skip_cfws(q + mlen);

			if (*r == '=') {
				size_t n = 0;

				r = verdict_skip_cfws(r + 1);
				while (isalnum((unsigned char)r[n]) && n + 1 < outlen) {
					out[n] = (char)tolower((unsigned char)r[n]);
					n++;
				}
				out[n] = '\0';
				if (out[0] != '\0')
					return;
			}
		}
		p = strchr(p + 1, ';');
	}
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
	int seen_verdict = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++) {
		if (h[i].name == NULL || h[i].value == NULL)
			continue;
		if (strcasecmp(h[i].name, "Received") == 0)
			break; /* below this line the sender wrote everything */
		if (strcasecmp(h[i].name, SIGHDR_VERDICT) == 0) {
			if (!seen_verdict)
				verdict_use_policyd(cfg, h[i].value, out);
			seen_verdict = 1;
		} else if (strcasecmp(h[i].name, "Authentication-Results") == 0 &&
			   cfg->authserv_id != NULL && *cfg->authserv_id != '\0' &&
			   verdict_ar_id_matches(h[i].value, cfg->authserv_id)) {
			if (out->dkim[0] == '\0')
				verdict_ar_result(h[i].value, "dkim", out->dkim, sizeof(out->dkim));
			if (out->dmarc[0] == '\0')
				verdict_ar_result(h[i].value, "dmarc", out->dmarc,
						  sizeof(out->dmarc));
		}
	}
	if (strcmp(out->dmarc, "fail") == 0) {
		out->spam = 1;
		verdict_add_reason(out, "dmarc=fail");
	}
}
