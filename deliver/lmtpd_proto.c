/*
 * NAME
 *	lmtpd_proto - LMTP command lines and the end of DATA, as pure functions
 * DESCRIPTION
 *	Parses the commands of RFC 2033 (LHLO, MAIL, RCPT, DATA, RSET, NOOP,
 *	QUIT, VRFY) and Postfix's XFORWARD into a verb, a path and ESMTP
 *	parameters; decodes xtext (RFC 3461, used by AUTH= and XFORWARD);
 *	and finds the end of message data. The end is strictly CRLF "." CRLF:
 *	a dot line after a bare LF is message data, so a message can never
 *	be cut short by a line ending the client did not mean. A leading dot
 *	of any other line is removed (RFC 5321 4.5.2 transparency).
 * NEVER
 *	does I/O; allocates anything but the documented copies.
 */
#include "lmtpd_proto.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

static const struct {
	const char *name;
	enum lmtpd_verb verb;
} lmtpd_verbs[] = {
	{ "LHLO", LMTPD_LHLO }, { "HELO", LMTPD_HELO }, { "EHLO", LMTPD_HELO },
	{ "MAIL", LMTPD_MAIL }, { "RCPT", LMTPD_RCPT }, { "DATA", LMTPD_DATA },
	{ "BDAT", LMTPD_BDAT }, { "RSET", LMTPD_RSET }, { "NOOP", LMTPD_NOOP },
	{ "QUIT", LMTPD_QUIT }, { "VRFY", LMTPD_VRFY }, { "XFORWARD", LMTPD_XFORWARD },
};

