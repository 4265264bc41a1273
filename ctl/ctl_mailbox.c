/*
 * NAME
 *	ctl_mailbox - postroomctl mail mark|trash|restore|delete|empty-trash|purge,
 *	hold, retention, user remove
 * DESCRIPTION
 *	The operator's side of the mailbox lifecycle (issue 18). Every state
 *	change goes through the SQL functions the application uses
 *	(sql/015_mailbox.sql: postroom_mark_read, postroom_mark_flagged,
 *	postroom_trash, postroom_restore, postroom_delete,
 *	postroom_empty_trash, postroom_user_remove), several emails in one
 *	call. Legal hold and retention periods are columns of users and
 *	domains (015, sql/017_retention.sql). The purge calls
 *	postroom_purge_batch once per transaction until a batch finds
 *	nothing, so a purge that is killed loses at most one batch and the
 *	next run carries on; it reads mailbox.trash_retention_days.
 * NEVER
 *	changes a mailbox with its own UPDATE or DELETE (only through the
 *	functions, which keep the modseq, the tombstones, the events hook and
 *	the legal hold); passes an unchecked id to SQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ctl.h"
#include "xalloc.h"

#define CTL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* SQLSTATE of postroom_delete, postroom_empty_trash and
 * postroom_user_remove under legal hold (sql/015_mailbox.sql) */
#define CTL_SQLSTATE_HOLD "PR001"

/* ctl_uuid_array - "{id,id,...}" of ids, or NULL (message printed) when
 * one is not a UUID (the caller frees) */
static char *ctl_uuid_array(char **ids, int n)
{
	struct buf b = BUF_INIT;
	int i;

	buf_append_str(&b, "{");
	for (i = 0; i < n; i++) {
		if (!ctl_is_uuid(ids[i])) {
			ctl_fail(CTL_USAGE, "invalid email id '%s' (a UUID, see mail list)",
				 ids[i]);
			buf_free(&b);
			return NULL;
		}
		buf_printf(&b, "%s%s", i ? "," : "", ids[i]);
	}
	buf_append_str(&b, "}");
	return buf_steal(&b);
}

/* ctl_hold_refusal - the message for an action refused by legal hold */
static int ctl_hold_refusal(const char *what, const char *addr)
{
	return ctl_fail(
		CTL_REFUSED,
		"cannot %s: %s or its domain is under legal hold (see postroomctl hold show)", what,
		addr);
}

/* ctl_missing_ids - print each of ids that is not in the user's mailbox;
 * returns how many */
static int ctl_missing_ids(struct ctl *ctl, const char *uid, const char *arr, const char *addr)
{
	const char *params[2] = { uid, arr };
	PGresult *res = ctl_query(ctl,
				  "SELECT x::text FROM unnest($2::uuid[]) x"
				  " WHERE NOT EXISTS (SELECT 1 FROM mailbox_entries m"
				  "   WHERE m.user_id = $1 AND m.email_id = x)",
				  2, params);
	int i, n = PQntuples(res);

	for (i = 0; i < n; i++)
		ctl_fail(CTL_REFUSED, "not in the mailbox of %s: %s", addr, PQgetvalue(res, i, 0));
	PQclear(res);
	return n;
}

/* ctl_mail_state_args - parse "ID... --user ADDRESS [flags]"; the flags
 * allowed are those in flags[] (NULL-terminated), the one given in
 * *flag_r. 0 ok, -1 usage */
static int ctl_mail_state_args(int argc, char **argv, const char *const *flags, char **ids,
			       int *nids, char **user_r, const char **flag_r)
{
	int i, j;

	*nids = 0;
	*user_r = NULL;
	*flag_r = NULL;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc && *user_r == NULL) {
			*user_r = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--", 2) != 0) {
			ids[(*nids)++] = argv[i];
			continue;
		}
		for (j = 0; flags && flags[j]; j++)
			if (strcmp(argv[i], flags[j]) == 0 && *flag_r == NULL)
				break;
		if (flags == NULL || flags[j] == NULL) {
			ctl_fail(CTL_USAGE, "%s: unknown, repeated or missing a value", argv[i]);
			return -1;
		}
		*flag_r = flags[j];
	}
	if (*user_r == NULL || *nids == 0) {
		ctl_fail(CTL_USAGE, "%s", *user_r ? "no email id" : "--user ADDRESS is required");
		return -1;
	}
	return 0;
}

