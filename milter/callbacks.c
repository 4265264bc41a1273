/*
 * NAME
 *	callbacks - postroom-milter's libmilter callbacks
 * DESCRIPTION
 *	Per connection: the port role from {daemon_name} / {daemon_port}
 *	(rules.port_roles), the client address. Per message: the
 *	authenticated user from {auth_authen} at MAIL FROM, the rules
 *	engine at MAIL FROM (role, sender ownership, SIZE=) and at each RCPT
 *	TO (relay, hosted domains, recipient validation, the storage quota:
 *	452 4.2.2 Mailbox full, with MAIL FROM's SIZE=), the size of the
 *	message counted as MISSION.md defines it, the message itself (headers
 *	as libmilter passes them, CRLF, the body) in a memory file while
 *	attachments could be over limits.attachment_size_max, and at end of
 *	message:
 *	  - 552 5.3.4 when the counted size exceeds limits.message_size_max;
 *	  - 552 5.3.4 when an attachment, decoded as postroom-deliver decodes
 *	    it (lib/mime_check), exceeds limits.attachment_size_max: deliver
 *	    never bounces an accepted message, so this is the only refusal;
 *	  - every incoming X-Postroom-Submission header removed, and every
 *	    X-Postroom-Verdict that does not verify for this queue id, and
 *	    every Authentication-Results carrying deliver.trusted_authserv_id
 *	    (a forgery: this hop's come from OpenDKIM/OpenDMARC after us);
 *	  - with deliver.trusted_authserv_id set, for an unauthenticated
 *	    session: every incoming Received-SPF removed and, from the
 *	    topmost X-Postroom-Verdict that verifies, a Received-SPF with
 *	    policyd's SPF result for MAIL FROM (identity=mailfrom,
 *	    envelope-from) added at the top, for OpenDMARC: DMARC uses
 *	    postroom's SPF verdict, not a second check (issue 22);
 *	  - for an authenticated session: a Message-Id when the message has
 *	    none, a signed X-Postroom-Submission (user, mid, qid, ts) at the
 *	    top, and the sent-copy recipient (milter.sent_recipient);
 *	    with milter.verp, MAIL FROM changed to the sender's per-message
 *	    VERP address (lib/verp.c), so that bounces link exactly;
 *	  - a bare <Postmaster> recipient (RFC 5321 4.5.1, accepted on the
 *	    MX role) replaced by postmaster@rules.postmaster_domain, so that
 *	    it is stored for that hosted domain's postmaster (unset: left to
 *	    the MTA, which appends its own domain).
 *	One log line per rejection (a warning for a relay attempt).
 *	State lives in smfi_setpriv memory only: libmilter runs one thread
 *	per connection.
 * NEVER
 *	accepts on a lookup failure, lets an incoming submission header
 *	through, signs for an unauthenticated session, logs the secret,
 *	keeps more than 16 KiB of a message in the heap, or any of it past
 *	the end of its transaction.
 */
#include "milter.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "crypto.h"
#include "log.h"
#include "mime_check.h"
#include "verp.h"
#include "sighdr.h"
#include "store_spool.h"
#include "verdict.h"
#include "xalloc.h"

#define MILTER_VERDICTS_MAX 32 /* X-Postroom-Verdict copies remembered */
#define MILTER_KEEP_HEAP 16384 /* kept in the heap before a memory file is opened */
#define MILTER_PM_MAX 4        /* bare <Postmaster> spellings replaced per message */

struct milter_conn {
	char client[64];
	int client_known;    /* client[] holds the address, not "unknown" */
	unsigned long proto; /* negotiated protocol flags */
	int can_edit;        /* may add/change headers */
	int can_redirect;    /* may add and delete recipients */
	/* the message */
	char *auth; /* {auth_authen}, NULL = not authenticated */
	char *qid;
	char *sender;
	int can_chgfrom;     /* the MTA lets us change MAIL FROM (milter.verp) */
	int smtputf8;        /* MAIL FROM carried SMTPUTF8 */
	long long mail_size; /* MAIL FROM's SIZE=, -1 = none */
	struct msgsize size;
	int n_submission; /* incoming X-Postroom-Submission copies */
	int n_verdict;    /* X-Postroom-Verdict copies */
	int n_ar;         /* Authentication-Results headers */
	int *ar_ours;     /* their indexes (1-based) carrying our authserv-id */
	int n_ar_ours;
	int n_rspf; /* Received-SPF headers (all incoming on the MX side) */
	char *verdicts[MILTER_VERDICTS_MAX];
	int n_msgid;      /* Message-Id headers */
	char *message_id; /* the first one's value */
	/* the message as received, for the attachment check (milter_keep) */
	struct store_spool spool;
	struct store_spool_writer writer;
	struct buf head;  /* the first bytes, before the memory file is opened */
	int keeping;      /* writer and spool open */
	int body_kept;    /* the empty line after the headers is written */
	char *keep_error; /* the first write error (tempfail at eom) */
	/* bare <Postmaster> recipients as the MTA gave them, to be replaced */
	char *pm_bare[MILTER_PM_MAX];
	int n_pm_bare;
};

