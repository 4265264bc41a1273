/*
 * NAME
 *	ctl_events - postroomctl events [--since POS] [--follow] [--user
 *	ADDRESS], events prune, events failed, events retry
 * DESCRIPTION
 *	Prints the outbox (sql/018_events.sql) one JSON object per line,
 *	read through postroom_events_read: after --since POS (none: from
 *	the oldest event kept), in position order, in batches. --follow
 *	then LISTENs on postroom_events and reads again on every
 *	notification (and every few seconds without one); when the
 *	connection is lost (a PostgreSQL restart) it connects again, LISTENs
 *	and catches up from the last position printed, so nothing is
 *	skipped or printed twice. A position older than the events kept is
 *	refused with "position expired: resync" (SQLSTATE PR101, exit 1).
 *	events prune deletes events older than the retention period in
 *	batches (postroom_events_prune). events failed lists the parked
 *	webhook deliveries (sql/021_webhooks.sql); events retry ID|--all
 *	requeues them (postroom_webhook_retry).
 *	Reads database.conninfo, database.connect_timeout.
 * NEVER
 *	prints a conninfo; skips a position silently.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "xalloc.h"

#define CTL_EV_BATCH "1000"
#define CTL_EV_WAIT_MS 5000 /* read again at least this often (--follow) */
/* after a notification, gather those that follow for this long before
 * reading: each read looks through pg_locks and waits for the writers in
 * flight (sql/028_events_head.sql; it no longer holds writers up), so
 * one read per notification (hundreds a second under load) would cost
 * the server for nothing; the delay adds at most this much to the
 * latency (doc/events-consumer.md) */
#define CTL_EV_BATCH_MS 10
#define CTL_EV_RETRY_S 1 /* between two connection attempts (--follow) */

#define CTL_EV_QUERY                                                                      \
	"SELECT position, id, kind, user_id, user_address, email_id, to_json(addresses)," \
	" thread_id, data, to_char(created_at AT TIME ZONE 'UTC',"                        \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"                                           \
	" FROM postroom_events_read($1::bigint, " CTL_EV_BATCH ", $2::uuid)"

/* one follower: where it is and how it reads */
struct ctl_ev {
	struct ctl *ctl;
	char *user_id; /* --user: the user's id, else NULL */
	char since[24];
	int has_since; /* else: from the oldest kept */
	int follow;
	int lost; /* the connection was lost once already (message shown) */
};

/* ctl_ev_json - one event row as its JSON object */
static json_t *ctl_ev_json(const PGresult *res, int i)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "position",
			 ctl_json_int(res, i, 0), "id", ctl_json_text(res, i, 1), "kind",
			 ctl_json_text(res, i, 2), "user_id", ctl_json_text(res, i, 3), "user",
			 ctl_json_text(res, i, 4), "email_id", ctl_json_text(res, i, 5),
			 "addresses", ctl_json_parsed(res, i, 6), "thread_id",
			 ctl_json_text(res, i, 7), "data", ctl_json_parsed(res, i, 8), "time",
			 ctl_json_text(res, i, 9));
}

/* ctl_ev_print - print the rows, one line each; remember the last */
static void ctl_ev_print(struct ctl_ev *ev, const PGresult *res)
{
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		json_t *o = ctl_ev_json(res, i);

		json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(o);
	}
	if (i > 0) {
		snprintf(ev->since, sizeof(ev->since), "%s", PQgetvalue(res, i - 1, 0));
		ev->has_since = 1;
	}
	fflush(stdout);
}

/* ctl_ev_batch - read and print one batch: its row count, or -1 when
 * the connection is lost (temporary); exits on any other failure */
static int ctl_ev_batch(struct ctl_ev *ev)
{
	const char *p[2] = { ev->has_since ? ev->since : NULL, ev->user_id };
	const char *state;
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res = db_exec(ev->ctl->db, CTL_EV_QUERY, 2, p, &cls, &err);
	int n;

	if (res == NULL) {
		state = db_last_sqlstate(ev->ctl->db);
		if (state && strcmp(state, "PR101") == 0)
			exit(ctl_fail(CTL_REFUSED,
				      "position %s expired: resync (older events were pruned; "
				      "read again without --since)",
				      ev->since));
		if (ev->follow && (cls == DB_TEMPORARY || state == NULL)) {
			free(err);
			return -1;
		}
		if (cls == DB_TEMPORARY || state == NULL)
			exit(ctl_fail(CTL_UNAVAILABLE, "database error: %s", err));
		exit(ctl_fail(CTL_SOFTWARE, "events: %s", err));
	}
	ctl_ev_print(ev, res);
	n = PQntuples(res);
	PQclear(res);
	return n;
}