/* ctl_mail_state - mark, trash, restore, delete: one call of the state
 * function for every id given */
static int ctl_mail_state(struct ctl *ctl, const char *cmd, int argc, char **argv)
{
	static const char *const mark_flags[] = { "--read", "--unread", "--flag", "--unflag",
						  NULL };
	const char *usage =
		strcmp(cmd, "mark") == 0
			? "mail mark ID... --user ADDRESS [--read|--unread|--flag|--unflag]"
			: "mail trash|restore|delete ID... --user ADDRESS";
	const char *flag, *sql, *what, *state = NULL, *params[3];
	char **ids = xcalloc((size_t)argc + 1, sizeof(*ids)), *user_in, *addr = NULL, *uid = NULL,
	     *arr = NULL;
	int nids, rc = CTL_OK, missing;
	PGresult *res;

	if (ctl_mail_state_args(argc, argv, strcmp(cmd, "mark") == 0 ? mark_flags : NULL, ids,
				&nids, &user_in, &flag) < 0) {
		free(ids);
		return ctl_usage(usage);
	}
	if ((arr = ctl_uuid_array(ids, nids)) == NULL) {
		rc = CTL_USAGE;
		goto out;
	}
	addr = ctl_canonical_address(user_in);
	if ((uid = ctl_user_id(ctl, addr)) == NULL) {
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
		goto out;
	}
	params[0] = uid;
	params[1] = arr;
	params[2] = "t";
	if (strcmp(cmd, "mark") == 0 && flag && strstr(flag, "flag")) {
		sql = "SELECT postroom_mark_flagged($1, $2::uuid[], $3::boolean)";
		what = strcmp(flag, "--flag") == 0 ? "flagged" : "unflagged";
		params[2] = strcmp(flag, "--flag") == 0 ? "t" : "f";
	} else if (strcmp(cmd, "mark") == 0) {
		sql = "SELECT postroom_mark_read($1, $2::uuid[], $3::boolean)";
		what = flag && strcmp(flag, "--unread") == 0 ? "marked unread" : "marked read";
		params[2] = flag && strcmp(flag, "--unread") == 0 ? "f" : "t";
	} else if (strcmp(cmd, "trash") == 0) {
		sql = "SELECT postroom_trash($1, $2::uuid[])";
		what = "moved to the trash";
	} else if (strcmp(cmd, "restore") == 0) {
		sql = "SELECT postroom_restore($1, $2::uuid[])";
		what = "restored from the trash";
	} else {
		sql = "SELECT postroom_delete($1, $2::uuid[])";
		what = "deleted for good";
	}
	missing = ctl_missing_ids(ctl, uid, arr, addr);
	res = ctl_query_try(ctl, sql, strstr(sql, "$3") ? 3 : 2, params, &state);
	if (res == NULL && strcmp(state, CTL_SQLSTATE_HOLD) == 0) {
		rc = ctl_hold_refusal("delete", addr);
		goto out;
	}
	if (res == NULL) {
		rc = ctl_fail(CTL_SOFTWARE, "mail %s failed (SQLSTATE %s)", cmd, state);
		goto out;
	}
	if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s, s:i, s:o, s:i}", "user", addr, "action",
					 strcmp(cmd, "mark") == 0 ? what : cmd, "requested", nids,
					 "changed", ctl_json_int(res, 0, 0), "not_in_mailbox",
					 missing));
	else
		printf("%s: %s of %d email%s %s\n", addr, PQgetvalue(res, 0, 0), nids,
		       nids == 1 ? "" : "s", what);
	PQclear(res);
	if (missing)
		rc = CTL_REFUSED;
out:
	free(ids);
	free(arr);
	free(addr);
	free(uid);
	return rc;
}

