/* blob_store.h - where the bytes of large attachments live: one interface,
 * two backends (PostgreSQL's blobs table, an S3-compatible object store).
 *
 * A blob is named by the SHA-256 of its content (content-addressed): put
 * is idempotent, and get verifies the digest of what it read back.
 *
 * CONTRACT: every function returns BLOB_OK (0) or a negative enum
 * blob_status with *error_r set (caller frees). BLOB_TEMP: try again later
 * (4.3.0: unreachable, slow, 5xx, database down); BLOB_CONFIG: an
 * operator's mistake (4.3.5: wrong keys, missing bucket, refused
 * credentials file), already logged loudly by the backend; BLOB_CORRUPT:
 * the content read back does not match its digest (nothing returned);
 * BLOB_NOTFOUND: no such blob (get, delete). exists returns 1 or 0 on
 * success. */
#ifndef POSTROOM_BLOB_STORE_H
#define POSTROOM_BLOB_STORE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "buf.h"
#include "crypto.h"

struct conf;
struct db;

enum blob_status {
	BLOB_OK = 0,
	BLOB_TEMP = -1,
	BLOB_CONFIG = -2,
	BLOB_CORRUPT = -3,
	BLOB_NOTFOUND = -4,
};

/* Where get puts the content: the fd (written from its current offset)
 * when fd >= 0, else appended to buf. On BLOB_CORRUPT the fd may hold
 * bytes already written: the caller discards them. */
struct blob_sink {
	int fd;
	struct buf *buf;
};

struct blob_store;

/* One stored blob, as a listing shows it. */
struct blob_object {
	unsigned char digest[SHA256_LEN];
	time_t mtime;   /* when it was last written (S3: LastModified) */
	long long size; /* bytes */
};

/* One page of a listing, in key order. Reuse it for the next page;
 * blob_list_free releases it. */
struct blob_list {
	struct blob_object *objs;
	size_t n, cap;
	size_t foreign; /* keys not of the blob_s3_key layout: left out, counted */
	char *next;     /* the token of the next page; NULL after the last */
};

/* A backend (OpenSMTPD's table backends, Dovecot's passdb drivers). */
struct blob_store_ops {
	const char *name; /* "postgresql", "s3" */
	/* put - store len bytes of fd from offset under digest (the caller
	 * computed it). postgresql keeps a row already there; s3 always
	 * uploads, which makes the object's LastModified now: blobs gc's grace
	 * period counts from it, so an object about to be referenced again is
	 * never collected */
	int (*put)(struct blob_store *bs, const unsigned char digest[SHA256_LEN], int fd,
		   off_t offset, size_t len, char **error_r);
	/* get - the content of digest into out, verified */
	int (*get)(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
		   const struct blob_sink *out, char **error_r);
	/* exists - 1 stored, 0 not stored, or a negative status */
	int (*exists)(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
		      char **error_r);
	/* del - remove digest (BLOB_NOTFOUND when it was not there: S3 cannot
	 * tell, and returns BLOB_OK) */
	int (*del)(struct blob_store *bs, const unsigned char digest[SHA256_LEN], char **error_r);
	void (*free)(struct blob_store *bs);
	/* list - one page of at most max objects (0: the backend's
	 * largest, S3's 1000) of what is stored, from the start (token NULL)
	 * or from page->next of the page before, into page (emptied first).
	 * NULL for a backend whose blobs live in the database (postgresql):
	 * there nothing can be stored without a row. */
	int (*list)(struct blob_store *bs, const char *token, int max, struct blob_list *page,
		    char **error_r);
	/* stat - when digest was last written (BLOB_NOTFOUND when it is not
	 * stored); NULL for the same backends as list */
	int (*stat)(struct blob_store *bs, const unsigned char digest[SHA256_LEN], time_t *mtime_r,
		    char **error_r);
};

struct blob_store {
	const struct blob_store_ops *ops;
};

/* The blobs section of postroom.conf, as read by blob_store_conf_read. */
struct blob_store_conf {
	const char *backend;          /* "postgresql" or "s3" */
	const char *endpoint;         /* http(s)://host[:port] (s3) */
	const char *bucket;           /* (s3) */
	const char *region;           /* SigV4 region (s3) */
	const char *credentials_file; /* aws_access_key_id / aws_secret_access_key (s3) */
	long timeout;                 /* seconds, one whole request (s3) */
	long long min_size;           /* smaller blobs stay in PostgreSQL */
};

/* blob_sink_write - len bytes to out (the backends' get): BLOB_OK, or
 * BLOB_TEMP with *error_r when the fd cannot be written */
int blob_sink_write(const struct blob_sink *out, const char *data, size_t len, char **error_r);

/* blob_store_conf_read - the blobs.* parameters of cfg (pointers owned by
 * cfg) */
void blob_store_conf_read(const struct conf *cfg, struct blob_store_conf *bc);

/* blob_store_open - the backend bc names. db is the connection the
 * postgresql backend uses (not owned; may be NULL for s3). The s3 backend
 * reads its credentials file here (BLOB_CONFIG when it is missing, open to
 * others, or incomplete). NULL with *status_r and *error_r on failure. */
struct blob_store *blob_store_open(const struct blob_store_conf *bc, struct db *db, int *status_r,
				   char **error_r);
void blob_store_close(struct blob_store **bs);

/* blob_store_pg_new, blob_store_s3_new - the backends themselves */
struct blob_store *blob_store_pg_new(struct db *db);
struct blob_store *blob_store_s3_new(const struct blob_store_conf *bc, int *status_r,
				     char **error_r);

/* blob_s3_key - the object key of digest: "ab/cd/abcd...<64 hex>" (two
 * levels of two hex digits, then the whole digest: 70 characters), into
 * out (BLOB_S3_KEY_LEN bytes, with the NUL) */
#define BLOB_S3_KEY_LEN 71
void blob_s3_key(const unsigned char digest[SHA256_LEN], char out[BLOB_S3_KEY_LEN]);

/* blob_s3_key_digest - the digest of an object key of the blob_s3_key
 * layout (lowercase hex, prefixes matching): 0, or -1 for any other key */
int blob_s3_key_digest(const char *key, unsigned char digest[SHA256_LEN]);

/* blob_s3_list_parse - a ListObjectsV2 answer (len bytes of XML) into
 * page, appended: every <Contents> of the blob_s3_key layout, the others
 * counted in page->foreign; page->next set from NextContinuationToken when
 * IsTruncated is true. 0, or -1 with *error_r on malformed XML, a
 * malformed LastModified or Size, or a truncated answer without a token. */
int blob_s3_list_parse(const char *xml, size_t len, struct blob_list *page, char **error_r);

/* blob_s3_time - an ISO 8601 UTC time as S3 writes it
 * ("2026-12-05T17:53:55.000Z", fraction optional): 0 with *t_r, or -1 */
int blob_s3_time(const char *s, time_t *t_r);

/* blob_list_free - release the objects and the token of page (reusable) */
void blob_list_free(struct blob_list *page);

/* blob_s3_credentials_check - refuse a credentials file readable or
 * writable by others than its owner (root or this process's user) and
 * the root or postroom group, or owned by someone else. 0 or -1 with
 * *error_r. */
int blob_s3_credentials_check(const char *path, int fd, char **error_r);

/* blob_status_dsn - the enhanced status code a delivery defers with:
 * "4.3.5" for BLOB_CONFIG, "4.3.0" for the other errors */
const char *blob_status_dsn(int status);
/* blob_status_name - "temporary", "configuration", ... for logs */
const char *blob_status_name(int status);

#endif
