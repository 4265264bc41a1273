/*
 * NAME
 *	ctl_mail - postroomctl mail list|show|raw|attachment|compact-raw, thread show
 * DESCRIPTION
 *	Reads stored mail. The JSON shape of an email is documented in
 *	postroomctl(1) and is stable: fields may be added, never renamed or
 *	removed. Recipients and attachments are aggregated by PostgreSQL in
 *	the same statement (no query per email). The text form shows what
 *	the sender wrote (subject, names, bodies, attachment names) with
 *	control and bidirectional formatting characters escaped, so that a
 *	message cannot drive the operator's terminal. A raw message is
 *	rebuilt from its skeleton and blobs by lib/raw_compact, each blob's
 *	SHA-256 checked; a blob in the object store (blobs.location 's3',
 *	sql/027) is read from it through lib/blob_store (blobs.* of
 *	postroom.conf), verified there and again here; mail attachment
 *	writes one attachment's bytes, verified before the first is
 *	written. compact-raw converts mail stored whole before
 *	migration 025, each message verified by both rebuilds (C and SQL)
 *	before its old bytes are replaced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "blob_store.h"
#include "buf.h"
#include "ctl.h"
#include "crypto.h"
#include "ctl_suppression.h"
#include "db.h"
#include "mime_parse.h"
#include "raw_compact.h"
#include "store_spool.h"
#include "xalloc.h"

#define CTL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* columns 0..15 of every email query; 16, 17 = bodies, 18 = the
 * spf/dkim/dmarc results (show only) */
#define CTL_EMAIL_COLUMNS                                                                                                       \
	"e.id, e.message_id, e.thread_id, e.subject, e.from_address, e.from_display_name, " CTL_TS(                             \
		"e.received_at") ", e.size_bytes, su.address, e.spam, e.spam_reason, "                                          \
				 "(SELECT COALESCE(json_agg(json_build_object('address', r.address, 'display_name',"            \
				 "  r.display_name, 'type', r.type, 'delivered', r.delivered, 'user', ru.address,"              \
				 "  'is_read', COALESCE((SELECT m.is_read FROM mailbox_entries m WHERE m.user_id = r.user_id"   \
				 "  AND m.email_id = r.email_id), false)) ORDER BY r.id), '[]')"                                \
				 "  FROM email_recipients r LEFT JOIN users ru ON ru.id = r.user_id WHERE r.email_id = e.id), " \
				 "(SELECT COALESCE(json_agg(json_build_object('filename', a.filename, 'filename_original',"     \
				 "  a.filename_original, 'content_type',"                                                       \
				 "  a.content_type, 'size_bytes', a.size_bytes, 'sha256', encode(a.sha256, 'hex'),"             \
				 "  'inline', a.is_inline, 'content_id', a.content_id) ORDER BY a.position), '[]')"             \
				 "  FROM email_attachments a WHERE a.email_id = e.id), "                                        \
				 "e.in_reply_to, array_to_json(e.reference_ids), e.parse_problem"

#define CTL_EMAIL_FROM " FROM emails e LEFT JOIN users su ON su.id = e.sent_by_user_id "

/* ctl_email_json - one result row as the documented email object */
static json_t *ctl_email_json(const PGresult *res, int i, int with_bodies)
{
	json_t *o = json_pack(
		"{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"id", ctl_json_text(res, i, 0), "message_id", ctl_json_text(res, i, 1), "thread_id",
		ctl_json_text(res, i, 2), "subject", ctl_json_text(res, i, 3), "from_address",
		ctl_json_text(res, i, 4), "from_display_name", ctl_json_text(res, i, 5),
		"received_at", ctl_json_text(res, i, 6), "size_bytes", ctl_json_int(res, i, 7),
		"sent_by", ctl_json_text(res, i, 8), "spam", ctl_json_bool(res, i, 9),
		"spam_reason", ctl_json_text(res, i, 10), "recipients", ctl_json_parsed(res, i, 11),
		"attachments", ctl_json_parsed(res, i, 12), "in_reply_to",
		ctl_json_text(res, i, 13), "references", ctl_json_parsed(res, i, 14),
		"parse_problem", ctl_json_text(res, i, 15));

	if (with_bodies) {
		json_object_set_new(o, "text_body", ctl_json_text(res, i, 16));
		json_object_set_new(o, "html_body", ctl_json_text(res, i, 17));
		json_object_set_new(o, "auth_results", ctl_json_parsed(res, i, 18));
	}
	return o;
}

/* ctl_term_escaped - a character a terminal must not get as is: C0
 * controls (but newline and tab when keep_lines), DEL, C1 controls,
 * bidirectional formatting (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069), line and paragraph separators */
