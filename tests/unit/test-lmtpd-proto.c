/* test-lmtpd-proto - the pure parts of postroom-lmtpd (deliver/lmtpd_proto.c):
 * command parsing, ESMTP parameters, xtext, and the end of DATA with
 * dot-unstuffing, fed whole and byte by byte (a split anywhere must give
 * the same result). Table-driven. */
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "../../deliver/lmtpd_proto.h"
#include "store_spool.h"
#include "unit.h"

static void test_commands(void)
{
	static const struct {
		const char *line;
		int rc;
		enum lmtpd_verb verb;
		const char *path, *p0, *v0;
		size_t nparams;
	} t[] = {
		{ "LHLO mx.example", 0, LMTPD_LHLO, NULL, NULL, NULL, 0 },
		{ "lhlo", -1, LMTPD_LHLO, NULL, NULL, NULL, 0 },
		{ "EHLO x", 0, LMTPD_HELO, NULL, NULL, NULL, 0 },
		{ "MAIL FROM:<a@b.example>", 0, LMTPD_MAIL, "a@b.example", NULL, NULL, 0 },
		{ "mail from: <>", 0, LMTPD_MAIL, "", NULL, NULL, 0 },
		{ "MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME", 0, LMTPD_MAIL, "a@b", "SIZE", "100",
		  2 },
		{ "MAIL FROM:<a@b> AUTH=alice+40example.com", 0, LMTPD_MAIL, "a@b", "AUTH",
		  "alice+40example.com", 1 },
		{ "MAIL FROM:<a@b> SMTPUTF8", 0, LMTPD_MAIL, "a@b", "SMTPUTF8", NULL, 1 },
		{ "MAIL FROM:a@b", -1, LMTPD_MAIL, NULL, NULL, NULL, 0 },
		{ "MAIL FROM:<a@b", -1, LMTPD_MAIL, NULL, NULL, NULL, 0 },
		{ "MAIL TO:<a@b>", -1, LMTPD_MAIL, NULL, NULL, NULL, 0 },
		{ "RCPT TO:<\"x>y\"@b>", 0, LMTPD_RCPT, "\"x>y\"@b", NULL, NULL, 0 },
		{ "RCPT TO:<s@x> X-POSTROOM-SENT", 0, LMTPD_RCPT, "s@x", "X-POSTROOM-SENT", NULL,
		  1 },
		{ "RCPT TO:<a@b>junk", -1, LMTPD_RCPT, NULL, NULL, NULL, 0 },
		{ "DATA", 0, LMTPD_DATA, NULL, NULL, NULL, 0 },
		{ "DATA x", -1, LMTPD_DATA, NULL, NULL, NULL, 0 },
		{ "QUIT", 0, LMTPD_QUIT, NULL, NULL, NULL, 0 },
		{ "XFORWARD ADDR=1.2.3.4 IDENT=ABC", 0, LMTPD_XFORWARD, NULL, NULL, NULL, 0 },
		{ "STARTTLS", 0, LMTPD_UNKNOWN, NULL, NULL, NULL, 0 },
	};
	struct lmtpd_cmd c;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *line = strdup(t[i].line);
		int rc = lmtpd_cmd_parse(line, &c, &err);

		UNIT_OK(rc == t[i].rc && c.verb == t[i].verb, "'%s': rc %d verb %d", t[i].line,
			t[i].rc, (int)t[i].verb);
		if (rc == 0 && t[i].path)
			UNIT_STR_EQ(c.path, t[i].path, "'%s': path", t[i].line);
		if (rc == 0 && (t[i].verb == LMTPD_MAIL || t[i].verb == LMTPD_RCPT))
			UNIT_OK(c.nparams == t[i].nparams, "'%s': %zu parameters", t[i].line,
				t[i].nparams);
		if (rc == 0 && t[i].p0) {
			UNIT_STR_EQ(c.params[0].name, t[i].p0, "'%s': first parameter name",
				    t[i].line);
			UNIT_STR_EQ(c.params[0].value, t[i].v0, "'%s': first parameter value",
				    t[i].line);
		}
		free(line);
	}
}

static void test_xtext(void)
{
	static const struct {
		const char *in, *want;
	} t[] = {
		{ "alice+40example.com", "alice@example.com" },
		{ "plain@example.com", "plain@example.com" },
		{ "a+2Bb", "a+b" },
		{ "a+2", NULL },  /* truncated */
		{ "a+zz", NULL }, /* not hex */
		{ "a+00", NULL }, /* NUL */
		{ "a=b", NULL },  /* '=' must be encoded */
	};
	size_t i;
	char *out;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		out = NULL;
		if (lmtpd_xtext_decode(t[i].in, &out) < 0)
			out = NULL;
		UNIT_STR_EQ(out, t[i].want, "xtext '%s'", t[i].in);
		free(out);
	}
	out = lmtpd_xforward_value("[UNAVAILABLE]");
	UNIT_OK(out == NULL, "XFORWARD [UNAVAILABLE] is no value");
	out = lmtpd_xforward_value("4D5E6F");
	UNIT_STR_EQ(out, "4D5E6F", "XFORWARD IDENT value");
	free(out);
}

