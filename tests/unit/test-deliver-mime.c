/* test-deliver-mime - what mime_parse makes of hand-written messages
 * (lib/mime_parse.c), the generated filenames, the UTF-8 cleaning, the
 * PostgreSQL array literals and the notification body. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "buf.h"
#include "mime_parse.h"
#include "mime_scan.h"
#include "store_mail.h"
#include "store_notify.h"
#include "store_spool.h"
#include "unit.h"

/* parse_lim - mime_parse of len bytes under lim (NULL on a system error) */
static struct mime_msg *parse_lim(const char *text, size_t len, const struct mime_limits *lim)
{
	static const char *rcpts[] = { "x@example.com" };
	struct store_envelope env = { "", rcpts, 1, NULL };
	struct store_spool sp;
	struct mime_msg *m = NULL;
	char *err = NULL;

	if (store_spool_from_mem(text, len, &sp, &err) < 0 ||
	    store_spool_finish(&sp, &env, &err) < 0 ||
	    mime_parse(sp.fd, sp.start, -1, sp.id, lim, &m, &err) < 0) {
		printf("# parse: %s\n", err);
		free(err);
		m = NULL;
	}
	store_spool_close(&sp);
	return m;
}

/* parse - mime_parse of a C string, no limits */
static struct mime_msg *parse(const char *text) { return parse_lim(text, strlen(text), NULL); }

/* att_content - the decoded bytes of attachment i (caller frees) */
static char *att_content(const struct mime_msg *m, size_t i)
{
	char *p = calloc(1, (size_t)m->atts[i].size + 1);

	if (pread(m->att_fd, p, (size_t)m->atts[i].size, m->atts[i].offset) != m->atts[i].size)
		p[0] = '\0';
	return p;
}

static void test_defaults(void)
{
	struct mime_msg *m = parse("To: bob@example.com\n\nhello\n");

	UNIT_OK(m != NULL, "a message without From, Subject, Message-Id parses");
	if (m == NULL)
		return;
	UNIT_STR_EQ(m->subject, "(No Subject)", "missing Subject -> (No Subject)");
	UNIT_STR_EQ(m->from_address, "", "missing From -> empty from address");
	UNIT_OK(m->from_display == NULL, "... and no display name");
	UNIT_OK(m->message_id_generated && strstr(m->message_id, "@postroom.generated") != NULL,
		"missing Message-Id -> a generated one (%s)", m->message_id);
	UNIT_STR_EQ(m->text_body, "hello\n", "a single-part message is its text body");
	UNIT_OK(m->parse_problem == NULL, "no parse problem");
	mime_msg_free(&m);
}

static void test_headers(void)
{
	struct mime_msg *m =
		parse("From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\n"
		      "To: Bob <bob@example.com>, team: carol@example.com, BOB@example.com;\n"
		      "Cc: dave@example.com, Carol@Example.com\n"
		      "Bcc: eve@example.com\n"
		      "Subject: =?ISO-8859-1?B?SGVsbG8g5OT2?=\n"
		      "Message-ID: <abc@host.example>\n"
		      "In-Reply-To: <parent@host.example>\n"
		      "References: <root@host.example>\n <parent@host.example>\n"
		      "\nbody\n");

	if (m == NULL) {
		UNIT_OK(0, "parse");
		return;
	}
	UNIT_STR_EQ(m->from_address, "jm@example.de", "From address");
	UNIT_STR_EQ(m->from_display, "J\xc3\xbcrgen M\xc3\xbcller",
		    "From display name, RFC 2047 Q decoded");
	UNIT_STR_EQ(m->subject, "Hello \xc3\xa4\xc3\xa4\xc3\xb6",
		    "Subject, RFC 2047 B in ISO-8859-1 -> UTF-8");
	UNIT_STR_EQ(m->message_id, "abc@host.example", "Message-Id without angle brackets");
	UNIT_STR_EQ(m->in_reply_to, "parent@host.example", "In-Reply-To");
	UNIT_OK(m->nreferences == 2 && strcmp(m->references[0], "root@host.example") == 0 &&
			strcmp(m->references[1], "parent@host.example") == 0,
		"References in order");
	/* to: bob, carol (from the group); cc: dave (Carol is already there); bcc: eve */
	UNIT_OK(m->nrcpts == 4, "four distinct recipients (got %zu)", m->nrcpts);
	if (m->nrcpts == 4) {
		UNIT_OK(strcmp(m->rcpts[0].address, "bob@example.com") == 0 &&
				m->rcpts[0].type == MIME_TO &&
				strcmp(m->rcpts[0].display, "Bob") == 0,
			"bob: to, with display name");
		UNIT_OK(strcmp(m->rcpts[1].address, "carol@example.com") == 0 &&
				m->rcpts[1].type == MIME_TO,
			"carol: to (group members flattened; the Cc copy is not repeated)");
		UNIT_OK(strcmp(m->rcpts[2].address, "dave@example.com") == 0 &&
				m->rcpts[2].type == MIME_CC,
			"dave: cc");
		UNIT_OK(strcmp(m->rcpts[3].address, "eve@example.com") == 0 &&
				m->rcpts[3].type == MIME_BCC,
			"eve: bcc");
	}
	mime_msg_free(&m);
}

