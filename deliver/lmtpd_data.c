/*
 * NAME
 *	lmtpd_data - DATA: spool, then the delivery core, one reply per recipient
 * DESCRIPTION
 *	The message after "354" is dot-unstuffed (lmtpd_proto) straight into
 *	a memory file (lib/store_spool's writer) in 64 KiB pieces: a large
 *	message costs no copy in the heap, and COPY streams it to PostgreSQL
 *	from there (lib/store_mail). The delivery core (delivery.c, shared
 *	with postroom-deliver-store) checks the limits, parses, builds the
 *	store requests, logs and builds the notification; the status codes
 *	are those of postroom-deliver: over limits.message_size_max -> 552
 *	5.3.4 (an attachment over limits.attachment_size_max is stored
 *	without it, flagged, never refused after DATA); a database
 *	problem -> 451 4.3.0; beyond what PostgreSQL can store -> 554 5.3.4;
 *	the object store unreachable -> 451 4.3.0, refusing its keys or
 *	bucket -> 451 4.3.5 (lib/store_mail: store_result.blob_status).
 *	Those uploads run here, in the session's thread, before the message
 *	is handed to the group (data_upload): the group's transaction only
 *	inserts rows, so a slow object store delays no other message.
 *	All ordinary recipients are stored in one transaction, which the
 *	message shares with the others that sessions finish at the same
 *	time (group commit, lmtpd_group); sent-copy markers (X-POSTROOM-SENT or
 *	rules.sent_recipient) are stored as deliver --sent stores them (the
 *	same message: found by its identity). The application hears of it
 *	from the events outbox (written in the same transaction; sent by
 *	postroom-webhookd), never by a request from here.
 *	A connection lost during DATA stores nothing. Before its "354" a
 *	message is charged against the memory budget (lmtpd_budget: by SIZE=,
 *	growing with the data); no room in time -> 451 4.3.2 to DATA, or, for
 *	a message being read, the rest discarded and 451 4.3.2 per recipient.
 *	The charge is released on every path.
 * NEVER
 *	replies 250 before the commit; bounces because of a database outage;
 *	calls back into the session (it reads and replies on the connection).
 * CONFIGURATION
 *	lmtpd.timeout, lmtpd.group_commit, lmtpd.memory_budget,
 *	lmtpd.memory_wait, and what delivery.c reads
 *	(limits.*, rules.*, security.hmac_secret, deliver.trusted_authserv_id),
 *	through lmtpd_conf
 */
#include "lmtpd_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_store.h"
#include "delivery.h"
#include "log.h"
#include "metrics.h"
#include "store_mail.h"
#include "store_spool.h"
#include "xalloc.h"

#include "lmtpd_budget.h"
#include "lmtpd_conf.h"
#include "lmtpd_group.h"
#include "lmtpd_pool.h"
#include "lmtpd_proto.h"

/* What one DATA transaction carries through its steps. */
struct data_tx {
	struct lmtpd_server *srv;
	struct lmtpd_conn *c;
	const struct lmtpd_envelope *env;
	struct lmtpd_settings *set;
	struct delivery d;   /* the spool, the message, the error, the clock */
	char log_prefix[32]; /* "lmtp7: " */
	const char *rcpts[LMTPD_RCPTS_MAX], *markers[LMTPD_RCPTS_MAX];
	size_t nrcpts, nmarkers;
	struct store_result res, res_sent;
	enum store_status st, st_sent;
	long us_read, us_store;
	int group;                  /* messages in the shared transaction, 0 = alone */
	struct lmtpd_charge charge; /* of the memory budget (lmtpd_budget) */
	size_t budget;              /* lmtpd.memory_budget */
	int budget_wait;            /* lmtpd.memory_wait */
	int over_budget;            /* the charge could not grow: discarded */
	unsigned char *blob_s3;     /* uploaded by data_upload (store_request.blob_s3) */
};

/* data_grow - the data passed the size charged for: charge more (twice
 * as much, at most the size limit); 0, or -1 when the budget has no room */
static int data_grow(struct data_tx *t, long long size)
{
	long long basis = t->charge.basis * 2, cap = t->set->dc.size_max + STORE_PREFIX_MAX;

	if (size <= t->charge.basis || t->charge.basis >= cap)
		return 0;
	if (basis < size)
		basis = size;
	if (basis > cap)
		basis = cap;
	return lmtpd_budget_take(&t->charge, basis, t->budget, t->budget_wait);
}