/* proto_skip_sp - past spaces */
static char *proto_skip_sp(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* proto_params - split "NAME[=VALUE] ..." into cmd->params */
static int proto_params(char *p, struct lmtpd_cmd *cmd, const char **error_r)
{
	char *eq;

	for (p = proto_skip_sp(p); *p; p = proto_skip_sp(p)) {
		if (cmd->nparams == LMTPD_PARAMS_MAX) {
			*error_r = "5.5.4 too many parameters";
			return -1;
		}
		cmd->params[cmd->nparams].name = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = '\0';
		eq = strchr(cmd->params[cmd->nparams].name, '=');
		if (eq)
			*eq++ = '\0';
		cmd->params[cmd->nparams].value = eq;
		if (*cmd->params[cmd->nparams].name == '\0') {
			*error_r = "5.5.4 malformed parameter";
			return -1;
		}
		cmd->nparams++;
	}
	return 0;
}

/* proto_path - "FROM:<path> params" / "TO:<path> params" */
static int proto_path(char *p, const char *keyword, struct lmtpd_cmd *cmd, const char **error_r)
{
	size_t kl = strlen(keyword);
	int quoted = 0;
	char *start;

	if (strncasecmp(p, keyword, kl) != 0) {
		*error_r = "5.5.4 syntax: MAIL FROM:<address> or RCPT TO:<address>";
		return -1;
	}
	p = proto_skip_sp(p + kl);
	if (*p != '<') {
		*error_r = "5.5.4 syntax: the address must be in angle brackets";
		return -1;
	}
	start = ++p;
	for (; *p && (quoted || *p != '>'); p++) {
		if (*p == '\\' && quoted && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
	}
	if (*p != '>') {
		*error_r = "5.5.4 syntax: missing '>'";
		return -1;
	}
	*p++ = '\0';
	cmd->path = start;
	if (*p && *p != ' ' && *p != '\t') {
		*error_r = "5.5.4 syntax: text after '>'";
		return -1;
	}
	return proto_params(p, cmd, error_r);
}

int lmtpd_cmd_parse(char *line, struct lmtpd_cmd *cmd, const char **error_r)
{
	size_t vl = strcspn(line, " \t"), i;
	char *rest;

	memset(cmd, 0, sizeof(*cmd));
	cmd->arg = "";
	rest = line + vl;
	if (*rest)
		*rest++ = '\0';
	rest = proto_skip_sp(rest);
	for (i = 0; i < sizeof(lmtpd_verbs) / sizeof(lmtpd_verbs[0]); i++)
		if (strcasecmp(line, lmtpd_verbs[i].name) == 0)
			cmd->verb = lmtpd_verbs[i].verb;
	switch (cmd->verb) {
	case LMTPD_MAIL: return proto_path(rest, "FROM:", cmd, error_r);
	case LMTPD_RCPT: return proto_path(rest, "TO:", cmd, error_r);
	case LMTPD_DATA:
	case LMTPD_RSET:
	case LMTPD_QUIT:
		if (*rest) {
			*error_r = "5.5.4 this command takes no argument";
			return -1;
		}
		return 0;
	case LMTPD_LHLO:
	case LMTPD_HELO:
		if (*rest == '\0') {
			*error_r = "5.5.4 syntax: LHLO hostname";
			return -1;
		}
		/* fall through */
	default: cmd->arg = rest; return 0;
	}
}

const struct lmtpd_param *lmtpd_param_get(const struct lmtpd_cmd *cmd, const char *name)
{
	size_t i;

	for (i = 0; i < cmd->nparams; i++)
		if (strcasecmp(cmd->params[i].name, name) == 0)
			return &cmd->params[i];
	return NULL;
}

/* proto_hex - value of a hex digit (upper case, as xtext wants), or -1 */
static int proto_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int lmtpd_xtext_decode(const char *in, char **out_r)
{
	char *out = xmalloc(strlen(in) + 1), *o = out;
	int hi, lo;

	for (; *in; in++) {
		if (*in == '+') {
			if ((hi = proto_hex(in[1])) < 0 || (lo = proto_hex(in[2])) < 0)
				goto bad;
			*o = (char)(hi << 4 | lo);
			if (*o == '\0')
				goto bad;
			o++;
			in += 2;
		} else if ((unsigned char)*in < 33 || *in == '=' || (unsigned char)*in == 127) {
			goto bad;
		} else {
			*o++ = *in;
		}
	}
	*o = '\0';
	*out_r = out;
	return 0;
bad:
	free(out);
	return -1;
}

char *lmtpd_xforward_value(const char *in)
{
	char *out;

	if (strcasecmp(in, "[UNAVAILABLE]") == 0 || strcasecmp(in, "[TEMPUNAVAIL]") == 0 ||
	    *in == '\0')
		return NULL;
	if (lmtpd_xtext_decode(in, &out) < 0)
		return NULL;
	return out;
}

/* States of the end-of-data machine. */
enum {
	DOT_MID,  /* inside a line */
	DOT_CR,   /* inside a line, after CR */
	DOT_BOL,  /* at the start of a line (after CRLF) */
	DOT_DOT,  /* a line started with "." (dropped) */
	DOT_DOTCR /* a line started with ".\r" (CR held back) */
};

void lmtpd_dot_init(struct lmtpd_dot *d) { d->state = DOT_BOL; }

/* dot_after - the state after emitting c inside a line */
static int dot_after(char c, int after_cr)
{
	if (c == '\r')
		return DOT_CR;
	if (c == '\n' && after_cr)
		return DOT_BOL;
	return DOT_MID;
}

size_t lmtpd_dot_feed(struct lmtpd_dot *d, const char *in, size_t len, char *out, size_t *outlen,
		      int *done)
{
	size_t i, o = 0;
	const char *lf;

	*done = 0;
	for (i = 0; i < len; i++) {
		char c = in[i];

		switch (d->state) {
		case DOT_MID:
			/* the fast path: copy up to the next CR */
			lf = memchr(in + i, '\r', len - i);
			if (lf == NULL) {
				memcpy(out + o, in + i, len - i);
				o += len - i;
				i = len - 1;
				break;
			}
			memcpy(out + o, in + i, (size_t)(lf - (in + i)) + 1);
			o += (size_t)(lf - (in + i)) + 1;
			i = (size_t)(lf - in);
			d->state = DOT_CR;
			break;
		case DOT_CR:
			out[o++] = c;
			d->state = dot_after(c, 1);
			break;
		case DOT_BOL:
			if (c == '.') {
				d->state = DOT_DOT;
				break;
			}
			out[o++] = c;
			d->state = dot_after(c, 0);
			break;
		case DOT_DOT:
			if (c == '\r') {
				d->state = DOT_DOTCR;
				break;
			}
			out[o++] = c;
			d->state = DOT_MID;
			break;
		default: /* DOT_DOTCR */
			if (c == '\n') {
				*done = 1;
				*outlen = o;
				d->state = DOT_BOL;
				return i + 1;
			}
			out[o++] = '\r';
			out[o++] = c;
			d->state = dot_after(c, 1);
			break;
		}
	}
	*outlen = o;
	return len;
}
