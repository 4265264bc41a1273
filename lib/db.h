/* db.h - PostgreSQL access: parameterised statements only. */
#ifndef POSTROOM_DB_H
#define POSTROOM_DB_H

#include <libpq-fe.h>

/* How a failed statement should be treated by the caller. */
enum db_err_class {
	DB_OK = 0,
	DB_TEMPORARY, /* connection lost, serialization, deadlock, shutdown: retry/defer */
	DB_PERMANENT  /* constraint violation, bad data, bug: do not retry */
};

struct db;

/* db_connect - connect with a libpq conninfo (NULL or "" = PG* environment).
 * Returns NULL with *error_r set (caller frees) on failure. */
struct db *db_connect(const char *conninfo, int connect_timeout, char **error_r);
void db_close(struct db **db);
PGconn *db_conn(struct db *db);

/* db_exec - run sql with text parameters (NULL = SQL NULL). Returns the
 * result on success (caller PQclear()s it); NULL on failure, with *error_r
 * set and *class_r telling temporary from permanent. */
PGresult *db_exec(struct db *db, const char *sql, int nparams, const char *const *params,
		  enum db_err_class *class_r, char **error_r);
/* db_exec_bin - as db_exec, with explicit lengths and formats (1 = binary)
 * for bytea parameters; results in text format. */
PGresult *db_exec_bin(struct db *db, const char *sql, int nparams, const char *const *params,
		      const int *lengths, const int *formats, enum db_err_class *class_r,
		      char **error_r);
/* db_cmd - as db_exec, for statements whose result is not needed:
 * 0 ok, -1 error. */
int db_cmd(struct db *db, const char *sql, int nparams, const char *const *params,
	   enum db_err_class *class_r, char **error_r);

/* db_exec_prepared - as db_exec_bin, but sql is prepared on this
 * connection the first time it is run (PQprepare, remembered in struct
 * db) and executed by name after that: one parse per connection. */
PGresult *db_exec_prepared(struct db *db, const char *sql, int nparams, const char *const *params,
			   const int *lengths, const int *formats, enum db_err_class *class_r,
			   char **error_r);

/* One statement of a pipeline. */
struct db_stmt {
	const char *sql;
	int nparams;
	const char *const *params;
	const int *lengths, *formats; /* NULL: all text */
	PGresult *res;                /* out: the result (caller PQclears) */
	int idx;                      /* internal */
};

/* db_pipeline - send n statements at once and read their results: one
 * round trip (libpq pipeline mode). Statements with parameters are
 * prepared (once per connection, as db_exec_prepared). 0 with every
 * st[i].res set; -1 with *error_r (caller frees) and *class_r of the
 * first failure, no result kept (later statements were not run). */
int db_pipeline(struct db *db, struct db_stmt *st, size_t n, enum db_err_class *class_r,
		char **error_r);

/* db_check - is an idle pooled connection still usable? Reads what the
 * server sent unasked (a shutdown notice), rolls back a transaction left
 * open. 0 usable, -1 broken (close it and connect again). */
int db_check(struct db *db);

int db_begin(struct db *db, enum db_err_class *class_r, char **error_r);
int db_commit(struct db *db, enum db_err_class *class_r, char **error_r);
/* db_rollback - best effort; never fails the caller. */
void db_rollback(struct db *db);

/* db_classify - classify a SQLSTATE (NULL when none: connection trouble). */
enum db_err_class db_classify_sqlstate(const char *sqlstate);
/* db_sqlstate_of - the SQLSTATE of the last error on db, or NULL */
const char *db_last_sqlstate(struct db *db);

#endif
