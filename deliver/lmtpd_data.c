/*
 * NAME
 *	lmtpd_data - DATA: spool, parse, store once, one reply per recipient
 * DESCRIPTION
 *	The message after "354" is dot-unstuffed (lmtpd_proto) straight into
 *	a memory file (lib/store_spool's writer) in 64 KiB pieces: a large
 *	message costs no copy in the heap, and COPY streams it to PostgreSQL
 *	from there (lib/store_mail). The size limit and the status codes are
 *	those of postroom-deliver: over limits.message_size_max or an
 *	attachment over limits.attachment_size_max -> 552 5.3.4; a database
 *	problem -> 451 4.3.0; beyond what PostgreSQL can store -> 554 5.3.4.
 *	All ordinary recipients are stored in one transaction, which the
 *	message shares with the others that sessions finish at the same
 *	time (group commit, lmtpd_group); sent-copy markers (X-POSTROOM-SENT or
 *	milter.sent_recipient) are stored as deliver --sent stores them (the
 *	same message: found by its identity). After the commit the
 *	notification is queued for the background sender (lmtpd_notify).
 *	A connection lost during DATA stores nothing.
 * NEVER
 *	replies 250 before the commit; bounces because of a database outage.
 * CONFIGURATION
 *	limits.*, rules.recipient_validation, rules.subaddress_delimiters,
 *	rules.internal_header_max_age, security.hmac_secret,
 *	deliver.trusted_authserv_id, deliver.notify_*
 */
#include "lmtpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "mime_parse.h"
#include "store_mail.h"
#include "store_spool.h"
#include "xalloc.h"

#include "lmtpd_notify.h"

/* What one DATA transaction carries through its steps. */
struct deliver_tx {
	struct lmtpd_session *s;
	struct lmtpd_settings *set;
	struct store_spool sp;
	struct mime_msg *m;
	const char *rcpts[LMTPD_RCPTS_MAX], *markers[LMTPD_RCPTS_MAX];
	size_t nrcpts, nmarkers;
	struct store_result res, res_sent;
	enum store_status st, st_sent;
	char *err;
	struct timespec t0, start;
	long us_read, us_hash, us_parse, us_store;
	int group;		/* messages in the shared transaction, 0 = alone */
};

/* deliver_us - microseconds since *t, and *t moved to now */
static long deliver_us(struct timespec *t)
{
	struct timespec now;
	long us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long)((now.tv_sec - t->tv_sec) * 1000000L + (now.tv_nsec - t->tv_nsec) / 1000);
	*t = now;
	return us;
}

/* deliver_since - microseconds since *t */
static long deliver_since(const struct timespec *t)
{
	struct timespec copy = *t;

	return deliver_us(&copy);
}

int lmtpd_rcpt_lookup(struct lmtpd_session *s, const struct lmtpd_settings *set,
		      const char *rcpt, char **error_r)
{
	struct db *db;
	int rc = -1, attempt, broken;

	if (!set->recipient_validation)
		return 0;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((db = lmtpd_pool_get(s->srv->pool, error_r)) == NULL)
			return -1;
		rc = store_rcpt_known(db, rcpt, set->subaddress_delims, error_r);
		broken = rc < 0 && PQstatus(db_conn(db)) != CONNECTION_OK;
		lmtpd_pool_put(s->srv->pool, &db);
		if (!broken || attempt == 1)
			break;
		xfree(error_r);	/* a connection that died idle: once more on a fresh one */
	}
	return rc < 0 ? -1 : rc == 1 ? 0 : 1;
}

/* deliver_read - the data up to CRLF.CRLF into the spool: 0 done,
 * -1 connection lost; *too_big_r, and *io_err_r for a spool error */
static int deliver_read(struct deliver_tx *t, int *too_big_r, char **io_err_r)
{
	struct lmtpd_session *s = t->s;
	struct store_spool_writer w;
	struct lmtpd_dot dot;
	char *out = xmalloc(LMTPD_IN_SIZE + 1);
	size_t used, outlen;
	int done = 0, rc = 0, ok;

	ok = store_spool_writer_open(&w, &t->sp, t->set->size_max, io_err_r) == 0;
	lmtpd_dot_init(&dot);
	while (!done) {
		if (s->in_start == s->in_end && lmtpd_session_fill(s, t->set->timeout, 0) <= 0) {
			rc = -1;
			break;
		}
		used = lmtpd_dot_feed(&dot, s->in + s->in_start, s->in_end - s->in_start, out,
				      &outlen, &done);
		s->in_start += used;
		if (ok && store_spool_writer_put(&w, out, outlen, io_err_r) < 0)
			ok = 0;
	}
	if (ok && store_spool_writer_close(&w, io_err_r) < 0)
		ok = 0;
	else if (!ok)
		xfree(&w.buf);
	*too_big_r = w.too_big;
	free(out);
	return rc;
}

