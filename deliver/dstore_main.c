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
 *	The message is spooled to a memory file; the delivery core
 *	(deliver/delivery.c, shared with postroom-lmtpd) checks the limits,
 *	parses it, builds the store request and logs; here it is stored in
 *	one transaction of its own (lib/store_mail), which also writes the
 *	events postroom-webhookd sends to the application (no HTTP request
 *	from here: a site with only the pipe runs postroom-webhookd). Exit
 *	statuses and the enhanced status code at the start of the output
 *	follow Postfix's pipe(8): 0 delivered,
 *	75 defer (4.3.0 storage or object store, 4.3.5 configuration,
 *	invocation or the object store refusing its keys or bucket), 69 with
 *	5.3.4 for a message or attachment over its limit, 67 with 5.1.1 for
 *	an unknown recipient of a one-recipient call.
 *	Installed setgid (mailbox_command), it reads the configuration with
 *	the group, then drops it for good before it reads the message.
 *	Parameters: database.conninfo, database.connect_timeout,
 *	deliver.timeout, blobs.* (delivery_blobs_open, with the setgid
 *	group), and through the core (delivery_conf_read)
 *	limits.message_size_max, limits.attachment_size_max,
 *	rules.recipient_validation, rules.subaddress_delimiters,
 *	rules.internal_header_max_age, security.hmac_secret,
 *	deliver.trusted_authserv_id (whose Authentication-Results count, see
 *	lib/verdict.c).
 * NEVER
 *	bounces mail because of an operator mistake or a database outage;
 *	dies by a signal; writes anything before the status code on stdout;
 *	keeps the setgid group while it handles the message.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob_store.h"
#include "conf.h"
#include "db.h"
#include "delivery.h"
#include "front.h"
#include "log.h"
#include "received.h"
#include "schema_check.h"
#include "xalloc.h"

/* What the configuration says, read once. */
struct dstore_conf {
	struct delivery_conf dc; /* what postroom-lmtpd reads too */
	const char *conninfo;
	int connect_timeout;
	int timeout;
};

/* What lives until exit, reachable from here (so that no leak checker
 * mistakes an exit() for a leak). */
static struct conf *dstore_cfg;
static struct dstore_conf dstore_conf;
static struct delivery dstore_delivery;
static struct store_result dstore_res;
static char *dstore_rcpts; /* the recipients for the log line */

/* dstore_cleanup - at exit: release what the delivery held */
static void dstore_cleanup(void)
{
	delivery_blobs_close(&dstore_conf.dc);
	conf_free(&dstore_cfg);
	delivery_free(&dstore_delivery);
	store_result_free(&dstore_res);
	xfree(&dstore_rcpts);
	deliver_args_cleanup();
}

/* dstore_read_conf - load and check the configuration, or defer */
static struct conf *dstore_read_conf(const struct deliver_args *a, struct dstore_conf *c)
{
	char *err = NULL;
	struct conf *cfg;

	if ((cfg = deliver_conf_load(a, &err)) == NULL) {
		dstore_delivery.error = err;
		deliver_operator_error("%s", err);
	}
	delivery_conf_read(cfg, &c->dc);
	/* the object store's credentials file is read now, with the group
	 * that reads postroom.conf (installed setgid), before it is dropped */
	if (delivery_blobs_open(cfg, &c->dc, &err) != 0) {
		dstore_delivery.error = err;
		deliver_operator_error("blob store configuration: %s", err);
	}
	c->conninfo = conf_conninfo(cfg, "deliver");
	c->connect_timeout = (int)conf_int(cfg, "database.connect_timeout");
	c->timeout = (int)conf_int(cfg, "deliver.timeout");
	return cfg;
}

/* dstore_queue_id - this delivery's queue id: what binds policyd's
 * verdict to it (store_request.queue_id). -q, else QUEUE_ID or
 * MESSAGE_ID (front_args.c), which deliver_start also made the log
 * context; else (Postfix's local(8) passes none) the id of the topmost
 * Received: header, Postfix's own (lib/received.c), made the log context
 * here. Called once the message is parsed. */
static void dstore_queue_id(struct deliver_args *a)
{
	static char qid[RECEIVED_QID_MAX + 1];
	const struct mime_msg *m = dstore_delivery.m;

	if ((a->queue_id && *a->queue_id) ||
	    received_top_queue_id(m->top_headers, m->ntop_headers, qid, sizeof(qid)) < 0)
		return;
	a->queue_id = qid;
	log_set_context(qid);
}

/* dstore_rcpt_list - "a,b,c" for the log line (caller frees) */
static char *dstore_rcpt_list(const struct deliver_args *a)
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

