/*
 * NAME
 *	sighdr - postroom's signed internal headers (sign and verify)
 * DESCRIPTION
 *	A header value is a list of name=value fields separated by ";",
 *	starting with the version and ending with the signature:
 *
 *	    v=1; user=alice@example.com; mid=<id@host>; qid=4Xyz; ts=1763870000; sig=<64 hex>
 *
 *	Values are percent-encoded outside printable ASCII and for '%',
 *	';' and white space, so no value contains white space: white space
 *	anywhere in a received value is folding and is ignored. The
 *	signature is HMAC-SHA256, keyed with security.hmac_secret, over
 *	"postroom-sighdr-v1", NUL, the lower-case header name, NUL, and the
 *	canonical text of every field before sig= (encoded, joined by ";",
 *	no white space). So a header of one kind cannot pass for another,
 *	and no field can be added, removed, reordered or changed.
 *	Verification checks the signature in constant time, then the
 *	binding (Message-Id compared without white space and angle
 *	brackets, so "<a@b>" and GMime's "a@b" match; queue id exact)
 *	and the age of ts= (stale or replayed copies fail).
 * NEVER
 *	accepts a header without a valid signature, a missing expected
 *	field, or a timestamp older than max_age; logs or returns the secret.
 */
#include "sighdr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "crypto.h"
#include "xalloc.h"

#define SIGHDR_CONTEXT "postroom-sighdr-v1"
#define SIGHDR_VALUE_MAX 8192  /* longer values are refused */
#define SIGHDR_FUTURE_SKEW 300 /* seconds of clock skew tolerated */

/* sighdr_name_ok - a field name: [a-z0-9_-]+ */
static int sighdr_name_ok(const char *n, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)n[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* sighdr_encode - append value, percent-encoding what must not appear */
static void sighdr_encode(struct buf *b, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '%' || *p == ';') {
			buf_append_char(b, '%');
			buf_append_char(b, hex[*p >> 4]);
			buf_append_char(b, hex[*p & 15]);
		} else {
			buf_append_char(b, (char)*p);
		}
	}
}

static int sighdr_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* sighdr_decode - append the decoded len bytes of s to out; -1 on a bad escape
 * or an encoded NUL */
static int sighdr_decode(const char *s, size_t len, struct buf *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			buf_append_char(out, s[i]);
			continue;
		}
		if (i + 2 >= len)
			return -1;
		{
			int hi = sighdr_hexval((unsigned char)s[i + 1]);
			int lo = hi < 0 ? -1 : sighdr_hexval((unsigned char)s[i + 2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return -1;
			buf_append_char(out, (char)(hi * 16 + lo));
		}
		i += 2;
	}
	return 0;
}

/* sighdr_mac_hex - HMAC of the canonical field text, in hex */
static void sighdr_mac_hex(const char *secret, const char *header_name, const char *canon,
			   size_t canon_len, char hex[2 * SHA256_LEN + 1])
{
	struct buf in = BUF_INIT;
	unsigned char mac[SHA256_LEN];
	const char *p;

	buf_append(&in, SIGHDR_CONTEXT, sizeof(SIGHDR_CONTEXT)); /* with its NUL */
	for (p = header_name; *p; p++)
		buf_append_char(&in, (char)tolower((unsigned char)*p));
	buf_append_char(&in, '\0');
	buf_append(&in, canon, canon_len);
	crypto_hmac_sha256(secret, strlen(secret), in.data, in.len, mac);
	crypto_hex(mac, SHA256_LEN, hex);
	crypto_wipe(mac, sizeof(mac));
	buf_free(&in);
}

