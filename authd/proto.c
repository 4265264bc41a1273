/*
 * NAME
 *	proto - Dovecot auth-client protocol parsing, base64, PLAIN, LOGIN
 * DESCRIPTION
 *	The wire format of PROTOCOLS.md section 1 as pure functions: lines
 *	are TAB-separated fields with Dovecot's \001 escaping, AUTH requests
 *	carry name=value parameters (unknown ones ignored, resp= last), the
 *	SASL payloads are base64. The socket code (server.c) only frames
 *	lines and calls these.
 * NEVER
 *	logs or keeps a password; accepts a PLAIN response with other than
 *	exactly two NULs.
 */
#include "proto.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* authd_proto_unescape - undo \001 escapes in place */
static void authd_proto_unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (*s != '\001' || s[1] == '\0') {
			*w++ = *s;
			continue;
		}
		s++;
		switch (*s) {
		case '1': *w++ = '\001'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case 'n': *w++ = '\n'; break;
		default: *w++ = *s; break; /* '0' (NUL) cannot live in a C string */
		}
	}
	*w = '\0';
}

size_t authd_proto_split(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line, *tab;

	while (n < max) {
		fields[n++] = p;
		if ((tab = strchr(p, '\t')) == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	for (size_t i = 0; i < n; i++)
		authd_proto_unescape(fields[i]);
	return n;
}

int authd_proto_parse_id(const char *s, unsigned int *id_r)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > UINT_MAX)
		return -1;
	*id_r = (unsigned int)v;
	return 0;
}

enum authd_mech authd_proto_mech(const char *name)
{
	if (strcasecmp(name, "PLAIN") == 0)
		return AUTHD_MECH_PLAIN;
	if (strcasecmp(name, "LOGIN") == 0)
		return AUTHD_MECH_LOGIN;
	return AUTHD_MECH_NONE;
}

int authd_proto_parse_auth(char **fields, size_t n, struct authd_auth_req *r, const char **error_r)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	r->service = r->rip = r->lip = "";
	if (n < 2 || authd_proto_parse_id(fields[1], &r->id) < 0) {
		r->id = 0;
		*error_r = "broken AUTH request: bad id";
		return -1;
	}
	if (n < 3 || fields[2][0] == '\0') {
		*error_r = "broken AUTH request: no mechanism";
		return -1;
	}
	r->mech_name = fields[2];
	r->mech = authd_proto_mech(fields[2]);
	for (i = 3; i < n; i++) {
		const char *f = fields[i];

		if (strncmp(f, "resp=", 5) == 0) {
			r->resp = f[5] ? f + 5 : NULL;
			break; /* resp= is always last */
		}
		if (strncmp(f, "service=", 8) == 0)
			r->service = f + 8;
		else if (strncmp(f, "rip=", 4) == 0)
			r->rip = f + 4;
		else if (strncmp(f, "lip=", 4) == 0)
			r->lip = f + 4;
		else if (strcmp(f, "secured") == 0 || strncmp(f, "secured=", 8) == 0)
			r->secured = 1;
		/* nologin, cert_username, session=, ... are ignored */
	}
	return 0;
}

void authd_proto_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '\001': buf_append(out, "\0011", 2); break;
		case '\t': buf_append(out, "\001t", 2); break;
		case '\r': buf_append(out, "\001r", 2); break;
		case '\n': buf_append(out, "\001n", 2); break;
		default: buf_append_char(out, *s); break;
		}
	}
}

static const char authd_b64_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int authd_b64_val(char c)
{
	const char *p = c ? strchr(authd_b64_chars, c) : NULL;

	return p ? (int)(p - authd_b64_chars) : -1;
}

int authd_b64_decode(const char *in, struct buf *out)
{
	size_t len = strlen(in), i, start = out->len;

	if (len % 4 != 0)
		return -1;
	for (i = 0; i < len; i += 4) {
		int v[4], pad = 0, k;
		unsigned long w;

		for (k = 0; k < 4; k++) {
			if (in[i + k] == '=' && i + 4 == len && k >= 2) {
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad || (v[k] = authd_b64_val(in[i + k])) < 0)
				goto bad;
		}
		w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12) |
		    ((unsigned long)v[2] << 6) | (unsigned long)v[3];
		buf_append_char(out, (char)(w >> 16));
		if (pad < 2)
			buf_append_char(out, (char)(w >> 8));
		if (pad < 1)
			buf_append_char(out, (char)w);
	}
	return 0;
bad:
	/* what was decoded may be part of a password: wipe it, and give
	 * back the memory of a buffer that was empty (callers return at
	 * once on an error without freeing it) */
	if (out->len > start)
		explicit_bzero(out->data + start, out->len - start);
	buf_truncate(out, start);
	if (start == 0)
		buf_free(out);
	return -1;
}

void authd_b64_encode(const void *in, size_t len, struct buf *out)
{
	const unsigned char *p = in;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		unsigned long w =
			((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8) | p[i + 2];
		buf_append_char(out, authd_b64_chars[(w >> 18) & 63]);
		buf_append_char(out, authd_b64_chars[(w >> 12) & 63]);
		buf_append_char(out, authd_b64_chars[(w >> 6) & 63]);
		buf_append_char(out, authd_b64_chars[w & 63]);
	}
	if (i < len) {
		unsigned long w = (unsigned long)p[i] << 16;
		if (i + 1 < len)
			w |= (unsigned long)p[i + 1] << 8;
		buf_append_char(out, authd_b64_chars[(w >> 18) & 63]);
		buf_append_char(out, authd_b64_chars[(w >> 12) & 63]);
		buf_append_char(out, i + 1 < len ? authd_b64_chars[(w >> 6) & 63] : '=');
		buf_append_char(out, '=');
	}
}

int authd_sasl_plain(char *data, size_t len, const char **authzid_r, const char **authcid_r,
		     const char **pass_r, const char **error_r)
{
	char *nul1, *nul2;

	/* an empty response (CONT with an empty field) has no data at all */
	nul1 = len > 0 ? memchr(data, '\0', len) : NULL;
	nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - data)) : NULL;
	if (nul1 == NULL || nul2 == NULL ||
	    memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - data)) != NULL) {
		*error_r = "invalid PLAIN response: not two NUL separators";
		return -1;
	}
	if (nul1[1] == '\0' || nul2[1] == '\0') {
		*error_r = "invalid PLAIN response: empty user or password";
		return -1;
	}
	*authzid_r = data;
	*authcid_r = nul1 + 1;
	*pass_r = nul2 + 1;
	return 0;
}

int authd_sasl_text_ok(const char *data, size_t len)
{
	return len > 0 && memchr(data, '\0', len) == NULL;
}
