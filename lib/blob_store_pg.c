/*
 * NAME
 *	blob_store_pg - the blob backend of PostgreSQL's blobs table
 * DESCRIPTION
 *	Today's storage (sql/001_init.sql: blobs (sha256, size_bytes,
 *	content)) behind the struct blob_store_ops interface, with the
 *	statements lib/store_mail.c runs: a lookup by digest, then an INSERT
 *	... ON CONFLICT (sha256) DO NOTHING. get reads the content in binary
 *	and verifies its SHA-256. Runs on the caller's connection, inside
 *	whatever transaction the caller has open. Reads no configuration.
 * NEVER
 *	builds SQL from data; opens or commits a transaction itself.
 */
#include "blob_store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "xalloc.h"

struct blob_store_pg {
	struct blob_store bs; /* first: the generic part */
	struct db *db;
};

/* blob_pg_status - the blob status of a failed statement */
static int blob_pg_status(enum db_err_class cls)
{
	return cls == DB_TEMPORARY ? BLOB_TEMP : BLOB_CONFIG;
}

/* blob_pg_exec - one statement with the digest as $1 (binary), more
 * text parameters after it; binary results. NULL with *status_r set. */
static PGresult *blob_pg_exec(struct blob_store_pg *p, const char *sql,
			      const unsigned char digest[SHA256_LEN], int nparams,
			      const char *const *params, const int *lens, int *status_r,
			      char **error_r)
{
	const char *vals[3] = { (const char *)digest, NULL, NULL };
	int lengths[3] = { SHA256_LEN, 0, 0 }, formats[3] = { 1, 0, 1 };
	PGconn *conn = db_conn(p->db);
	PGresult *res;
	int i;

	for (i = 1; i < nparams; i++) {
		vals[i] = params[i - 1];
		lengths[i] = lens[i - 1];
	}
	res = PQexecParams(conn, sql, nparams, NULL, vals, lengths, formats, 1);
	if (res != NULL &&
	    (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK))
		return res;
	if (res == NULL || PQstatus(conn) != CONNECTION_OK)
		*status_r = BLOB_TEMP;
	else
		*status_r = blob_pg_status(
			db_classify_sqlstate(PQresultErrorField(res, PG_DIAG_SQLSTATE)));
	*error_r = xasprintf("blobs table: %s", PQerrorMessage(conn));
	PQclear(res);
	return NULL;
}

/* blob_pg_exists - 1 when the table has digest */
static int blob_pg_exists(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
			  char **error_r)
{
	struct blob_store_pg *p = (struct blob_store_pg *)bs;
	PGresult *res;
	int status, found;

	res = blob_pg_exec(p, "SELECT 1 FROM blobs WHERE sha256 = $1", digest, 1, NULL, NULL,
			   &status, error_r);
	if (res == NULL)
		return status;
	found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

/* blob_pg_read - len bytes of fd at offset into a new buffer */
static char *blob_pg_read(int fd, off_t offset, size_t len, char **error_r)
{
	char *data = xmalloc(len ? len : 1);
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, data + done, len - done, offset + (off_t)done);

		if (n <= 0) {
			*error_r = xasprintf("reading the blob's bytes: %s",
					     n < 0 ? strerror(errno) : "short file");
			free(data);
			return NULL;
		}
		done += (size_t)n;
	}
	return data;
}

/* blob_pg_put - INSERT the content unless the digest is there */
static int blob_pg_put(struct blob_store *bs, const unsigned char digest[SHA256_LEN], int fd,
		       off_t offset, size_t len, char **error_r)
{
	struct blob_store_pg *p = (struct blob_store_pg *)bs;
	const char *params[2];
	int lens[2], status = BLOB_OK;
	char *data, size[32];
	PGresult *res;

	if ((status = blob_pg_exists(bs, digest, error_r)) != 0)
		return status > 0 ? BLOB_OK : status;
	if ((data = blob_pg_read(fd, offset, len, error_r)) == NULL)
		return BLOB_TEMP;
	snprintf(size, sizeof(size), "%zu", len);
	params[0] = size;
	params[1] = data;
	lens[0] = 0;
	lens[1] = (int)len;
	res = blob_pg_exec(p,
			   "INSERT INTO blobs (sha256, size_bytes, content) VALUES ($1,"
			   " $2::bigint, $3) ON CONFLICT (sha256) DO NOTHING",
			   digest, 3, params, lens, &status, error_r);
	free(data);
	PQclear(res);
	return res == NULL ? status : BLOB_OK;
}

/* blob_pg_get - the content of digest, verified */
static int blob_pg_get(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
		       const struct blob_sink *out, char **error_r)
{
	struct blob_store_pg *p = (struct blob_store_pg *)bs;
	unsigned char got[SHA256_LEN];
	PGresult *res;
	int status;

	res = blob_pg_exec(p, "SELECT content FROM blobs WHERE sha256 = $1", digest, 1, NULL, NULL,
			   &status, error_r);
	if (res == NULL)
		return status;
	if (PQntuples(res) == 0) {
		PQclear(res);
		*error_r = xstrdup("no such blob");
		return BLOB_NOTFOUND;
	}
	crypto_sha256(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), got);
	if (!crypto_equal(got, digest, SHA256_LEN)) {
		PQclear(res);
		*error_r = xstrdup("blob content does not match its SHA-256");
		return BLOB_CORRUPT;
	}
	status = blob_sink_write(out, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
				 error_r);
	PQclear(res);
	return status;
}

/* blob_pg_del - DELETE the row (fails while an attachment refers to it) */
static int blob_pg_del(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
		       char **error_r)
{
	struct blob_store_pg *p = (struct blob_store_pg *)bs;
	PGresult *res;
	int status, n;

	res = blob_pg_exec(p, "DELETE FROM blobs WHERE sha256 = $1", digest, 1, NULL, NULL, &status,
			   error_r);
	if (res == NULL)
		return status;
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	if (n == 0) {
		*error_r = xstrdup("no such blob");
		return BLOB_NOTFOUND;
	}
	return BLOB_OK;
}

static void blob_pg_free(struct blob_store *bs) { free(bs); }

/* no list, no stat: a blob here cannot exist without its row */
static const struct blob_store_ops blob_store_pg_ops = {
	.name = "postgresql",
	.put = blob_pg_put,
	.get = blob_pg_get,
	.exists = blob_pg_exists,
	.del = blob_pg_del,
	.free = blob_pg_free,
};

struct blob_store *blob_store_pg_new(struct db *db)
{
	struct blob_store_pg *p = xcalloc(1, sizeof(*p));

	p->bs.ops = &blob_store_pg_ops;
	p->db = db;
	return &p->bs;
}