static int ctl_term_escaped(gunichar c, int keep_lines)
{
	if (keep_lines && (c == '\n' || c == '\t'))
		return 0;
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061C || c == 0x200E || c == 0x200F ||
	       (c >= 0x2028 && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

/* ctl_term - s for a terminal, escaped characters as \u{XXXX}, bytes
 * that are not UTF-8 as \xXX (the caller frees) */
static char *ctl_term(const char *s, int keep_lines)
{
	struct buf b = BUF_INIT;

	buf_append_str(&b, "");
	while (*s) {
		gunichar c = g_utf8_get_char_validated(s, -1);

		if (c == (gunichar)-1 || c == (gunichar)-2) {
			buf_printf(&b, "\\x%02X", (unsigned char)*s++);
		} else if (ctl_term_escaped(c, keep_lines)) {
			buf_printf(&b, "\\u{%04X}", (unsigned)c);
			s = g_utf8_next_char(s);
		} else {
			buf_append(&b, s, (size_t)(g_utf8_next_char(s) - s));
			s = g_utf8_next_char(s);
		}
	}
	return buf_steal(&b);
}

/* ctl_print_email_line - one row as one line, escaped for the terminal */
static void ctl_print_email_line(const PGresult *res, int i)
{
	char *from = ctl_term(PQgetvalue(res, i, 4), 0),
	     *subject = ctl_term(PQgetvalue(res, i, 3), 0);

	printf("%s  %s  %-30s  %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 6), from, subject);
	free(from);
	free(subject);
}

/* ctl_print_emails - all rows, as a JSON array or one line each; with
 * uid, each JSON email gets the user's "state" (ctl/ctl_mailbox.c) */
static void ctl_print_emails(struct ctl *ctl, const PGresult *res, const char *uid)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json)
			json_array_append_new(arr, ctl_email_json(res, i, 0));
		else
			ctl_print_email_line(res, i);
	}
	if (ctl->json && uid)
		ctl_mailbox_add_state(ctl, uid, arr);
	ctl_print_list(ctl, arr);
}

static int ctl_mail_list(struct ctl *ctl, int argc, char **argv)
{
	char *user_in = NULL, *limit = NULL, *user = NULL, *user_id = NULL;
	struct ctl_opt opts[] = { { "--user", &user_in, 0 },
				  { "--limit", &limit, 0 },
				  { NULL, NULL, 0 } };
	const char *params[2];
	PGresult *res;
	char *end = NULL;
	long n = 50;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0)
		rc = ctl_usage("mail list [--user ADDRESS] [--limit N]");
	else if (limit && ((n = strtol(limit, &end, 10)) < 1 || n > 100000 || *end != '\0'))
		rc = ctl_fail(CTL_USAGE, "invalid --limit '%s' (1 to 100000)", limit);
	else if (user_in &&
		 (user_id = ctl_user_id(ctl, user = ctl_canonical_address(user_in))) == NULL)
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", user);
	if (rc == CTL_OK) {
		params[0] = user_id;
		params[1] = limit ? limit : "50";
		res = ctl_query(
			ctl,
			"SELECT " CTL_EMAIL_COLUMNS CTL_EMAIL_FROM
			" WHERE $1::uuid IS NULL OR e.sent_by_user_id = $1"
			"    OR e.id IN (SELECT email_id FROM email_recipients WHERE user_id = $1 AND delivered)"
			" ORDER BY e.received_at DESC, e.id LIMIT $2::integer",
			2, params);
		ctl_print_emails(ctl, res, user_id);
		PQclear(res);
	}
	free(user_in);
	free(limit);
	free(user);
	free(user_id);
	return rc;
}

/* ctl_print_email_text - human-readable single email, what the sender
 * wrote escaped for the terminal (ctl_term) */