/* ctl_mail_empty_trash - mail empty-trash --user ADDRESS */
static int ctl_mail_empty_trash(struct ctl *ctl, int argc, char **argv)
{
	char *user_in = NULL, *addr, *uid;
	struct ctl_opt opts[] = { { "--user", &user_in, 0 }, { NULL, NULL, 0 } };
	const char *params[1], *state = NULL;
	PGresult *res;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0 || user_in == NULL) {
		free(user_in);
		return ctl_usage("mail empty-trash --user ADDRESS");
	}
	addr = ctl_canonical_address(user_in);
	uid = ctl_user_id(ctl, addr);
	if (uid == NULL) {
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
		goto out;
	}
	params[0] = uid;
	res = ctl_query_try(ctl, "SELECT postroom_empty_trash($1)", 1, params, &state);
	if (res == NULL)
		rc = strcmp(state, CTL_SQLSTATE_HOLD) == 0
			     ? ctl_hold_refusal("empty the trash", addr)
			     : ctl_fail(CTL_SOFTWARE, "empty-trash failed (SQLSTATE %s)", state);
	else if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s, s:o}", "user", addr, "action", "empty-trash",
					 "changed", ctl_json_int(res, 0, 0)));
	else
		printf("%s: trash emptied, %s email%s deleted for good\n", addr,
		       PQgetvalue(res, 0, 0), strcmp(PQgetvalue(res, 0, 0), "1") ? "s" : "");
	PQclear(res);
out:
	free(uid);
	free(addr);
	free(user_in);
	return rc;
}

/* purge totals */
struct ctl_purge {
	long long emails, bytes, memberships, tombstones, folded;
	int batches;
};

/* ctl_purge_progress - the progress line on a terminal (stderr) */
static void ctl_purge_progress(const struct ctl_purge *p)
{
	fprintf(stderr, "\rpurge: batch %d, %lld emails, %lld memberships, %lld bytes freed ",
		p->batches, p->emails, p->memberships, p->bytes);
	fflush(stderr);
}

/* ctl_purge_fold - fold the storage usage deltas (sql/015) into each
 * user's base: the RCPT check (postroom_storage_quota_full) adds up the
 * deltas not yet folded, so they must not pile up */
static void ctl_purge_fold(struct ctl *ctl, struct ctl_purge *p)
{
	PGresult *res = ctl_query(ctl, "SELECT postroom_storage_fold()", 0, NULL);

	p->folded = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* CTL_PURGE_PAUSE_AUTO - --pause auto (the default): after each batch,
 * sleep CTL_PURGE_DUTY times as long as the batch took, so a purge uses at
 * most a third of one connection's time and delivery keeps its pace
 * (bench/purge-bench; the limit: 0.8x the rate without it) */
#define CTL_PURGE_PAUSE_AUTO (-1L)
#define CTL_PURGE_DUTY 2

/* ctl_purge_sleep - the pause after a batch that took took_ns */
static void ctl_purge_sleep(long pause_ms, long long took_ns)
{
	long long ns = pause_ms == CTL_PURGE_PAUSE_AUTO ? took_ns * CTL_PURGE_DUTY
							: (long long)pause_ms * 1000000LL;
	struct timespec ts;

	if (ns > 60000000000LL)
		ns = 60000000000LL;
	if (ns <= 0)
		return;
	ts.tv_sec = (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	nanosleep(&ts, NULL);
}

/* ctl_purge_run - batches until one finds nothing (a dry run: one count),
 * with the pause (ms, or CTL_PURGE_PAUSE_AUTO) between two batches */
static void ctl_purge_run(struct ctl *ctl, int dry, const char *batch, long pause_ms,
			  struct ctl_purge *p)
{
	struct timespec t0, t1;
	char days[24];
	const char *params[3] = { days, batch, dry ? "t" : "f" };
	int tty = isatty(STDERR_FILENO) && !ctl->json;

	snprintf(days, sizeof(days), "%lld", conf_int(ctl->conf, "mailbox.trash_retention_days"));
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		PGresult *res = ctl_query(
			ctl,
			"SELECT emails, bytes, memberships, tombstones"
			" FROM postroom_purge_batch($1::integer, $2::integer, $3::boolean)",
			3, params);
		long long e = atoll(PQgetvalue(res, 0, 0)), m = atoll(PQgetvalue(res, 0, 2)),
			  t = atoll(PQgetvalue(res, 0, 3));

		p->emails += e;
		p->bytes += atoll(PQgetvalue(res, 0, 1));
		p->memberships += m;
		p->tombstones += t;
		PQclear(res);
		if (dry || e + m + t == 0)
			break;
		p->batches++;
		if (tty)
			ctl_purge_progress(p);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ctl_purge_sleep(pause_ms, (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL +
						  (t1.tv_nsec - t0.tv_nsec));
	}
	if (tty && p->batches)
		fputc('\n', stderr);
	if (!dry)
		ctl_purge_fold(ctl, p);
}

/* ctl_mail_purge - mail purge [--dry-run] [--batch N] [--pause MS|auto] */
static int ctl_mail_purge(struct ctl *ctl, int argc, char **argv)
{
	const char *usage = "mail purge [--dry-run] [--batch N] [--pause MS|auto]";
	struct ctl_purge p = { 0, 0, 0, 0, 0, 0 };
	const char *batch = "500";
	char *end;
	long pause_ms = CTL_PURGE_PAUSE_AUTO;
	int i, dry = 0;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0) {
			dry = 1;
		} else if (strcmp(argv[i], "--pause") == 0 && i + 1 < argc) {
			const char *v = argv[++i];

			if (strcmp(v, "auto") == 0) {
				pause_ms = CTL_PURGE_PAUSE_AUTO;
				continue;
			}
			pause_ms = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || pause_ms < 0 || pause_ms > 60000)
				return ctl_fail(CTL_USAGE,
						"invalid --pause '%s' (0 to 60000 ms, or auto)", v);
		} else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
			long n = strtol(batch = argv[++i], &end, 10);

			if (*batch == '\0' || *end != '\0' || n < 1 || n > 2000)
				return ctl_fail(CTL_USAGE, "invalid --batch '%s' (1 to 2000)",
						batch);
		} else {
			ctl_fail(CTL_USAGE, "unexpected argument '%s'", argv[i]);
			return ctl_usage(usage);
		}
	}
	ctl_purge_run(ctl, dry, batch, pause_ms, &p);
	if (ctl->json)
		ctl_print_json(json_pack("{s:b, s:I, s:I, s:I, s:I, s:i, s:I}", "dry_run", dry,
					 "emails", p.emails, "memberships", p.memberships, "bytes",
					 p.bytes, "tombstones", p.tombstones, "batches", p.batches,
					 "usage_deltas_folded", p.folded));
	else
		printf("%s %lld emails, %lld memberships, %lld bytes freed%s\n",
		       dry ? "would purge" : "purged", p.emails, p.memberships, p.bytes,
		       dry ? " (dry run: nothing changed)" : "");
	return CTL_OK;
}