/* dot_run - feed in (whole, or one byte at a time); the data, the bytes
 * consumed and whether the end was seen */
static char *dot_run(const char *in, int bytewise, size_t *consumed, int *done)
{
	size_t len = strlen(in), off = 0, n, outlen, total = 0;
	char *data = calloc(1, len + 2), *out = malloc(len + 2);
	struct lmtpd_dot d;

	lmtpd_dot_init(&d);
	*done = 0;
	while (off < len && !*done) {
		size_t piece = bytewise ? 1 : len - off;

		n = lmtpd_dot_feed(&d, in + off, piece, out, &outlen, done);
		memcpy(data + total, out, outlen);
		total += outlen;
		off += n;
	}
	*consumed = off;
	free(out);
	return data;
}

static void test_dot(void)
{
	static const struct {
		const char *in, *data;
		int done;
		size_t consumed;
	} t[] = {
		{ "a\r\n.\r\n", "a\r\n", 1, 6 },
		{ ".\r\n", "", 1, 3 },                         /* empty message */
		{ "a\r\n.\r\nQUIT\r\n", "a\r\n", 1, 6 },       /* the rest is the next command */
		{ "a\r\n..b\r\n.\r\n", "a\r\n.b\r\n", 1, 11 }, /* unstuffed */
		{ "a\r\n...\r\n.\r\n", "a\r\n..\r\n", 1, 11 },
		{ "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 1, 10 }, /* a bare-LF dot is data */
		{ "a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 1,
		  11 }, /* dot line ended by bare LF: not an end */
		{ "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 1, 11 }, /* ".\r" not followed by LF */
		{ "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", 1, 10 },
		{ "a\r\n.", "a\r\n", 0, 4 },      /* incomplete */
		{ "a\r.\r\n", "a\r.\r\n", 0, 5 }, /* a CR alone is no line end */
	};
	size_t i, consumed;
	int bytewise, done;
	char *data;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (bytewise = 0; bytewise < 2; bytewise++) {
			data = dot_run(t[i].in, bytewise, &consumed, &done);
			UNIT_OK(done == t[i].done && consumed == t[i].consumed &&
					strcmp(data, t[i].data) == 0,
				"dot case %zu%s: end %d after %zu bytes", i,
				bytewise ? " byte by byte" : "", t[i].done, t[i].consumed);
			free(data);
		}
}

/* the spool writer (lib/store_spool.c): pieces in, the same bytes, size
 * and identity as the whole buffer; over the cap nothing more is kept */
static void test_spool_writer(void)
{
	static const char msg[] = "Subject: w\r\n\r\nline\nline\r\n";
	struct store_spool a, b, c;
	struct store_spool_writer w;
	struct store_envelope env = { "", NULL, 0, NULL };
	char *err = NULL, back[64];
	size_t i;
	int rc = 0;

	rc |= store_spool_writer_open(&w, &a, 1000, &err);
	for (i = 0; i < sizeof(msg) - 1; i++)
		rc |= store_spool_writer_put(&w, msg + i, 1, &err);
	rc |= store_spool_writer_close(&w, &err);
	rc |= store_spool_from_mem(msg, sizeof(msg) - 1, &b, &err);
	rc |= store_spool_finish(&a, &env, &err) | store_spool_finish(&b, &env, &err);
	UNIT_OK(rc == 0 && a.len == (long long)sizeof(msg) - 1 && !w.too_big,
		"writer: byte by byte, all kept");
	UNIT_OK(pread(a.fd, back, sizeof(back), 0) == (ssize_t)sizeof(msg) - 1 &&
			memcmp(back, msg, sizeof(msg) - 1) == 0,
		"writer: the same bytes");
	UNIT_OK(a.size == b.size && a.size == (long long)sizeof(msg),
		"writer: CRLF size (one bare LF counted as CRLF)");
	UNIT_OK(memcmp(a.id, b.id, sizeof(a.id)) == 0,
		"writer: the same identity as the whole buffer");
	store_spool_close(&a);
	store_spool_close(&b);
	/* cap = max_size + STORE_PREFIX_MAX */
	rc = store_spool_writer_open(&w, &c, 0, &err);
	for (i = 0; rc == 0 && i < STORE_PREFIX_MAX / 1000 + 2; i++) {
		char piece[1000];

		memset(piece, 'x', sizeof(piece));
		rc = store_spool_writer_put(&w, piece, sizeof(piece), &err);
	}
	rc |= store_spool_writer_close(&w, &err);
	UNIT_OK(rc == 0 && w.too_big && c.len <= STORE_PREFIX_MAX && c.size > STORE_PREFIX_MAX,
		"writer: over the cap it stops keeping, keeps counting");
	store_spool_close(&c);
}

int main(void)
{
	test_spool_writer();
	test_commands();
	test_xtext();
	test_dot();
	return unit_done();
}
