/*
 * NAME
 *	delivery - the delivery core of postroom-deliver-store and postroom-lmtpd
 * DESCRIPTION
 *	What both storing programs do with a message once their own reader
 *	has spooled it, written once: the per-delivery prefix and the
 *	identity (store_spool_finish), the limit (a message over
 *	limits.message_size_max in CRLF size: "... of N bytes exceeds the
 *	limit of M bytes"; an attachment over limits.attachment_size_max is
 *	not extracted, never bounced: the milter and Exim's ACL refuse it in
 *	the SMTP session, and what reaches deliver around them is stored
 *	flagged in parse_problem), the parse (lib/mime_parse), the store request
 *	(lib/store_mail), the one log line per delivery and the warnings of
 *	a stored message. The programs keep what differs: how the message
 *	is read, how it is stored (one transaction, or lmtpd's group
 *	commit) and what the MTA is told (pipe(8) exit statuses, LMTP
 *	replies). The application is told by the events outbox, written in
 *	the storing transaction and sent by postroom-webhookd; the once-only
 *	HTTP POST from here is gone (deliver.notify_* are webhookd's now).
 * NEVER
 *	exits, replies, touches the database or makes an HTTP request.
 * CONFIGURATION
 *	limits.message_size_max, limits.attachment_size_max,
 *	limits.mime_parts_max,
 *	rules.recipient_validation, rules.subaddress_delimiters,
 *	rules.internal_header_max_age, rules.postmaster_domain,
 *	rules.postmaster_address, rules.suppression_per_domain,
 *	rules.suppression_soft_count, rules.suppression_soft_window,
 *	security.hmac_secret,
 *	deliver.trusted_authserv_id,
 *	blobs.* (delivery_blobs_open: the object store of blobs.backend = s3,
 *	blobs.timeout checked against deliver.timeout)
 */
#include "delivery.h"

#include <stdlib.h>
#include <string.h>

#include "blob_store.h"
#include "log.h"
#include "rules.h"
#include "xalloc.h"

const char *delivery_conf_str(const struct conf *cfg, const char *name)
{
	const char *v = conf_declared(name) ? conf_str(cfg, name) : NULL;

	return v && *v ? v : NULL;
}

void delivery_conf_read(const struct conf *cfg, struct delivery_conf *dc)
{
	struct rules_config rules;

	/* the rules the milter and policyd apply, read the same way */
	rules_config_from_conf(cfg, &rules);
	memset(dc, 0, sizeof(*dc));
	dc->size_max = rules.message_size_max;
	dc->recipient_validation = rules.recipient_validation;
	dc->subaddress_delims = rules.subaddress_delims;
	dc->attachment_max = conf_int(cfg, "limits.attachment_size_max");
	dc->parts_max = conf_int(cfg, "limits.mime_parts_max");
	dc->header_max_age = (long)conf_int(cfg, "rules.internal_header_max_age");
	dc->hmac_secret = delivery_conf_str(cfg, "security.hmac_secret");
	dc->authserv_id = delivery_conf_str(cfg, "deliver.trusted_authserv_id");
	dc->dmarc_spam_policies = conf_declared("deliver.dmarc_spam_policies")
					  ? conf_str(cfg, "deliver.dmarc_spam_policies")
					  : NULL;
	dc->postmaster_domain = delivery_conf_str(cfg, "rules.postmaster_domain");
	dc->postmaster_address = delivery_conf_str(cfg, "rules.postmaster_address");
	dc->suppression_per_domain = conf_bool(cfg, "rules.suppression_per_domain");
	dc->soft_bounce_count = (int)conf_int(cfg, "rules.suppression_soft_count");
	dc->soft_bounce_window = (int)conf_int(cfg, "rules.suppression_soft_window");
}

int delivery_blobs_open(const struct conf *cfg, struct delivery_conf *dc, char **error_r)
{
	struct blob_store_conf bc;
	long limit = conf_declared("deliver.timeout") ? (long)conf_int(cfg, "deliver.timeout") : 0;
	int status = BLOB_CONFIG;

	dc->blobs = NULL;
	blob_store_conf_read(cfg, &bc);
	dc->blob_min_size = bc.min_size;
	if (bc.backend == NULL || strcmp(bc.backend, "s3") != 0)
		return BLOB_OK;
	if (limit > 0 && bc.timeout >= limit) {
		*error_r =
			xasprintf("blobs.timeout (%ld s) must be below deliver.timeout (%ld s):"
				  " pipe(8) would kill postroom-deliver in the middle of an upload",
				  bc.timeout, limit);
		return BLOB_CONFIG;
	}
	if ((dc->blobs = blob_store_open(&bc, NULL, &status, error_r)) == NULL)
		return status;
	return BLOB_OK;
}

void delivery_blobs_close(struct delivery_conf *dc) { blob_store_close(&dc->blobs); }

void delivery_init(struct delivery *d, const struct delivery_conf *dc, const char *log_prefix)
{
	memset(d, 0, sizeof(*d));
	d->dc = dc;
	d->log_prefix = log_prefix;
	d->sp.fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &d->start);
	d->lap = d->start;
}