/* deliver_rcpt_list - "a,b,c" for the log line (caller frees) */
static char *deliver_rcpt_list(const struct lmtpd_session *s)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < s->nrcpts; i++)
		buf_printf(&b, "%s%s%s", i ? "," : "", s->rcpts[i], s->rcpt_sent[i] ? "(sent)" : "");
	return buf_steal(&b);
}

/* deliver_log - the one line per transaction */
static void deliver_log(struct deliver_tx *t, const char *result, const char *detail)
{
	struct lmtpd_session *s = t->s;
	char *rcpts = deliver_rcpt_list(s);
	const char *id = t->res.email_id[0] ? t->res.email_id : t->res_sent.email_id;

	log_info("%s: %s%s%smessage-id=<%.200s> email=%s size=%lld from=<%.200s> client=%.64s"
		 " rcpts=%.1000s attachments=%zu ms=%ld (read=%ld hash=%ld parse=%ld store=%ld sql=%ld commit=%ld us)"
		 " group=%d result=%s%s%.500s", s->id, s->xf_ident ? "queue=" : "", s->xf_ident ? s->xf_ident : "", s->xf_ident ? " " : "",
		 t->m ? t->m->message_id : "", id[0] ? id : "-", t->sp.size, s->sender,
		 s->xf_addr ? s->xf_addr : "-", rcpts, t->m ? t->m->natts : 0,
		 deliver_since(&t->start) / 1000,
		 t->us_read, t->us_hash, t->us_parse, t->us_store, t->res.us_sql, t->res.us_commit, t->group, result, detail ? ": " : "",
		 detail ? detail : "");
	free(rcpts);
}

/* deliver_reply_all - the same reply for every recipient */
static void deliver_reply_all(struct deliver_tx *t, const char *reply)
{
	size_t i;

	for (i = 0; i < t->s->nrcpts; i++)
		lmtpd_session_reply(t->s, "%s", reply);
}

/* deliver_request - what store_message needs for the ordinary
 * recipients (sent 0) or the sent-copy markers (sent 1) */
static void deliver_request(struct deliver_tx *t, int sent, struct store_request *rq,
			    struct store_envelope *env)
{
	struct lmtpd_session *s = t->s;

	memset(rq, 0, sizeof(*rq));
	env->sender = s->sender;
	env->rcpts = sent ? t->markers : t->rcpts;
	env->nrcpts = sent ? t->nmarkers : t->nrcpts;
	env->orig_rcpt = NULL;
	rq->env = env;
	rq->sent = sent;
	rq->sasl_user = s->auth_user;
	rq->recipient_validation = t->set->recipient_validation;
	rq->subaddress_delims = t->set->subaddress_delims;
	rq->hmac_secret = t->set->hmac_secret;
	rq->header_max_age = t->set->header_max_age;
	rq->queue_id = s->xf_ident;
	rq->authserv_id = t->set->authserv_id;
}

/* deliver_store_group - one store_message call */
static enum store_status deliver_store_group(struct deliver_tx *t, struct db *db, int sent,
					     struct store_result *res)
{
	struct store_request rq;
	struct store_envelope env;
	char *err = NULL;
	enum store_status st;

	deliver_request(t, sent, &rq, &env);
	st = store_message(db, &t->sp, t->m, &rq, res, &err);
	if (st != STORE_OK) {
		if (t->err == NULL)
			t->err = err;
		else
			free(err);
	}
	return st;
}

/* deliver_status_reply - the reply for one recipient of a group */
static void deliver_status_reply(struct deliver_tx *t, const char *rcpt, enum store_status st,
				 const struct store_result *res)
{
	switch (st) {
	case STORE_OK:
		lmtpd_session_reply(t->s, "250 2.0.0 <%.256s> Ok: stored as %s%s", rcpt, res->email_id,
				    res->duplicate ? " (already stored)" : "");
		break;
	case STORE_UNKNOWN_RCPT:
		lmtpd_session_reply(t->s, "550 5.1.1 <%.256s>: recipient address unknown", rcpt);
		break;
	case STORE_PERMFAIL:
		lmtpd_session_reply(t->s, "554 5.3.4 <%.256s>: message cannot be stored", rcpt);
		break;
	default:
		lmtpd_session_reply(t->s, "451 4.3.0 <%.256s>: mail store unavailable, try again later", rcpt);
		break;
	}
}