static void ctl_print_email_text(const PGresult *res)
{
	char *msgid = ctl_term(PQgetvalue(res, 0, 1), 0);
	char *display = ctl_term(PQgetisnull(res, 0, 5) ? "" : PQgetvalue(res, 0, 5), 0);
	char *from = ctl_term(PQgetvalue(res, 0, 4), 0);
	char *subject = ctl_term(PQgetvalue(res, 0, 3), 0);
	char *rcpts = ctl_term(PQgetvalue(res, 0, 11), 0);
	char *atts = ctl_term(PQgetvalue(res, 0, 12), 0);
	char *body = ctl_term(ctl_val(res, 0, 16), 1);

	printf("id:          %s\nmessage-id:  %s\nthread:      %s\nreceived:    %s\n"
	       "from:        %s%s%s%s\nsubject:     %s\nsize:        %s bytes\nsent by:     %s\n"
	       "spam:        %s\nrecipients:  %s\nattachments: %s\n\n%s\n",
	       PQgetvalue(res, 0, 0), msgid, ctl_val(res, 0, 2), PQgetvalue(res, 0, 6), display,
	       PQgetisnull(res, 0, 5) ? "" : " <", from, PQgetisnull(res, 0, 5) ? "" : ">", subject,
	       PQgetvalue(res, 0, 7), ctl_val(res, 0, 8), PQgetvalue(res, 0, 9), rcpts, atts, body);
	free(msgid);
	free(display);
	free(from);
	free(subject);
	free(rcpts);
	free(atts);
	free(body);
}

static int ctl_mail_show(struct ctl *ctl, int argc, char **argv)
{
	char *user_in = NULL, *pos[1], *user = NULL, *uid = NULL;
	struct ctl_opt opts[] = { { "--user", &user_in, 0 }, { NULL, NULL, 0 } };
	const char *params[1], *id;
	PGresult *res;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0) {
		free(user_in);
		return ctl_usage("mail show ID [--user ADDRESS]");
	}
	params[0] = id = pos[0];
	if (!ctl_is_uuid(id)) {
		free(user_in);
		return ctl_fail(CTL_USAGE, "invalid email id '%s' (a UUID, see mail list)", id);
	}
	if (user_in && (uid = ctl_user_id(ctl, user = ctl_canonical_address(user_in))) == NULL)
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", user);
	free(user_in);
	free(user);
	if (rc != CTL_OK)
		return rc;
	res = ctl_query(ctl,
			"SELECT " CTL_EMAIL_COLUMNS
			", e.text_body, e.html_body, e.auth_results" CTL_EMAIL_FROM
			" WHERE e.id = $1",
			1, params);
	if (PQntuples(res) == 0)
		rc = ctl_fail(CTL_REFUSED, "no such email: %s", id);
	else if (ctl->json) {
		json_t *one = json_pack("[o]", ctl_email_json(res, 0, 1));

		if (uid)
			ctl_mailbox_add_state(ctl, uid, one);
		ctl_report_add_json(ctl, id, json_array_get(one, 0)); /* issue 21 */
		ctl_print_json(json_incref(json_array_get(one, 0)));
		json_decref(one);
	} else
		ctl_print_email_text(res);
	PQclear(res);
	free(uid);
	return rc;
}

/* ctl_be - an integer of a binary result (int2, int4 or int8) */
static long long ctl_be(const PGresult *res, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
	int i, n = PQgetlength(res, row, col);
	unsigned long long v = 0;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	if (n == 2)
		return (short)v;
	if (n == 4)
		return (int)v;
	return (long long)v;
}

