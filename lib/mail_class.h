/* mail_class.h - what kind of machine mail a stored message is: a bounce
 * (hard or soft), a delay notice, an auto-reply, a complaint, or
 * ordinary mail; and the facts its class carries (issue 21).
 *
 * CONTRACT: mail_class_classify is a pure function of the message as
 * lib/mime_parse left it (its report parts are read back from the
 * message's attachment memory file, and their fields parsed by GMime)
 * and the envelope sender. It never fails because of the content: when
 * unsure it says MAIL_CLASS_ORDINARY. All strings are valid UTF-8 without
 * NUL bytes, bounded; the caller frees the report with
 * mail_class_report_free. No I/O other than reading m->att_fd, no
 * logging. The rules are documented in mail_class.c and doc/schema.md. */
#ifndef POSTROOM_MAIL_CLASS_H
#define POSTROOM_MAIL_CLASS_H

#include <stddef.h>

#include "mime_parse.h"

enum mail_class {
	MAIL_CLASS_ORDINARY,
	MAIL_CLASS_BOUNCE_HARD, /* a permanent failure (5.x.x, not 5.2.2) */
	MAIL_CLASS_BOUNCE_SOFT, /* a failure with a transient status (4.x.x, 5.2.2) */
	MAIL_CLASS_DELAY,       /* Action: delayed: not a failure yet */
	MAIL_CLASS_AUTO_REPLY,  /* RFC 3834 and the common vacation responders */
	MAIL_CLASS_COMPLAINT    /* ARF (RFC 5965) feedback report */
};

/* the per-recipient kind (what the store does with the address) */
enum mail_class_kind { MAIL_KIND_HARD, MAIL_KIND_SOFT, MAIL_KIND_DELAY, MAIL_KIND_OTHER };

struct mail_class_rcpt {
	char *address;    /* the failed (or complained-about) recipient */
	char *action;     /* DSN Action (lower case) or NULL */
	char *status;     /* DSN Status "5.1.1" or NULL */
	char *diagnostic; /* Diagnostic-Code or NULL */
	enum mail_class_kind kind;
};

struct mail_class_report {
	enum mail_class cls;
	const char *rule;          /* static: the rule that decided (for the record) */
	char *original_message_id; /* without angle brackets, or NULL */
	struct mail_class_rcpt *rcpts;
	size_t nrcpts;
};

/* mail_class_classify - fill *r (zeroed first). env_sender is the
 * envelope sender ("" = the null sender <>), or NULL when unknown (then
 * the message's Return-Path stands in). */
void mail_class_classify(const struct mime_msg *m, const char *env_sender,
			 struct mail_class_report *r);
void mail_class_report_free(struct mail_class_report *r);

/* mail_class_name - "ordinary", "bounce-hard", "bounce-soft", "delay",
 * "auto-reply", "complaint" (static) */
const char *mail_class_name(enum mail_class c);
/* mail_class_kind_name - "hard", "soft", "delay", "other" (static) */
const char *mail_class_kind_name(enum mail_class_kind k);

#endif