static const struct milter_settings *S;

static struct {
	struct metric *mail[3], *rcpt[3], *eom[3];
	struct metric *relay, *removed, *marked, *msgid_added, *errors;
	struct metric *rcpt_seconds;
} M;

static const double milter_rcpt_buckets[] = { 0.00005, 0.0001, 0.0002, 0.0003, 0.0005, 0.00075,
					      0.001,   0.0025, 0.005,  0.01,   0.1,    1 };

void milter_metrics_init(void)
{
	static const char *v[3] = { "verdict=\"accept\"", "verdict=\"reject\"",
				    "verdict=\"tempfail\"" };
	int i;

	for (i = 0; i < 3; i++) {
		M.mail[i] =
			metrics_counter("postroom_milter_mail_total", "MAIL FROM decisions", v[i]);
		M.rcpt[i] =
			metrics_counter("postroom_milter_rcpt_total", "RCPT TO decisions", v[i]);
		M.eom[i] = metrics_counter("postroom_milter_messages_total",
					   "End-of-message decisions", v[i]);
	}
	M.relay = metrics_counter("postroom_milter_relay_attempts_total", "Relay attempts refused",
				  NULL);
	M.removed = metrics_counter("postroom_milter_headers_removed_total",
				    "Incoming internal headers removed", NULL);
	M.marked = metrics_counter("postroom_milter_submissions_marked_total",
				   "Authenticated submissions given a signed header", NULL);
	M.msgid_added = metrics_counter("postroom_milter_message_ids_added_total",
					"Message-Ids added to submissions without one", NULL);
	M.errors = metrics_counter("postroom_milter_errors_total", "Internal errors (tempfailed)",
				   NULL);
	M.rcpt_seconds = metrics_histogram(
		"postroom_milter_rcpt_decision_seconds", "Time to decide one RCPT TO", NULL,
		milter_rcpt_buckets, sizeof(milter_rcpt_buckets) / sizeof(milter_rcpt_buckets[0]));
}

/* ---- state ------------------------------------------------------------------ */

static struct milter_conn *milter_conn(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		snprintf(c->client, sizeof(c->client), "unknown");
		smfi_setpriv(ctx, c);
	}
	return c;
}

/* ---- the message kept for the attachment check ---------------------------- */

/* milter_keep_needed - can an attachment be over its limit in a message
 * under limits.message_size_max? (never, when the limits say no) */
static int milter_keep_needed(void)
{
	return S->mime.attachment_size_max > 0 &&
	       S->mime.attachment_size_max < S->rules.message_size_max;
}

/* milter_keep_spill - move the first bytes into a fresh memory file */
static int milter_keep_spill(struct milter_conn *c)
{
	if (store_spool_writer_open(&c->writer, &c->spool, S->rules.message_size_max,
				    &c->keep_error) < 0)
		return -1;
	c->keeping = 1;
	if (c->head.len > 0 &&
	    store_spool_writer_put(&c->writer, c->head.data, c->head.len, &c->keep_error) < 0)
		return -1;
	buf_free(&c->head);
	return 0;
}

/* milter_keep - append: the first MILTER_KEEP_HEAP bytes in the heap (a
 * small message never opens a memory file), then all of it in a memory
 * file; bytes past limits.message_size_max are counted, not kept (the
 * size check refuses such a message) */
static void milter_keep(struct milter_conn *c, const char *data, size_t len)
{
	if (c->keep_error || !milter_keep_needed())
		return;
	if (!c->keeping && c->head.len + len <= MILTER_KEEP_HEAP) {
		buf_append(&c->head, data, len);
		return;
	}
	if (!c->keeping && milter_keep_spill(c) < 0)
		return;
	(void)store_spool_writer_put(&c->writer, data, len, &c->keep_error);
}

/* milter_keep_header - "name:value" CRLF, the value as msgsize counts it */
static void milter_keep_header(struct milter_conn *c, const char *name, const char *value)
{
	milter_keep(c, name, strlen(name));
	milter_keep(c, (c->proto & SMFIP_HDR_LEADSPC) ? ":" : ": ",
		    (c->proto & SMFIP_HDR_LEADSPC) ? 1 : 2);
	milter_keep(c, value, strlen(value));
	milter_keep(c, "\r\n", 2);
}

/* milter_keep_body - the empty line before the first body bytes */
static void milter_keep_body(struct milter_conn *c, const void *data, size_t len)
{
	if (!c->body_kept) {
		milter_keep(c, "\r\n", 2);
		c->body_kept = 1;
	}
	milter_keep(c, data, len);
}

/* milter_keep_free - forget what was kept: nothing outlives the message */
static void milter_keep_free(struct milter_conn *c)
{
	if (c->keeping) {
		xfree(&c->writer.buf); /* unflushed bytes: dropped, not written */
		store_spool_close(&c->spool);
	}
	buf_free(&c->head);
	c->keeping = 0;
	c->body_kept = 0;
	xfree(&c->keep_error);
}