static void test_structure(void)
{
	struct mime_msg *m = parse(
		"From: a@example.org\nSubject: parts\nMIME-Version: 1.0\n"
		"Content-Type: multipart/mixed; boundary=\"outer\"\n\n"
		"--outer\nContent-Type: multipart/alternative; boundary=\"alt\"\n\n"
		"--alt\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
		"caf=E9\n"
		"--alt\nContent-Type: multipart/related; boundary=\"rel\"\n\n"
		"--rel\nContent-Type: text/html; charset=utf-8\n\n<p>caf\xc3\xa9 <img src=\"cid:logo@x\"></p>\n"
		"--rel\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\n"
		"iVBORw0K\n"
		"--rel--\n"
		"--alt--\n"
		"--outer\nContent-Type: application/pdf\nContent-Disposition: attachment;\n"
		" filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\nContent-Transfer-Encoding: base64\n\n"
		"JVBERi0=\n"
		"--outer\nContent-Type: image/jpeg\nContent-Disposition: attachment\n\nJPEGDATA\n"
		"--outer\nContent-Type: message/rfc822\n\n"
		"From: inner@example.net\nSubject: inner\n\ninner body\n"
		"--outer\nContent-Type: application/octet-stream; name=\"=?UTF-8?B?w6TDpC5iaW4=?=\"\n\nBIN\n"
		"--outer--\n");
	char *c;

	if (m == NULL) {
		UNIT_OK(0, "parse");
		return;
	}
	/* RFC 2046 5.1.1: the line break before a boundary belongs to the boundary */
	UNIT_STR_EQ(m->text_body, "caf\xc3\xa9",
		    "text/plain alternative, QP + ISO-8859-1 -> UTF-8");
	UNIT_STR_EQ(m->html_body, "<p>caf\xc3\xa9 <img src=\"cid:logo@x\"></p>",
		    "text/html from the related part inside the alternative");
	UNIT_OK(m->natts == 5, "five attachments (got %zu)", m->natts);
	if (m->natts != 5) {
		mime_msg_free(&m);
		return;
	}
	UNIT_STR_EQ(m->atts[0].filename, "attachment.png",
		    "inline image without a name: generated .png");
	UNIT_STR_EQ(m->atts[0].content_id, "logo@x", "its Content-ID without brackets");
	UNIT_OK(m->atts[0].is_inline, "marked inline");
	c = att_content(m, 0);
	UNIT_OK(m->atts[0].size == 6 && memcmp(c, "\x89PNG\r\n", 6) == 0,
		"base64 decoded (6 bytes)");
	free(c);
	UNIT_STR_EQ(m->atts[1].filename, "r\xc3\xa9sum\xc3\xa9.pdf", "RFC 2231 filename decoded");
	UNIT_STR_EQ(m->atts[1].content_type, "application/pdf", "content type");
	UNIT_OK(!m->atts[1].is_inline, "an attachment is not inline");
	c = att_content(m, 1);
	UNIT_OK(m->atts[1].size == 5 && memcmp(c, "%PDF-", 5) == 0, "pdf decoded (5 bytes)");
	free(c);
	UNIT_STR_EQ(m->atts[2].filename, "attachment.jpg", "unnamed image/jpeg -> attachment.jpg");
	UNIT_STR_EQ(m->atts[3].filename, "attachment.eml", "attached message -> attachment.eml");
	UNIT_STR_EQ(m->atts[3].content_type, "message/rfc822", "... of type message/rfc822");
	c = att_content(m, 3);
	UNIT_OK(strstr(c, "Subject: inner") != NULL && strstr(c, "inner body") != NULL,
		"... holding the whole attached message");
	free(c);
	UNIT_STR_EQ(m->atts[4].filename, "\xc3\xa4\xc3\xa4.bin",
		    "RFC 2047 encoded name= parameter");
	mime_msg_free(&m);
}