static int ctl_stdout_sink(void *arg, const char *p, size_t n)
{
	(void)arg;
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

/* what ctl_cmp_sink compares the rebuild with */
struct ctl_cmp {
	const char *p;
	size_t left;
};

static int ctl_cmp_sink(void *arg, const char *p, size_t n)
{
	struct ctl_cmp *c = arg;

	if (n > c->left || memcmp(c->p, p, n) != 0)
		return -1;
	c->p += n;
	c->left -= n;
	return 0;
}

/* The object store of blobs in location 's3' (opened on first use from
 * the blobs section, whatever blobs.backend says now: rows stored while it
 * was s3 stay there until blobs migrate moves them). */
static const struct conf *ctl_mail_conf;
static struct blob_store *ctl_mail_s3;

static void ctl_mail_s3_close(void) { blob_store_close(&ctl_mail_s3); }

/* ctl_blob_get - the content of an s3 blob, verified (SHA-256), appended
 * to out: 0, or -1 with *error_r (caller frees) */
static int ctl_blob_get(const unsigned char digest[SHA256_LEN], struct buf *out, char **error_r)
{
	struct blob_store_conf bc;
	struct blob_sink sink = { -1, out };
	char *err = NULL;
	int status = BLOB_CONFIG;

	if (ctl_mail_s3 == NULL) {
		blob_store_conf_read(ctl_mail_conf, &bc);
		if ((ctl_mail_s3 = blob_store_s3_new(&bc, &status, &err)) == NULL) {
			*error_r = xasprintf("object store: %s", err);
			free(err);
			return -1;
		}
		atexit(ctl_mail_s3_close);
	}
	if ((status = ctl_mail_s3->ops->get(ctl_mail_s3, digest, &sink, &err)) != BLOB_OK) {
		*error_r = xasprintf("object store (%s): %s", blob_status_name(status), err);
		free(err);
		return -1;
	}
	return 0;
}

/* ctl_raw_bodies - text_body and html_body of email id as UTF-8 bytes
 * (binary), read once for all its text references; NULL with *error_r */
static PGresult *ctl_raw_bodies(PGconn *conn, const char *id, char **error_r)
{
	const char *params[1] = { id };
	PGresult *res = PQexecParams(conn,
				     "SELECT convert_to(text_body, 'UTF8'), convert_to(html_body,"
				     " 'UTF8') FROM emails WHERE id = $1",
				     1, NULL, params, NULL, NULL, 1);

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return res;
	*error_r = PQresultStatus(res) == PGRES_TUPLES_OK
			   ? xstrdup("the email row of a text reference is missing")
			   : xasprintf("database error: %s", PQresultErrorMessage(res));
	PQclear(res);
	return NULL;
}

/* ctl_raw_text - reference i of r2 (source, src_off, src_len in columns
 * 7-9) as a slice of its body; a slice past the body's end is short,
 * which raw_rebuild refuses */
static void ctl_raw_text(const PGresult *bodies, const PGresult *r2, int i, struct raw_ref *ref,
			 struct raw_blob *blob)
{
	int col = ref->source == RAW_SRC_TEXT ? 0 : 1;
	long long have = PQgetisnull(bodies, 0, col) ? 0 : PQgetlength(bodies, 0, col);
	long long off = PQgetisnull(r2, i, 8) ? 0 : ctl_be(r2, i, 8);

	ref->size = PQgetisnull(r2, i, 9) ? -1 : ctl_be(r2, i, 9);
	if (off < 0 || off > have)
		off = have;
	blob->content = (const unsigned char *)PQgetvalue(bodies, 0, col) + off;
	blob->len = (size_t)(ref->size >= 0 && ref->size < have - off ? ref->size : have - off);
}

/* ctl_raw_rebuild - the raw message of email id, rebuilt from its
 * skeleton and blobs (lib/raw_compact: each blob's SHA-256 checked; one
 * in the object store is read from it, verified there too), to sink.
 * 0; 1 when there is none; -1 with *error_r (caller frees) */
static int ctl_raw_rebuild(PGconn *conn, const char *id, raw_sink sink, void *arg, char **error_r)
{
	const char *params[1] = { id };
	struct raw_ref *refs = NULL;
	struct raw_blob *blobs = NULL;
	struct buf *objs = NULL;
	PGresult *res, *r2 = NULL, *bodies = NULL;
	int i, n = 0, rc = 0;

	res = PQexecParams(conn, "SELECT layout, content FROM email_raw_base WHERE email_id = $1",
			   1, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*error_r = xasprintf("database error: %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 1;
	}
	if (ctl_be(res, 0, 0) == 1) {
		r2 = PQexecParams(
			conn,
			"SELECT r.at, r.line_len, r.crlf, r.position, b.sha256, b.content,"
			" b.location = 's3', r.source, r.src_off, r.src_len FROM email_raw_refs r"
			" LEFT JOIN email_attachments a ON r.source = 0 AND a.email_id = r.email_id AND"
			" a.position = r.position LEFT JOIN blobs b ON b.sha256 = a.sha256"
			" WHERE r.email_id = $1 ORDER BY r.ordinal",
			1, NULL, params, NULL, NULL, 1);
		if (PQresultStatus(r2) != PGRES_TUPLES_OK) {
			*error_r = xasprintf("database error: %s", PQresultErrorMessage(r2));
			rc = -1;
			goto out;
		}
		n = PQntuples(r2);
		refs = xcalloc((size_t)n + 1, sizeof(*refs));
		blobs = xcalloc((size_t)n + 1, sizeof(*blobs));
		objs = xcalloc((size_t)n + 1, sizeof(*objs));
		for (i = 0; i < n; i++) {
			int s3 = !PQgetisnull(r2, i, 6) && *PQgetvalue(r2, i, 6) != 0;

			refs[i].at = ctl_be(r2, i, 0);
			refs[i].line_len = (int)ctl_be(r2, i, 1);
			refs[i].crlf = *PQgetvalue(r2, i, 2) != 0;
			refs[i].position = (int)ctl_be(r2, i, 3);
			refs[i].source = (int)ctl_be(r2, i, 7);
			if (refs[i].source != RAW_SRC_BLOB) { /* a text: its length checked */
				if (bodies == NULL &&
				    (bodies = ctl_raw_bodies(conn, id, error_r)) == NULL) {
					rc = -1;
					goto out;
				}
				ctl_raw_text(bodies, r2, i, &refs[i], &blobs[i]);
				continue;
			}
			if ((PQgetisnull(r2, i, 5) && !s3) || PQgetlength(r2, i, 4) != SHA256_LEN) {
				*error_r = xasprintf("the blob of attachment %d is missing",
						     refs[i].position);
				rc = -1;
				goto out;
			}
			blobs[i].sha256 = (const unsigned char *)PQgetvalue(r2, i, 4);
			if (s3 && ctl_blob_get(blobs[i].sha256, &objs[i], error_r) < 0) {
				rc = -1;
				goto out;
			}
			blobs[i].content =
				s3 ? (const unsigned char *)(objs[i].data ? objs[i].data : "")
				   : (const unsigned char *)PQgetvalue(r2, i, 5);
			blobs[i].len = s3 ? objs[i].len : (size_t)PQgetlength(r2, i, 5);
		}
	}
	rc = raw_rebuild(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), refs, blobs,
			 (size_t)n, sink, arg, error_r);
out:
	for (i = 0; objs && i < n; i++)
		buf_free(&objs[i]);
	free(objs);
	free(refs);
	free(blobs);
	PQclear(bodies);
	PQclear(r2);
	PQclear(res);
	return rc;
}

static int ctl_mail_raw(struct ctl *ctl, const char *id)
{
	char *error = NULL;
	int rc;

	if (!ctl_is_uuid(id))
		return ctl_fail(CTL_USAGE, "invalid email id '%s' (a UUID, see mail list)", id);
	rc = ctl_raw_rebuild(db_conn(ctl_db(ctl)), id, ctl_stdout_sink, NULL, &error);
	if (rc == 1)
		return ctl_fail(CTL_REFUSED, "no such email: %s", id);
	if (rc < 0) {
		rc = ctl_fail(strncmp(error, "database", 8) == 0 ? CTL_UNAVAILABLE : CTL_SOFTWARE,
			      "mail raw %s: %s", id, error);
		free(error);
		return rc;
	}
	return fflush(stdout) == 0 ? CTL_OK : ctl_fail(CTL_SOFTWARE, "write error");
}

/* ctl_mail_attachment - the content of attachment N of email id, read
 * from PostgreSQL or from the object store, its SHA-256 checked before
 * a byte is written */
static int ctl_mail_attachment(struct ctl *ctl, const char *id, const char *pos)
{
	const char *params[2] = { id, pos };
	unsigned char digest[SHA256_LEN];
	struct buf obj = BUF_INIT;
	const char *data;
	char *error = NULL, *end;
	PGresult *res;
	size_t len;
	int rc = CTL_OK;

	if (!ctl_is_uuid(id))
		return ctl_fail(CTL_USAGE, "invalid email id '%s' (a UUID, see mail list)", id);
	if (strtol(pos, &end, 10) < 1 || *end != '\0' || strlen(pos) > 9)
		return ctl_fail(CTL_USAGE, "invalid attachment number '%s' (1, 2, ...)", pos);
	res = PQexecParams(db_conn(ctl_db(ctl)),
			   "SELECT a.sha256, b.content, b.location = 's3', b.sha256 IS NOT NULL"
			   " FROM email_attachments a LEFT JOIN blobs b ON b.sha256 = a.sha256"
			   " WHERE a.email_id = $1 AND a.position = $2::integer",
			   2, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = ctl_fail(CTL_UNAVAILABLE, "mail attachment: database error: %s",
			      PQresultErrorMessage(res));
		PQclear(res);
		return rc;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ctl_fail(CTL_REFUSED, "no attachment %s of email %s", pos, id);
	}
	if (*PQgetvalue(res, 0, 3) == 0 || PQgetlength(res, 0, 0) != SHA256_LEN) {
		PQclear(res);
		return ctl_fail(CTL_SOFTWARE, "mail attachment %s %s: its blob is missing", id,
				pos);
	}
	memcpy(digest, PQgetvalue(res, 0, 0), SHA256_LEN);
	if (*PQgetvalue(res, 0, 2) != 0) {
		if (ctl_blob_get(digest, &obj, &error) < 0) {
			rc = ctl_fail(CTL_SOFTWARE, "mail attachment %s %s: %s", id, pos, error);
			free(error);
			PQclear(res);
			return rc;
		}
		data = obj.data ? obj.data : "";
		len = obj.len;
	} else {
		data = PQgetvalue(res, 0, 1);
		len = (size_t)PQgetlength(res, 0, 1);
	}
	{
		unsigned char got[SHA256_LEN];

		crypto_sha256(data, len, got);
		if (memcmp(got, digest, SHA256_LEN) != 0)
			rc = ctl_fail(
				CTL_SOFTWARE,
				"mail attachment %s %s: the content does not match its SHA-256", id,
				pos);
	}
	if (rc == CTL_OK && (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0))
		rc = ctl_fail(CTL_SOFTWARE, "write error");
	buf_free(&obj);
	PQclear(res);
	return rc;
}

/* the counts of a compact-raw run */
struct ctl_compact {
	long examined, compacted, kept, mismatched;
	long long before, after;
};

/* ctl_compact_exec - one statement of compact-raw's transaction */
static int ctl_compact_exec(PGconn *conn, const char *sql, int n, const char *const *p,
			    const int *lens, const int *fmts, int want_true)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, p, lens, fmts, 0);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (ok && want_true)
		ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	else if (!ok)
		fprintf(stderr, "postroomctl: mail compact-raw: %s", PQresultErrorMessage(res));
	PQclear(res);
	return ok ? 0 : -1;
}