/* data_read - the data up to CRLF.CRLF into the spool: 0 done,
 * -1 connection lost; *too_big_r, and *io_err_r for a spool error */
static int data_read(struct data_tx *t, int *too_big_r, char **io_err_r)
{
	struct lmtpd_conn *c = t->c;
	struct store_spool_writer w;
	struct lmtpd_dot dot;
	char *out = xmalloc(LMTPD_IN_SIZE + 1);
	size_t used, outlen;
	int done = 0, rc = 0, ok;

	ok = store_spool_writer_open(&w, &t->d.sp, t->set->dc.size_max, io_err_r) == 0;
	lmtpd_dot_init(&dot);
	while (!done) {
		if (c->in_start == c->in_end && lmtpd_conn_fill(c, t->set->timeout, 0) <= 0) {
			rc = -1;
			break;
		}
		used = lmtpd_dot_feed(&dot, c->in + c->in_start, c->in_end - c->in_start, out,
				      &outlen, &done);
		c->in_start += used;
		if (ok && store_spool_writer_put(&w, out, outlen, io_err_r) < 0)
			ok = 0;
		if (ok && data_grow(t, w.crlf) < 0) {
			ok = 0; /* read the rest, keep nothing, hold nothing */
			t->over_budget = 1;
			xfree(&w.buf);
			store_spool_close(&t->d.sp);
			lmtpd_budget_release(&t->charge);
		}
	}
	if (ok && store_spool_writer_close(&w, io_err_r) < 0)
		ok = 0;
	else if (!ok)
		xfree(&w.buf);
	*too_big_r = w.too_big;
	free(out);
	return rc;
}

/* data_log - the one line per transaction (delivery_log with the
 * queue id, the sent-copy markers, the timings and the group) */
static void data_log(struct data_tx *t, const char *result, const char *detail)
{
	const struct lmtpd_envelope *env = t->env;
	struct delivery_report r;
	struct buf rcpts = BUF_INIT;
	char *head = env->xf_ident ? xasprintf("queue=%s ", env->xf_ident) : NULL;
	char *tail;
	size_t i;

	for (i = 0; i < env->nrcpts; i++)
		buf_printf(&rcpts, "%s%s%s", i ? "," : "", env->rcpts[i],
			   env->rcpt_sent[i] ? "(sent)" : "");
	tail = xasprintf("(read=%ld hash=%ld parse=%ld store=%ld sql=%ld commit=%ld us) group=%d",
			 t->us_read, t->d.us_hash, t->d.us_parse, t->us_store, t->res.us_sql,
			 t->res.us_commit, t->group);
	memset(&r, 0, sizeof(r));
	r.head = head;
	r.sender = env->sender;
	r.client = env->xf_addr;
	r.rcpts = rcpts.data ? rcpts.data : "";
	r.email_id = t->res.email_id[0] ? t->res.email_id : t->res_sent.email_id;
	r.tail = tail;
	delivery_log(&t->d, &r, result, detail);
	buf_free(&rcpts);
	free(head);
	free(tail);
}

/* data_reply_all - the same reply for every recipient */
static void data_reply_all(struct data_tx *t, const char *reply)
{
	size_t i;

	for (i = 0; i < t->env->nrcpts; i++)
		lmtpd_conn_reply(t->c, "%s", reply);
}

/* data_request - what store_message needs for the ordinary
 * recipients (sent 0) or the sent-copy markers (sent 1) */
static void data_request(struct data_tx *t, int sent, struct store_request *rq,
			 struct store_envelope *env)
{
	env->sender = t->env->sender;
	env->rcpts = sent ? t->markers : t->rcpts;
	env->nrcpts = sent ? t->nmarkers : t->nrcpts;
	env->orig_rcpt = NULL;
	delivery_request(&t->set->dc, env, sent, t->env->auth_user, t->env->xf_ident, rq);
	rq->blob_s3 = t->blob_s3;
}

/* data_store_one - one store_message call (the first error is kept) */
static enum store_status data_store_one(struct data_tx *t, struct db *db, int sent,
					struct store_result *res)
{
	struct store_request rq;
	struct store_envelope env;
	char *err = NULL;
	enum store_status st;

	data_request(t, sent, &rq, &env);
	st = store_message(db, &t->d.sp, t->d.m, &rq, res, &err);
	if (st != STORE_OK) {
		if (t->d.error == NULL)
			t->d.error = err;
		else
			free(err);
	}
	return st;
}