/* dstore_log - the one line per delivery */
static void dstore_log(const struct deliver_args *a, const char *result, const char *detail)
{
	struct delivery_report r;

	memset(&r, 0, sizeof(r));
	r.sender = a->sender;
	r.client = a->client;
	r.rcpts = dstore_rcpts ? dstore_rcpts : "";
	r.rcpts_note = a->sent ? " (sent copy)" : NULL;
	r.email_id = dstore_res.email_id;
	delivery_log(&dstore_delivery, &r, result, detail);
}

/* dstore_fail - log the delivery as result, exit with status and the
 * status line "<line><why the step failed>" */
static void __attribute__((noreturn))
dstore_fail(const struct deliver_args *a, const char *result, int status, const char *line)
{
	const char *why = dstore_delivery.error;

	dstore_log(a, result, why);
	deliver_exit(status, "%s%s", line, why);
}

/* dstore_store - connect, store, report; exits */
static void __attribute__((noreturn))
dstore_store(const struct deliver_args *a, const struct dstore_conf *c,
	     const struct store_envelope *env)
{
	struct delivery *d = &dstore_delivery;
	struct store_request rq;
	struct db *db;
	enum store_status st;

	if ((db = schema_check_connect(c->conninfo, c->connect_timeout, &d->error)) == NULL) {
		dstore_log(a, "deferred", d->error);
		deliver_exit(EX_TEMPFAIL, "4.3.0 mail store unavailable, try again later");
	}
	delivery_request(&c->dc, env, a->sent, a->sasl_user, a->queue_id, &rq);
	st = store_message(db, &d->sp, d->m, &rq, &dstore_res, &d->error);
	db_close(&db);
	if (st == STORE_UNKNOWN_RCPT)
		dstore_fail(a, "bounced", EX_NOUSER, "5.1.1 ");
	if (st == STORE_PERMFAIL)
		dstore_fail(a, "bounced", EX_UNAVAILABLE, "5.3.4 message cannot be stored: ");
	if (st == STORE_TEMPFAIL && dstore_res.blob_status == BLOB_CONFIG) {
		dstore_log(a, "deferred", d->error);
		deliver_exit(EX_TEMPFAIL, "4.3.5 blob store configuration error, mail deferred"
					  " (see the mail log)");
	}
	if (st == STORE_TEMPFAIL) {
		dstore_log(a, "deferred", d->error);
		deliver_exit(EX_TEMPFAIL, "4.3.0 %s unavailable, try again later",
			     dstore_res.blob_status ? "object store" : "mail store");
	}
	alarm(0); /* committed: a late timeout must not defer a stored message */
	delivery_log_notes(d, a->sasl_user, &dstore_res);
	dstore_log(a, delivery_result(&dstore_res), NULL);
	exit(0);
}

/* dstore_prepare - read the message and hand it to the delivery core:
 * limits, parse; exits unless it is ready to store */
static void dstore_prepare(const struct deliver_args *a, const struct store_envelope *env)
{
	struct delivery *d = &dstore_delivery;
	int too_big = 0;

	if (store_spool_read(STDIN_FILENO, d->dc->size_max, &d->sp, &too_big, &d->error) < 0)
		dstore_fail(a, "deferred", EX_TEMPFAIL, "4.3.0 cannot read the message: ");
	switch (delivery_prepare(d, too_big, env)) {
	case DELIVERY_READY: return;
	case DELIVERY_TOO_BIG: dstore_fail(a, "bounced", EX_UNAVAILABLE, "5.3.4 message too big: ");
	case DELIVERY_UNREADABLE:
		dstore_fail(a, "deferred", EX_TEMPFAIL, "4.3.0 cannot read the message: ");
	case DELIVERY_UNPARSABLE:
		dstore_fail(a, "deferred", EX_TEMPFAIL, "4.3.0 cannot parse the message: ");
	}
}

int main(int argc, char **argv)
{
	struct deliver_args a;
	struct store_envelope env;

	signal(SIGPIPE, SIG_IGN);
	atexit(dstore_cleanup);
	delivery_init(&dstore_delivery, &dstore_conf.dc, "");
	deliver_start(argc, argv, &a);
	dstore_cfg = dstore_read_conf(&a, &dstore_conf);
	if (deliver_is_setgid())
		deliver_drop_group();
	deliver_check_args(&a);
	dstore_rcpts = dstore_rcpt_list(&a);
	signal(SIGALRM, deliver_on_alarm);
	alarm((unsigned)dstore_conf.timeout);

	env = (struct store_envelope){ a.sender, a.rcpts, a.nrcpts,
				       deliver_env("ORIGINAL_RECIPIENT") };
	dstore_prepare(&a, &env);
	dstore_queue_id(&a);
	dstore_store(&a, &dstore_conf, &env);
}