/* ctl_ev_catch_up - read until a batch is short: 0, or -1 connection lost */
static int ctl_ev_catch_up(struct ctl_ev *ev)
{
	int n;

	do {
		if ((n = ctl_ev_batch(ev)) < 0)
			return -1;
	} while (n >= atoi(CTL_EV_BATCH));
	return 0;
}

/* ctl_ev_connect - (re)connect and LISTEN, retrying every second: the
 * LISTEN comes before the catch-up read, so no notification is missed */
static void ctl_ev_connect(struct ctl_ev *ev)
{
	enum db_err_class cls;
	char *err = NULL;

	for (;;) {
		db_close(&ev->ctl->db);
		ev->ctl->db =
			db_connect(conf_str(ev->ctl->conf, "database.conninfo"),
				   (int)conf_int(ev->ctl->conf, "database.connect_timeout"), &err);
		if (ev->ctl->db &&
		    db_cmd(ev->ctl->db, "LISTEN postroom_events", 0, NULL, &cls, &err) == 0)
			break;
		if (!ev->lost)
			ctl_fail(0, "events: %s; connecting again", err ? err : "no connection");
		ev->lost = 1;
		free(err);
		err = NULL;
		sleep(CTL_EV_RETRY_S);
	}
	if (ev->lost)
		ctl_fail(0, "events: connected again; reading after position %s",
			 ev->has_since ? ev->since : "(none)");
	ev->lost = 0;
}

/* ctl_ev_wait - wait for a notification (or the timeout): 0, or -1
 * when the connection is gone */
static int ctl_ev_wait(struct ctl_ev *ev)
{
	PGconn *conn = db_conn(ev->ctl->db);
	struct pollfd p = { PQsocket(conn), POLLIN, 0 };
	PGnotify *nf;

	if (p.fd < 0)
		return -1;
	if ((nf = PQnotifies(conn)) == NULL) { /* none arrived while reading */
		if (poll(&p, 1, CTL_EV_WAIT_MS) < 0 && errno != EINTR)
			return -1;
		if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
			return -1;
		if ((nf = PQnotifies(conn)) == NULL)
			return 0; /* the timeout: read anyway */
	}
	PQfreemem(nf);
	if (poll(NULL, 0, CTL_EV_BATCH_MS) < 0 && errno != EINTR)
		return -1;
	if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK)
		return -1;
	while ((nf = PQnotifies(conn)) != NULL)
		PQfreemem(nf);
	return 0;
}

/* ctl_ev_follow - catch up, then read after every notification; never
 * returns (ended by a signal) */
static int ctl_ev_follow(struct ctl_ev *ev)
{
	signal(SIGPIPE, SIG_DFL);
	for (;;) {
		ctl_ev_connect(ev);
		while (ctl_ev_catch_up(ev) == 0 && ctl_ev_wait(ev) == 0)
			;
		ctl_fail(0, "events: connection lost; connecting again");
		ev->lost = 1;
	}
	return CTL_OK;
}

/* ctl_ev_since - parse --since: a position >= 0 */
static int ctl_ev_since(struct ctl_ev *ev, const char *s)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	snprintf(ev->since, sizeof(ev->since), "%lld", v);
	ev->has_since = 1;
	return 0;
}

/* ctl_events_read - events [--since POS] [--follow] [--user ADDRESS] */
static int ctl_events_read(struct ctl *ctl, int argc, char **argv)
{
	char *since = NULL, *user_in = NULL, *canon;
	struct ctl_opt opts[] = { { "--since", &since, 0 },
				  { "--user", &user_in, 0 },
				  { NULL, NULL, 0 } };
	struct ctl_ev ev;
	char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
	int i, n = 0, rc = CTL_OK;

	memset(&ev, 0, sizeof(ev));
	ev.ctl = ctl;
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0)
			ev.follow = 1;
		else
			rest[n++] = argv[i];
	}
	if (ctl_parse_args(n, rest, opts, NULL, 0, 0) < 0 ||
	    (since && ctl_ev_since(&ev, since) < 0)) {
		rc = ctl_usage("events [--since POSITION] [--follow] [--user ADDRESS]");
		goto out;
	}
	if (user_in) {
		canon = ctl_canonical_address(user_in);
		ev.user_id = ctl_user_id(ctl, canon);
		free(canon);
		if (ev.user_id == NULL) {
			rc = ctl_fail(CTL_REFUSED, "no such user: %s", user_in);
			goto out;
		}
	}
	if (ev.follow) {
		rc = ctl_ev_follow(&ev);
	} else {
		ctl_db(ctl);
		ctl_ev_catch_up(&ev);
	}
