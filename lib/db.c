/*
 * NAME
 *	db - libpq connection, parameterised statements, transactions
 * DESCRIPTION
 *	Every statement goes through PQexecParams: values never become part
 *	of SQL text. Failures are classified so a caller can defer
 *	(temporary) or refuse (permanent) correctly: an MTA must retry what
 *	may succeed later and must not retry what never will.
 * NEVER
 *	builds SQL by string concatenation of values; logs a conninfo (it may
 *	hold a password).
 */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define DB_STMTS_MAX 64

struct db {
	PGconn *conn;
	char sqlstate[6];
	char *stmts[DB_STMTS_MAX]; /* SQL prepared as "p<index>" on conn */
	size_t nstmts;
};

static void db_ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

struct db *db_connect(const char *conninfo, int connect_timeout, char **error_r)
{
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[4];
	char tmo[16];
	struct db *db;

	snprintf(tmo, sizeof(tmo), "%d", connect_timeout > 0 ? connect_timeout : 10);
	vals[0] = tmo;
	vals[1] = "postroom";
	vals[2] = conninfo ? conninfo : "";
	vals[3] = NULL;
	db = xcalloc(1, sizeof(*db));
	/* expand_dbname=1: "dbname" carries the whole conninfo string; it comes
	 * last so that what the operator wrote overrides the defaults above. */
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		const char *msg = db->conn ? PQerrorMessage(db->conn) : "out of memory";
		size_t n = strcspn(msg, "\n");
		*error_r = xasprintf("database connection failed: %.*s", (int)n, msg);
		db_close(&db);
		return NULL;
	}
	PQsetNoticeProcessor(db->conn, db_ignore_notice, NULL);
	return db;
}

void db_close(struct db **dbp)
{
	size_t i;

	if (*dbp == NULL)
		return;
	for (i = 0; i < (*dbp)->nstmts; i++)
		free((*dbp)->stmts[i]);
	if ((*dbp)->conn)
		PQfinish((*dbp)->conn);
	xfree(dbp);
}

PGconn *db_conn(struct db *db) { return db->conn; }

enum db_err_class db_classify_sqlstate(const char *s)
{
	if (s == NULL || strlen(s) != 5)
		return DB_TEMPORARY;     /* no server answer: connection trouble */
	if (strncmp(s, "08", 2) == 0     /* connection exception */
	    || strcmp(s, "40001") == 0   /* serialization_failure */
	    || strcmp(s, "40P01") == 0   /* deadlock_detected */
	    || strncmp(s, "53", 2) == 0  /* insufficient resources */
	    || strncmp(s, "57P", 3) == 0 /* admin shutdown, crash shutdown, cannot connect now */
	    || strcmp(s, "55P03") == 0   /* lock_not_available */
	    || strcmp(s, "57014") == 0   /* query_canceled (statement timeout) */
	    || strncmp(s, "58", 2) == 0) /* system error (I/O) */
		return DB_TEMPORARY;
	return DB_PERMANENT;
}

const char *db_last_sqlstate(struct db *db) { return db->sqlstate[0] ? db->sqlstate : NULL; }

/* db_fail - record the failure of res (may be NULL) and classify it */
static void db_fail(struct db *db, PGresult *res, enum db_err_class *class_r, char **error_r)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);
	size_t n = strcspn(msg, "\n");

	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
	if (PQstatus(db->conn) != CONNECTION_OK)
		state = NULL; /* the connection is gone, whatever the result says */
	if (class_r)
		*class_r = db_classify_sqlstate(state);
	if (error_r)
		*error_r = xasprintf("%.*s", (int)n, *msg ? msg : "database error");
}

PGresult *db_exec_bin(struct db *db, const char *sql, int nparams, const char *const *params,
		      const int *lengths, const int *formats, enum db_err_class *class_r,
		      char **error_r)
{
	PGresult *res = PQexecParams(db->conn, sql, nparams, NULL, params, lengths, formats, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	db->sqlstate[0] = '\0';
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (class_r)
			*class_r = DB_OK;
		return res;
	}
	db_fail(db, res, class_r, error_r);
	PQclear(res);
	return NULL;
}

/* db_stmt_index - the prepared statement for sql on this connection,
 * prepared now if new; -1 (failure recorded) on error, -2 when the
 * cache is full (the caller runs the statement unprepared) */
static int db_stmt_index(struct db *db, const char *sql, int nparams, enum db_err_class *class_r,
			 char **error_r)
{
	char name[16];
	PGresult *res;
	size_t i;

	for (i = 0; i < db->nstmts; i++)
		if (db->stmts[i] == sql || strcmp(db->stmts[i], sql) == 0)
			return (int)i;
	if (db->nstmts == DB_STMTS_MAX)
		return -2;
	snprintf(name, sizeof(name), "p%zu", db->nstmts);
	res = PQprepare(db->conn, name, sql, nparams, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		db_fail(db, res, class_r, error_r);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	db->stmts[db->nstmts] = xstrdup(sql);
	return (int)db->nstmts++;
}

PGresult *db_exec_prepared(struct db *db, const char *sql, int nparams, const char *const *params,
			   const int *lengths, const int *formats, enum db_err_class *class_r,
			   char **error_r)
{
	int idx = db_stmt_index(db, sql, nparams, class_r, error_r);
	char name[16];
	PGresult *res;
	ExecStatusType st;

	if (idx == -1)
		return NULL;
	if (idx == -2)
		return db_exec_bin(db, sql, nparams, params, lengths, formats, class_r, error_r);
	snprintf(name, sizeof(name), "p%d", idx);
	res = PQexecPrepared(db->conn, name, nparams, params, lengths, formats, 0);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	db->sqlstate[0] = '\0';
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (class_r)
			*class_r = DB_OK;
		return res;
	}
	db_fail(db, res, class_r, error_r);
	PQclear(res);
	return NULL;
}

