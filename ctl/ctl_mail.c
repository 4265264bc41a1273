/*
 * NAME
 *	ctl_mail - postroomctl mail list|show|raw, thread show
 * DESCRIPTION
 *	Reads stored mail. The JSON shape of an email is documented in
 *	postroomctl(1) and is stable: fields may be added, never renamed or
 *	removed. Recipients and attachments are aggregated by PostgreSQL in
 *	the same statement (no query per email). The text form shows what
 *	the sender wrote (subject, names, bodies, attachment names) with
 *	control and bidirectional formatting characters escaped, so that a
 *	message cannot drive the operator's terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "buf.h"
#include "ctl.h"
#include "ctl_suppression.h"
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

static int ctl_mail_raw(struct ctl *ctl, const char *id)
{
	const char *params[1] = { id };
	PGresult *res;
	int rc = CTL_OK;

	if (!ctl_is_uuid(id))
		return ctl_fail(CTL_USAGE, "invalid email id '%s' (a UUID, see mail list)", id);
	res = PQexecParams(db_conn(ctl_db(ctl)),
			   "SELECT content FROM email_raw WHERE email_id = $1", 1, NULL, params,
			   NULL, NULL, 1); /* binary result: the bytes as stored */
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = ctl_fail(CTL_UNAVAILABLE, "database error: %s", PQresultErrorMessage(res));
	else if (PQntuples(res) == 0)
		rc = ctl_fail(CTL_REFUSED, "no such email: %s", id);
	else if (fwrite(PQgetvalue(res, 0, 0), 1, (size_t)PQgetlength(res, 0, 0), stdout) !=
		 (size_t)PQgetlength(res, 0, 0))
		rc = ctl_fail(CTL_SOFTWARE, "write error");
	PQclear(res);
	return rc;
}

int ctl_cmd_mail(struct ctl *ctl, int argc, char **argv)
{
	int rc;

	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return ctl_mail_list(ctl, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[0], "show") == 0)
		return ctl_mail_show(ctl, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[0], "raw") == 0)
		return ctl_mail_raw(ctl, argv[1]);
	if ((rc = ctl_mail_lifecycle(ctl, argc, argv)) >= 0) /* ctl/ctl_mailbox.c */
		return rc;
	return ctl_usage("mail list [--user ADDRESS] [--limit N] | mail show ID | mail raw ID");
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
