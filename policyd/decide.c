/*
 * NAME
 *	decide - one policy request in, one access(5) action out
 * DESCRIPTION
 *	By protocol_state:
 *	  MAIL  the sender rules (lib/rules.c); quota room for one message.
 *	  RCPT  sender and recipient rules (with the storage quota: 452
 *	        4.2.2 Mailbox full, SIZE= from the size attribute); for
 *	        authenticated users the recipient quota (counted here); for
 *	        unauthenticated mail on the MX role, SPF and DNSBL (cached
 *	        per message; rejected only where configured).
 *	  DATA  authenticated: the message quota (counted here);
 *	        unauthenticated on the MX role: PREPEND of the signed
 *	        verdict header, once per message.
 *	  else  DUNNO.
 *	Accept is DUNNO (the MTA's other restrictions still run), a rules
 *	rejection is its 5NN code, a lookup failure 451 4.3.0, a quota
 *	refusal 450 4.7.1, a full mailbox 452 4.2.2.
 * NEVER
 *	answers OK (that would skip the MTA's own relay checks); rejects
 *	because DNS failed.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "policyd.h"
#include "xalloc.h"

static struct quota *decide_quota;
static const struct rules_lookups *decide_lookups;

void policyd_decide_init(struct quota *q, const struct rules_lookups *lk)
{
	decide_quota = q;
	decide_lookups = lk;
}

/* decide_atext - an RFC 5321 atext character or '.' */
static int decide_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* decide_path - "<addr>" from a policy attribute. Postfix sends the
 * internal (unquoted) form; a local part that is not a dot-atom is
 * quoted again, as Postfix's quote_821_local() does. */
static char *decide_path(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL, *p;
	struct buf b = BUF_INIT;
	int quote = 0;

	if (at == NULL || at == addr)
		return xasprintf("<%s>", addr ? addr : "");
	for (p = addr; p < at; p++)
		if (!decide_atext((unsigned char)*p) ||
		    (*p == '.' && (p == addr || p[1] == '.' || p + 1 == at)))
			quote = 1;
	if (!quote)
		return xasprintf("<%s>", addr);
	buf_append_str(&b, "<\"");
	for (p = addr; p < at; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_char(&b, '\\');
		buf_append_char(&b, *p);
	}
	buf_printf(&b, "\"%s>", at);
	return buf_steal(&b);
}

/* decide_verdict_action - the action of a non-accept rules verdict */
static void decide_verdict_action(const struct rules_verdict *v, struct buf *out)
{
	if (v->kind == RULES_TEMPFAIL && v->code && v->enhanced && v->text)
		buf_printf(out, "%s %s %s", v->code, v->enhanced, v->text); /* 452 4.2.2 */
	else if (v->kind == RULES_TEMPFAIL)
		buf_printf(out, "451 4.3.0 %s",
			   v->text ? v->text : "Temporary lookup failure, try again later");
	else
		buf_printf(out, "%s %s %s", v->code ? v->code : "550",
			   v->enhanced ? v->enhanced : "5.7.1",
			   v->text ? v->text : "Rejected by policy");
}