/* ctl_compact_positions - the stored position of each parsed attachment
 * (the first unused row with its digest; 0: not stored) */
static int *ctl_compact_positions(PGconn *conn, const char *id, const struct mime_msg *m)
{
	const char *params[1] = { id };
	PGresult *res = PQexecParams(conn,
				     "SELECT position, sha256 FROM email_attachments WHERE email_id"
				     " = $1 ORDER BY position",
				     1, NULL, params, NULL, NULL, 1);
	int *pos = xcalloc(m->natts + 1, sizeof(int)), *used, i, n;
	size_t k;

	n = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
	used = xcalloc((size_t)n + 1, sizeof(int));
	for (k = 0; k < m->natts; k++)
		for (i = 0; i < n; i++)
			if (!used[i] && PQgetlength(res, i, 1) == SHA256_LEN &&
			    memcmp(PQgetvalue(res, i, 1), m->atts[k].sha256, SHA256_LEN) == 0) {
				used[i] = 1;
				pos[k] = (int)ctl_be(res, i, 0);
				break;
			}
	free(used);
	PQclear(res);
	return pos;
}

/* ctl_compact_apply - replace the raw message by its skeleton and
 * references, verified by both rebuilds (postroom_email_raw and
 * lib/raw_compact's) against the old bytes; 1 done, 0 not (rolled
 * back to the savepoint), -1 on a database error */