static void test_problems(void)
{
	struct mime_msg *m = parse("Content-Type: multipart/mixed\n\n--x\n\nno boundary\n");

	UNIT_OK(m != NULL && m->parse_problem != NULL,
		"a multipart without boundary is a parse problem (%s)",
		m && m->parse_problem ? m->parse_problem : "none");
	mime_msg_free(&m);
	m = parse("");
	UNIT_OK(m != NULL && m->message_id != NULL && strcmp(m->subject, "(No Subject)") == 0,
		"an empty message still yields rows");
	mime_msg_free(&m);
	m = parse("Subject: \xff\xfe bad\nFrom: a\0b@x\n\nx");
	UNIT_OK(m != NULL && g_utf8_validate(m->subject, -1, NULL),
		"invalid UTF-8 in a header is cleaned");
	mime_msg_free(&m);
}

static void test_filenames(void)
{
	static const struct {
		const char *ct, *name;
	} t[] = {
		{ "image/jpeg", "attachment.jpg" },
		{ "image/png", "attachment.png" },
		{ "application/pdf", "attachment.pdf" },
		{ "application/zip", "attachment.zip" },
		{ "text/plain", "attachment.txt" },
		{ "IMAGE/JPEG", "attachment.jpg" },
		{ "image/gif", "attachment" },
		{ "application/octet-stream", "attachment" },
		{ "message/rfc822", "attachment.eml" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		UNIT_STR_EQ(mime_default_filename(t[i].ct), t[i].name, "%s -> %s", t[i].ct,
			    t[i].name);
}

static void test_clean(void)
{
	char *s = mime_clean_utf8("a\0b\xff", 4, 0);

	UNIT_STR_EQ(s,
		    "a\xef\xbf\xbd"
		    "b\xef\xbf\xbd",
		    "NUL and an invalid byte -> U+FFFD");
	free(s);
	s = mime_clean_utf8("\xc3\xa4\xc3\xa4", 4, 3);
	UNIT_STR_EQ(s, "\xc3\xa4", "truncation keeps whole characters");
	free(s);
}

static void test_arrays_and_json(void)
{
	const char *v[] = { "a", NULL, "q\"b\\c", "" };
	struct store_notify_email e = { "id-1",       "a@example.org",        NULL,
					"Hi \"you\"", "2026-01-01T00:00:00Z", 1 };
	const char *users[] = { "u1", "u2" };
	char *s = store_pg_array(v, 4), *j;
	json_t *o;

	UNIT_STR_EQ(s, "{\"a\",NULL,\"q\\\"b\\\\c\",\"\"}",
		    "array literal: NULL, quotes, backslashes");
	free(s);
	j = store_notify_body(users, 2, &e);
	o = json_loads(j, 0, NULL);
	UNIT_OK(o != NULL, "notification body is JSON");
	UNIT_OK(json_array_size(json_object_get(o, "userIds")) == 2, "userIds");
	UNIT_STR_EQ(json_string_value(json_object_get(json_object_get(o, "email"), "subject")),
		    "Hi \"you\"", "email.subject");
	UNIT_OK(json_is_null(json_object_get(json_object_get(o, "email"), "fromDisplay")),
		"email.fromDisplay null when none");
	UNIT_OK(json_is_true(json_object_get(json_object_get(o, "email"), "hasAttachments")),
		"email.hasAttachments");
	UNIT_STR_EQ(json_string_value(json_object_get(json_object_get(o, "email"), "receivedAt")),
		    "2026-01-01T00:00:00Z", "email.receivedAt");
	json_decref(o);
	free(j);
}

/* test_nul_text - a NUL in a text part is U+FFFD, the text kept whole
 * (PostgreSQL text cannot hold NUL; GMime's text getter would cut it) */
static void test_nul_text(void)
{
	static const char plain[] = "Subject: n\n\nbo\0dy\nmore\n";
	static const char parts[] =
		"Subject: n\nContent-Type: multipart/alternative; boundary=b\n\n"
		"--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
		"Ym8AZHk=\n" /* "bo\0dy" */
		"--b\nContent-Type: text/html\n\n<p>a\0b</p>\n--b--\n";
	struct mime_msg *m = parse_lim(plain, sizeof(plain) - 1, NULL);

	UNIT_STR_EQ(m ? m->text_body : NULL,
		    "bo\xef\xbf\xbd"
		    "dy\nmore\n",
		    "text with a NUL: whole, the NUL as U+FFFD");
	UNIT_STR_EQ(m ? m->parse_problem : NULL, "NUL bytes in the text replaced by U+FFFD",
		    "... and said in parse_problem");
	mime_msg_free(&m);
	m = parse_lim(parts, sizeof(parts) - 1, NULL);
	UNIT_STR_EQ(m ? m->text_body : NULL,
		    "bo\xef\xbf\xbd"
		    "dy",
		    "base64 text/plain alternative with a NUL");
	UNIT_STR_EQ(m ? m->html_body : NULL,
		    "<p>a\xef\xbf\xbd"
		    "b</p>",
		    "HTML with a NUL");
	mime_msg_free(&m);
}

/* text_of - the text body of a one-part text/plain message in charset */
static struct mime_msg *text_of(const char *charset, const char *body, size_t len)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "Subject: c\nContent-Type: text/plain; charset=%s\n\n",
			 charset);

	memcpy(msg + n, body, len);
	return parse_lim(msg, (size_t)n + len, NULL);
}

