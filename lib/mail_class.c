/*
 * NAME
 *	mail_class - classify bounces, delay notices, auto-replies and
 *	complaints (issue 21)
 * DESCRIPTION
 *	Works on the message lib/mime_parse has parsed: no second MIME
 *	parse. The report parts (message/delivery-status,
 *	message/feedback-report) and the returned message or its headers
 *	(message/rfc822, text/rfc822-headers, their global variants) are
 *	attachments there, decoded into the attachment memory file; their
 *	header blocks are read back (at most MAIL_CLASS_READ_MAX bytes) and
 *	their fields parsed by GMime. The rules, first match wins:
 *	1. complaint: a multipart/report with report-type=feedback-report
 *	   (RFC 5965); Feedback-Type: not-spam is ordinary. The complained-
 *	   about recipient: Original-Rcpt-To, else the returned message's To.
 *	2. DSN: a multipart/report with report-type=delivery-status (RFC
 *	   3464, 6533), or a null sender with a message/delivery-status
 *	   part. Per recipient: Action failed with a 5.x.x status other than
 *	   5.2.2 (mailbox full), or without a status, is hard; failed with
 *	   4.x.x or 5.2.2 is soft; delayed is a delay. The message is a hard
 *	   bounce when any recipient is, else soft, else a delay notice;
 *	   a DSN of delivered/relayed/expanded only is ordinary. A DSN
 *	   without recipient fields is classed by its text as in rule 3
 *	   (status codes, X-Failed-Recipients), else ordinary.
 *	3. non-standard bounce (conservative): not a multipart/report, no
 *	   List-Id, the envelope sender is null <> (RFC 5321 4.5.5; when
 *	   the envelope is unknown, as for a file: Return-Path: <>, or
 *	   From's local part MAILER-DAEMON, postmaster or
 *	   MicrosoftExchange...), AND the Subject starts like one of the
 *	   usual bounce subjects (mail_class_subjects), AND the text holds
 *	   an enhanced status code: 5.x.x -> hard (5.2.2 soft), else 4.x.x
 *	   with "delay" or "warning" in the subject -> delay, else soft. Failed
 *	   recipients: X-Failed-Recipients (Exim), "<address>:" lines
 *	   (qmail). Anything short of all three is ordinary.
 *	4. auto-reply: never for mailing-list mail (List-Id, List-Post,
 *	   List-Unsubscribe, Precedence: list); Auto-Submitted other than
 *	   "no" (RFC 3834), X-Autoreply, X-Autorespond, Precedence:
 *	   auto_reply; or Precedence bulk/junk with an out-of-office subject.
 *	   The original is In-Reply-To (else the last References id).
 *	5. anything else is ordinary.
 * NEVER
 *	fails or crashes because of the content; reads more than
 *	MAIL_CLASS_READ_MAX bytes of a part; writes anything.
 */
#include "mail_class.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mime_scan.h"
#include "store_spool.h"
#include "xalloc.h"

#define MAIL_CLASS_READ_MAX (256 * 1024) /* of one report part */
#define MAIL_CLASS_RCPTS_MAX 100
#define MAIL_CLASS_TEXT_MAX 1000
#define MAIL_CLASS_BLOCKS_MAX 1000

/* the usual subjects of non-standard bounces: how the Subject starts
 * (case-insensitive) */
static const char *const mail_class_subjects[] = {
	"undelivered mail",
	"undeliverable",
	"undelivered message",
	"delivery status notification",
	"mail delivery failed",
	"mail delivery failure",
	"failure notice",
	"returned mail",
	"delivery failure",
	"delivery has failed",
	"non-delivery",
	"nondeliverable",
	"message not delivered",
	"mail delivery system",
	"delayed mail",
	"mail delivery delayed",
	"warning: could not send",
	"warning: message",
	NULL,
};

static const char *const mail_class_ooo_subjects[] = {
	"out of office",
	"out of the office",
	"automatic reply",
	"auto reply",
	"autoreply",
	"auto-reply",
	"auto:",
	"vacation",
	"abwesenheit",
	"absence",
	NULL,
};

const char *mail_class_name(enum mail_class c)
{
	switch (c) {
	case MAIL_CLASS_BOUNCE_HARD: return "bounce-hard";
	case MAIL_CLASS_BOUNCE_SOFT: return "bounce-soft";
	case MAIL_CLASS_DELAY: return "delay";
	case MAIL_CLASS_AUTO_REPLY: return "auto-reply";
	case MAIL_CLASS_COMPLAINT: return "complaint";
	default: return "ordinary";
	}
}

