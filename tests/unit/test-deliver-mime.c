/* test-deliver-mime - what mime_parse makes of hand-written messages
 * (lib/mime_parse.c), the generated filenames, the UTF-8 cleaning, the
 * PostgreSQL array literals and the notification body. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>

#include "mime_parse.h"
#include "store_mail.h"
#include "store_notify.h"
#include "store_spool.h"
#include "unit.h"

/* parse - mime_parse of a string (NULL on a system error) */
static struct mime_msg *parse(const char *text)
{
	static const char *rcpts[] = { "x@example.com" };
	struct store_envelope env = { "", rcpts, 1, NULL };
	struct store_spool sp;
	struct mime_msg *m = NULL;
	char *err = NULL;

	if (store_spool_from_mem(text, strlen(text), &sp, &err) < 0 ||
	    store_spool_finish(&sp, &env, &err) < 0 ||
	    mime_parse(sp.fd, sp.start, -1, sp.id, NULL, &m, &err) < 0) {
		printf("# parse: %s\n", err);
		free(err);
		m = NULL;
	}
	store_spool_close(&sp);
	return m;
}

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

	UNIT_STR_EQ(s, "ab\xef\xbf\xbd", "NUL dropped, invalid byte -> U+FFFD");
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

int main(void)
{
	test_defaults();
	test_headers();
	test_structure();
	test_problems();
	test_filenames();
	test_clean();
	test_arrays_and_json();
	return unit_done();
}