/* deliver_notify - queue the HTTP notification after commit */
static void deliver_notify(struct deliver_tx *t)
{
	struct store_notify_email e;

	if (t->set->notify.url == NULL || t->st != STORE_OK || t->res.nnotify == 0)
		return;
	e.id = t->res.email_id;
	e.from = t->m->from_address;
	e.from_display = t->m->from_display;
	e.subject = t->m->subject;
	e.received_at = t->res.received_at;
	e.has_attachments = t->m->natts > 0;
	lmtpd_notify_push(&t->set->notify, t->res.email_id,
			  store_notify_body((const char *const *)t->res.notify_users, t->res.nnotify, &e));
}

/* deliver_store_groups - the ordinary recipients, then the markers */
static void deliver_store_groups(struct deliver_tx *t, struct db *db)
{
	if (t->nrcpts > 0)
		t->st = deliver_store_group(t, db, 0, &t->res);
	if (t->nmarkers > 0 && t->st == STORE_OK)
		t->st_sent = deliver_store_group(t, db, 1, &t->res_sent);
}

/* deliver_store_reset - forget a failed attempt */
static void deliver_store_reset(struct deliver_tx *t)
{
	store_result_free(&t->res);
	store_result_free(&t->res_sent);
	memset(&t->res, 0, sizeof(t->res));
	memset(&t->res_sent, 0, sizeof(t->res_sent));
	xfree(&t->err);
	t->st = t->st_sent = STORE_OK;
}

/* deliver_store_shared - a message without sent-copy markers: stored
 * with the others that are ready at the same time (lmtpd_group) */
static void deliver_store_shared(struct deliver_tx *t)
{
	struct store_request rq;
	struct store_envelope env;
	struct store_job job;

	deliver_request(t, 0, &rq, &env);
	memset(&job, 0, sizeof(job));
	job.sp = &t->sp;
	job.m = t->m;
	job.rq = &rq;
	job.res = &t->res;
	lmtpd_group_store(t->s->srv->group, &job, t->set->group_commit);
	t->st = job.status;
	t->err = job.error;
	t->group = job.grouped;
}

/* deliver_store - the database part and the replies */
static void deliver_store(struct deliver_tx *t)
{
	struct lmtpd_server *srv = t->s->srv;
	struct db *db;
	size_t i, ri = 0, mi = 0;
	char *err = NULL;

	t->st = t->st_sent = STORE_OK;
	if (t->nmarkers == 0 && t->nrcpts > 0) {
		deliver_store_shared(t);
	} else if ((db = lmtpd_pool_get(srv->pool, &err)) == NULL) {
		t->err = err;
		t->st = STORE_TEMPFAIL;
	} else {
		deliver_store_groups(t, db);
		if ((t->st == STORE_TEMPFAIL || t->st_sent == STORE_TEMPFAIL) &&
		    PQstatus(db_conn(db)) != CONNECTION_OK) {
			/* the connection died (idle, or the server restarted): once
			 * more on a fresh one; exactly-once makes a repeat harmless */
			lmtpd_pool_put(srv->pool, &db);
			deliver_store_reset(t);
			if ((db = lmtpd_pool_get(srv->pool, &err)) == NULL) {
				t->err = err;
				t->st = STORE_TEMPFAIL;
			} else {
				deliver_store_groups(t, db);
			}
		}
		lmtpd_pool_put(srv->pool, &db);
	}
	t->us_store = deliver_us(&t->t0);
	for (i = 0; i < t->s->nrcpts; i++) {
		if (t->s->rcpt_sent[i])
			deliver_status_reply(t, t->markers[mi++], t->st == STORE_OK ? t->st_sent : t->st,
					     &t->res_sent);
		else
			deliver_status_reply(t, t->rcpts[ri++], t->st, &t->res);
	}
	if (t->st == STORE_OK && t->st_sent == STORE_OK) {
		metric_inc(srv->m_messages_ok);
		metric_add(srv->m_bytes, (double)t->sp.size);
		metric_add(srv->m_rcpts, (double)t->s->nrcpts);
		for (i = 0; i < t->res.nunknown; i++)
			log_warn("%s: recipient <%s> has no user: stored unlinked", t->s->id, t->res.unknown[i]);
		if (t->res.verdict_note)
			log_warn("%s: verdict header ignored: %s", t->s->id, t->res.verdict_note);
		if (t->res.sent_by_note && t->s->auth_user == NULL)
			log_warn("%s: submission header ignored: %s", t->s->id, t->res.sent_by_note);
		deliver_log(t, t->res.duplicate ? (t->res.newly_delivered ? "delivered (already stored)"
			    : "already delivered") : "delivered", NULL);
		deliver_notify(t);
	} else {
		int perm = t->st == STORE_PERMFAIL || t->st_sent == STORE_PERMFAIL ||
			   t->st == STORE_UNKNOWN_RCPT;

		metric_inc(perm ? srv->m_messages_perm : srv->m_messages_temp);
		deliver_log(t, perm ? "bounced" : "deferred", t->err);
	}
}