/* test_charset_as_is - UTF-8 and US-ASCII text skips the conversion only
 * when it is valid; what is not valid is converted as any other charset */
static void test_charset_as_is(void)
{
	struct mime_msg *m;
	const char *t;

	m = text_of("utf-8", "caf\xc3\xa9\n", 6);
	UNIT_STR_EQ(m ? m->text_body : NULL, "caf\xc3\xa9\n", "valid UTF-8 text as it is");
	mime_msg_free(&m);
	m = text_of("UTF8", "a\xe2\x82\xac\n", 5);
	UNIT_STR_EQ(m ? m->text_body : NULL, "a\xe2\x82\xac\n", "charset UTF8, any case: the same");
	mime_msg_free(&m);
	m = text_of("US-ASCII", "hello\n", 6);
	UNIT_STR_EQ(m ? m->text_body : NULL, "hello\n", "ASCII text as it is");
	mime_msg_free(&m);
	m = text_of("iso-8859-1", "caf\xe9\n", 5);
	UNIT_STR_EQ(m ? m->text_body : NULL, "caf\xc3\xa9\n",
		    "Latin-1 is still converted (E9 is U+00E9, C3 A9)");
	mime_msg_free(&m);
	m = text_of("utf-8", "bo\0dy\n", 6);
	UNIT_STR_EQ(m ? m->text_body : NULL,
		    "bo\xef\xbf\xbd"
		    "dy\n",
		    "UTF-8 with a NUL: the NUL is U+FFFD");
	UNIT_STR_EQ(m ? m->parse_problem : NULL, "NUL bytes in the text replaced by U+FFFD",
		    "... and said in parse_problem");
	mime_msg_free(&m);
	m = text_of("us-ascii", "caf\xe9\n", 5);
	t = m && m->text_body ? m->text_body : "\xe9";
	UNIT_OK(g_utf8_validate(t, -1, NULL) && strncmp(t, "caf", 3) == 0,
		"8-bit bytes in US-ASCII text: converted, valid UTF-8, never the raw byte");
	mime_msg_free(&m);
	m = text_of("utf-8", "caf\xe9\n", 5);
	t = m && m->text_body ? m->text_body : "\xe9";
	UNIT_OK(g_utf8_validate(t, -1, NULL) && strncmp(t, "caf", 3) == 0,
		"invalid UTF-8 text: converted, valid UTF-8, never the raw byte");
	mime_msg_free(&m);
}