out:
	free(ev.user_id);
	free(since);
	free(user_in);
	free(rest);
	return rc;
}

/* ctl_events_prune - events prune [--keep DAYS] [--batch N] */
static int ctl_events_prune(struct ctl *ctl, int argc, char **argv)
{
	char *keep = NULL, *batch = NULL, *end = NULL;
	struct ctl_opt opts[] = { { "--keep", &keep, 0 },
				  { "--batch", &batch, 0 },
				  { NULL, NULL, 0 } };
	const char *p[2];
	long long total = 0, n;
	long k = 7, b = 10000;
	PGresult *res;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0 ||
	    (keep && ((k = strtol(keep, &end, 10)) < 0 || *end || end == keep)) ||
	    (batch && ((b = strtol(batch, &end, 10)) < 1 || *end || end == batch))) {
		rc = ctl_usage("events prune [--keep DAYS] [--batch N]");
		goto out;
	}
	free(keep);
	free(batch);
	keep = xasprintf("%ld", k);
	batch = xasprintf("%ld", b);
	p[0] = keep;
	p[1] = batch;
	do {
		res = ctl_query(ctl,
				"SELECT postroom_events_prune(make_interval(days => $1::integer),"
				" $2::integer)",
				2, p);
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
		total += n;
	} while (n > 0);
	if (ctl->json)
		ctl_print_json(
			json_pack("{s:I, s:i}", "pruned", (json_int_t)total, "keep_days", (int)k));
	else
		printf("pruned %lld event%s older than %ld day%s\n", total, total == 1 ? "" : "s",
		       k, k == 1 ? "" : "s");
out:
	free(keep);
	free(batch);
	return rc;
}

/* ctl_events_failed - events failed: the parked webhook deliveries (sql
 * 021), one JSON object a line */
static int ctl_events_failed(struct ctl *ctl, int argc, char **argv)
{
	PGresult *res;
	int i;

	if (argc != 0)
		return ctl_usage("events failed");
	res = ctl_query(ctl,
			"SELECT json_build_object('endpoint', endpoint, 'position', position,"
			" 'id', event_id, 'attempts', attempts, 'last_status', last_status,"
			" 'last_error', last_error, 'parked_at', parked_at)::text"
			" FROM webhook_deliveries WHERE parked_at IS NOT NULL"
			" ORDER BY position, endpoint",
			0, NULL);
	for (i = 0; i < PQntuples(res); i++)
		printf("%s\n", PQgetvalue(res, i, 0));
	PQclear(res);
	return CTL_OK;
}

/* ctl_events_retry - events retry ID|POSITION|--all: requeue parked
 * webhook deliveries */
static int ctl_events_retry(struct ctl *ctl, int argc, char **argv)
{
	const char *p[1];
	PGresult *res;

	if (argc != 1)
		return ctl_usage("events retry ID|POSITION|--all");
	p[0] = strcmp(argv[0], "--all") == 0 ? NULL : argv[0];
	res = ctl_query(ctl, "SELECT postroom_webhook_retry($1)", 1, p);
	if (ctl->json)
		ctl_print_json(json_pack("{s:i}", "requeued", atoi(PQgetvalue(res, 0, 0))));
	else
		printf("requeued %s deliver%s\n", PQgetvalue(res, 0, 0),
		       strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "y" : "ies");
	PQclear(res);
	return CTL_OK;
}

int ctl_cmd_events(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "failed") == 0)
		return ctl_events_failed(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "retry") == 0)
		return ctl_events_retry(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "prune") == 0)
		return ctl_events_prune(ctl, argc - 1, argv + 1);
	return ctl_events_read(ctl, argc, argv);
}