static int ctl_compact_apply(PGconn *conn, const char *id, const char *raw, size_t len,
			     const struct raw_plan *plan, char **skel_r)
{
	static const int fmts[2] = { 0, 1 };
	const char *p[9];
	int lens[2] = { 0, 0 }, ok = 1;
	char num[7][32], *error = NULL;
	struct ctl_cmp cmp = { raw, len };
	size_t i;

	*skel_r = xmalloc((size_t)plan->skel_len + 1);
	if (store_spool_pread_all(plan->fd, *skel_r, (size_t)plan->skel_len, 0) !=
	    (ssize_t)plan->skel_len)
		return 0;
	if (ctl_compact_exec(conn, "SAVEPOINT compact", 0, NULL, NULL, NULL, 0) < 0)
		return -1;
	p[0] = id;
	p[1] = *skel_r;
	lens[1] = (int)plan->skel_len;
	if (ctl_compact_exec(conn,
			     "UPDATE email_raw_base SET content = $2, layout = 1 WHERE email_id ="
			     " $1::uuid",
			     2, p, lens, fmts, 0) < 0)
		return -1;
	for (i = 0; i < plan->nrefs; i++) {
		snprintf(num[0], sizeof(num[0]), "%zu", i + 1);
		snprintf(num[1], sizeof(num[1]), "%d", plan->refs[i].position);
		snprintf(num[2], sizeof(num[2]), "%lld", plan->refs[i].at);
		snprintf(num[3], sizeof(num[3]), "%d", plan->refs[i].line_len);
		snprintf(num[4], sizeof(num[4]), "%d", plan->refs[i].source);
		snprintf(num[5], sizeof(num[5]), "%lld", plan->refs[i].src_off);
		snprintf(num[6], sizeof(num[6]), "%lld", plan->refs[i].size);
		p[1] = num[0];
		p[2] = num[1];
		p[3] = num[2];
		p[4] = num[3];
		p[5] = plan->refs[i].crlf ? "t" : "f";
		p[6] = num[4];
		p[7] = plan->refs[i].source == RAW_SRC_BLOB ? NULL : num[5];
		p[8] = plan->refs[i].source == RAW_SRC_BLOB ? NULL : num[6];
		if (ctl_compact_exec(
			    conn,
			    "INSERT INTO email_raw_refs (email_id, ordinal, position, at,"
			    " line_len, crlf, source, src_off, src_len) VALUES ($1::uuid,"
			    " $2::integer, $3::integer, $4::bigint, $5::integer, $6::boolean,"
			    " $7::smallint, $8::bigint, $9::bigint)",
			    9, p, NULL, NULL, 0) < 0)
			return -1;
	}
	p[1] = raw;
	lens[1] = (int)len;
	/* postroom_email_raw cannot rebuild a message with a blob in the
	 * object store (PR103): the C rebuild alone, which reads it, checks
	 * such a message */
	if (ctl_compact_exec(conn,
			     "SELECT CASE WHEN EXISTS (SELECT 1 FROM email_raw_refs x JOIN"
			     " email_attachments a ON a.email_id = x.email_id AND a.position ="
			     " x.position JOIN blobs b ON b.sha256 = a.sha256 WHERE x.email_id ="
			     " $1::uuid AND x.source = 0 AND b.location = 's3') THEN true ELSE"
			     " postroom_email_raw($1::uuid) = $2::bytea END",
			     2, p, lens, fmts, 1) < 0)
		ok = 0;
	if (ok && (ctl_raw_rebuild(conn, id, ctl_cmp_sink, &cmp, &error) != 0 || cmp.left != 0))
		ok = 0;
	free(error);
	if (ctl_compact_exec(conn,
			     ok ? "RELEASE SAVEPOINT compact" : "ROLLBACK TO SAVEPOINT compact", 0,
			     NULL, NULL, NULL, 0) < 0)
		return -1;
	return ok;
}