/* milter_kept_size - the CRLF size of what is kept; -1: over the cap */
static long long milter_kept_size(const struct milter_conn *c)
{
	int prev_cr = 0;

	if (c->keeping)
		return c->writer.too_big ? -1 : c->writer.crlf;
	return store_crlf_size(c->head.data, c->head.len, &prev_cr);
}

/* milter_oversize - the largest attachment over the limit (0: none) in
 * *oversize_r; -1 with *what_r on a system error */
static int milter_oversize(struct milter_conn *c, long long *oversize_r, char **what_r)
{
	long long size;
	char *err = NULL;

	*oversize_r = 0;
	if (!milter_keep_needed())
		return 0;
	milter_keep_body(c, "", 0);
	size = milter_kept_size(c);
	if (c->keep_error == NULL && (size < 0 || size <= S->mime.attachment_size_max))
		return 0; /* over the cap: refused for its size before this is asked */
	if (c->keep_error == NULL && !c->keeping)
		(void)milter_keep_spill(c);
	if (c->keep_error == NULL)
		(void)store_spool_writer_close(&c->writer, &c->keep_error);
	if (c->keep_error) {
		*what_r = xasprintf("cannot keep the message for the attachment check: %s",
				    c->keep_error);
		return -1;
	}
	if (mime_check_attachments(c->spool.fd, 0, c->spool.len, size, &S->mime, oversize_r, &err) <
	    0) {
		*what_r = xasprintf("attachment check: %s", err);
		free(err);
		return -1;
	}
	return 0;
}

/* milter_msg_reset - forget the message (the connection stays) */
static void milter_msg_reset(struct milter_conn *c)
{
	int i;

	xfree(&c->auth);
	xfree(&c->qid);
	xfree(&c->sender);
	xfree(&c->message_id);
	milter_keep_free(c);
	for (i = 0; i < c->n_verdict && i < MILTER_VERDICTS_MAX; i++)
		xfree(&c->verdicts[i]);
	for (i = 0; i < c->n_pm_bare; i++)
		xfree(&c->pm_bare[i]);
	c->n_pm_bare = 0;
	memset(&c->size, 0, sizeof(c->size));
	c->smtputf8 = 0;
	c->mail_size = -1;
	c->n_submission = 0;
	c->n_verdict = 0;
	c->n_msgid = 0;
	c->n_ar = 0;
	c->n_ar_ours = 0;
	c->n_rspf = 0;
	xfree(&c->ar_ours);
}

static const char *milter_sym(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return v && *v ? v : NULL;
}

/* milter_refresh_qid - the queue id, when the MTA has told it */
static void milter_refresh_qid(SMFICTX *ctx, struct milter_conn *c)
{
	const char *q = milter_sym(ctx, "i");

	if (q && (c->qid == NULL || strcmp(q, c->qid) != 0)) {
		free(c->qid);
		c->qid = xstrdup(q);
	}
}

/* milter_path - the path as the rules engine wants it: in angle brackets */
static char *milter_path(const char *arg)
{
	if (arg == NULL)
		return xstrdup("");
	if (arg[0] == '<')
		return xstrdup(arg);
	return xasprintf("<%s>", arg);
}

/* milter_printable - control characters of a client-given path replaced in
 * place, after the rules have judged it: log lines stay single lines */
static void milter_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* milter_vi - metric index of a verdict: accept, reject, tempfail */
static int milter_vi(const struct rules_verdict *v)
{
	return v->kind == RULES_ACCEPT ? 0 : v->kind == RULES_REJECT ? 1 : 2;
}

/* milter_refuse - set the reply and the return status of a refusal */
static sfsistat milter_refuse(SMFICTX *ctx, const struct rules_verdict *v)
{
	if (smfi_setreply(ctx, (char *)v->code, (char *)v->enhanced, (char *)v->text) != MI_SUCCESS)
		log_warn("cannot set reply %s %s", v->code, v->enhanced);
	return v->kind == RULES_TEMPFAIL ? SMFIS_TEMPFAIL : SMFIS_REJECT;
}