void delivery_free(struct delivery *d)
{
	mime_msg_free(&d->m);
	store_spool_close(&d->sp);
	xfree(&d->error);
}

/* delivery_us - microseconds from *from to now */
static long delivery_us(const struct timespec *from, struct timespec *now_r)
{
	clock_gettime(CLOCK_MONOTONIC, now_r);
	return (long)((now_r->tv_sec - from->tv_sec) * 1000000L +
		      (now_r->tv_nsec - from->tv_nsec) / 1000);
}

long delivery_lap(struct delivery *d)
{
	struct timespec now;
	long us = delivery_us(&d->lap, &now);

	d->lap = now;
	return us;
}

long delivery_elapsed(const struct delivery *d)
{
	struct timespec now;

	return delivery_us(&d->start, &now);
}

enum delivery_step delivery_too_big(struct delivery *d, const char *what, long long size,
				    long long max)
{
	free(d->error);
	d->error = xasprintf("%s of %lld bytes exceeds the limit of %lld bytes", what, size, max);
	return DELIVERY_TOO_BIG;
}

enum delivery_step delivery_prepare(struct delivery *d, int too_big,
				    const struct store_envelope *env)
{
	const struct delivery_conf *dc = d->dc;
	struct mime_limits lim = { dc->attachment_max, (size_t)dc->parts_max };

	if (too_big)
		return delivery_too_big(d, "message", d->sp.size, dc->size_max);
	if (store_spool_finish(&d->sp, env, &d->error) < 0)
		return DELIVERY_UNREADABLE;
	if (d->sp.size > dc->size_max)
		return delivery_too_big(d, "message", d->sp.size, dc->size_max);
	d->us_hash = delivery_lap(d);
	if (mime_parse(d->sp.fd, d->sp.start, -1, d->sp.id, &lim, &d->m, &d->error) < 0)
		return DELIVERY_UNPARSABLE;
	d->us_parse = delivery_lap(d);
	if (d->m->parse_problem)
		log_warn("%smessage stored with a parse problem: %s", d->log_prefix,
			 d->m->parse_problem);
	return DELIVERY_READY;
}

void delivery_request(const struct delivery_conf *dc, const struct store_envelope *env, int sent,
		      const char *sasl_user, const char *queue_id, struct store_request *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->env = env;
	rq->sent = sent;
	rq->sasl_user = sasl_user;
	rq->recipient_validation = dc->recipient_validation;
	rq->subaddress_delims = dc->subaddress_delims;
	rq->hmac_secret = dc->hmac_secret;
	rq->header_max_age = dc->header_max_age;
	rq->queue_id = queue_id;
	rq->authserv_id = dc->authserv_id;
	rq->dmarc_spam_policies = dc->dmarc_spam_policies;
	rq->postmaster_address = dc->postmaster_address;
	rq->suppression_scope = dc->suppression_per_domain ? "domain" : "user";
	rq->soft_bounce_count = dc->soft_bounce_count;
	rq->soft_bounce_window = dc->soft_bounce_window;
	rq->blobs = dc->blobs;
	rq->blob_min_size = dc->blob_min_size;
}

void delivery_log(const struct delivery *d, const struct delivery_report *r, const char *result,
		  const char *detail)
{
	const char *id = r->email_id && r->email_id[0] ? r->email_id : "-";

	log_info("%s%smessage-id=<%.200s> email=%s size=%lld from=<%.200s> client=%.64s"
		 " rcpts=%.1000s%s attachments=%zu ms=%ld%s%s result=%s%s%.500s",
		 d->log_prefix, r->head ? r->head : "", d->m ? d->m->message_id : "", id,
		 d->sp.size, r->sender ? r->sender : "", r->client ? r->client : "-", r->rcpts,
		 r->rcpts_note ? r->rcpts_note : "", d->m ? d->m->natts : 0,
		 delivery_elapsed(d) / 1000, r->tail ? " " : "", r->tail ? r->tail : "", result,
		 detail ? ": " : "", detail ? detail : "");
}

const char *delivery_result(const struct store_result *res)
{
	if (!res->duplicate)
		return "delivered";
	return res->newly_delivered ? "delivered (already stored)" : "already delivered";
}

void delivery_log_notes(const struct delivery *d, const char *sasl_user,
			const struct store_result *res)
{
	const char *p = d->log_prefix;
	size_t i;

	for (i = 0; i < res->nunknown; i++)
		log_warn("%srecipient <%s> has no user: stored unlinked (linked when the address"
			 " is created)",
			 p, res->unknown[i]);
	if (sasl_user && !res->sent_by_linked)
		log_warn("%sauthenticated user %s is not a known user: sent-by left empty", p,
			 sasl_user);
	else if (res->sent_by_note && !sasl_user)
		log_warn("%ssubmission header ignored: %s", p, res->sent_by_note);
	if (res->verdict_note)
		log_warn("%sverdict header ignored: %s", p, res->verdict_note);
	if (res->blobs_reuploaded)
		log_warn("%s%d object%s deleted by blobs gc before the commit: uploaded again", p,
			 res->blobs_reuploaded, res->blobs_reuploaded == 1 ? "" : "s");
	if (res->blob_recheck_error)
		log_error("%sobject store: %s", p, res->blob_recheck_error);
}