/* test_scan - lib/mime_scan: header blocks and delimiters, GMime's rules */
static void test_scan(void)
{
	static const char hdr[] = "A: 1\r\nB: 2\r\n folded\r\n\r\nbody";
	static const char body[] = "pre\r\n--b\r\none\n--b \t\ntwo\r\n--bx\n--b--\nepi";
	static const char *const keep[] = { "From", NULL };
	struct mime_bounds b = { .n = 0 };
	struct mime_delim d;
	size_t hl, nf, nl, off, olen, dropped;
	char *f;

	off = mime_scan_headers(hdr, sizeof(hdr) - 1, NULL, &hl, &nf, &nl);
	UNIT_OK(off == 23 && hl == 21 && nf == 2 && nl == 3,
		"header block: body at 23, 21 bytes, 2 fields"
		" (got %zu %zu %zu)",
		off, hl, nf);
	off = mime_scan_headers("A: 1\nB: 2", 10, NULL, &hl, &nf, &nl);
	UNIT_OK(off == 10 && hl == 10 && nf == 2, "no empty line: all headers, no body");
	f = mime_scan_filter_headers("X: 1\nX: 2\n y\nfrom : a\nX: 3\n", 27, 1, keep, 0, &olen,
				     &dropped);
	UNIT_STR_EQ(f, "X: 1\nfrom : a\n", "filtered: the first field, then only the kept ones");
	UNIT_OK(dropped == 2 && olen == 14, "... 2 fields dropped (got %zu)", dropped);
	free(f);
	f = mime_scan_filter_headers("X: 1\r\n 2\r\n\t3\r\nY: 4\r\n", 20, 10, keep, 1, &olen,
				     &dropped);
	UNIT_STR_EQ(f, "X: 1 2\t3\r\nY: 4\r\n", "unfolded: continuation line breaks removed");
	UNIT_OK(olen == 16 && dropped == 0, "... 16 bytes, nothing dropped (got %zu)", olen);
	free(f);
	b.boundary[0] = "b";
	b.len[0] = 1;
	b.n = 1;
	mime_scan_boundary(body, sizeof(body) - 1, 0, &b, &d);
	UNIT_OK(d.which == 0 && !d.close && d.content_end == 3 && d.next == 10,
		"first delimiter: its CRLF excluded from the preamble (%zu %zu)", d.content_end,
		d.next);
	mime_scan_boundary(body, sizeof(body) - 1, d.next, &b, &d);
	UNIT_OK(d.which == 0 && !d.close && d.content_end == 13 && d.next == 20,
		"a delimiter followed by white space; LF line break excluded");
	mime_scan_boundary(body, sizeof(body) - 1, d.next, &b, &d);
	UNIT_OK(d.which == 0 && d.close && d.content_end == 29,
		"\"--bx\" is content, \"--b--\" closes (content_end %zu)", d.content_end);
	mime_scan_boundary(body, sizeof(body) - 1, d.next, &b, &d);
	UNIT_OK(d.which == -1 && d.next == sizeof(body) - 1, "the epilogue runs to the end");
	/* an inner boundary that the outer one prefixes: the inner is tried first */
	b.boundary[1] = "b--";
	b.len[1] = 3;
	b.n = 2;
	mime_scan_boundary("--b----\n", 8, 0, &b, &d);
	UNIT_OK(d.which == 1 && d.close, "\"--b----\": the inner boundary's closing delimiter");
	mime_scan_boundary("--b--\n", 6, 0, &b, &d);
	UNIT_OK(d.which == 1 && !d.close,
		"\"--b--\": the inner's delimiter, not the outer's close");
}