int ctl_mail_lifecycle(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return -1;
	if (strcmp(argv[0], "mark") == 0 || strcmp(argv[0], "trash") == 0 ||
	    strcmp(argv[0], "restore") == 0 || strcmp(argv[0], "delete") == 0)
		return ctl_mail_state(ctl, argv[0], argc - 1, argv + 1);
	if (strcmp(argv[0], "empty-trash") == 0)
		return ctl_mail_empty_trash(ctl, argc - 1, argv + 1);
	if (strcmp(argv[0], "purge") == 0)
		return ctl_mail_purge(ctl, argc - 1, argv + 1);
	return -1;
}

void ctl_mailbox_add_state(struct ctl *ctl, const char *uid, json_t *emails)
{
	struct buf b = BUF_INIT;
	const char *params[2];
	json_t *e;
	size_t i;
	PGresult *res;
	int r;

	buf_append_str(&b, "{");
	json_array_foreach(emails, i, e)
	{
		buf_printf(&b, "%s%s", i ? "," : "", json_string_value(json_object_get(e, "id")));
		json_object_set_new(e, "state", json_null());
	}
	buf_append_str(&b, "}");
	params[0] = uid;
	params[1] = b.data;
	res = ctl_query(
		ctl,
		"SELECT email_id::text, is_read, " CTL_TS("read_at") ", is_flagged, " CTL_TS(
			"flagged_at") ", deleted_at IS NOT NULL, " CTL_TS("deleted_at") ","
											" modseq, received, sent"
											" FROM mailbox_entries"
											" WHERE user_id = $1 AND email_id = ANY ($2::uuid[])",
		2, params);
	for (r = 0; r < PQntuples(res); r++)
		json_array_foreach(emails, i, e)
		{
			if (strcmp(json_string_value(json_object_get(e, "id")),
				   PQgetvalue(res, r, 0)) != 0)
				continue;
			json_object_set_new(
				e, "state",
				json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
					  "is_read", ctl_json_bool(res, r, 1), "read_at",
					  ctl_json_text(res, r, 2), "is_flagged",
					  ctl_json_bool(res, r, 3), "flagged_at",
					  ctl_json_text(res, r, 4), "trashed",
					  ctl_json_bool(res, r, 5), "deleted_at",
					  ctl_json_text(res, r, 6), "modseq",
					  ctl_json_int(res, r, 7), "received",
					  ctl_json_bool(res, r, 8), "sent",
					  ctl_json_bool(res, r, 9)));
		}
	PQclear(res);
	buf_free(&b);
}

