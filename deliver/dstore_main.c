/*
 * NAME
 *	postroom-deliver-store - store one message from the MTA in PostgreSQL
 * SYNOPSIS
 *	postroom-deliver-store [-c FILE] -f SENDER [-a SASL_USER] [-C CLIENT_ADDR]
 *		[-q QUEUE_ID] [--sent] [-v] -- RECIPIENT...
 * DESCRIPTION
 *	The storing half of the delivery agent for Postfix pipe(8) and
 *	mailbox_command and for Exim's pipe transport (envelope from the
 *	environment when not given as arguments): postroom-deliver (the
 *	small front end, deliver/front.c) executes it when
 *	deliver.lmtpd_socket is unset, with the same arguments, the same
 *	environment and, when installed setgid, still holding the group.
 *	The message is spooled to a memory file, checked
 *	against limits.message_size_max (CRLF size), parsed (lib/mime_parse)
 *	and stored in one transaction (lib/store_mail), then announced over
 *	HTTP (lib/store_notify). Exit statuses and the enhanced status code
 *	at the start of the output follow Postfix's pipe(8): 0 delivered,
 *	75 defer (4.3.0 storage, 4.3.5 configuration or invocation), 69 with
 *	5.3.4 for a message or attachment over its limit, 67 with 5.1.1 for
 *	an unknown recipient of a one-recipient call.
 *	Installed setgid (mailbox_command), it reads the configuration with
 *	the group, then drops it for good before it reads the message.
 *	Parameters: database.*, limits.message_size_max,
 *	limits.attachment_size_max, rules.recipient_validation,
 *	rules.subaddress_delimiters, rules.internal_header_max_age,
 *	security.hmac_secret, deliver.* (deliver.trusted_authserv_id: whose
 *	Authentication-Results count, see lib/verdict.c).
 * NEVER
 *	bounces mail because of an operator mistake or a database outage;
 *	dies by a signal; writes anything before the status code on stdout;
 *	keeps the setgid group while it handles the message.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "front.h"
#include "log.h"
#include "mime_parse.h"
#include "store_mail.h"
#include "store_notify.h"
#include "store_spool.h"
#include "xalloc.h"

/* What lives until exit, reachable from here (so that no leak checker
 * mistakes an exit() for a leak). */
static struct conf *deliver_cfg;
static struct mime_msg *deliver_msg;
static struct store_result deliver_res;
static struct store_spool deliver_spool = { -1, 0, 0, 0, { 0 } };
static char *deliver_err;	/* the last error text */

/* deliver_cleanup - at exit: release what the delivery held */
static void deliver_cleanup(void)
{
	conf_free(&deliver_cfg);
	mime_msg_free(&deliver_msg);
	store_result_free(&deliver_res);
	store_spool_close(&deliver_spool);
	xfree(&deliver_err);
	deliver_args_cleanup();
}

/* What the configuration says, read once. */
struct deliver_conf {
	const char *conninfo;
	int connect_timeout;
	long long size_max, attachment_max;
	int recipient_validation;
	const char *subaddress_delims;
	long header_max_age;
	const char *hmac_secret;
	const char *authserv_id;
	struct store_notify_conf notify;
	int timeout;
};

/* deliver_read_conf - load and check the configuration, or defer */
static struct conf *deliver_read_conf(const struct deliver_args *a, struct deliver_conf *dc)
{
	char *err = NULL;
	struct conf *cfg;

	if (a->conf_path && deliver_is_setgid())
		deliver_check_conf_owner(a->conf_path);
	if ((cfg = conf_load(a->conf_path, 0, &err)) == NULL) {
		deliver_err = err;
		deliver_operator_error("%s", err);
	}
	memset(dc, 0, sizeof(*dc));
	dc->conninfo = conf_str(cfg, "database.conninfo");
	dc->connect_timeout = (int)conf_int(cfg, "database.connect_timeout");
	dc->size_max = conf_int(cfg, "limits.message_size_max");
	dc->attachment_max = conf_int(cfg, "limits.attachment_size_max");
	dc->hmac_secret = conf_str(cfg, "security.hmac_secret");
	dc->authserv_id = conf_str(cfg, "deliver.trusted_authserv_id");
	dc->recipient_validation = conf_declared("rules.recipient_validation")
		? conf_bool(cfg, "rules.recipient_validation") : 1;
	dc->subaddress_delims = conf_declared("rules.subaddress_delimiters")
		? conf_str(cfg, "rules.subaddress_delimiters") : "+";
	dc->header_max_age = conf_declared("rules.internal_header_max_age")
		? (long)conf_int(cfg, "rules.internal_header_max_age") : 432000L;
	dc->notify.url = conf_str(cfg, "deliver.notify_url");
	dc->notify.api_key = conf_str(cfg, "deliver.notify_key");
	dc->notify.connect_timeout = (long)conf_int(cfg, "deliver.notify_connect_timeout");
	dc->notify.timeout = (long)conf_int(cfg, "deliver.notify_timeout");
	dc->timeout = (int)conf_int(cfg, "deliver.timeout");
	return cfg;
}