char *sighdr_sign(const char *secret, const char *header_name, const struct sighdr *f, time_t now)
{
	struct buf canon = BUF_INIT, out = BUF_INIT;
	char hex[2 * SHA256_LEN + 1];
	size_t i, j;
	int have_ts = 0;

	if (secret == NULL || *secret == '\0' || header_name == NULL || f == NULL ||
	    f->nfields > SIGHDR_MAX_FIELDS)
		return NULL;
	for (i = 0; i < f->nfields; i++) {
		const char *n = f->fields[i].name;
		if (n == NULL || f->fields[i].value == NULL || !sighdr_name_ok(n, strlen(n)) ||
		    strcmp(n, "v") == 0 || strcmp(n, "sig") == 0)
			return NULL;
		for (j = 0; j < i; j++)
			if (strcmp(f->fields[j].name, n) == 0)
				return NULL; /* duplicate: ambiguous */
		have_ts |= strcmp(n, "ts") == 0;
	}
	buf_append_str(&canon, "v=1");
	for (i = 0; i < f->nfields; i++) {
		buf_printf(&canon, ";%s=", f->fields[i].name);
		sighdr_encode(&canon, f->fields[i].value);
	}
	if (!have_ts)
		buf_printf(&canon, ";ts=%lld", (long long)now);
	sighdr_mac_hex(secret, header_name, canon.data, canon.len, hex);
	/* the same text, spaced for reading */
	for (i = 0; i < canon.len; i++) {
		buf_append_char(&out, canon.data[i]);
		if (canon.data[i] == ';')
			buf_append_char(&out, ' ');
	}
	buf_printf(&out, "; sig=%s", hex);
	buf_free(&canon);
	return buf_steal(&out);
}

/* sighdr_strip_ws - value without any white space (folding) */
static char *sighdr_strip_ws(const char *v)
{
	struct buf b = BUF_INIT;

	for (; *v; v++)
		if (*v != ' ' && *v != '\t' && *v != '\r' && *v != '\n')
			buf_append_char(&b, *v);
	return buf_steal(&b);
}

struct sighdr_parsed {
	size_t n;
	struct {
		const char *name, *value;
		size_t nlen, vlen;
	} f[SIGHDR_MAX_FIELDS + 2];
};

/* sighdr_split - split the white-space-free text into fields */
static int sighdr_split(const char *text, struct sighdr_parsed *p, const char **error_r)
{
	const char *s = text;

	p->n = 0;
	while (*s) {
		const char *end = s + strcspn(s, ";"), *eq = memchr(s, '=', (size_t)(end - s));

		if (p->n == SIGHDR_MAX_FIELDS + 2) {
			*error_r = "too many fields";
			return -1;
		}
		if (eq == NULL || !sighdr_name_ok(s, (size_t)(eq - s))) {
			*error_r = "malformed field";
			return -1;
		}
		p->f[p->n].name = s;
		p->f[p->n].nlen = (size_t)(eq - s);
		p->f[p->n].value = eq + 1;
		p->f[p->n].vlen = (size_t)(end - eq - 1);
		p->n++;
		s = *end ? end + 1 : end;
	}
	return 0;
}

static int sighdr_field_is(const struct sighdr_parsed *p, size_t i, const char *name)
{
	return p->f[i].nlen == strlen(name) && memcmp(p->f[i].name, name, p->f[i].nlen) == 0;
}

/* sighdr_check_mac - the last field is sig= and matches */
static int sighdr_check_mac(const char *secret, const char *header_name, const char *text,
			    const struct sighdr_parsed *p, const char **error_r)
{
	char want[2 * SHA256_LEN + 1], got[2 * SHA256_LEN + 1];
	size_t i, canon_len;

	if (p->n < 3 || !sighdr_field_is(p, 0, "v") || !sighdr_field_is(p, p->n - 1, "sig")) {
		*error_r = "not a signed header (v= ... sig=)";
		return -1;
	}
	if (p->f[0].vlen != 1 || p->f[0].value[0] != '1') {
		*error_r = "unsupported version";
		return -1;
	}
	if (p->f[p->n - 1].vlen != 2 * SHA256_LEN) {
		*error_r = "bad signature";
		return -1;
	}
	for (i = 0; i < 2 * SHA256_LEN; i++)
		got[i] = (char)tolower((unsigned char)p->f[p->n - 1].value[i]);
	got[2 * SHA256_LEN] = '\0';
	canon_len = (size_t)(p->f[p->n - 1].name - 1 - text); /* up to the ';' before sig= */
	sighdr_mac_hex(secret, header_name, text, canon_len, want);
	if (!crypto_equal(want, got, 2 * SHA256_LEN)) {
		*error_r = "bad signature";
		return -1;
	}
	return 0;
}