/* ctl_target - TARGET of hold and retention: a user (an address: primary
 * or alias) or a domain. Sets *table_r ("users" or "domains"), *id_r and
 * *name_r (the canonical address or domain); the caller frees both.
 * CTL_OK, or the failure printed */
static int ctl_target(struct ctl *ctl, const char *in, const char **table_r, char **id_r,
		      char **name_r)
{
	const char *params[1];
	PGresult *res;
	size_t n;

	*id_r = NULL;
	if (strchr(in, '@')) {
		*table_r = "users";
		*name_r = ctl_canonical_address(in);
		*id_r = ctl_user_id(ctl, *name_r);
		return *id_r ? CTL_OK : ctl_fail(CTL_REFUSED, "no such user: %s", *name_r);
	}
	*table_r = "domains";
	*name_r = xstrdup(in);
	for (n = 0; (*name_r)[n]; n++)
		if ((*name_r)[n] >= 'A' && (*name_r)[n] <= 'Z')
			(*name_r)[n] = (char)((*name_r)[n] - 'A' + 'a');
	if (n > 0 && (*name_r)[n - 1] == '.')
		(*name_r)[n - 1] = '\0';
	if ((*name_r)[0] == '\0')
		return ctl_fail(CTL_USAGE, "invalid domain or address '%s'", in);
	params[0] = *name_r;
	res = ctl_query(ctl, "SELECT id FROM domains WHERE name = $1", 1, params);
	if (PQntuples(res) > 0)
		*id_r = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return *id_r ? CTL_OK : ctl_fail(CTL_REFUSED, "no such domain: %s", *name_r);
}

/* ctl_hold_set - hold set DOMAIN|ADDRESS on|off */
static int ctl_hold_set(struct ctl *ctl, const char *target, const char *onoff)
{
	const char *table, *params[2];
	char *id, *name;
	int rc, on;

	if (strcmp(onoff, "on") != 0 && strcmp(onoff, "off") != 0)
		return ctl_usage("hold set DOMAIN|ADDRESS on|off");
	on = strcmp(onoff, "on") == 0;
	if ((rc = ctl_target(ctl, target, &table, &id, &name)) == CTL_OK) {
		params[0] = id;
		params[1] = on ? "t" : "f";
		PQclear(ctl_query(ctl,
				  strcmp(table, "users") == 0
					  ? "UPDATE users SET legal_hold = $2 WHERE id = $1"
					  : "UPDATE domains SET legal_hold = $2 WHERE id = $1",
				  2, params));
		if (ctl->json)
			ctl_print_json(json_pack("{s:s, s:s, s:b}",
						 strcmp(table, "users") == 0 ? "user" : "domain",
						 name, "legal_hold", on));
		else
			printf("legal hold %s for %s %s\n", on ? "on" : "off",
			       strcmp(table, "users") == 0 ? "user" : "domain", name);
	}
	free(id);
	free(name);
	return rc;
}

/* ctl_hold_show - every domain and user under legal hold */
static int ctl_hold_show(struct ctl *ctl)
{
	PGresult *res = ctl_query(ctl,
				  "SELECT 'domain', name FROM domains WHERE legal_hold"
				  " UNION ALL SELECT 'user', address FROM users WHERE legal_hold"
				  " ORDER BY 1, 2",
				  0, NULL);
	json_t *doms = json_array(), *users = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		json_array_append_new(strcmp(PQgetvalue(res, i, 0), "user") == 0 ? users : doms,
				      ctl_json_text(res, i, 1));
		if (!ctl->json)
			printf("%s\t%s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
	}
	if (ctl->json)
		ctl_print_json(json_pack("{s:o, s:o}", "domains", doms, "users", users));
	else {
		if (PQntuples(res) == 0)
			printf("no domain or user is under legal hold\n");
		json_decref(doms);
		json_decref(users);
	}
	PQclear(res);
	return CTL_OK;
}