/* data_status_reply - the reply for one recipient */
static void data_status_reply(struct data_tx *t, const char *rcpt, enum store_status st,
			      const struct store_result *res)
{
	switch (st) {
	case STORE_OK:
		lmtpd_conn_reply(t->c, "250 2.0.0 <%.256s> Ok: stored as %s%s", rcpt, res->email_id,
				 res->duplicate ? " (already stored)" : "");
		break;
	case STORE_UNKNOWN_RCPT:
		lmtpd_conn_reply(t->c, "550 5.1.1 <%.256s>: recipient address unknown", rcpt);
		break;
	case STORE_PERMFAIL:
		lmtpd_conn_reply(t->c, "554 5.3.4 <%.256s>: message cannot be stored", rcpt);
		break;
	default:
		if (res->blob_status == BLOB_CONFIG)
			lmtpd_conn_reply(t->c,
					 "451 4.3.5 <%.256s>: blob store configuration error, mail"
					 " deferred (see the mail log)",
					 rcpt);
		else
			lmtpd_conn_reply(t->c,
					 "451 4.3.0 <%.256s>: %s unavailable, try again later",
					 rcpt, res->blob_status ? "object store" : "mail store");
		break;
	}
}

/* data_store_both - the ordinary recipients, then the markers */
static void data_store_both(struct data_tx *t, struct db *db)
{
	if (t->nrcpts > 0)
		t->st = data_store_one(t, db, 0, &t->res);
	if (t->nmarkers > 0 && t->st == STORE_OK)
		t->st_sent = data_store_one(t, db, 1, &t->res_sent);
}

/* data_store_reset - forget a failed attempt */
static void data_store_reset(struct data_tx *t)
{
	store_result_free(&t->res);
	store_result_free(&t->res_sent);
	memset(&t->res, 0, sizeof(t->res));
	memset(&t->res_sent, 0, sizeof(t->res_sent));
	xfree(&t->d.error);
	t->st = t->st_sent = STORE_OK;
}

/* data_store_shared - a message without sent-copy markers: stored
 * with the others that are ready at the same time (lmtpd_group) */
static void data_store_shared(struct data_tx *t)
{
	struct store_request rq;
	struct store_envelope env;
	struct store_job job;

	data_request(t, 0, &rq, &env);
	memset(&job, 0, sizeof(job));
	job.sp = &t->d.sp;
	job.m = t->d.m;
	job.rq = &rq;
	job.res = &t->res;
	lmtpd_group_store(t->srv->group, &job, t->set->group_commit);
	t->st = job.status;
	t->d.error = job.error;
	t->group = job.grouped;
}

/* data_store_alone - with sent-copy markers: both stores on one pool
 * connection, once more on a fresh one when it died */
static void data_store_alone(struct data_tx *t)
{
	struct lmtpd_pool *pool = t->srv->pool;
	struct db *db;
	char *err = NULL;

	if ((db = lmtpd_pool_get(pool, &err)) == NULL) {
		t->d.error = err;
		t->st = STORE_TEMPFAIL;
		return;
	}
	data_store_both(t, db);
	if ((t->st == STORE_TEMPFAIL || t->st_sent == STORE_TEMPFAIL) &&
	    PQstatus(db_conn(db)) != CONNECTION_OK) {
		/* the connection died (idle, or the server restarted): once
		 * more on a fresh one; exactly-once makes a repeat harmless */
		lmtpd_pool_put(pool, &db);
		data_store_reset(t);
		if ((db = lmtpd_pool_get(pool, &err)) == NULL) {
			t->d.error = err;
			t->st = STORE_TEMPFAIL;
			return;
		}
		data_store_both(t, db);
	}
	lmtpd_pool_put(pool, &db);
}

/* data_replies - one reply per recipient, in RCPT order */
static void data_replies(struct data_tx *t)
{
	size_t i, ri = 0, mi = 0;

	for (i = 0; i < t->env->nrcpts; i++) {
		if (t->env->rcpt_sent[i])
			data_status_reply(t, t->markers[mi++],
					  t->st == STORE_OK ? t->st_sent : t->st, &t->res_sent);
		else
			data_status_reply(t, t->rcpts[ri++], t->st, &t->res);
	}
}