static double milter_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* milter_noreply - no reply for steps negotiated with SMFIP_NR_* */
static sfsistat milter_noreply(const struct milter_conn *c, unsigned long flag)
{
	return (c->proto & flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* ---- the callbacks ------------------------------------------------------- */

static sfsistat cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
			     unsigned long f3, unsigned long *pf0, unsigned long *pf1,
			     unsigned long *pf2, unsigned long *pf3)
{
	struct milter_conn *c = milter_conn(ctx);
	const unsigned long edit = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT;
	/* every step the rules do not need is skipped, and no reply is sent
	 * where it would always be "continue"; the connect step too: its
	 * macros still arrive (Postfix sends them either way) and are read
	 * at MAIL FROM */
	const unsigned long proto = SMFIP_HDR_LEADSPC | SMFIP_NOCONNECT | SMFIP_NOHELO |
				    SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH | SMFIP_NR_CONN |
				    SMFIP_NR_HDR | SMFIP_NR_BODY;

	*pf0 = f0 & (edit | SMFIF_SETSYMLIST | (S->verp_delim ? SMFIF_CHGFROM : 0));
	*pf1 = f1 & proto;
	*pf2 = *pf3 = 0;
	c->proto = *pf1;
	c->can_edit = (f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) == (SMFIF_ADDHDRS | SMFIF_CHGHDRS);
	c->can_redirect = (f0 & (SMFIF_ADDRCPT | SMFIF_DELRCPT)) == (SMFIF_ADDRCPT | SMFIF_DELRCPT);
	c->can_chgfrom = (f0 & SMFIF_CHGFROM) != 0;
	if (!c->can_edit)
		log_warn("the MTA does not let the milter change headers: internal headers cannot "
			 "be removed");
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_CONNECT, "j {daemon_name} {daemon_port} {client_addr}");
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

/* milter_client - the client address from {client_addr}, once per
 * connection; 0 when the MTA has not sent it */
static int milter_client(SMFICTX *ctx, struct milter_conn *c)
{
	const char *addr;

	if (!c->client_known && (addr = milter_sym(ctx, "{client_addr}")) != NULL) {
		snprintf(c->client, sizeof(c->client), "%s", addr);
		c->client_known = 1;
	}
	return c->client_known;
}

/* cb_connect - only with an MTA that cannot skip the connect step: the
 * address from the socket when {client_addr} is not sent */
static sfsistat cb_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct milter_conn *c = milter_conn(ctx);

	if (milter_client(ctx, c))
		return milter_noreply(c, SMFIP_NR_CONN);
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->client,
			  sizeof(c->client));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->client,
			  sizeof(c->client));
	else if (hostname)
		snprintf(c->client, sizeof(c->client), "%s", hostname);
	c->client_known = 1;
	return milter_noreply(c, SMFIP_NR_CONN);
}

/* milter_session - the rules engine's view of this session */
static void milter_session(SMFICTX *ctx, const struct milter_conn *c, int smtputf8,
			   struct rules_session *s)
{
	s->role = rules_role_resolve(S->role_map, milter_sym(ctx, "{daemon_name}"),
				     milter_sym(ctx, "{daemon_port}"));
	s->auth_user = c->auth;
	s->smtputf8 = smtputf8;
}

/* milter_esmtp_args - SIZE= (or -1) and SMTPUTF8 from MAIL FROM's arguments */
static long long milter_esmtp_args(char **argv, int *smtputf8)
{
	long long size = -1;
	int i;

	*smtputf8 = 0;
	for (i = 1; argv[i]; i++) {
		if (strncasecmp(argv[i], "SIZE=", 5) == 0) {
			char *end;
			size = strtoll(argv[i] + 5, &end, 10);
			if (end == argv[i] + 5 || *end != '\0' || size < 0)
				size = -1;
		} else if (strcasecmp(argv[i], "SMTPUTF8") == 0) {
			*smtputf8 = 1;
		}
	}
	return size;
}

static sfsistat cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct milter_conn *c = milter_conn(ctx);
	struct rules_session s;
	struct rules_verdict v;
	const char *auth;
	long long size;
	int smtputf8;

	milter_msg_reset(c);
	(void)milter_client(ctx, c);
	if ((auth = milter_sym(ctx, "{auth_authen}")) != NULL)
		c->auth = xstrdup(auth);
	milter_refresh_qid(ctx, c);
	c->sender = milter_path(argv[0]);
	size = milter_esmtp_args(argv, &smtputf8);
	c->smtputf8 = smtputf8; /* a MAIL FROM parameter, valid for the recipients */
	c->mail_size = size;    /* so is SIZE=: the storage quota at RCPT */
	milter_session(ctx, c, smtputf8, &s);
	rules_check_mail(&S->rules, S->lookups, &s, c->sender, size, &v);
	milter_printable(c->sender);
	metric_inc(M.mail[milter_vi(&v)]);
	if (v.kind == RULES_ACCEPT)
		return SMFIS_CONTINUE;
	log_info("%s: reject: MAIL FROM %s from %s: %s %s %s; role=%s auth=%s size=%lld",
		 c->qid ? c->qid : "NOQUEUE", c->sender, c->client, v.code, v.enhanced, v.text,
		 rules_role_name(s.role), c->auth ? c->auth : "-", size);
	return milter_refuse(ctx, &v);
}

/* milter_pm_remember - an accepted bare <Postmaster>, to be replaced at
 * end of message when rules.postmaster_domain is set and hosted (never
 * sent on to another site: a domain not hosted is left to the MTA) */
static void milter_pm_remember(struct milter_conn *c, const char *arg)
{
	char *to = rules_postmaster_qualify(S->rules.postmaster_domain, arg);
	int i, hosted;

	if (to == NULL)
		return;
	hosted = S->lookups->domain_hosted(S->lookups->ctx, strchr(to, '@') + 1) == RULES_FOUND;
	free(to);
	if (!hosted) {
		log_warn("%s: rules.postmaster_domain %s is not a hosted domain: <Postmaster> left "
			 "to the MTA",
			 c->qid ? c->qid : "NOQUEUE", S->rules.postmaster_domain);
		return;
	}
	for (i = 0; i < c->n_pm_bare; i++)
		if (strcmp(c->pm_bare[i], arg) == 0)
			return;
	if (c->n_pm_bare < MILTER_PM_MAX)
		c->pm_bare[c->n_pm_bare++] = xstrdup(arg);
}