/* test_stream_walk - what the part-at-a-time walk must give as GMime's
 * whole-tree parse did, and what it bounds */
static void test_stream_walk(void)
{
	struct mime_limits lim = { 0, 0 };
	struct mime_msg *m;
	struct buf big = BUF_INIT;
	char *c;
	int i;

	/* dashed boundaries: the inner multipart ends at its own delimiter */
	m = parse("Content-Type: multipart/mixed; boundary=\"a--\"\n\n--a--\n"
		  "Content-Type: multipart/mixed; boundary=\"a----\"\n\n--a----\n"
		  "Content-Type: text/plain\n\nbody\n--a------\n--a--\n"
		  "Content-Type: text/html\n\nbody2\n--a----\n");
	UNIT_STR_EQ(m ? m->text_body : NULL, "body", "nested dashed boundaries: the inner text");
	UNIT_STR_EQ(m ? m->html_body : NULL, "body2", "... and the outer's next part");
	mime_msg_free(&m);
	/* a digest's parts default to message/rfc822 */
	m = parse("Content-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: x@y\nSubject: s\n\n"
		  "hi\n--d--\n");
	UNIT_OK(m && m->natts == 1 && strcmp(m->atts[0].content_type, "message/rfc822") == 0,
		"a digest part without Content-Type is an attached message");
	mime_msg_free(&m);
	/* an attached message is kept as it stands, CRLF and all */
	m = parse("Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
		  "Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--o--\r\n");
	c = m && m->natts == 1 ? att_content(m, 0) : NULL;
	UNIT_STR_EQ(c, "Subject: in\r\n\r\nx", "attached message: the bytes as sent");
	free(c);
	mime_msg_free(&m);
	/* parts beyond the limit are not walked, and that is said */
	lim.parts_max = 2;
	buf_append_str(&big, "Content-Type: multipart/mixed; boundary=p\n\n");
	for (i = 0; i < 5; i++)
		buf_printf(&big, "--p\nContent-Type: application/x-n\n\n%d\n", i);
	buf_append_str(&big, "--p--\n");
	m = parse_lim(big.data, big.len, &lim);
	UNIT_OK(m && m->natts == 2, "parts_max 2: two attachments of five");
	UNIT_STR_EQ(m ? m->parse_problem : NULL,
		    "MIME parts beyond limits.mime_parts_max (2) not extracted", "... said");
	mime_msg_free(&m);
	/* 1,200 header fields: From after the first 1,000 is still read */
	buf_truncate(&big, 0);
	for (i = 0; i < 1200; i++)
		buf_printf(&big, "X-F: %d\n", i);
	buf_append_str(&big, "From: late@example.org\nSubject: late\n\nbody\n");
	m = parse_lim(big.data, big.len, NULL);
	UNIT_STR_EQ(m ? m->from_address : NULL, "late@example.org", "From after 1,200 fields");
	UNIT_STR_EQ(m ? m->text_body : NULL, "body\n", "... and the body");
	UNIT_STR_EQ(m ? m->parse_problem : NULL,
		    "200 header fields beyond the first 1000 of a header block not read",
		    "... the fields left out said");
	mime_msg_free(&m);
	/* nesting deeper than 64: what is below is not walked, and said */
	buf_truncate(&big, 0);
	for (i = 0; i < 70; i++)
		buf_printf(&big, "Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n", i, i);
	buf_append_str(&big, "Content-Type: text/plain\n\ndeep\n");
	m = parse_lim(big.data, big.len, NULL);
	UNIT_OK(m && m->text_body == NULL, "text 70 levels down is not extracted");
	UNIT_OK(m && m->parse_problem && strstr(m->parse_problem, "deeper than 64 levels"),
		"... and said (%s)", m && m->parse_problem ? m->parse_problem : "none");
	mime_msg_free(&m);
	buf_free(&big);
}

int main(void)
{
	test_defaults();
	test_headers();
	test_structure();
	test_problems();
	test_nul_text();
	test_charset_as_is();
	test_scan();
	test_stream_walk();
	test_filenames();
	test_clean();
	test_arrays_and_json();
	return unit_done();
}