/* deliver_ms - milliseconds since start */
static long deliver_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000);
}

/* deliver_rcpt_list - "a,b,c" for the log line (caller frees) */
static char *deliver_rcpt_list(const struct deliver_args *a)
{
	char *s = xstrdup(""), *t;
	size_t i;

	for (i = 0; i < a->nrcpts; i++) {
		t = xasprintf("%s%s%s", s, i ? "," : "", a->rcpts[i]);
		free(s);
		s = t;
	}
	return s;
}

/* The facts the one log line of a delivery reports. */
struct deliver_report {
	const struct deliver_args *a;
	const struct store_spool *sp;
	const struct mime_msg *m;
	const struct store_result *res;
	struct timespec start;
};

/* deliver_log - the one line per delivery */
static void deliver_log(const struct deliver_report *r, const char *result, const char *detail)
{
	char *rcpts = deliver_rcpt_list(r->a);

	log_info("message-id=<%.200s> email=%s size=%lld from=<%.200s> client=%.64s rcpts=%.1000s%s"
		 " attachments=%zu ms=%ld result=%s%s%.500s",
		 r->m ? r->m->message_id : "", r->res && r->res->email_id[0] ? r->res->email_id : "-",
		 r->sp ? r->sp->size : 0LL, r->a->sender ? r->a->sender : "",
		 r->a->client ? r->a->client : "-", rcpts, r->a->sent ? " (sent copy)" : "",
		 r->m ? r->m->natts : 0, deliver_ms(&r->start), result, detail ? ": " : "",
		 detail ? detail : "");
	free(rcpts);
}

/* deliver_notify - the HTTP notification after commit; never fails */
static void deliver_notify(const struct deliver_conf *dc, const struct mime_msg *m,
			   const struct store_result *res)
{
	struct store_notify_email e;
	char *body, *err = NULL;

	if (dc->notify.url == NULL || *dc->notify.url == '\0' || res->nnotify == 0)
		return;
	e.id = res->email_id;
	e.from = m->from_address;
	e.from_display = m->from_display;
	e.subject = m->subject;
	e.received_at = res->received_at;
	e.has_attachments = m->natts > 0;
	body = store_notify_body((const char *const *)res->notify_users, res->nnotify, &e);
	if (store_notify_post(&dc->notify, body, &err) < 0) {
		log_warn("email %s stored, but the notification to the application failed: %s",
			 res->email_id, err);
		free(err);
	}
	free(body);
}

/* deliver_too_big - bounce with 5.3.4 */
static void __attribute__((noreturn))
deliver_too_big(struct deliver_report *r, const char *what, long long size, long long max)
{
	deliver_err = xasprintf("%s of %lld bytes exceeds the limit of %lld bytes", what, size, max);
	deliver_log(r, "bounced", deliver_err);
	deliver_exit(EX_UNAVAILABLE, "5.3.4 message too big: %s", deliver_err);
}

