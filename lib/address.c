/*
 * NAME
 *	address - RFC 5321 mailbox parsing and normalisation
 * DESCRIPTION
 *	Parses Path / Mailbox (RFC 5321 4.1.2, RFC 6531 for SMTPUTF8):
 *	dot-string or quoted-string local parts, domains or address
 *	literals, optional source route, the null path. The domain is
 *	normalised (ASCII lower case, one trailing dot dropped); the
 *	canonical lookup form is the whole address in lower case.
 *	The relay decision rests on this parser: it is strict, it rejects
 *	what it does not understand, and it is fuzzed.
 * NEVER
 *	accepts malformed UTF-8, NUL or control bytes; reads past len.
 */
#include "address.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

/* RFC 5322 atext, ASCII part */
static int addr_is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static int addr_is_letdig(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static unsigned char addr_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* addr_utf8_seq - length of the well-formed UTF-8 sequence at s, or 0 */
static size_t addr_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned c = s[0];
	size_t n, i;
	unsigned cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

int addr_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((n = addr_utf8_seq(s + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

struct addr_cursor {
	const unsigned char *p, *end;
	unsigned opts, flags;
};

/* addr_take_utf8 - consume one non-ASCII UTF-8 character if allowed */
static int addr_take_utf8(struct addr_cursor *c, struct buf *out)
{
	size_t n;

	if (!(c->opts & ADDR_OPT_UTF8) || *c->p < 0x80)
		return 0;
	n = addr_utf8_seq(c->p, (size_t)(c->end - c->p));
	if (n < 2)
		return 0;
	if (out)
		buf_append(out, c->p, n);
	c->p += n;
	c->flags |= ADDR_F_UTF8;
	return 1;
}

/* addr_parse_dot_string - Atom *("." Atom) */
static int addr_parse_dot_string(struct addr_cursor *c, struct buf *out, const char **error_r)
{
	int atom_len = 0;

	while (c->p < c->end && *c->p != '@') {
		if (*c->p == '.') {
			if (atom_len == 0) {
				*error_r = "empty atom in local part";
				return -1;
			}
			buf_append_char(out, '.');
			c->p++;
			atom_len = 0;
		} else if (addr_is_atext(*c->p)) {
			buf_append_char(out, (char)*c->p++);
			atom_len++;
		} else if (addr_take_utf8(c, out)) {
			atom_len++;
		} else {
			*error_r = *c->p >= 0x80 ? "8-bit character in local part"
						 : "invalid character in local part";
			return -1;
		}
	}
	if (atom_len == 0) {
		*error_r = "empty or dot-terminated local part";
		return -1;
	}
	return 0;
}

/* addr_parse_quoted - DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE */
static int addr_parse_quoted(struct addr_cursor *c, struct buf *out, const char **error_r)
{
	c->p++; /* opening quote */
	c->flags |= ADDR_F_QUOTED;
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = *c->p;

		if (ch == '\\') {
			if (c->p + 1 >= c->end || c->p[1] < 32 || c->p[1] > 126) {
				*error_r = "bad quoted pair in local part";
				return -1;
			}
			buf_append_char(out, (char)c->p[1]);
			c->p += 2;
		} else if (ch >= 32 && ch <= 126) {
			buf_append_char(out, (char)ch);
			c->p++;
		} else if (!addr_take_utf8(c, out)) {
			*error_r = "invalid character in quoted local part";
			return -1;
		}
	}
	if (c->p >= c->end) {
		*error_r = "unterminated quoted local part";
		return -1;
	}
	c->p++; /* closing quote */
	return 0;
}

/* addr_parse_literal - "[" 1*dcontent "]" (kept as written) */
static int addr_parse_literal(struct addr_cursor *c, struct buf *out, const char **error_r)
{
	const unsigned char *start = c->p;

	c->p++;
	while (c->p < c->end && *c->p != ']') {
		if (*c->p < 33 || *c->p > 126 || *c->p == '[' || *c->p == '\\') {
			*error_r = "invalid address literal";
			return -1;
		}
		c->p++;
	}
	if (c->p >= c->end || c->p == start + 1) {
		*error_r = "invalid address literal";
		return -1;
	}
	c->p++;
	buf_append(out, start, (size_t)(c->p - start));
	c->flags |= ADDR_F_LITERAL;
	return 0;
}

/* addr_parse_domain - sub-domain *("." sub-domain) [one trailing "."] */
static int addr_parse_domain(struct addr_cursor *c, struct buf *out, const char **error_r)
{
	size_t label = 0;
	int last_hyphen = 0;

	if (c->p < c->end && *c->p == '[')
		return addr_parse_literal(c, out, error_r);
	while (c->p < c->end) {
		unsigned char ch = *c->p;

		if (ch == '.') {
			if (label == 0 || last_hyphen) {
				*error_r = "invalid domain";
				return -1;
			}
			c->p++;
			label = 0;
			if (c->p == c->end) /* one trailing dot: dropped */
				break;
			buf_append_char(out, '.');
			continue;
		}
		if (addr_is_letdig(ch) || (ch == '-' && label > 0)) {
			buf_append_char(out, (char)addr_lower(ch));
			c->p++;
		} else if (!addr_take_utf8(c, out)) {
			*error_r = ch >= 0x80 ? "8-bit character in domain"
					      : "invalid character in domain";
			return -1;
		}
		last_hyphen = (ch == '-');
		if (++label > 63) {
			*error_r = "domain label too long";
			return -1;
		}
	}
	if (out->len == 0 || (label > 0 && last_hyphen)) {
		*error_r = "invalid domain";
		return -1;
	}
	return 0;
}

/* addr_skip_route - "@dom,@dom:" before the mailbox */
static int addr_skip_route(struct addr_cursor *c, const char **error_r)
{
	const unsigned char *colon = c->p;

	while (colon < c->end && *colon != ':' && *colon != '"')
		colon++;
	if (colon >= c->end || *colon != ':') {
		*error_r = "invalid source route";
		return -1;
	}
	if (!(c->opts & ADDR_OPT_ROUTE)) {
		*error_r = "source routes are not accepted";
		return -1;
	}
	c->flags |= ADDR_F_ROUTE;
	c->p = colon + 1;
	return 0;
}

/* addr_strip_brackets - find the part between < and >, enforcing opts */
static int addr_strip_brackets(const char **in, size_t *len, unsigned opts, const char **error_r)
{
	if (*len >= 1 && (*in)[0] == '<') {
		if ((*in)[*len - 1] != '>' || *len < 2) {
			*error_r = "unbalanced angle brackets";
			return -1;
		}
		(*in)++;
		*len -= 2;
		return 0;
	}
	if (!(opts & ADDR_OPT_BARE)) {
		*error_r = "address must be enclosed in angle brackets";
		return -1;
	}
	return 0;
}

static int addr_parse_inner(struct addr_cursor *c, struct mailbox *mb, const char **error_r)
{
	struct buf local = BUF_INIT, domain = BUF_INIT;
	int rc;

	if (c->p < c->end && *c->p == '@' && addr_skip_route(c, error_r) < 0)
		return -1;
	if (c->p < c->end && *c->p == '"')
		rc = addr_parse_quoted(c, &local, error_r);
	else
		rc = addr_parse_dot_string(c, &local, error_r);
	if (rc == 0 && (c->p >= c->end || *c->p != '@')) {
		*error_r = "missing @domain";
		rc = -1;
	}
	if (rc == 0) {
		c->p++;
		rc = addr_parse_domain(c, &domain, error_r);
	}
	if (rc == 0 && (local.len > ADDR_LOCAL_MAX || domain.len > ADDR_DOMAIN_MAX)) {
		*error_r = local.len > ADDR_LOCAL_MAX ? "local part too long" : "domain too long";
		rc = -1;
	}
	/* a path is at most 256 octets with its brackets (RFC 5321
	 * 4.5.3.1.3): the mailbox at most 254, whatever the part lengths */
	if (rc == 0 && local.len + 1 + domain.len > ADDR_PATH_MAX - 2) {
		*error_r = "address too long";
		rc = -1;
	}
	if (rc < 0) {
		buf_free(&local);
		buf_free(&domain);
		return -1;
	}
	mb->local = buf_steal(&local);
	mb->domain = buf_steal(&domain);
	return 0;
}

int addr_parse(const char *in, size_t len, unsigned opts, struct mailbox *mb, const char **error_r)
{
	struct addr_cursor c;

	memset(mb, 0, sizeof(*mb));
	if (len > ADDR_PATH_MAX + 256) { /* route allowance */
		*error_r = "address too long";
		return -1;
	}
	if (memchr(in, '\0', len) != NULL) {
		*error_r = "NUL in address";
		return -1;
	}
	if (addr_strip_brackets(&in, &len, opts, error_r) < 0)
		return -1;
	if (len == 0) {
		if (!(opts & ADDR_OPT_NULL)) {
			*error_r = "empty address";
			return -1;
		}
		mb->local = xstrdup("");
		mb->domain = xstrdup("");
		mb->flags = ADDR_F_NULL;
		return 0;
	}
	c.p = (const unsigned char *)in;
	c.end = c.p + len;
	c.opts = opts;
	c.flags = 0;
	if (addr_parse_inner(&c, mb, error_r) < 0)
		return -1;
	mb->flags = c.flags;
	return 0;
}

void addr_free(struct mailbox *mb)
{
	xfree(&mb->local);
	xfree(&mb->domain);
	mb->flags = 0;
}

int addr_local_is_ordinary(const struct mailbox *mb)
{
	if (mb->flags & (ADDR_F_QUOTED | ADDR_F_ROUTE | ADDR_F_NULL))
		return 0;
	/* unquoted: the parser already enforced dot-atom of atext (+UTF-8) */
	return strpbrk(mb->local, "!%@") == NULL;
}

/* addr_append_local - local part in lower case, re-quoted when needed */
static void addr_append_local(struct buf *b, const char *local, size_t len, int quoted)
{
	size_t i;

	if (quoted)
		buf_append_char(b, '"');
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)local[i];
		if (quoted && (ch == '"' || ch == '\\'))
			buf_append_char(b, '\\');
		buf_append_char(b, (char)addr_lower(ch));
	}
	if (quoted)
		buf_append_char(b, '"');
}

char *addr_canonical(const struct mailbox *mb)
{
	struct buf b = BUF_INIT;

	if (mb->flags & ADDR_F_NULL)
		return xstrdup("");
	addr_append_local(&b, mb->local, strlen(mb->local), (mb->flags & ADDR_F_QUOTED) != 0);
	buf_append_char(&b, '@');
	buf_append_str(&b, mb->domain);
	return buf_steal(&b);
}

char *addr_strip_subaddress(const struct mailbox *mb, const char *delims)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(mb->local);

	if (delims && *delims && !(mb->flags & ADDR_F_QUOTED)) {
		size_t cut = strcspn(mb->local, delims);
		if (cut > 0) /* "+tag@d" alone keeps its form */
			n = cut;
	}
	addr_append_local(&b, mb->local, n, (mb->flags & ADDR_F_QUOTED) != 0);
	buf_append_char(&b, '@');
	buf_append_str(&b, mb->domain);
	return buf_steal(&b);
}

char *addr_canonicalize(const char *in, const char **error_r)
{
	struct mailbox mb;
	char *out;

	if (addr_parse(in, strlen(in), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb, error_r) < 0)
		return NULL;
	if (!addr_local_is_ordinary(&mb) || (mb.flags & ADDR_F_LITERAL)) {
		*error_r = (mb.flags & ADDR_F_LITERAL) ? "address literals are not accepted here"
						       : "not an ordinary local part";
		addr_free(&mb);
		return NULL;
	}
	out = addr_canonical(&mb);
	addr_free(&mb);
	return out;
}