/* ctl_compact_one - examine one message stored whole before 025 */
static int ctl_compact_one(PGconn *conn, const char *id, const char *raw, size_t len,
			   struct ctl_compact *st)
{
	static const unsigned char zero[SHA256_LEN];
	const char *p[1] = { id };
	struct mime_msg *m = NULL;
	struct raw_plan plan = { NULL, 0, -1, 0 };
	char *error = NULL, *skel = NULL;
	int fd = memfd_create("postroom-raw", MFD_CLOEXEC), *pos = NULL, done = 0;

	st->examined++;
	st->before += (long long)len;
	if (fd >= 0 && write(fd, raw, len) == (ssize_t)len &&
	    mime_parse(fd, 0, -1, zero, NULL, &m, &error) == 0) {
		pos = ctl_compact_positions(conn, id, m);
		if (raw_compact(fd, 0, (long long)len, m, pos, &plan, &error) == 0 &&
		    plan.nrefs > 0)
			done = ctl_compact_apply(conn, id, raw, len, &plan, &skel);
		if (plan.nrefs > 0 && done == 0)
			st->mismatched++;
	}
	if (fd >= 0)
		close(fd);
	if (done == 1) {
		st->compacted++;
		st->after += plan.skel_len;
	} else if (done == 0) {
		st->kept++;
		st->after += (long long)len;
		if (ctl_compact_exec(
			    conn, "UPDATE email_raw_base SET layout = 2 WHERE email_id = $1::uuid",
			    1, p, NULL, NULL, 0) < 0)
			done = -1;
	}
	raw_plan_free(&plan);
	mime_msg_free(&m);
	free(pos);
	free(skel);
	free(error);
	return done < 0 ? -1 : 0;
}

/* ctl_mail_compact_raw - convert mail stored whole before migration 025:
 * batches of N, each one transaction (resumable: what is done has
 * layout 1 or 2, and rows in use by a concurrent run are skipped) */