/* deliver_refuse_big - 552 5.3.4 for every recipient */
static void deliver_refuse_big(struct deliver_tx *t, const char *what, long long size, long long max)
{
	char *detail = xasprintf("%s of %lld bytes exceeds the limit of %lld bytes", what, size, max);
	char *reply = xasprintf("552 5.3.4 message too big: %s", detail);

	metric_inc(t->s->srv->m_messages_perm);
	deliver_log(t, "bounced", detail);
	deliver_reply_all(t, reply);
	free(detail);
	free(reply);
}

/* deliver_defer - 451 for every recipient: the spool or the parser failed */
static void deliver_defer(struct deliver_tx *t, const char *reply)
{
	metric_inc(t->s->srv->m_messages_temp);
	deliver_log(t, "deferred", t->err);
	deliver_reply_all(t, reply);
}

/* deliver_split - ordinary recipients and sent-copy markers */
static void deliver_split(struct deliver_tx *t)
{
	size_t i;

	for (i = 0; i < t->s->nrcpts; i++) {
		if (t->s->rcpt_sent[i])
			t->markers[t->nmarkers++] = t->s->rcpts[i];
		else
			t->rcpts[t->nrcpts++] = t->s->rcpts[i];
	}
}

/* deliver_process - from a complete spool to the replies */
static void deliver_process(struct deliver_tx *t, int too_big)
{
	struct store_envelope env = { t->s->sender, (const char *const *)t->s->rcpts, t->s->nrcpts, NULL };
	size_t i;

	deliver_split(t);
	if (too_big) {
		deliver_refuse_big(t, "message", t->sp.size, t->set->size_max);
	} else if (store_spool_finish(&t->sp, &env, &t->err) < 0) {
		deliver_defer(t, "451 4.3.0 cannot read the message, try again later");
	} else if (t->sp.size > t->set->size_max) {
		deliver_refuse_big(t, "message", t->sp.size, t->set->size_max);
	} else if ((t->us_hash = deliver_us(&t->t0)) < 0 ||
		   mime_parse(t->sp.fd, t->sp.start, -1, t->sp.id, &t->m, &t->err) < 0) {
		deliver_defer(t, "451 4.3.0 cannot parse the message, try again later");
	} else {
		t->us_parse = deliver_us(&t->t0);
		for (i = 0; i < t->m->natts; i++)
			if (t->m->atts[i].size > t->set->attachment_max)
				break;
		if (i < t->m->natts) {
			deliver_refuse_big(t, "attachment", t->m->atts[i].size, t->set->attachment_max);
			return;
		}
		if (t->m->parse_problem)
			log_warn("%s: message stored with a parse problem: %s", t->s->id, t->m->parse_problem);
		deliver_store(t);
	}
}

int lmtpd_data(struct lmtpd_session *s)
{
	struct deliver_tx *t = xcalloc(1, sizeof(*t));
	struct timespec start;
	int too_big = 0, rc;

	t->s = s;
	t->set = lmtpd_settings_get();
	t->sp.fd = -1;
	if (lmtpd_session_flush(s) < 0) {
		rc = -1;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	t->start = start = t->t0;
	if ((rc = deliver_read(t, &too_big, &t->err)) < 0) {
		log_info("%s: connection lost during DATA from=<%.200s>: nothing stored", s->id, s->sender);
		goto out;
	}
	t->us_read = deliver_us(&t->t0);
	if (t->err) {
		metric_inc(s->srv->m_messages_temp);
		deliver_log(t, "deferred", t->err);
		deliver_reply_all(t, "451 4.3.0 cannot spool the message, try again later");
	} else {
		deliver_process(t, too_big);
	}
	metric_observe(s->srv->m_duration, (double)deliver_us(&start) / 1e6);
out:
	mime_msg_free(&t->m);
	store_result_free(&t->res);
	store_result_free(&t->res_sent);
	store_spool_close(&t->sp);
	lmtpd_settings_put(&t->set);
	free(t->err);
	free(t);
	return rc;
}