static sfsistat cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct milter_conn *c = milter_conn(ctx);
	struct rules_session s;
	struct rules_verdict v;
	double t0 = milter_now();
	char *rcpt = milter_path(argv[0]);

	milter_refresh_qid(ctx, c);
	milter_session(ctx, c, c->smtputf8, &s);
	rules_check_rcpt_size(&S->rules, S->lookups, &s, rcpt, c->mail_size, &v);
	metric_observe(M.rcpt_seconds, milter_now() - t0);
	milter_printable(rcpt);
	metric_inc(M.rcpt[milter_vi(&v)]);
	if (v.kind == RULES_ACCEPT) {
		milter_pm_remember(c, argv[0]);
		free(rcpt);
		return SMFIS_CONTINUE;
	}
	if (v.relay_attempt) {
		metric_inc(M.relay);
		log_warn("%s: relay attempt refused: RCPT TO %s from %s, MAIL FROM %s: %s %s %s; "
			 "role=%s",
			 c->qid ? c->qid : "NOQUEUE", rcpt, c->client, c->sender ? c->sender : "?",
			 v.code, v.enhanced, v.text, rules_role_name(s.role));
	} else {
		log_info("%s: reject: RCPT TO %s from %s, MAIL FROM %s: %s %s %s; role=%s auth=%s",
			 c->qid ? c->qid : "NOQUEUE", rcpt, c->client, c->sender ? c->sender : "?",
			 v.code, v.enhanced, v.text, rules_role_name(s.role),
			 c->auth ? c->auth : "-");
	}
	free(rcpt);
	return milter_refuse(ctx, &v);
}

static sfsistat cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct milter_conn *c = milter_conn(ctx);

	msgsize_header(&c->size, name, value, (c->proto & SMFIP_HDR_LEADSPC) != 0);
	milter_keep_header(c, name, value);
	if (strcasecmp(name, SIGHDR_SUBMISSION) == 0) {
		c->n_submission++;
	} else if (strcasecmp(name, SIGHDR_VERDICT) == 0) {
		if (c->n_verdict < MILTER_VERDICTS_MAX)
			c->verdicts[c->n_verdict] = xstrdup(value);
		c->n_verdict++;
	} else if (strcasecmp(name, "Authentication-Results") == 0) {
		/* one with our authserv-id is a forgery: this hop's come
		 * from the milters after this one (issue 22) */
		c->n_ar++;
		if (S->authserv_id && verdict_ar_id_matches(value, S->authserv_id)) {
			c->ar_ours = xrealloc(c->ar_ours, (size_t)(c->n_ar_ours + 1) * sizeof(int));
			c->ar_ours[c->n_ar_ours++] = c->n_ar;
		}
	} else if (strcasecmp(name, "Received-SPF") == 0) {
		c->n_rspf++;
	} else if (strcasecmp(name, "Message-Id") == 0) {
		if (c->n_msgid++ == 0 && value[strspn(value, " \t\r\n")] != '\0')
			c->message_id = xstrdup(value); /* a blank one is replaced at eom */
	}
	return milter_noreply(c, SMFIP_NR_HDR);
}

static sfsistat cb_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct milter_conn *c = milter_conn(ctx);

	msgsize_add(&c->size, chunk, len);
	milter_keep_body(c, chunk, len);
	return milter_noreply(c, SMFIP_NR_BODY);
}

/* ---- end of message ------------------------------------------------------ */

/* milter_verdict_ok - a verdict header policyd made for this very message */
static int milter_verdict_ok(const struct milter_conn *c, const char *value)
{
	struct sighdr_binding b = { NULL, c->qid, 0, S->header_max_age };
	struct sighdr h;
	char *storage = NULL;
	const char *err;
	int rc = sighdr_verify(S->secret, SIGHDR_VERDICT, value, &b, &h, &storage, &err);

	free(storage);
	return rc == 0;
}

/* milter_spf_applies - Received-SPF is this hop's business: OpenDMARC
 * is configured (deliver.trusted_authserv_id) and the client is not
 * authenticated (OpenDMARC skips those, IgnoreAuthenticatedClients) */
static int milter_spf_applies(const struct milter_conn *c)
{
	return S->authserv_id != NULL && c->auth == NULL;
}

/* milter_rspf_clean - s may stand in a Received-SPF key=value as it is */
static int milter_rspf_clean(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) < 512 && strpbrk(s, "\"\\;() \t\r\n") == NULL;
}

/* milter_spf_result - an RFC 7208 result name (what policyd's spf= holds) */
static int milter_spf_result(const char *r)
{
	static const char *const names[] = { "pass", "fail",      "softfail", "neutral",
					     "none", "temperror", "permerror" };
	size_t i;

	for (i = 0; r != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(r, names[i]) == 0)
			return 1;
	return 0;
}