const char *mail_class_kind_name(enum mail_class_kind k)
{
	switch (k) {
	case MAIL_KIND_HARD: return "hard";
	case MAIL_KIND_SOFT: return "soft";
	case MAIL_KIND_DELAY: return "delay";
	default: return "other";
	}
}

/* mail_class_header - the first top-level field name (trimmed), or NULL */
static const char *mail_class_header(const struct mime_msg *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nclass_headers; i++)
		if (strcasecmp(m->class_headers[i].name, name) == 0)
			return m->class_headers[i].value;
	return NULL;
}

/* mail_class_has - does s contain one of the words (case-insensitive)? */
static int mail_class_has(const char *s, const char *const *words)
{
	size_t i;

	for (i = 0; s && words[i]; i++)
		if (strcasestr(s, words[i]))
			return 1;
	return 0;
}

/* mail_class_starts - does s start with one of the words (case-insensitive)? */
static int mail_class_starts(const char *s, const char *const *words)
{
	size_t i;

	for (i = 0; s && words[i]; i++)
		if (strncasecmp(s, words[i], strlen(words[i])) == 0)
			return 1;
	return 0;
}

/* mail_class_token_is - is the first token of v (before ';', spaces) word? */
static int mail_class_token_is(const char *v, const char *word)
{
	size_t n = strlen(word);

	if (v == NULL)
		return 0;
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	return strncasecmp(v, word, n) == 0 &&
	       (v[n] == '\0' || v[n] == ';' || v[n] == ' ' || v[n] == '\t' || v[n] == '\r' ||
		v[n] == '\n' || v[n] == '(');
}

/* mail_class_clean - a bounded, trimmed UTF-8 copy; NULL when empty */
static char *mail_class_clean(const char *s, size_t max)
{
	char *c;
	size_t n;

	if (s == NULL)
		return NULL;
	c = mime_clean_utf8(s, strlen(s), max);
	g_strstrip(c);
	n = strlen(c);
	if (n >= 2 && c[0] == '<' && c[n - 1] == '>') {
		memmove(c, c + 1, n - 2);
		c[n - 2] = '\0';
	}
	if (*c == '\0')
		xfree(&c);
	return c;
}

/* mail_class_status - the first enhanced status code "d.d{1,3}.d{1,3}"
 * (class 2, 4 or 5) in s, copied; NULL when none */
static char *mail_class_status(const char *s, const char *classes)
{
	const char *p;

	for (p = s; p && *p; p++) {
		const char *q = p + 1;
		size_t a = 0, b = 0;

		if (!strchr(classes, *p) || *q != '.' ||
		    (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '.')))
			continue;
		for (q++; isdigit((unsigned char)*q) && a < 4; q++)
			a++;
		if (a == 0 || a > 3 || *q != '.')
			continue;
		for (q++; isdigit((unsigned char)*q) && b < 4; q++)
			b++;
		if (b == 0 || b > 3 || isalnum((unsigned char)*q) ||
		    (*q == '.' && isdigit((unsigned char)q[1])))
			continue;
		return xstrndup(p, (size_t)(q - p));
	}
	return NULL;
}

/* mail_class_kind_of - hard, soft or delay from a DSN Action and Status */
static enum mail_class_kind mail_class_kind_of(const char *action, const char *status)
{
	if (action && strcmp(action, "delayed") == 0)
		return MAIL_KIND_DELAY;
	if (action == NULL || strcmp(action, "failed") != 0)
		return MAIL_KIND_OTHER;
	if (status == NULL || (status[0] == '5' && strcmp(status, "5.2.2") != 0))
		return MAIL_KIND_HARD;
	return MAIL_KIND_SOFT;
}

/* mail_class_add_rcpt - one more recipient (bounded); takes the strings */
static void mail_class_add_rcpt(struct mail_class_report *r, char *address, char *action,
				char *status, char *diagnostic, enum mail_class_kind kind)
{
	struct mail_class_rcpt *x;

	if (address == NULL || r->nrcpts >= MAIL_CLASS_RCPTS_MAX) {
		free(address);
		free(action);
		free(status);
		free(diagnostic);
		return;
	}
	r->rcpts = xgrow(r->rcpts, r->nrcpts, sizeof(*r->rcpts));
	x = &r->rcpts[r->nrcpts++];
	x->address = address;
	x->action = action;
	x->status = status;
	x->diagnostic = diagnostic;
	x->kind = kind;
}