static int ctl_mail_compact_raw(struct ctl *ctl, int argc, char **argv)
{
	char *batch_s = NULL, *end = NULL;
	const struct ctl_opt opts[] = { { "--batch", &batch_s, 0 }, { NULL, NULL, 0 } };
	PGconn *conn = db_conn(ctl_db(ctl));
	struct ctl_compact st = { 0, 0, 0, 0, 0, 0 };
	long batch = 100;
	int tty = isatty(2), rc = CTL_OK, i, n;

	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0)
		return ctl_usage("mail compact-raw [--batch N]");
	if (batch_s && ((batch = strtol(batch_s, &end, 10)) < 1 || batch > 100000 || *end)) {
		free(batch_s);
		return ctl_fail(CTL_USAGE, "invalid --batch (1 to 100000)");
	}
	free(batch_s);
	for (;;) {
		char lim[32];
		const char *p[1] = { lim };
		PGresult *res;

		snprintf(lim, sizeof(lim), "%ld", batch);
		if (ctl_compact_exec(conn, "BEGIN", 0, NULL, NULL, NULL, 0) < 0)
			return ctl_fail(CTL_UNAVAILABLE, "mail compact-raw: cannot begin");
		res = PQexecParams(
			conn,
			"SELECT email_id::text, content FROM email_raw_base WHERE layout = 0"
			" ORDER BY email_id LIMIT $1::integer FOR UPDATE SKIP LOCKED",
			1, NULL, p, NULL, NULL, 1);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = ctl_fail(CTL_UNAVAILABLE, "mail compact-raw: %s",
				      PQresultErrorMessage(res));
			PQclear(res);
			break;
		}
		n = PQntuples(res);
		for (i = 0; i < n && rc == CTL_OK; i++)
			if (ctl_compact_one(conn, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
					    (size_t)PQgetlength(res, i, 1), &st) < 0)
				rc = ctl_fail(CTL_UNAVAILABLE, "mail compact-raw: stopped at %s",
					      PQgetvalue(res, i, 0));
		PQclear(res);
		if (rc != CTL_OK || ctl_compact_exec(conn, "COMMIT", 0, NULL, NULL, NULL, 0) < 0) {
			rc = rc != CTL_OK
				     ? rc
				     : ctl_fail(CTL_UNAVAILABLE, "mail compact-raw: commit failed");
			break;
		}
		if (tty)
			fprintf(stderr,
				"\rcompact-raw: %ld examined, %ld compacted, %lld bytes saved",
				st.examined, st.compacted, st.before - st.after);
		if (n < batch)
			break;
	}
	if (tty)
		fputc('\n', stderr);
	if (ctl->json)
		ctl_print_json(json_pack(
			"{sI sI sI sI sI sI}", "examined", (json_int_t)st.examined, "compacted",
			(json_int_t)st.compacted, "kept_whole", (json_int_t)st.kept,
			"not_reproduced", (json_int_t)st.mismatched, "bytes_before",
			(json_int_t)st.before, "bytes_after", (json_int_t)st.after));
	else
		printf("compact-raw: %ld examined, %ld compacted, %ld kept whole (%ld not reproduced);"
		       " %lld bytes before, %lld after\n",
		       st.examined, st.compacted, st.kept, st.mismatched, st.before, st.after);
	if (rc != CTL_OK)
		PQexec(conn, "ROLLBACK");
	return rc;
}

int ctl_cmd_mail(struct ctl *ctl, int argc, char **argv)
{
	int rc;

	ctl_mail_conf = ctl->conf;
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return ctl_mail_list(ctl, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "show") == 0)
		return ctl_mail_show(ctl, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[0], "raw") == 0)
		return ctl_mail_raw(ctl, argv[1]);
	if (argc == 3 && strcmp(argv[0], "attachment") == 0)
		return ctl_mail_attachment(ctl, argv[1], argv[2]);
	if (argc >= 1 && strcmp(argv[0], "compact-raw") == 0)
		return ctl_mail_compact_raw(ctl, argc - 1, argv + 1);
	if ((rc = ctl_mail_lifecycle(ctl, argc, argv)) >= 0) /* ctl/ctl_mailbox.c */
		return rc;
	return ctl_usage("mail list [--user ADDRESS] [--limit N] | mail show ID | mail raw ID"
			 " | mail attachment ID N | mail compact-raw [--batch N]");
}

int ctl_cmd_thread(struct ctl *ctl, int argc, char **argv)
{
	const char *params[1];
	PGresult *res;

	if (argc != 2 || strcmp(argv[0], "show") != 0)
		return ctl_usage("thread show ID");
	if (!ctl_is_uuid(argv[1]))
		return ctl_fail(CTL_USAGE, "invalid id '%s' (a thread or email UUID)", argv[1]);
	params[0] = argv[1];
	/* ID is a thread id, or the id of any email in the thread */
	res = ctl_query(
		ctl,
		"SELECT " CTL_EMAIL_COLUMNS CTL_EMAIL_FROM
		" WHERE COALESCE(e.thread_id, e.id) = (SELECT COALESCE(x.thread_id, x.id) FROM emails x"
		"   WHERE x.id = $1 UNION ALL SELECT $1::uuid"
		"   WHERE EXISTS (SELECT 1 FROM emails y WHERE y.thread_id = $1) LIMIT 1)"
		" ORDER BY e.received_at, e.id",
		1, params);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return ctl_fail(CTL_REFUSED, "no such thread or email: %s", argv[1]);
	}
	ctl_print_emails(ctl, res, NULL);
	PQclear(res);
	return CTL_OK;
}