/* db_pipeline_read - the results of n statements and the sync */
static int db_pipeline_read(struct db *db, struct db_stmt *st, size_t n, enum db_err_class *class_r,
			    char **error_r)
{
	PGresult *res, *extra;
	ExecStatusType es;
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		res = PQgetResult(db->conn);
		while (res != NULL && (extra = PQgetResult(db->conn)) != NULL)
			PQclear(extra); /* never more than one result per statement */
		es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) {
			st[i].res = res;
			continue;
		}
		if (rc == 0 && es != PGRES_PIPELINE_ABORTED)
			db_fail(db, res, class_r, error_r);
		if (rc == 0 && es == PGRES_PIPELINE_ABORTED)
			db_fail(db, NULL, class_r, error_r);
		rc = -1;
		PQclear(res);
	}
	/* the sync point */
	while ((res = PQgetResult(db->conn)) != NULL) {
		es = PQresultStatus(res);
		PQclear(res);
		if (es == PGRES_PIPELINE_SYNC)
			break;
	}
	return rc;
}

int db_pipeline(struct db *db, struct db_stmt *st, size_t n, enum db_err_class *class_r,
		char **error_r)
{
	char name[16];
	size_t i;
	int idx, rc;

	db->sqlstate[0] = '\0';
	for (i = 0; i < n; i++) {
		st[i].res = NULL;
		/* prepared before the pipeline starts (once per connection) */
		if (st[i].nparams > 0 && (st[i].idx = db_stmt_index(db, st[i].sql, st[i].nparams,
								    class_r, error_r)) == -1)
			return -1;
		if (st[i].nparams == 0)
			st[i].idx = -2;
	}
	if (PQenterPipelineMode(db->conn) != 1) {
		db_fail(db, NULL, class_r, error_r);
		return -1;
	}
	for (i = 0; i < n; i++) {
		idx = st[i].idx;
		snprintf(name, sizeof(name), "p%d", idx);
		if ((idx >= 0 ? PQsendQueryPrepared(db->conn, name, st[i].nparams, st[i].params,
						    st[i].lengths, st[i].formats, 0)
			      : PQsendQueryParams(db->conn, st[i].sql, st[i].nparams, NULL,
						  st[i].params, st[i].lengths, st[i].formats, 0)) !=
		    1)
			break;
	}
	if (i < n || PQpipelineSync(db->conn) != 1) {
		db_fail(db, NULL, class_r, error_r);
		PQexitPipelineMode(db->conn);
		return -1;
	}
	rc = db_pipeline_read(db, st, n, class_r, error_r);
	if (PQexitPipelineMode(db->conn) != 1 && rc == 0) {
		db_fail(db, NULL, class_r, error_r);
		rc = -1;
	}
	if (rc < 0)
		for (i = 0; i < n; i++) {
			PQclear(st[i].res);
			st[i].res = NULL;
		}
	else if (class_r)
		*class_r = DB_OK;
	return rc;
}

int db_check(struct db *db)
{
	struct pollfd p;
	int i;

	if (PQstatus(db->conn) != CONNECTION_OK)
		return -1;
	p.fd = PQsocket(db->conn);
	p.events = POLLIN;
	p.revents = 0;
	/* something unasked on an idle connection: a server shutdown's
	 * FATAL message, then the end of the connection (read until libpq
	 * has seen both, or nothing more is waiting) */
	for (i = 0; i < 8 && poll(&p, 1, 0) > 0; i++) {
		if (PQconsumeInput(db->conn) == 0 || PQstatus(db->conn) != CONNECTION_OK)
			return -1;
	}
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		db_rollback(db);
	return PQstatus(db->conn) == CONNECTION_OK ? 0 : -1;
}

PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
		  enum db_err_class *class_r, char **error_r)
{
	return db_exec_bin(db, sql, nparams, params, NULL, NULL, class_r, error_r);
}

int db_cmd(struct db *db, const char *sql, int nparams, const char *const *params,
	   enum db_err_class *class_r, char **error_r)
{
	PGresult *res = db_exec(db, sql, nparams, params, class_r, error_r);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

int db_begin(struct db *db, enum db_err_class *class_r, char **error_r)
{
	return db_cmd(db, "BEGIN", 0, NULL, class_r, error_r);
}

int db_commit(struct db *db, enum db_err_class *class_r, char **error_r)
{
	return db_cmd(db, "COMMIT", 0, NULL, class_r, error_r);
}

void db_rollback(struct db *db)
{
	PGresult *res;

	if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	res = PQexec(db->conn, "ROLLBACK");
	PQclear(res);
}