/* milter_received_spf - the Received-SPF value (RFC 7208 9.1) of the
 * topmost verdict header that verifies, for OpenDMARC; NULL when there is
 * none or it has no SPF result for MAIL FROM (caller frees) */
static char *milter_received_spf(const struct milter_conn *c)
{
	struct sighdr_binding b = { NULL, c->qid, 0, S->header_max_age };
	struct sighdr h;
	char *storage = NULL, *out = NULL, *from = NULL;
	const char *err, *spf, *id, *dom, *ip;
	int i;

	for (i = 0; i < c->n_verdict && i < MILTER_VERDICTS_MAX; i++) {
		if (sighdr_verify(S->secret, SIGHDR_VERDICT, c->verdicts[i], &b, &h, &storage,
				  &err) == 0)
			break;
		xfree(&storage);
	}
	if (storage == NULL)
		return NULL;
	spf = sighdr_get(&h, "spf");
	id = sighdr_get(&h, "spf_identity");
	dom = sighdr_get(&h, "spf_domain");
	ip = sighdr_get(&h, "client");
	if (milter_spf_result(spf) && id && strcasecmp(id, "mailfrom") == 0 &&
	    milter_rspf_clean(dom)) {
		/* the envelope sender as given, else its domain (OpenDMARC
		 * compares only the part after '@') */
		if (c->sender && c->sender[0] == '<')
			from = xstrndup(c->sender + 1, strcspn(c->sender + 1, ">"));
		out = xasprintf("%s%s (%s: postroom-policyd verdict) %s%s%senvelope-from=\"%s\"; "
				"identity=mailfrom; receiver=%s;",
				(c->proto & SMFIP_HDR_LEADSPC) ? " " : "", spf, S->authserv_id,
				milter_rspf_clean(ip) ? "client-ip=" : "",
				milter_rspf_clean(ip) ? ip : "", milter_rspf_clean(ip) ? "; " : "",
				milter_rspf_clean(from) ? from : dom, S->authserv_id);
		free(from);
	}
	free(storage);
	return out;
}

/* milter_strip - remove incoming submission headers, verdict headers
 * that do not verify and, where milter_spf_applies, every incoming
 * Received-SPF; -1 when the MTA refused a change */
static int milter_strip(SMFICTX *ctx, const struct milter_conn *c)
{
	int i;

	for (i = c->n_submission; i >= 1; i--) {
		if (smfi_chgheader(ctx, SIGHDR_SUBMISSION, i, NULL) != MI_SUCCESS)
			return -1;
		metric_inc(M.removed);
	}
	for (i = c->n_verdict; i >= 1; i--) {
		if (i <= MILTER_VERDICTS_MAX && milter_verdict_ok(c, c->verdicts[i - 1]))
			continue;
		if (smfi_chgheader(ctx, SIGHDR_VERDICT, i, NULL) != MI_SUCCESS)
			return -1;
		metric_inc(M.removed);
	}
	for (i = c->n_ar_ours; i >= 1; i--) {
		if (smfi_chgheader(ctx, "Authentication-Results", c->ar_ours[i - 1], NULL) !=
		    MI_SUCCESS)
			return -1;
		metric_inc(M.removed);
	}
	for (i = milter_spf_applies(c) ? c->n_rspf : 0; i >= 1; i--) {
		if (smfi_chgheader(ctx, "Received-SPF", i, NULL) != MI_SUCCESS)
			return -1;
		metric_inc(M.removed);
	}
	if (c->n_submission > 0)
		log_info("%s: removed %d incoming %s header(s) from %s",
			 c->qid ? c->qid : "NOQUEUE", c->n_submission, SIGHDR_SUBMISSION,
			 c->client);
	if (c->n_ar_ours > 0)
		log_info("%s: removed %d incoming Authentication-Results with our authserv-id %s "
			 "from %s",
			 c->qid ? c->qid : "NOQUEUE", c->n_ar_ours, S->authserv_id, c->client);
	return 0;
}