/* deliver_store - connect, store, report; exits */
static void __attribute__((noreturn))
deliver_store(struct deliver_report *r, const struct deliver_conf *dc, const struct store_spool *sp,
	      const struct mime_msg *m)
{
	const struct deliver_args *a = r->a;
	struct store_request rq;
	struct store_result *res_p = &deliver_res;
	struct db *db;
	size_t i;
	enum store_status st;

	if ((db = db_connect(dc->conninfo, dc->connect_timeout, &deliver_err)) == NULL) {
		deliver_log(r, "deferred", deliver_err);
		deliver_exit(EX_TEMPFAIL, "4.3.0 mail store unavailable, try again later");
	}
	memset(&rq, 0, sizeof(rq));
	rq.env = &(struct store_envelope){ a->sender, a->rcpts, a->nrcpts, deliver_env("ORIGINAL_RECIPIENT") };
	rq.sent = a->sent;
	rq.sasl_user = a->sasl_user;
	rq.recipient_validation = dc->recipient_validation;
	rq.subaddress_delims = dc->subaddress_delims;
	rq.hmac_secret = dc->hmac_secret;
	rq.header_max_age = dc->header_max_age;
	rq.queue_id = a->queue_id;
	rq.authserv_id = dc->authserv_id;
	st = store_message(db, sp, m, &rq, res_p, &deliver_err);
	db_close(&db);
	r->res = res_p;
	if (st == STORE_UNKNOWN_RCPT) {
		deliver_log(r, "bounced", deliver_err);
		deliver_exit(EX_NOUSER, "5.1.1 %s", deliver_err);
	}
	if (st == STORE_PERMFAIL) {
		deliver_log(r, "bounced", deliver_err);
		deliver_exit(EX_UNAVAILABLE, "5.3.4 message cannot be stored: %s", deliver_err);
	}
	if (st == STORE_TEMPFAIL) {
		deliver_log(r, "deferred", deliver_err);
		deliver_exit(EX_TEMPFAIL, "4.3.0 mail store unavailable, try again later");
	}
	alarm(0);	/* committed: a late timeout must not defer a stored message */
	for (i = 0; i < res_p->nunknown; i++)
		log_warn("recipient <%s> has no user: stored unlinked (linked when the address is created)",
			 res_p->unknown[i]);
	if (a->sasl_user && !res_p->sent_by_linked)
		log_warn("authenticated user %s is not a known user: sent-by left empty", a->sasl_user);
	else if (res_p->sent_by_note && !a->sasl_user)
		log_warn("submission header ignored: %s", res_p->sent_by_note);
	if (res_p->verdict_note)
		log_warn("verdict header ignored: %s", res_p->verdict_note);
	deliver_log(r, res_p->duplicate ? (res_p->newly_delivered ? "delivered (already stored)"
					: "already delivered") : "delivered", NULL);
	deliver_notify(dc, m, res_p);
	exit(0);
}

int main(int argc, char **argv)
{
	struct deliver_args a;
	struct deliver_conf dc;
	struct deliver_report r;
	struct store_spool *sp = &deliver_spool;
	struct mime_msg *m = NULL;
	const char *perr = NULL;
	int too_big = 0;
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	atexit(deliver_cleanup);
	memset(&a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &r.start);
	r.a = &a;
	log_init(PROG, 0, 0);
	if (deliver_parse_args(argc, argv, &a, &perr) < 0)
		deliver_operator_error("bad command line: %s (usage: -f SENDER [-a USER] [-C ADDR]"
				       " [-q ID] [--sent] -- RECIPIENT...)", perr);
	if (a.verbose)
		log_init(PROG, 1, 0);
	deliver_env_fallback(&a);
	if (a.queue_id)
		log_set_context(a.queue_id);
	deliver_cfg = deliver_read_conf(&a, &dc);
	if (deliver_is_setgid())
		deliver_drop_group();
	deliver_check_args(&a);
	signal(SIGALRM, deliver_on_alarm);
	alarm((unsigned)dc.timeout);

	if (store_spool_read(STDIN_FILENO, dc.size_max, sp, &too_big, &deliver_err) < 0) {
		deliver_log(&r, "deferred", deliver_err);
		deliver_exit(EX_TEMPFAIL, "4.3.0 cannot read the message: %s", deliver_err);
	}
	r.sp = sp;
	if (too_big)
		deliver_too_big(&r, "message", sp->size, dc.size_max);
	if (store_spool_finish(sp, &(struct store_envelope){ a.sender, a.rcpts, a.nrcpts,
			       deliver_env("ORIGINAL_RECIPIENT") }, &deliver_err) < 0) {
		deliver_log(&r, "deferred", deliver_err);
		deliver_exit(EX_TEMPFAIL, "4.3.0 cannot read the message: %s", deliver_err);
	}
	if (sp->size > dc.size_max)
		deliver_too_big(&r, "message", sp->size, dc.size_max);
	if (mime_parse(sp->fd, sp->start, -1, sp->id, &deliver_msg, &deliver_err) < 0) {
		deliver_log(&r, "deferred", deliver_err);
		deliver_exit(EX_TEMPFAIL, "4.3.0 cannot parse the message: %s", deliver_err);
	}
	r.m = m = deliver_msg;
	for (i = 0; i < m->natts; i++)
		if (m->atts[i].size > dc.attachment_max)
			deliver_too_big(&r, "attachment", m->atts[i].size, dc.attachment_max);
	if (m->parse_problem)
		log_warn("message stored with a parse problem: %s", m->parse_problem);
	deliver_store(&r, &dc, sp, m);
}