int ctl_cmd_hold(struct ctl *ctl, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[0], "set") == 0)
		return ctl_hold_set(ctl, argv[1], argv[2]);
	if (argc == 1 && strcmp(argv[0], "show") == 0)
		return ctl_hold_show(ctl);
	return ctl_usage("hold set DOMAIN|ADDRESS on|off | hold show");
}

/* ctl_retention_set - retention set DOMAIN|ADDRESS DAYS|none */
static int ctl_retention_set(struct ctl *ctl, const char *target, const char *days_in)
{
	const char *table, *params[2], *days = NULL;
	char *id, *name, *end;
	int rc;

	if (strcmp(days_in, "none") != 0) {
		long d = strtol(days_in, &end, 10);

		if (*days_in == '\0' || *end != '\0' || d < 1 || d > 1000000)
			return ctl_fail(CTL_USAGE,
					"invalid retention '%s' (days, 1 to 1000000, or none)",
					days_in);
		days = days_in;
	}
	if ((rc = ctl_target(ctl, target, &table, &id, &name)) == CTL_OK) {
		params[0] = id;
		params[1] = days;
		PQclear(ctl_query(
			ctl,
			strcmp(table, "users") == 0
				? "UPDATE users SET retention_days = $2::integer WHERE id = $1"
				: "UPDATE domains SET retention_days = $2::integer WHERE id = $1",
			2, params));
		if (ctl->json)
			ctl_print_json(json_pack("{s:s, s:s, s:o}",
						 strcmp(table, "users") == 0 ? "user" : "domain",
						 name, "retention_days",
						 days ? json_integer(atoll(days)) : json_null()));
		else
			printf("retention of %s %s: %s%s\n",
			       strcmp(table, "users") == 0 ? "user" : "domain", name,
			       days ? days : "none", days ? " days" : "");
	}
	free(id);
	free(name);
	return rc;
}

/* ctl_retention_show_user - one user's periods: own, domain, effective */
static int ctl_retention_show_one(struct ctl *ctl, const char *target)
{
	const char *table, *params[1];
	char *id, *name;
	PGresult *res;
	int rc;

	if ((rc = ctl_target(ctl, target, &table, &id, &name)) != CTL_OK)
		goto out;
	params[0] = id;
	if (strcmp(table, "users") == 0)
		res = ctl_query(
			ctl,
			"SELECT u.retention_days, d.retention_days, postroom_retention_days(u.id),"
			"  u.legal_hold OR COALESCE(d.legal_hold, false)"
			" FROM users u LEFT JOIN domains d"
			"   ON d.name = lower(split_part(u.address, '@', 2)) WHERE u.id = $1",
			1, params);
	else
		res = ctl_query(ctl,
				"SELECT NULL, retention_days, retention_days, legal_hold"
				" FROM domains WHERE id = $1",
				1, params);
	if (ctl->json)
		ctl_print_json(json_pack(
			"{s:s, s:o, s:o, s:o, s:o, s:I}",
			strcmp(table, "users") == 0 ? "user" : "domain", name, "retention_days",
			ctl_json_int(res, 0, strcmp(table, "users") == 0 ? 0 : 1),
			"domain_retention_days", ctl_json_int(res, 0, 1),
			"effective_retention_days", ctl_json_int(res, 0, 2), "legal_hold",
			ctl_json_bool(res, 0, 3), "trash_retention_days",
			conf_int(ctl->conf, "mailbox.trash_retention_days")));
	else
		printf("%s %s\nretention: %s%s\ntrash: %lld days\nlegal hold: %s\n",
		       strcmp(table, "users") == 0 ? "user" : "domain", name,
		       PQgetisnull(res, 0, 2) ? "none" : PQgetvalue(res, 0, 2),
		       PQgetisnull(res, 0, 2)          ? ""
		       : strcmp(table, "domains") == 0 ? " days"
		       : PQgetisnull(res, 0, 0)        ? " days (the domain's)"
						       : " days (the user's own)",
		       conf_int(ctl->conf, "mailbox.trash_retention_days"),
		       PQgetvalue(res, 0, 3)[0] == 't' ? "on (nothing is purged)" : "off");
	PQclear(res);
out:
	free(id);
	free(name);
	return rc;
}