/* milter_new_msgid - "<time.random@host>" for a message without one */
static char *milter_new_msgid(SMFICTX *ctx)
{
	unsigned char rnd[12];
	char hex[2 * sizeof(rnd) + 1];
	const char *host = milter_sym(ctx, "j");

	if (crypto_random(rnd, sizeof(rnd)) < 0)
		return NULL;
	crypto_hex(rnd, sizeof(rnd), hex);
	return xasprintf(
		"<%llx.%s@%s>", (unsigned long long)time(NULL), hex,
		host && strspn(host,
			       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
					strlen(host)
			? host
			: "postroom.invalid");
}

/* milter_trim - value without surrounding white space (caller frees) */
static char *milter_trim(const char *v)
{
	size_t n;

	v += strspn(v, " \t\r\n");
	n = strlen(v);
	while (n > 0 && strchr(" \t\r\n", v[n - 1]))
		n--;
	return xstrndup(v, n);
}

/* milter_sign - the signed submission header value (caller frees) */
static char *milter_sign(const struct milter_conn *c, const char *mid)
{
	struct sighdr f;
	char *m = milter_trim(mid), *v;

	memset(&f, 0, sizeof(f));
	f.fields[f.nfields].name = "user";
	f.fields[f.nfields++].value = c->auth;
	f.fields[f.nfields].name = "mid";
	f.fields[f.nfields++].value = m;
	if (c->qid) {
		f.fields[f.nfields].name = "qid";
		f.fields[f.nfields++].value = c->qid;
	}
	v = sighdr_sign(S->secret, SIGHDR_SUBMISSION, &f, time(NULL));
	free(m);
	return v;
}

/* milter_header_size - what adding "name: value" CRLF adds */
static long long milter_header_size(const char *name, const char *value)
{
	struct msgsize m = { 0, 0 };

	msgsize_header(&m, name, value, 0);
	return m.bytes;
}

/* milter_error - an internal failure at end of message: tempfail */
static sfsistat milter_error(SMFICTX *ctx, struct milter_conn *c, const char *what)
{
	struct rules_verdict v = { RULES_TEMPFAIL, "451", "4.3.0",
				   "Temporary local problem, try again later", 0 };

	log_error("%s: %s; tempfailing the message from %s", c->qid ? c->qid : "NOQUEUE", what,
		  c->client);
	metric_inc(M.errors);
	metric_inc(M.eom[2]);
	milter_msg_reset(c);
	return milter_refuse(ctx, &v);
}

/* milter_mark - Message-Id when missing, signed header, sent copy */
static int milter_mark(SMFICTX *ctx, struct milter_conn *c, const char *msgid, const char *sig,
		       const char **what)
{
	int lead = (c->proto & SMFIP_HDR_LEADSPC) != 0;
	char *v;
	int rc;

	if (msgid) {
		v = xasprintf("%s%s", lead ? " " : "", msgid);
		rc = c->n_msgid > 0 ? smfi_chgheader(ctx, "Message-Id", 1, v) /* a blank one */
				    : smfi_addheader(ctx, "Message-Id", v);
		free(v);
		if (rc != MI_SUCCESS) {
			*what = "cannot add Message-Id";
			return -1;
		}
		metric_inc(M.msgid_added);
	}
	v = xasprintf("%s%s", lead ? " " : "", sig);
	rc = smfi_insheader(ctx, 0, SIGHDR_SUBMISSION, v);
	free(v);
	if (rc != MI_SUCCESS) {
		*what = "cannot add " SIGHDR_SUBMISSION;
		return -1;
	}
	metric_inc(M.marked);
	if (S->sent_recipient) {
		v = milter_path(S->sent_recipient);
		rc = smfi_addrcpt(ctx, v);
		free(v);
		if (rc != MI_SUCCESS) {
			*what = "cannot add the sent-copy recipient";
			return -1;
		}
	}
	return 0;
}

/* milter_verp - with milter.verp, the envelope sender of an
 * authenticated submission becomes its per-message VERP address
 * (lib/verp.c); a sender that cannot carry one is kept */
static int milter_verp(SMFICTX *ctx, struct milter_conn *c, const char *mid, const char **what)
{
	char *v, *path;
	int rc;

	if (!S->verp_delim || c->sender == NULL || mid == NULL)
		return 0;
	if (!c->can_chgfrom) {
		log_warn("%s: the MTA does not let the milter change the envelope sender: no VERP",
			 c->qid ? c->qid : "NOQUEUE");
		return 0;
	}
	if ((v = verp_address(S->secret, c->sender, S->verp_delim, mid)) == NULL)
		return 0;
	path = milter_path(v);
	rc = smfi_chgfrom(ctx, path, NULL);
	free(path);
	free(v);
	if (rc != MI_SUCCESS) {
		*what = "cannot change the envelope sender (milter.verp)";
		return -1;
	}
	return 0;
}

/* milter_pm_redirect - every bare <Postmaster> recipient becomes
 * postmaster@rules.postmaster_domain (RFC 5321 4.5.1: the hosted domain
 * named for it); -1 with *what when the MTA refused the change */
static int milter_pm_redirect(SMFICTX *ctx, struct milter_conn *c, const char **what)
{
	char *to, *path;
	int i, rc;

	if (c->n_pm_bare == 0)
		return 0;
	if (!c->can_redirect) {
		log_warn("%s: the MTA does not let the milter change recipients: <Postmaster> left "
			 "to the MTA",
			 c->qid ? c->qid : "NOQUEUE");
		return 0;
	}
	to = rules_postmaster_qualify(S->rules.postmaster_domain, c->pm_bare[0]);
	path = milter_path(to);
	rc = smfi_addrcpt(ctx, path);
	for (i = 0; rc == MI_SUCCESS && i < c->n_pm_bare; i++)
		rc = smfi_delrcpt(ctx, c->pm_bare[i]);
	if (rc == MI_SUCCESS)
		log_info("%s: recipient <Postmaster> from %s delivered to %s",
			 c->qid ? c->qid : "NOQUEUE", c->client, path);
	free(path);
	free(to);
	if (rc != MI_SUCCESS) {
		*what = "cannot replace the <Postmaster> recipient";
		return -1;
	}
	return 0;
}

/* milter_attachments - 552 5.3.4 for an attachment over
 * limits.attachment_size_max (*refused_r set, the reply set); -1 after
 * a system error, the reply a tempfail; 0 otherwise */
static int milter_attachments(SMFICTX *ctx, struct milter_conn *c, int *refused_r)
{
	struct rules_verdict v = { RULES_REJECT, "552", "5.3.4", NULL, 0 };
	long long oversize;
	char *what = NULL, *text;

	*refused_r = 0;
	if (milter_oversize(c, &oversize, &what) < 0) {
		(void)milter_error(ctx, c, what);
		free(what);
		return -1;
	}
	if (oversize == 0)
		return 0;
	text = mime_check_reason(oversize, S->mime.attachment_size_max);
	v.text = text;
	log_info("%s: reject: end of data from %s: %s %s %s", c->qid ? c->qid : "NOQUEUE",
		 c->client, v.code, v.enhanced, text);
	metric_inc(M.eom[1]);
	(void)milter_refuse(ctx, &v);
	free(text);
	milter_msg_reset(c);
	*refused_r = 1;
	return 0;
}

static sfsistat cb_eom(SMFICTX *ctx)
{
	struct milter_conn *c = milter_conn(ctx);
	struct rules_verdict v;
	char *msgid = NULL, *sig = NULL, *rspf = NULL;
	const char *what = NULL;
	int refused = 0;
	long long size = c->size.bytes + 2; /* the empty line after the headers */

	milter_refresh_qid(ctx, c);
	if (!c->can_edit &&
	    (c->auth || c->n_submission > 0 || c->n_verdict > 0 || c->n_ar_ours > 0 ||
	     (milter_spf_applies(c) && (c->n_rspf > 0 || c->n_verdict > 0))))
		return milter_error(ctx, c, "the MTA does not allow header changes");
	if (c->auth) {
		if (c->message_id == NULL && (msgid = milter_new_msgid(ctx)) == NULL)
			return milter_error(ctx, c, "no randomness for a Message-Id");
		if ((sig = milter_sign(c, msgid ? msgid : c->message_id)) == NULL)
			return milter_error(ctx, c, "cannot sign the submission header");
		size += milter_header_size(SIGHDR_SUBMISSION, sig);
		if (msgid)
			size += milter_header_size("Message-Id", msgid);
	}
	rules_check_size(&S->rules, size, &v);
	if (v.kind != RULES_ACCEPT) {
		log_info("%s: reject: end of data from %s: %s %s %s; size=%lld max=%lld",
			 c->qid ? c->qid : "NOQUEUE", c->client, v.code, v.enhanced, v.text, size,
			 S->rules.message_size_max);
		metric_inc(M.eom[milter_vi(&v)]);
		free(msgid);
		free(sig);
		milter_msg_reset(c);
		return milter_refuse(ctx, &v);
	}
	if (milter_attachments(ctx, c, &refused) < 0 || refused) {
		free(msgid);
		free(sig);
		return refused ? SMFIS_REJECT : SMFIS_TEMPFAIL;
	}
	if (milter_strip(ctx, c) < 0)
		what = "cannot remove an incoming internal header";
	else if (milter_spf_applies(c) && (rspf = milter_received_spf(c)) != NULL &&
		 smfi_insheader(ctx, 0, "Received-SPF", rspf) != MI_SUCCESS)
		what = "cannot add Received-SPF";
	else if (sig && milter_mark(ctx, c, msgid, sig, &what) == 0) /* sets what on failure */
		(void)milter_verp(ctx, c, msgid ? msgid : c->message_id, &what);
	if (what == NULL)
		(void)milter_pm_redirect(ctx, c, &what); /* sets what on failure */
	free(msgid);
	free(sig);
	free(rspf);
	if (what)
		return milter_error(ctx, c, what);
	metric_inc(M.eom[0]);
	milter_msg_reset(c);
	return SMFIS_CONTINUE;
}

static sfsistat cb_abort(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c)
		milter_msg_reset(c);
	return SMFIS_CONTINUE;
}

static sfsistat cb_close(SMFICTX *ctx)
{
	struct milter_conn *c = smfi_getpriv(ctx);

	if (c) {
		milter_msg_reset(c);
		free(c);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc milter_desc = {
	"postroom-milter",
	SMFI_VERSION,
	SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_SETSYMLIST,
	cb_connect,
	NULL, /* helo */
	cb_envfrom,
	cb_envrcpt,
	cb_header,
	NULL, /* eoh */
	cb_body,
	cb_eom,
	cb_abort,
	cb_close,
	NULL, /* unknown */
	NULL, /* data */
	cb_negotiate,
};

struct smfiDesc *milter_callbacks(const struct milter_settings *settings)
{
	S = settings;
	if (S->verp_delim)
		milter_desc.xxfi_flags |= SMFIF_CHGFROM;
	return &milter_desc;
}