/* decide_login - lower-case SASL login (caller frees), NULL when none */
static char *decide_login(const struct policy_request *rq)
{
	char *l, *p;

	if (rq->sasl_username == NULL || *rq->sasl_username == '\0')
		return NULL;
	l = xstrdup(rq->sasl_username);
	for (p = l; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return l;
}

/* decide_quota_step - charge n of kind (n = 0: is there room for one?);
 * 0 ok, else the action is written */
static int decide_quota_step(const char *login, enum quota_kind kind, long n, struct buf *out)
{
	long limit = 0;
	char *err = NULL;
	enum quota_result r;

	r = quota_charge(decide_quota, login, kind, n, time(NULL), &limit, &err);
	if (r == QUOTA_OK)
		return 0;
	if (r == QUOTA_ERROR) {
		log_warn("quota of %s cannot be checked: %s", login, err ? err : "?");
		free(err);
		buf_append_str(out, "451 4.3.0 Temporary lookup failure, try again later");
		return -1;
	}
	policyd_metric_quota_refusal(kind);
	log_info("quota: %s over %ld %s per hour", login, limit,
		 kind == QUOTA_MESSAGES ? "messages" : "recipients");
	buf_printf(out,
		   "450 4.7.1 Sending quota exceeded: at most %ld %s per hour, try again later",
		   limit, kind == QUOTA_MESSAGES ? "messages" : "recipients");
	return -1;
}

/* decide_spam_applies - unauthenticated mail arriving on the MX role */
static int decide_spam_applies(const struct policyd_config *cfg, const struct rules_session *s)
{
	return s->role == RULES_ROLE_MX && (s->auth_user == NULL || *s->auth_user == '\0') &&
	       (cfg->spf_enabled || cfg->dnsbl.nzones > 0);
}

static void decide_mail(const struct policyd_config *cfg, const struct rules_lookups *lk,
			const struct rules_session *s, const struct policy_request *rq,
			struct buf *out)
{
	struct rules_verdict v;
	char *sender = decide_path(rq->sender);
	long long size = rq->size && *rq->size ? atoll(rq->size) : -1;

	rules_check_mail(&cfg->rules, lk, s, sender, size > 0 ? size : -1, &v);
	free(sender);
	if (v.kind != RULES_ACCEPT) {
		decide_verdict_action(&v, out);
		return;
	}
	if (s->auth_user != NULL && *s->auth_user != '\0') {
		char *login = decide_login(rq);
		int over = decide_quota_step(login, QUOTA_MESSAGES, 0, out);

		free(login);
		if (over)
			return;
	}
	buf_append_str(out, "DUNNO");
}

static void decide_rcpt(const struct policyd_config *cfg, const struct rules_lookups *lk,
			struct policyd_conn_ctx *cc, const struct rules_session *s,
			const struct policy_request *rq, struct buf *out)
{
	struct rules_verdict v;
	char *path;
	long long size = rq->size && *rq->size ? atoll(rq->size) : -1;

	decide_mail(cfg, lk, s, rq, out);
	if (strcmp(buf_cstr(out), "DUNNO") != 0)
		return;
	buf_truncate(out, 0);
	path = decide_path(rq->recipient);
	rules_check_rcpt_size(&cfg->rules, lk, s, path, size > 0 ? size : -1, &v);
	free(path);
	if (v.kind != RULES_ACCEPT) {
		if (v.relay_attempt)
			log_warn("conn %lu: relay attempt from %s [%s] to <%s> refused", cc->id,
				 rq->client_name ? rq->client_name : "unknown",
				 rq->client_address ? rq->client_address : "",
				 rq->recipient ? rq->recipient : "");
		decide_verdict_action(&v, out);
		return;
	}
	if (s->auth_user != NULL && *s->auth_user != '\0') {
		char *login = decide_login(rq);
		int over = decide_quota_step(login, QUOTA_RECIPIENTS, 1, out);

		free(login);
		if (over)
			return;
	} else if (decide_spam_applies(cfg, s)) {
		struct spam_verdict sv;

		spam_evaluate(cfg, &cc->spam, rq, &sv);
		if (sv.reject) {
			log_info("conn %lu: %s from [%s] refused: %s", cc->id,
				 rq->sender ? rq->sender : "",
				 rq->client_address ? rq->client_address : "", sv.reject_text);
			buf_append_str(out, sv.reject_text);
			return;
		}
	}
	buf_append_str(out, "DUNNO");
}

static void decide_data(const struct policyd_config *cfg, struct policyd_conn_ctx *cc,
			const struct rules_session *s, const struct policy_request *rq,
			struct buf *out)
{
	if (s->auth_user != NULL && *s->auth_user != '\0') {
		char *login = decide_login(rq);
		int over = decide_quota_step(login, QUOTA_MESSAGES, 1, out);

		free(login);
		if (!over)
			buf_append_str(out, "DUNNO");
		return;
	}
	if (decide_spam_applies(cfg, s)) {
		struct spam_verdict sv;
		char *hdr;

		spam_evaluate(cfg, &cc->spam, rq, &sv);
		if (sv.reject) {
			buf_append_str(out, sv.reject_text);
			return;
		}
		hdr = spam_header(cfg, rq, &sv, time(NULL));
		if (hdr != NULL) {
			log_info("conn %lu: %s%s from [%s]: spam=%s reason=%s", cc->id,
				 rq->queue_id ? rq->queue_id : "", rq->queue_id ? ":" : "",
				 rq->client_address ? rq->client_address : "",
				 sv.spam ? "yes" : "no", sv.reason[0] ? sv.reason : "none");
			buf_printf(out, "PREPEND %s", hdr);
			free(hdr);
			return;
		}
		log_error("conn %lu: cannot sign the verdict header (security.hmac_secret?)",
			  cc->id);
	}
	buf_append_str(out, "DUNNO");
}

void policyd_decide(const struct policyd_config *cfg, struct policyd_conn_ctx *cc,
		    const struct policy_request *rq, struct buf *out)
{
	const struct rules_lookups *lk = decide_lookups;
	struct rules_session s;
	const char *state = rq->protocol_state ? rq->protocol_state : "";

	memset(&s, 0, sizeof(s));
	s.role = rules_role_resolve(cfg->port_roles, rq->policy_context, rq->server_port);
	s.auth_user = rq->sasl_username;
	s.smtputf8 = rq->smtputf8 != NULL && strcasecmp(rq->smtputf8, "yes") == 0;
	buf_truncate(out, 0);
	if (strcasecmp(state, "RCPT") == 0)
		decide_rcpt(cfg, lk, cc, &s, rq, out);
	else if (strcasecmp(state, "MAIL") == 0)
		decide_mail(cfg, lk, &s, rq, out);
	else if (strcasecmp(state, "DATA") == 0)
		decide_data(cfg, cc, &s, rq, out);
	else
		buf_append_str(out, "DUNNO");
}