/* data_report - metrics, the log and the notification of the outcome */
static void data_report(struct data_tx *t)
{
	struct lmtpd_server *srv = t->srv;
	int perm;

	if (t->st == STORE_OK && t->st_sent == STORE_OK) {
		metric_inc(srv->m_messages_ok);
		metric_add(srv->m_bytes, (double)t->d.sp.size);
		metric_add(srv->m_rcpts, (double)t->env->nrcpts);
		if (t->nrcpts > 0)
			delivery_log_notes(&t->d, t->env->auth_user, &t->res);
		data_log(t, delivery_result(&t->res), NULL);
		return;
	}
	perm = t->st == STORE_PERMFAIL || t->st_sent == STORE_PERMFAIL ||
	       t->st == STORE_UNKNOWN_RCPT;
	metric_inc(perm ? srv->m_messages_perm : srv->m_messages_temp);
	data_log(t, perm ? "bounced" : "deferred", t->d.error);
}

/* data_upload_lookup - where the large attachments are already, on a
 * pool connection borrowed for these SELECTs only (once more on a fresh
 * one when it died) */
static int data_upload_lookup(struct data_tx *t, const struct store_request *rq, char **err)
{
	struct lmtpd_pool *pool = t->srv->pool;
	struct db *db;
	int rc = -1, attempt;

	for (attempt = 0; attempt < 2 && rc < 0; attempt++) {
		xfree(err);
		if ((db = lmtpd_pool_get(pool, err)) == NULL)
			return -1;
		rc = store_uploads_lookup(db, t->d.m, rq, &t->res, &t->blob_s3, err);
		if (rc < 0 && PQstatus(db_conn(db)) == CONNECTION_OK)
			attempt++; /* not a dead connection: no second try */
		lmtpd_pool_put(pool, &db);
	}
	return rc;
}

/* data_upload - with an object store, the large attachments are
 * uploaded here, in the session's own thread, before the message goes
 * to the group (lmtpd_group): the group's transaction then only inserts
 * rows, and a slow object store holds back this message alone, never
 * the others stored with it or after it. Same rules as store_message's
 * own uploads (lib/store_mail.c): before BEGIN, one already stored is
 * not uploaded again; the objects are looked for after the COMMIT
 * (data_recheck). 0, or -1 with the deferral in t */
static int data_upload(struct data_tx *t)
{
	struct store_request rq;
	struct store_envelope env;
	char *err = NULL;

	data_request(t, 0, &rq, &env);
	if (!store_uploads_needed(t->d.m, &rq))
		return 0;
	if (data_upload_lookup(t, &rq, &err) == 0 &&
	    store_uploads_put(t->d.m, &rq, t->blob_s3, &t->res, &err) == 0)
		return 0;
	xfree(&t->blob_s3);
	t->st = STORE_TEMPFAIL;
	t->res_sent.blob_status = t->res.blob_status; /* the markers' replies */
	t->d.error = err ? err : xstrdup("object store error");
	return -1;
}

/* data_recheck - after the commit: the objects data_upload uploaded are
 * still there (blobs gc), as store_message looks for its own */
static void data_recheck(struct data_tx *t)
{
	struct store_request rq;
	struct store_envelope env;

	if (t->blob_s3 == NULL || t->st != STORE_OK || t->st_sent != STORE_OK)
		return;
	data_request(t, 0, &rq, &env);
	store_uploads_recheck(t->d.m, &rq, t->blob_s3, t->nrcpts > 0 ? &t->res : &t->res_sent);
}

/* data_store - the uploads, the database part, the replies, the report */
static void data_store(struct data_tx *t)
{
	t->st = t->st_sent = STORE_OK;
	if (data_upload(t) < 0)
		;
	else if (t->nmarkers == 0 && t->nrcpts > 0)
		data_store_shared(t);
	else
		data_store_alone(t);
	data_recheck(t);
	t->us_store = delivery_lap(&t->d);
	data_replies(t);
	data_report(t);
}

/* data_refuse_big - 552 5.3.4 for every recipient */
static void data_refuse_big(struct data_tx *t)
{
	char *reply = xasprintf("552 5.3.4 message too big: %s", t->d.error);

	metric_inc(t->srv->m_messages_perm);
	data_log(t, "bounced", t->d.error);
	data_reply_all(t, reply);
	free(reply);
}

/* data_defer - 451 for every recipient: the spool or the parser failed */
static void data_defer(struct data_tx *t, const char *reply)
{
	metric_inc(t->srv->m_messages_temp);
	data_log(t, "deferred", t->d.error);
	data_reply_all(t, reply);
}