/* sighdr_fill - decode the fields (but sig) into out, storage in *storage_r */
static int sighdr_fill(const struct sighdr_parsed *p, struct sighdr *out, char **storage_r,
		       const char **error_r)
{
	struct buf st = BUF_INIT;
	size_t offs[SIGHDR_MAX_FIELDS + 2], i, j, n = p->n - 1;

	if (n > SIGHDR_MAX_FIELDS) {
		*error_r = "too many fields";
		return -1;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++) {
			if (p->f[j].nlen == p->f[i].nlen &&
			    memcmp(p->f[j].name, p->f[i].name, p->f[i].nlen) == 0) {
				*error_r = "duplicate field";
				buf_free(&st);
				return -1;
			}
		}
		offs[i] = st.len;
		buf_append(&st, p->f[i].name, p->f[i].nlen);
		buf_append_char(&st, '\0');
		if (sighdr_decode(p->f[i].value, p->f[i].vlen, &st) < 0) {
			*error_r = "bad field encoding";
			buf_free(&st);
			return -1;
		}
		buf_append_char(&st, '\0');
	}
	*storage_r = buf_steal(&st);
	out->nfields = n;
	for (i = 0; i < n; i++) {
		out->fields[i].name = *storage_r + offs[i];
		out->fields[i].value = out->fields[i].name + strlen(out->fields[i].name) + 1;
	}
	return 0;
}

/* sighdr_msgid_norm - a Message-Id without white space (folding) and
 * without its angle brackets (caller frees) */
static char *sighdr_msgid_norm(const char *v)
{
	char *s = sighdr_strip_ws(v);
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		memmove(s, s + 1, n - 2);
		s[n - 2] = '\0';
	}
	return s;
}

/* sighdr_msgid_equal - the same Message-Id, however written */
static int sighdr_msgid_equal(const char *a, const char *b)
{
	char *x = sighdr_msgid_norm(a), *y = sighdr_msgid_norm(b);
	int eq = strcmp(x, y) == 0;

	free(x);
	free(y);
	return eq;
}

/* sighdr_check_binding - timestamp age, Message-Id, queue id */
static int sighdr_check_binding(const struct sighdr *h, const struct sighdr_binding *b,
				const char **error_r)
{
	const char *ts = sighdr_get(h, "ts"), *v;
	long max_age = b->max_age > 0 ? b->max_age : SIGHDR_DEFAULT_MAX_AGE;
	time_t now = b->now ? b->now : time(NULL);
	long long t;
	char *end;

	if (ts == NULL || *ts == '\0' || strspn(ts, "0123456789") != strlen(ts) ||
	    strlen(ts) > 18) {
		*error_r = "missing or bad timestamp";
		return -1;
	}
	t = strtoll(ts, &end, 10);
	if ((long long)now - t > (long long)max_age) {
		*error_r = "stale timestamp";
		return -1;
	}
	if (t - (long long)now > SIGHDR_FUTURE_SKEW) {
		*error_r = "timestamp in the future";
		return -1;
	}
	if (b->message_id != NULL &&
	    ((v = sighdr_get(h, "mid")) == NULL || !sighdr_msgid_equal(v, b->message_id))) {
		*error_r = "signed for another Message-Id";
		return -1;
	}
	if (b->queue_id != NULL &&
	    ((v = sighdr_get(h, "qid")) == NULL || strcmp(v, b->queue_id) != 0)) {
		*error_r = "signed for another queue id";
		return -1;
	}
	return 0;
}

int sighdr_verify(const char *secret, const char *header_name, const char *value,
		  const struct sighdr_binding *b, struct sighdr *out, char **storage_r,
		  const char **error_r)
{
	struct sighdr_parsed p;
	struct sighdr_binding now_only;
	char *text;

	*storage_r = NULL;
	memset(out, 0, sizeof(*out));
	if (secret == NULL || *secret == '\0') {
		*error_r = "no secret configured";
		return -1;
	}
	if (value == NULL || header_name == NULL || strlen(value) > SIGHDR_VALUE_MAX) {
		*error_r = value == NULL ? "no header" : "header too long";
		return -1;
	}
	text = sighdr_strip_ws(value);
	if (sighdr_split(text, &p, error_r) < 0 ||
	    sighdr_check_mac(secret, header_name, text, &p, error_r) < 0 ||
	    sighdr_fill(&p, out, storage_r, error_r) < 0) {
		free(text);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	free(text);
	if (b == NULL) {
		memset(&now_only, 0, sizeof(now_only));
		b = &now_only;
	}
	if (sighdr_check_binding(out, b, error_r) < 0) {
		xfree(storage_r);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}

const char *sighdr_get(const struct sighdr *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->nfields; i++)
		if (strcmp(h->fields[i].name, name) == 0)
			return h->fields[i].value;
	return NULL;
}