/* ctl_retention_show - every period set, and the trash period */
static int ctl_retention_show(struct ctl *ctl)
{
	PGresult *res = ctl_query(ctl,
				  "SELECT 'domain', name, retention_days FROM domains"
				  "  WHERE retention_days IS NOT NULL"
				  " UNION ALL SELECT 'user', address, retention_days FROM users"
				  "  WHERE retention_days IS NOT NULL ORDER BY 1, 2",
				  0, NULL);
	long long trash = conf_int(ctl->conf, "mailbox.trash_retention_days");
	json_t *arr = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json)
			json_array_append_new(
				arr, json_pack("{s:o, s:o, s:o}", "kind", ctl_json_text(res, i, 0),
					       "name", ctl_json_text(res, i, 1), "retention_days",
					       ctl_json_int(res, i, 2)));
		else
			printf("%s\t%s\t%s days\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			       PQgetvalue(res, i, 2));
	}
	if (ctl->json)
		ctl_print_json(
			json_pack("{s:o, s:I}", "periods", arr, "trash_retention_days", trash));
	else {
		printf("trash\t-\t%lld days (mailbox.trash_retention_days)\n", trash);
		json_decref(arr);
	}
	PQclear(res);
	return CTL_OK;
}

int ctl_cmd_retention(struct ctl *ctl, int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[0], "set") == 0)
		return ctl_retention_set(ctl, argv[1], argv[2]);
	if (argc == 1 && strcmp(argv[0], "show") == 0)
		return ctl_retention_show(ctl);
	if (argc == 2 && strcmp(argv[0], "show") == 0)
		return ctl_retention_show_one(ctl, argv[1]);
	return ctl_usage(
		"retention set DOMAIN|ADDRESS DAYS|none | retention show [DOMAIN|ADDRESS]");
}

int ctl_user_remove_mailbox(struct ctl *ctl, int argc, char **argv)
{
	char *keep = NULL, *pos[1], *addr, *uid, *end;
	struct ctl_opt opts[] = { { "--keep-mail", &keep, 0 }, { NULL, NULL, 0 } };
	const char *params[2], *state = NULL;
	PGresult *res;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0) {
		free(keep);
		return ctl_usage("user remove ADDRESS [--keep-mail DAYS]");
	}
	if (keep &&
	    (strtol(keep, &end, 10) < 1 || strtol(keep, NULL, 10) > 100000 || *end != '\0')) {
		rc = ctl_fail(CTL_USAGE, "invalid --keep-mail '%s' (days, 1 to 100000)", keep);
		free(keep);
		return rc;
	}
	addr = ctl_canonical_address(pos[0]);
	params[0] = addr;
	/* the primary address only: removing a user by an alias is a mistake */
	res = ctl_query(ctl, "SELECT id FROM users WHERE lower(address) = $1", 1, params);
	uid = PQntuples(res) ? xstrdup(PQgetvalue(res, 0, 0)) : NULL;
	PQclear(res);
	if (uid == NULL) {
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
		goto out;
	}
	params[0] = uid;
	params[1] = keep;
	/* returns the memberships the user had */
	res = ctl_query_try(ctl, "SELECT postroom_user_remove($1, $2::integer)", 2, params, &state);
	if (res == NULL && strcmp(state, CTL_SQLSTATE_HOLD) == 0) {
		rc = ctl_hold_refusal("remove the user", addr);
		goto out;
	}
	if (res == NULL) {
		rc = ctl_fail(CTL_SOFTWARE, "cannot remove user %s (SQLSTATE %s)", addr, state);
		goto out;
	}
	if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:I, s:o, s:o}", "removed", addr, "messages_kept",
					 keep ? atoll(PQgetvalue(res, 0, 0)) : 0LL, "messages",
					 ctl_json_int(res, 0, 0), "keep_mail_days",
					 keep ? json_integer(atoll(keep)) : json_null()));
	else if (keep)
		printf("removed user %s; their %s messages are kept, unlinked and unreachable,"
		       " for %s days, then purged (never given to a later owner of the address)\n",
		       addr, PQgetvalue(res, 0, 0), keep);
	else
		printf("removed user %s and their mailbox (%s messages; mail nobody else has is"
		       " expunged)\n",
		       addr, PQgetvalue(res, 0, 0));
	PQclear(res);
out:
	free(uid);
	free(addr);
	free(keep);
	return rc;
}