/* data_split - ordinary recipients and sent-copy markers */
static void data_split(struct data_tx *t)
{
	size_t i;

	for (i = 0; i < t->env->nrcpts; i++) {
		if (t->env->rcpt_sent[i])
			t->markers[t->nmarkers++] = t->env->rcpts[i];
		else
			t->rcpts[t->nrcpts++] = t->env->rcpts[i];
	}
}

/* data_process - from a complete spool to the replies */
static void data_process(struct data_tx *t, int too_big)
{
	struct store_envelope env = { t->env->sender, (const char *const *)t->env->rcpts,
				      t->env->nrcpts, NULL };

	data_split(t);
	switch (delivery_prepare(&t->d, too_big, &env)) {
	case DELIVERY_READY: data_store(t); break;
	case DELIVERY_TOO_BIG: data_refuse_big(t); break;
	case DELIVERY_UNREADABLE:
		data_defer(t, "451 4.3.0 cannot read the message, try again later");
		break;
	case DELIVERY_UNPARSABLE:
		data_defer(t, "451 4.3.0 cannot parse the message, try again later");
		break;
	}
}

/* data_admit - charge the budget for the declared size (or the minimum)
 * before "354"; 0, or -1 after a 451 4.3.2 to DATA (no data follows) */
static int data_admit(struct data_tx *t)
{
	long long basis =
		t->env->size > LMTPD_BUDGET_MIN_BASIS ? t->env->size : LMTPD_BUDGET_MIN_BASIS;

	if (basis > t->set->dc.size_max)
		basis = t->set->dc.size_max;
	if (lmtpd_budget_take(&t->charge, basis, t->budget, t->budget_wait) == 0)
		return 0;
	log_info("%sDATA from=<%.200s> size=%lld deferred: lmtpd.memory_budget (%zu bytes) "
		 "exhausted for %d s",
		 t->log_prefix, t->env->sender, t->env->size, t->budget, t->budget_wait);
	metric_inc(t->srv->m_messages_temp);
	lmtpd_conn_reply(t->c,
			 "451 4.3.2 insufficient memory for the message now, try again later");
	return -1;
}

/* data_run - read the message and deliver it; -1 when the connection is lost */
static int data_run(struct data_tx *t)
{
	int too_big = 0;

	if (data_read(t, &too_big, &t->d.error) < 0) {
		log_info("%sconnection lost during DATA from=<%.200s>: nothing stored",
			 t->log_prefix, t->env->sender);
		return -1;
	}
	t->us_read = delivery_lap(&t->d);
	if (t->over_budget) {
		xfree(&t->d.error);
		t->d.error = xstrdup("lmtpd.memory_budget exhausted while reading");
		data_defer(t, "451 4.3.2 insufficient memory for the message now, try again later");
	} else if (t->d.error) {
		metric_inc(t->srv->m_messages_temp);
		data_log(t, "deferred", t->d.error);
		data_reply_all(t, "451 4.3.0 cannot spool the message, try again later");
	} else {
		lmtpd_budget_lower(&t->charge, t->d.sp.size);
		data_process(t, too_big);
	}
	metric_observe(t->srv->m_duration, (double)delivery_elapsed(&t->d) / 1e6);
	return 0;
}

int lmtpd_data(struct lmtpd_server *srv, struct lmtpd_conn *c, const char *id,
	       const struct lmtpd_envelope *env)
{
	struct data_tx *t;
	struct lmtpd_charge charge;
	int rc = 0;

	t = xcalloc(1, sizeof(*t));
	t->srv = srv;
	t->c = c;
	t->env = env;
	t->set = lmtpd_settings_get();
	t->budget = (size_t)conf_int(t->set->cfg, "lmtpd.memory_budget");
	t->budget_wait = (int)conf_int(t->set->cfg, "lmtpd.memory_wait");
	snprintf(t->log_prefix, sizeof(t->log_prefix), "%s: ", id);
	if (data_admit(t) == 0) {
		lmtpd_conn_reply(c, "354 End data with <CR><LF>.<CR><LF>");
		if (lmtpd_conn_flush(c) < 0) {
			rc = -1;
		} else {
			delivery_init(&t->d, &t->set->dc, t->log_prefix);
			rc = data_run(t);
			delivery_free(&t->d);
		}
	}
	store_result_free(&t->res);
	store_result_free(&t->res_sent);
	free(t->blob_s3);
	lmtpd_settings_put(&t->set);
	charge = t->charge;
	free(t);
	lmtpd_budget_release(&charge); /* last: the trim sees this message freed */
	return rc;
}
