/*
 * NAME
 *	received - the queue id in the Received: header Postfix adds
 * DESCRIPTION
 *	Reads "[from HELO (comments)] by HOST (NAME[, from userid N])
 *	[with PROTO] id QID [for <rcpt>]; DATE", the form Postfix's smtpd,
 *	qmqpd and pickup write, from one Received: header value, and the
 *	topmost Received: header of a message. postroom-deliver uses it
 *	when the MTA passed no queue id (Postfix local(8), mailbox_command).
 *	Pure: no I/O, no allocation. Reads no configuration parameter.
 * NEVER
 *	looks below the topmost Received: header (the ones under it are the
 *	sender's to write); accepts an id that is not plain alphanumerics;
 *	reads past the NUL of a value, even in an unclosed comment.
 */
#include "received.h"

#include <string.h>
#include <strings.h>

enum rcv_type { RCV_END, RCV_SEMI, RCV_COMMENT, RCV_WORD };

/* One token of a Received: value. */
struct rcv_tok {
	enum rcv_type type;
	const char *p;
	size_t len;
};

static int rcv_is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* rcv_comment_end - past the comment at s ('('), nested comments and
 * backslash quotes allowed; NULL when it is not closed */
static const char *rcv_comment_end(const char *s)
{
	int depth = 0;

	for (; *s; s++) {
		if (*s == '\\' && s[1] != '\0')
			s++;
		else if (*s == '(')
			depth++;
		else if (*s == ')' && --depth == 0)
			return s + 1;
	}
	return NULL;
}

/* rcv_next - the token at *s (a comment, ';', or a word up to white
 * space, '(' or ';'), *s moved past it; -1 for an unclosed comment */
static int rcv_next(const char **s, struct rcv_tok *t)
{
	const char *p = *s, *e;

	while (rcv_is_space(*p))
		p++;
	t->p = p;
	if (*p == '\0') {
		t->type = RCV_END;
		e = p;
	} else if (*p == ';') {
		t->type = RCV_SEMI;
		e = p + 1;
	} else if (*p == '(') {
		t->type = RCV_COMMENT;
		if ((e = rcv_comment_end(p)) == NULL)
			return -1;
	} else {
		t->type = RCV_WORD;
		for (e = p; *e && !rcv_is_space(*e) && *e != '(' && *e != ';'; e++)
			;
	}
	t->len = (size_t)(e - p);
	*s = e;
	return 0;
}

/* rcv_is_word - t is the word w (any case) */
static int rcv_is_word(const struct rcv_tok *t, const char *w)
{
	return t->type == RCV_WORD && t->len == strlen(w) && strncasecmp(t->p, w, t->len) == 0;
}

/* rcv_span - the first n bytes of p are all in set */
static int rcv_span(const char *p, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] == '\0' || strchr(set, p[i]) == NULL)
			return 0;
	return n > 0;
}

#define RCV_ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* rcv_is_mta_comment - "(NAME)" or "(NAME, from userid N)": what Postfix
 * writes after "by HOST" (NAME is mail_name, "Postfix") */
static int rcv_is_mta_comment(const struct rcv_tok *t)
{
	const char *p = t->p + 1, *end = t->p + t->len - 1; /* inside the parentheses */
	size_t n = strspn(p, RCV_ALNUM "._-");
	static const char uid[] = ", from userid ";

	if (t->type != RCV_COMMENT || n == 0 || p + n > end)
		return 0;
	p += n;
	if (p == end)
		return 1;
	if ((size_t)(end - p) <= sizeof(uid) - 1 || strncmp(p, uid, sizeof(uid) - 1) != 0)
		return 0;
	p += sizeof(uid) - 1;
	return rcv_span(p, (size_t)(end - p), "0123456789");
}

/* rcv_skip_from - past "from HELO (comment)..." when the value starts so;
 * *t is then the token after it */
static int rcv_skip_from(const char **s, struct rcv_tok *t)
{
	if (rcv_next(s, t) < 0)
		return -1;
	if (!rcv_is_word(t, "from"))
		return 0;
	if (rcv_next(s, t) < 0 || t->type != RCV_WORD)
		return -1;
	do {
		if (rcv_next(s, t) < 0)
			return -1;
	} while (t->type == RCV_COMMENT);
	return 0;
}

int received_queue_id(const char *value, char *buf, size_t size)
{
	const char *s = value;
	struct rcv_tok t, id;

	if (rcv_skip_from(&s, &t) < 0 || !rcv_is_word(&t, "by"))
		return -1;
	if (rcv_next(&s, &t) < 0 || t.type != RCV_WORD || !rcv_span(t.p, t.len, RCV_ALNUM ".-_[]:"))
		return -1;
	if (rcv_next(&s, &t) < 0 || !rcv_is_mta_comment(&t) || rcv_next(&s, &t) < 0)
		return -1;
	if (rcv_is_word(&t, "with") &&
	    (rcv_next(&s, &t) < 0 || t.type != RCV_WORD || rcv_next(&s, &t) < 0))
		return -1;
	if (!rcv_is_word(&t, "id") || rcv_next(&s, &id) < 0 || id.type != RCV_WORD)
		return -1;
	if (id.len < 5 || id.len > RECEIVED_QID_MAX || id.len >= size ||
	    !rcv_span(id.p, id.len, RCV_ALNUM))
		return -1;
	if (rcv_next(&s, &t) < 0 ||
	    !(t.type == RCV_SEMI || t.type == RCV_END || rcv_is_word(&t, "for")))
		return -1;
	memcpy(buf, id.p, id.len);
	buf[id.len] = '\0';
	return 0;
}

int received_top_queue_id(const struct verdict_header *h, size_t n, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcasecmp(h[i].name, "Received") == 0)
			return received_queue_id(h[i].value, buf, size);
	return -1;
}