/* mail_class_read - the decoded content of attachment a (at most
 * MAIL_CLASS_READ_MAX bytes, NUL-terminated); NULL when unreadable */
static char *mail_class_read(const struct mime_msg *m, const struct mime_attachment *a,
			     size_t *len_r)
{
	size_t n = a->size > MAIL_CLASS_READ_MAX ? MAIL_CLASS_READ_MAX : (size_t)a->size;
	char *buf;
	ssize_t got;

	if (m->att_fd < 0 || a->size < 0)
		return NULL;
	buf = xmalloc(n + 1);
	got = store_spool_pread_all(m->att_fd, buf, n, a->offset);
	if (got < 0) {
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	*len_r = (size_t)got;
	return buf;
}

/* mail_class_find - the first attachment of one of the types, or NULL */
static const struct mime_attachment *mail_class_find(const struct mime_msg *m,
						     const char *const *types)
{
	size_t i, k;

	for (i = 0; i < m->natts; i++)
		for (k = 0; types[k]; k++)
			if (strcmp(m->atts[i].content_type, types[k]) == 0)
				return &m->atts[i];
	return NULL;
}

/* mail_class_block - GMime's object for the header block p[0, len) (a
 * block of a report part, or a returned message's header); the caller
 * unrefs it. NULL when GMime makes nothing of it. */
static GMimeObject *mail_class_block(const char *p, size_t len, int message)
{
	GMimeStream *s = g_mime_stream_mem_new();
	GMimeParser *parser;
	GMimeObject *obj = NULL;
	GMimeMessage *msg;

	g_mime_stream_write(s, p, len);
	g_mime_stream_write(s, "\n\n", 2);
	g_mime_stream_reset(s);
	parser = g_mime_parser_new_with_stream(s);
	if (message) {
		g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
		if ((msg = g_mime_parser_construct_message(parser, NULL)) != NULL)
			obj = GMIME_OBJECT(msg);
	} else {
		obj = g_mime_parser_construct_part(parser, NULL);
	}
	g_object_unref(parser);
	g_object_unref(s);
	return obj;
}

/* the blocks of a report part, one at a time */
typedef void (*mail_class_block_fn)(GMimeObject *block, int first, void *ctx);

/* mail_class_blocks - call fn for each header block of buf (RFC 3464
 * 2.1: per-message fields, then one block per recipient; RFC 5965 2:
 * one block) */
static void mail_class_blocks(const char *buf, size_t len, mail_class_block_fn fn, void *ctx)
{
	size_t off = 0, hdr_len, nfields, nlines, body;
	int first = 1, n = 0;

	while (off < len && n++ < MAIL_CLASS_BLOCKS_MAX) {
		GMimeObject *obj;

		body = mime_scan_headers(buf + off, len - off, NULL, &hdr_len, &nfields, &nlines);
		if (body == 0)
			break;
		if (hdr_len > 0 && nfields > 0 &&
		    (obj = mail_class_block(buf + off, hdr_len, 0)) != NULL) {
			fn(obj, first, ctx);
			first = 0;
			g_object_unref(obj);
		}
		off += body;
	}
}

/* mail_class_address - the address of a DSN recipient field
 * ("rfc822; user@example.com") */
static char *mail_class_address(const char *v)
{
	const char *semi;

	if (v == NULL)
		return NULL;
	semi = strchr(v, ';');
	return mail_class_clean(semi ? semi + 1 : v, 512);
}

/* mail_class_lower - s in lower case, in place */
static char *mail_class_lower(char *s)
{
	char *p;

	for (p = s; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

/* mail_class_dsn_block - one block of a message/delivery-status */
static void mail_class_dsn_block(GMimeObject *b, int first, void *ctx)
{
	struct mail_class_report *r = ctx;
	const char *final = g_mime_object_get_header(b, "Final-Recipient");
	const char *orig = g_mime_object_get_header(b, "Original-Recipient");
	const char *action = g_mime_object_get_header(b, "Action");
	const char *status = g_mime_object_get_header(b, "Status");
	const char *diag = g_mime_object_get_header(b, "Diagnostic-Code");
	char *a, *st, *act;

	(void)first;
	if (final == NULL && orig == NULL && action == NULL)
		return; /* the per-message fields */
	a = mail_class_address(final ? final : orig);
	act = action ? mail_class_lower(mail_class_clean(action, 32)) : NULL;
	if (act && strpbrk(act, " \t;("))
		*strpbrk(act, " \t;(") = '\0';
	st = status ? mail_class_status(status, "245") : NULL;
	mail_class_add_rcpt(r, a, act, st, mail_class_clean(diag, MAIL_CLASS_TEXT_MAX),
			    mail_class_kind_of(act, st));
}

/* mail_class_returned - the Message-Id (and first To address, to_r may
 * be NULL) of the returned message or headers part */
static void mail_class_returned(const struct mime_msg *m, char **msgid_r, char **to_r)
{
	static const char *const types[] = { "message/rfc822",         "text/rfc822-headers",
					     "message/global",         "message/global-headers",
					     "message/rfc822-headers", NULL };
	const struct mime_attachment *a = mail_class_find(m, types);
	size_t len, hdr_len, nfields, nlines;
	GMimeObject *obj;
	char *buf;

	if (a == NULL || (buf = mail_class_read(m, a, &len)) == NULL)
		return;
	(void)mime_scan_headers(buf, len, NULL, &hdr_len, &nfields, &nlines);
	if (hdr_len > 0 && (obj = mail_class_block(buf, hdr_len, 1)) != NULL) {
		GMimeMessage *msg = GMIME_MESSAGE(obj);
		InternetAddressList *to = g_mime_message_get_to(msg);

		if (*msgid_r == NULL)
			*msgid_r = mail_class_clean(g_mime_message_get_message_id(msg), 900);
		if (to_r && *to_r == NULL && to && internet_address_list_length(to) > 0) {
			InternetAddress *ia = internet_address_list_get_address(to, 0);

			if (INTERNET_ADDRESS_IS_MAILBOX(ia))
				*to_r = mail_class_clean(internet_address_mailbox_get_addr(
								 INTERNET_ADDRESS_MAILBOX(ia)),
							 512);
		}
		g_object_unref(obj);
	}
	free(buf);
}

/* mail_class_overall - the message's class from its recipients' kinds */
static enum mail_class mail_class_overall(const struct mail_class_report *r)
{
	int soft = 0, delay = 0;
	size_t i;

	for (i = 0; i < r->nrcpts; i++) {
		if (r->rcpts[i].kind == MAIL_KIND_HARD)
			return MAIL_CLASS_BOUNCE_HARD;
		soft |= r->rcpts[i].kind == MAIL_KIND_SOFT;
		delay |= r->rcpts[i].kind == MAIL_KIND_DELAY;
	}
	return soft ? MAIL_CLASS_BOUNCE_SOFT : delay ? MAIL_CLASS_DELAY : MAIL_CLASS_ORDINARY;
}

static int mail_class_from_text(const struct mime_msg *m, struct mail_class_report *r);

/* mail_class_dsn - rule 2; 1 when it decided */
static int mail_class_dsn(const struct mime_msg *m, int null_sender, struct mail_class_report *r)
{
	static const char *const types[] = { "message/delivery-status",
					     "message/global-delivery-status", NULL };
	int report = m->report_type && (strcmp(m->report_type, "delivery-status") == 0 ||
					strcmp(m->report_type, "global-delivery-status") == 0);
	const struct mime_attachment *a = mail_class_find(m, types);
	size_t len;
	char *buf;

	if (!report && !(null_sender && a))
		return 0;
	if (a && (buf = mail_class_read(m, a, &len)) != NULL) {
		mail_class_blocks(buf, len, mail_class_dsn_block, r);
		free(buf);
	}
	mail_class_returned(m, &r->original_message_id, NULL);
	r->cls = mail_class_overall(r);
	if (r->nrcpts == 0 && mail_class_from_text(m, r))
		r->rule = "dsn without recipient fields: status code of the text";
	else
		r->rule = r->cls != MAIL_CLASS_ORDINARY ? "dsn"
			  : r->nrcpts > 0               ? "dsn: no failure or delay"
					  : "dsn: no recipient fields, no status code";
	return 1;
}

/* the complaint being read */
struct mail_class_arf {
	char *rcpt, *type;
};

static void mail_class_arf_block(GMimeObject *b, int first, void *ctx)
{
	struct mail_class_arf *x = ctx;

	if (!first)
		return;
	x->rcpt = mail_class_clean(g_mime_object_get_header(b, "Original-Rcpt-To"), 512);
	x->type = mail_class_lower(
		mail_class_clean(g_mime_object_get_header(b, "Feedback-Type"), 64));
}

/* mail_class_complaint - rule 1; 1 when it decided */
static int mail_class_complaint(const struct mime_msg *m, struct mail_class_report *r)
{
	static const char *const types[] = { "message/feedback-report", NULL };
	const struct mime_attachment *a = mail_class_find(m, types);
	struct mail_class_arf x = { NULL, NULL };
	size_t len;
	char *buf, *to = NULL;

	if (m->report_type == NULL || strcmp(m->report_type, "feedback-report") != 0)
		return 0;
	if (a && (buf = mail_class_read(m, a, &len)) != NULL) {
		mail_class_blocks(buf, len, mail_class_arf_block, &x);
		free(buf);
	}
	mail_class_returned(m, &r->original_message_id, &to);
	if (x.type && strcmp(x.type, "not-spam") == 0) {
		r->cls = MAIL_CLASS_ORDINARY;
		r->rule = "arf: not-spam";
		free(to);
		free(x.rcpt);
	} else {
		r->cls = MAIL_CLASS_COMPLAINT;
		r->rule = "arf";
		mail_class_add_rcpt(r, x.rcpt ? x.rcpt : to, NULL, NULL, NULL, MAIL_KIND_OTHER);
		if (x.rcpt)
			free(to);
	}
	free(x.type);
	return 1;
}

/* mail_class_daemon_from - From's local part names a mail system */
static int mail_class_daemon_from(const char *from)
{
	static const char *const locals[] = { "mailer-daemon", "postmaster", "mail-daemon",
					      "mailerdaemon", NULL };
	const char *at = from ? strrchr(from, '@') : NULL;
	size_t n = at ? (size_t)(at - from) : (from ? strlen(from) : 0), i;

	for (i = 0; from && locals[i]; i++)
		if (n == strlen(locals[i]) && strncasecmp(from, locals[i], n) == 0)
			return 1;
	return from && strncasecmp(from, "microsoftexchange", 17) == 0;
}

/* mail_class_is_list - rule 4's mailing-list test */
static int mail_class_is_list(const struct mime_msg *m)
{
	return mail_class_header(m, "List-Id") || mail_class_header(m, "List-Post") ||
	       mail_class_header(m, "List-Unsubscribe") ||
	       mail_class_token_is(mail_class_header(m, "Precedence"), "list");
}

/* mail_class_text_rcpts - failed recipients of a non-standard bounce:
 * X-Failed-Recipients (Exim), else qmail's "<address>:" lines */
static void mail_class_text_rcpts(const struct mime_msg *m, const char *status,
				  enum mail_class_kind kind, struct mail_class_report *r)
{
	const char *x = mail_class_header(m, "X-Failed-Recipients"), *p, *e;

	if (x) {
		char **v = g_strsplit(x, ",", MAIL_CLASS_RCPTS_MAX + 1), **q;

		for (q = v; *q; q++)
			mail_class_add_rcpt(r, mail_class_clean(*q, 512), NULL,
					    status ? xstrdup(status) : NULL, NULL, kind);
		g_strfreev(v);
		return;
	}
	for (p = m->text_body; p && *p; p = e + (*e != '\0')) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if (*p == '<' && e - p > 4 && e - p < 520) {
			const char *gt = memchr(p, '>', (size_t)(e - p));

			if (gt && gt[1] == ':' && memchr(p, '@', (size_t)(gt - p))) {
				char *a = xstrndup(p, (size_t)(gt - p + 1));

				mail_class_add_rcpt(r, mail_class_clean(a, 512), NULL,
						    status ? xstrdup(status) : NULL, NULL, kind);
				free(a);
			}
		}
	}
}

/* mail_class_text_msgid - a "Message-ID: <...>" line of the text body
 * (a returned copy quoted in a non-standard bounce) */
static char *mail_class_text_msgid(const char *text)
{
	const char *p = text, *lt, *gt;

	while (p && (p = strcasestr(p, "message-id:")) != NULL) {
		if (p == text || p[-1] == '\n') {
			lt = strchr(p, '<');
			gt = lt ? strchr(lt, '>') : NULL;
			if (lt && gt && gt - lt < 900 && !memchr(p, '\n', (size_t)(lt - p))) {
				char *id = xstrndup(lt, (size_t)(gt - lt + 1)), *c;

				c = mail_class_clean(id, 900);
				free(id);
				return c;
			}
		}
		p += 11;
	}
	return NULL;
}

/* mail_class_from_text - the class from the enhanced status codes of the
 * text (5.x.x hard, 5.2.2 soft; else 4.x.x: a delay when the subject
 * says "delay" or "warning", else soft) and the failed recipients; 0
 * when the text holds none */
static int mail_class_from_text(const struct mime_msg *m, struct mail_class_report *r)
{
	enum mail_class_kind kind;
	char *hard, *soft = NULL;

	if ((hard = mail_class_status(m->text_body, "5")) != NULL) {
		kind = strcmp(hard, "5.2.2") == 0 ? MAIL_KIND_SOFT : MAIL_KIND_HARD;
		r->cls = kind == MAIL_KIND_HARD ? MAIL_CLASS_BOUNCE_HARD : MAIL_CLASS_BOUNCE_SOFT;
	} else if ((soft = mail_class_status(m->text_body, "4")) != NULL) {
		kind = strcasestr(m->subject, "delay") || strcasestr(m->subject, "warning")
			       ? MAIL_KIND_DELAY
			       : MAIL_KIND_SOFT;
		r->cls = kind == MAIL_KIND_DELAY ? MAIL_CLASS_DELAY : MAIL_CLASS_BOUNCE_SOFT;
	} else {
		return 0;
	}
	mail_class_text_rcpts(m, hard ? hard : soft, kind, r);
	free(hard);
	free(soft);
	return 1;
}

/* mail_class_nonstandard - rule 3; 1 when it decided */
static int mail_class_nonstandard(const struct mime_msg *m, const char *env_sender, int null_sender,
				  struct mail_class_report *r)
{
	if (mail_class_header(m, "List-Id") || m->report_type != NULL)
		return 0;
	if (!null_sender && !(env_sender == NULL && mail_class_daemon_from(m->from_address)))
		return 0;
	if (!mail_class_starts(m->subject, mail_class_subjects) || !mail_class_from_text(m, r))
		return 0;
	r->rule = "non-standard bounce: null sender, bounce subject, status code";
	mail_class_returned(m, &r->original_message_id, NULL);
	if (r->original_message_id == NULL)
		r->original_message_id = mail_class_text_msgid(m->text_body);
	return 1;
}

/* mail_class_auto - rule 4; 1 when it decided */
static int mail_class_auto(const struct mime_msg *m, struct mail_class_report *r)
{
	const char *as = mail_class_header(m, "Auto-Submitted");
	const char *prec = mail_class_header(m, "Precedence");

	if (mail_class_is_list(m))
		return 0;
	if (as && !mail_class_token_is(as, "no"))
		r->rule = "Auto-Submitted";
	else if (mail_class_header(m, "X-Autoreply") || mail_class_header(m, "X-Autorespond"))
		r->rule = "X-Autoreply/X-Autorespond";
	else if (mail_class_token_is(prec, "auto_reply"))
		r->rule = "Precedence: auto_reply";
	else if ((mail_class_token_is(prec, "bulk") || mail_class_token_is(prec, "junk")) &&
		 mail_class_has(m->subject, mail_class_ooo_subjects))
		r->rule = "Precedence: bulk/junk and an out-of-office subject";
	else
		return 0;
	r->cls = MAIL_CLASS_AUTO_REPLY;
	if (m->in_reply_to)
		r->original_message_id = xstrdup(m->in_reply_to);
	else if (m->nreferences > 0)
		r->original_message_id = xstrdup(m->references[m->nreferences - 1]);
	if (m->from_address && *m->from_address)
		mail_class_add_rcpt(r, xstrdup(m->from_address), NULL, NULL, NULL, MAIL_KIND_OTHER);
	return 1;
}

void mail_class_classify(const struct mime_msg *m, const char *env_sender,
			 struct mail_class_report *r)
{
	const char *rp = mail_class_header(m, "Return-Path");
	int null_sender =
		env_sender ? *env_sender == '\0' : rp != NULL && strspn(rp, " \t<>") == strlen(rp);

	memset(r, 0, sizeof(*r));
	r->cls = MAIL_CLASS_ORDINARY;
	r->rule = "ordinary";
	if (mail_class_complaint(m, r) || mail_class_dsn(m, null_sender, r) ||
	    mail_class_nonstandard(m, env_sender, null_sender, r))
		return;
	if (!mail_class_auto(m, r) && mail_class_is_list(m))
		r->rule = "mailing list";
}

void mail_class_report_free(struct mail_class_report *r)
{
	size_t i;

	for (i = 0; i < r->nrcpts; i++) {
		free(r->rcpts[i].address);
		free(r->rcpts[i].action);
		free(r->rcpts[i].status);
		free(r->rcpts[i].diagnostic);
	}
	xfree(&r->rcpts);
	r->nrcpts = 0;
	xfree(&r->original_message_id);
}
