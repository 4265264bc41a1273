/*
 * NAME
 *	ctl_blobs - postroomctl blobs gc | blobs migrate: the objects of
 *	the object store
 * SYNOPSIS
 *	postroomctl blobs gc [--grace DAYS] [--dry-run] [--page N]
 *	postroomctl blobs migrate --to s3|postgresql [--batch N]
 * DESCRIPTION
 *	gc lists the bucket (ListObjectsV2, page by page) and deletes an
 *	object only when, under the digest's attachment stripe lock (the
 *	store's, postroom_att_lock_key), no blobs row says the object holds
 *	its bytes (location 's3'), its LastModified (asked again under the
 *	lock) is older than the grace, and its last reference did not go
 *	within the grace (blob_objects_freed). The grace is what lets a
 *	database restored from a backup find its objects, and what keeps an
 *	upload whose transaction has not committed yet. Afterwards it
 *	removes the blob_objects_freed rows of objects that are gone.
 *	migrate moves blobs between the blobs table and the bucket, one
 *	blob at a time, each in its own short transaction after its bytes
 *	were read back and verified (SHA-256) at the destination: a run
 *	killed at any point loses nothing and the next run continues. To s3
 *	it moves the blobs of at least blobs.min_size bytes (as the store
 *	does), and flips a row only under the stripe lock with the object
 *	seen there; to postgresql it records each object in
 *	blob_objects_freed for gc.
 *	Reads blobs.endpoint, blobs.bucket, blobs.region,
 *	blobs.credentials_file, blobs.timeout (whatever blobs.backend says:
 *	after a migration to postgresql the objects are still to collect),
 *	blobs.min_size and blobs.gc_grace.
 * NEVER
 *	deletes an object a row names or one younger than the grace; flips
 *	a row before the bytes are verified where it points; touches a key
 *	of the bucket that is not of postroom's layout; keeps a transaction
 *	open across more than one object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blob_store.h"
#include "crypto.h"
#include "ctl.h"
#include "xalloc.h"

#define CTL_BLOBS_DAY 86400

/* a digest as the text of a bytea parameter: "\x" and 64 hex digits */
#define CTL_BYTEA_HEX (2 + 2 * SHA256_LEN + 1)

struct ctl_gc {
	struct ctl *ctl;
	struct blob_store *s3;
	long grace; /* days */
	int dry_run;
	int page;      /* objects per listing request (0: 1000) */
	time_t cutoff; /* objects last written before it are old enough */
	char grace_text[24];
	unsigned char *seen; /* every listed digest, for the freed marks */
	size_t nseen, capseen;
	long long listed, foreign, deleted, deleted_bytes, referenced, young, freed_recent, gone,
		marks_removed, errors;
};

/* ctl_blobs_hex - digest as a bytea parameter */
static void ctl_blobs_hex(const unsigned char d[SHA256_LEN], char out[CTL_BYTEA_HEX])
{
	out[0] = '\\';
	out[1] = 'x';
	crypto_hex(d, SHA256_LEN, out + 2);
}

/* ctl_blobs_unhex - 64 hex digits (as encode(sha256, 'hex') writes
 * them) to a digest: 0, or -1 */
static int ctl_blobs_unhex(const char *hex, unsigned char d[SHA256_LEN])
{
	size_t i;

	if (strlen(hex) != 2 * SHA256_LEN)
		return -1;
	for (i = 0; i < 2 * SHA256_LEN; i++) {
		char c = hex[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -1;
		if (i % 2 == 0)
			d[i / 2] = (unsigned char)(v << 4);
		else
			d[i / 2] |= (unsigned char)v;
	}
	return 0;
}

/* ctl_blobs_status - the exit status of a blob store error */
static int ctl_blobs_status(int status)
{
	return status == BLOB_CONFIG ? CTL_CONFIG
	       : status == BLOB_TEMP ? CTL_UNAVAILABLE
				     : CTL_REFUSED;
}

/* ctl_blobs_s3 - the object store of the blobs section, whatever
 * blobs.backend says; NULL with the exit status in *rc_r */
static struct blob_store *ctl_blobs_s3(struct ctl *ctl, const char *cmd, int *rc_r)
{
	struct blob_store_conf bc;
	struct blob_store *s3;
	char *err = NULL;
	int status;

	blob_store_conf_read(ctl->conf, &bc);
	if (bc.endpoint == NULL || bc.bucket == NULL || bc.credentials_file == NULL) {
		*rc_r = ctl_fail(CTL_CONFIG,
				 "blobs %s: the object store needs blobs.endpoint, blobs.bucket "
				 "and blobs.credentials_file",
				 cmd);
		return NULL;
	}
	if ((s3 = blob_store_s3_new(&bc, &status, &err)) == NULL) {
		*rc_r = ctl_fail(ctl_blobs_status(status), "blobs %s: %s", cmd, err);
		free(err);
	}
	return s3;
}

/* ctl_blobs_none - 1 when the site has never been told of an object
 * store: backend postgresql and no endpoint */
static int ctl_blobs_none(struct ctl *ctl)
{
	const char *backend = conf_str(ctl->conf, "blobs.backend");

	return (backend == NULL || strcmp(backend, "postgresql") == 0) &&
	       conf_str(ctl->conf, "blobs.endpoint") == NULL;
}

/* ctl_blobs_exec - one statement with text parameters; exits on a
 * database error (ctl_query) */
static PGresult *ctl_blobs_exec(struct ctl *ctl, const char *sql, int n, const char *const *p)
{
	return ctl_query(ctl, sql, n, p);
}

static void ctl_blobs_cmd(struct ctl *ctl, const char *sql, int n, const char *const *p)
{
	PQclear(ctl_query(ctl, sql, n, p));
}

/* ctl_blobs_lock - BEGIN, then the digest's attachment stripe lock (the
 * store's), held to the end of the transaction */
static void ctl_blobs_lock(struct ctl *ctl, const char *hex)
{
	const char *p[1] = { hex };

	ctl_blobs_cmd(ctl, "BEGIN", 0, NULL);
	ctl_blobs_cmd(ctl, "SELECT pg_advisory_xact_lock(postroom_att_lock_key($1::bytea))", 1, p);
}

/* ctl_mb - bytes as megabytes for the progress lines */
static double ctl_mb(long long bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* ---- gc ------------------------------------------------------------- */

/* ctl_gc_seen - remember a listed digest */
static void ctl_gc_seen(struct ctl_gc *g, const unsigned char d[SHA256_LEN])
{
	if (g->nseen == g->capseen) {
		g->capseen = g->capseen ? 2 * g->capseen : 4096;
		g->seen = xrealloc(g->seen, g->capseen * SHA256_LEN);
	}
	memcpy(g->seen + g->nseen++ * SHA256_LEN, d, SHA256_LEN);
}

/* ctl_gc_verdict - under the lock: 'r' a row names the object, 'f' its
 * last reference went within the grace, 'c' collectable */
static char ctl_gc_verdict(struct ctl_gc *g, const char *hex)
{
	const char *p[2] = { hex, g->grace_text };
	PGresult *res;
	char v;

	res = ctl_blobs_exec(
		g->ctl,
		"SELECT CASE WHEN EXISTS (SELECT 1 FROM blobs WHERE sha256 = $1::bytea"
		" AND location = 's3') THEN 'r'"
		" WHEN EXISTS (SELECT 1 FROM blob_objects_freed WHERE sha256 = $1::bytea"
		" AND freed_at >= now() - make_interval(days => $2::integer)) THEN 'f'"
		" ELSE 'c' END",
		2, p);
	v = PQgetvalue(res, 0, 0)[0];
	PQclear(res);
	return v;
}

/* ctl_gc_delete - under the lock: LastModified again (an upload may have
 * renewed it since the listing), then the DELETE and the freed mark */
static void ctl_gc_delete(struct ctl_gc *g, const struct blob_object *o, const char *hex)
{
	const char *p[1] = { hex };
	char *err = NULL;
	time_t mtime;
	int st;

	st = g->s3->ops->stat(g->s3, o->digest, &mtime, &err);
	if (st == BLOB_NOTFOUND) {
		g->gone++;
	} else if (st != BLOB_OK) {
		fprintf(stderr, "postroomctl: blobs gc: %s: %s\n", hex + 2, err);
		g->errors++;
	} else if (mtime >= g->cutoff) {
		g->young++;
	} else if (g->dry_run) {
		printf("would delete %s (%lld bytes)\n", hex + 2, o->size);
		g->deleted++;
		g->deleted_bytes += o->size;
	} else if ((st = g->s3->ops->del(g->s3, o->digest, &err)) != BLOB_OK) {
		fprintf(stderr, "postroomctl: blobs gc: deleting %s: %s\n", hex + 2, err);
		g->errors++;
	} else {
		ctl_blobs_cmd(g->ctl, "DELETE FROM blob_objects_freed WHERE sha256 = $1::bytea", 1,
			      p);
		g->deleted++;
		g->deleted_bytes += o->size;
	}
	free(err);
}

/* ctl_gc_object - one listed object */
static void ctl_gc_object(struct ctl_gc *g, const struct blob_object *o)
{
	char hex[CTL_BYTEA_HEX];
	char v;

	g->listed++;
	ctl_gc_seen(g, o->digest);
	if (o->mtime >= g->cutoff) {
		g->young++;
		return;
	}
	ctl_blobs_hex(o->digest, hex);
	ctl_blobs_lock(g->ctl, hex);
	v = ctl_gc_verdict(g, hex);
	if (v == 'r')
		g->referenced++;
	else if (v == 'f')
		g->freed_recent++;
	else
		ctl_gc_delete(g, o, hex);
	ctl_blobs_cmd(g->ctl, "COMMIT", 0, NULL);
}

/* ctl_gc_cmp - digests in memcmp order */
static int ctl_gc_cmp(const void *a, const void *b) { return memcmp(a, b, SHA256_LEN); }

/* ctl_gc_marks - drop the freed marks (older than the listing) of
 * objects the complete listing did not show, and of digests a row names
 * again (the next free marks it anew) */
static void ctl_gc_marks(struct ctl_gc *g, const char *started)
{
	const char *p[2] = { started, NULL };
	struct buf arr = BUF_INIT;
	char hex[CTL_BYTEA_HEX];
	PGresult *res;
	int i, n = 0;

	qsort(g->seen, g->nseen, SHA256_LEN, ctl_gc_cmp);
	res = ctl_blobs_exec(g->ctl,
			     "SELECT encode(sha256, 'hex') FROM blob_objects_freed"
			     " WHERE freed_at < $1::timestamptz",
			     1, p);
	buf_append_str(&arr, "{");
	for (i = 0; i < PQntuples(res); i++) {
		unsigned char d[SHA256_LEN];

		if (ctl_blobs_unhex(PQgetvalue(res, i, 0), d) < 0 ||
		    bsearch(d, g->seen, g->nseen, SHA256_LEN, ctl_gc_cmp) != NULL)
			continue;
		ctl_blobs_hex(d, hex);
		buf_printf(&arr, "%s\"\\%s\"", n++ ? "," : "", hex);
	}
	buf_append_str(&arr, "}");
	PQclear(res);
	g->marks_removed = n;
	if (n > 0 && !g->dry_run) {
		p[1] = arr.data;
		res = ctl_blobs_exec(
			g->ctl,
			"DELETE FROM blob_objects_freed WHERE sha256 = ANY ($2::bytea[])"
			" AND freed_at < $1::timestamptz",
			2, p);
		g->marks_removed = atoll(PQcmdTuples(res));
		PQclear(res);
	}
	buf_free(&arr);
	res = ctl_blobs_exec(
		g->ctl,
		g->dry_run ? "SELECT count(*) FROM blob_objects_freed f"
			     " WHERE f.freed_at < $1::timestamptz AND EXISTS (SELECT 1"
			     " FROM blobs b WHERE b.sha256 = f.sha256 AND b.location = 's3')"
			   : "WITH d AS (DELETE FROM blob_objects_freed f"
			     " WHERE f.freed_at < $1::timestamptz AND EXISTS (SELECT 1"
			     " FROM blobs b WHERE b.sha256 = f.sha256 AND b.location = 's3')"
			     " RETURNING 1) SELECT count(*) FROM d",
		1, p);
	g->marks_removed += atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* ctl_gc_summary - the last line (or JSON object) of a gc run */
static void ctl_gc_summary(struct ctl_gc *g)
{
	const char *verb = g->dry_run ? "would delete" : "deleted";

	if (g->ctl->json) {
		ctl_print_json(json_pack(
			"{s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "dry_run",
			g->dry_run, "grace_days", (int)g->grace, "listed", (json_int_t)g->listed,
			"foreign", (json_int_t)g->foreign, "deleted", (json_int_t)g->deleted,
			"deleted_bytes", (json_int_t)g->deleted_bytes, "referenced",
			(json_int_t)g->referenced, "younger", (json_int_t)g->young,
			"freed_recently", (json_int_t)g->freed_recent, "gone", (json_int_t)g->gone,
			"marks_removed", (json_int_t)g->marks_removed, "errors",
			(json_int_t)g->errors));
		return;
	}
	printf("blobs gc: %lld object%s listed (%lld not postroom's, left alone); %s %lld "
	       "(%.1f MB); kept %lld referenced, %lld younger than %ld day%s, %lld freed within "
	       "it; %lld stale freed mark%s dropped; %lld error%s\n",
	       g->listed, g->listed == 1 ? "" : "s", g->foreign, verb, g->deleted,
	       ctl_mb(g->deleted_bytes), g->referenced, g->young, g->grace,
	       g->grace == 1 ? "" : "s", g->freed_recent, g->marks_removed,
	       g->marks_removed == 1 ? "" : "s", g->errors, g->errors == 1 ? "" : "s");
}

/* ctl_gc_run - list page by page; the exit status */
static int ctl_gc_run(struct ctl_gc *g)
{
	struct blob_list page;
	char *err = NULL, *token = NULL, *started;
	PGresult *res;
	int st, pages = 0;
	size_t i;

	memset(&page, 0, sizeof(page));
	res = ctl_blobs_exec(g->ctl, "SELECT now()::text", 0, NULL);
	started = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	g->cutoff = time(NULL) - (time_t)g->grace * CTL_BLOBS_DAY;
	do {
		if ((st = g->s3->ops->list(g->s3, token, g->page, &page, &err)) != BLOB_OK) {
			ctl_fail(ctl_blobs_status(st), "blobs gc: listing the bucket: %s", err);
			free(err);
			break;
		}
		g->foreign += (long long)page.foreign;
		for (i = 0; i < page.n; i++)
			ctl_gc_object(g, &page.objs[i]);
		free(token);
		token = page.next ? xstrdup(page.next) : NULL;
		if (++pages % 10 == 0)
			fprintf(stderr, "blobs gc: %lld objects listed, %lld %s\n", g->listed,
				g->deleted, g->dry_run ? "to delete" : "deleted");
	} while (token);
	free(token);
	blob_list_free(&page);
	if (st == BLOB_OK)
		ctl_gc_marks(g, started);
	free(started);
	ctl_gc_summary(g);
	if (st != BLOB_OK)
		return ctl_blobs_status(st);
	return g->errors ? CTL_REFUSED : CTL_OK;
}

/* ctl_blobs_gc - blobs gc [--grace DAYS] [--dry-run] */
static int ctl_blobs_gc(struct ctl *ctl, int argc, char **argv)
{
	char *grace = NULL, *pg = NULL, *end = NULL,
	     **rest = xcalloc((size_t)argc + 1, sizeof(char *));
	struct ctl_opt opts[] = { { "--grace", &grace, 0 },
				  { "--page", &pg, 0 },
				  { NULL, NULL, 0 } };
	struct ctl_gc g;
	int i, n = 0, rc;

	memset(&g, 0, sizeof(g));
	g.ctl = ctl;
	g.grace = (long)conf_int(ctl->conf, "blobs.gc_grace");
	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0)
			g.dry_run = 1;
		else
			rest[n++] = argv[i];
	}
	if (ctl_parse_args(n, rest, opts, NULL, 0, 0) < 0 ||
	    (grace && ((g.grace = strtol(grace, &end, 10)) < 0 || *end || end == grace ||
		       g.grace > 36500)) ||
	    (pg &&
	     ((g.page = (int)strtol(pg, &end, 10)) < 1 || *end || end == pg || g.page > 1000))) {
		rc = ctl_usage("blobs gc [--grace DAYS] [--dry-run] [--page N]");
		goto out;
	}
	snprintf(g.grace_text, sizeof(g.grace_text), "%ld", g.grace);
	if (ctl_blobs_none(ctl)) { /* a site without an object store: nothing to collect */
		printf("blobs gc: no object store configured (blobs.backend postgresql, no "
		       "blobs.endpoint): nothing to collect\n");
		rc = CTL_OK;
		goto out;
	}
	if ((g.s3 = ctl_blobs_s3(ctl, "gc", &rc)) == NULL)
		goto out;
	rc = ctl_gc_run(&g);
out:
	blob_store_close(&g.s3);
	free(g.seen);
	free(grace);
	free(pg);
	free(rest);
	return rc;
}

/* ---- migrate -------------------------------------------------------- */

struct ctl_mig {
	struct ctl *ctl;
	struct blob_store *s3, *pg;
	int to_s3;
	long batch;
	long long min_size;
	int tmpfd, nullfd;
	long long todo, todo_bytes, moved, moved_bytes, skipped, errors;
};

/* ctl_mig_fail - a blob that cannot move now: report it; BLOB_TEMP and
 * BLOB_CONFIG end the run (returned), others are counted */
static int ctl_mig_fail(struct ctl_mig *m, const char *hex, const char *what, int st, char *err)
{
	fprintf(stderr, "postroomctl: blobs migrate: %s %s: %s (%s)\n", what, hex + 2, err,
		blob_status_name(st));
	free(err);
	if (st == BLOB_TEMP || st == BLOB_CONFIG)
		return st;
	m->errors++;
	return BLOB_OK;
}

/* ctl_mig_flip_s3 - under the lock, with the object seen there: the row
 * points to the object (1 flipped, 0 not: the row changed meanwhile) */
static int ctl_mig_flip_s3(struct ctl_mig *m, const unsigned char d[SHA256_LEN], const char *hex,
			   int *st_r)
{
	const char *p[1] = { hex };
	char *err = NULL;
	PGresult *res;
	int n, st;

	ctl_blobs_lock(m->ctl, hex);
	if ((st = m->s3->ops->exists(m->s3, d, &err)) != 1) {
		ctl_blobs_cmd(m->ctl, "ROLLBACK", 0, NULL);
		*st_r = ctl_mig_fail(m, hex, "object gone before the switch",
				     st < 0 ? st : BLOB_NOTFOUND,
				     err ? err : xstrdup("not in the bucket"));
		return 0;
	}
	res = ctl_blobs_exec(m->ctl,
			     "UPDATE blobs SET content = NULL, location = 's3'"
			     " WHERE sha256 = $1::bytea AND location = 'postgresql'",
			     1, p);
	n = atoi(PQcmdTuples(res));
	PQclear(res);
	ctl_blobs_cmd(m->ctl, "COMMIT", 0, NULL);
	return n;
}

/* ctl_mig_to_s3 - one blob: the table's bytes (verified) to a temporary
 * file, uploaded, read back and verified, then the row flipped */
static int ctl_mig_to_s3(struct ctl_mig *m, const unsigned char d[SHA256_LEN], long long size)
{
	struct blob_sink tmp = { m->tmpfd, NULL }, null = { m->nullfd, NULL };
	char hex[CTL_BYTEA_HEX], *err = NULL;
	int st = BLOB_OK;

	ctl_blobs_hex(d, hex);
	if (ftruncate(m->tmpfd, 0) < 0 || lseek(m->tmpfd, 0, SEEK_SET) < 0)
		return ctl_mig_fail(m, hex, "temporary file", BLOB_TEMP, xstrdup(strerror(errno)));
	if ((st = m->pg->ops->get(m->pg, d, &tmp, &err)) == BLOB_NOTFOUND) {
		free(err);
		m->skipped++; /* expunged meanwhile */
		return BLOB_OK;
	}
	if (st != BLOB_OK)
		return ctl_mig_fail(m, hex, "reading from the blobs table", st, err);
	if ((st = m->s3->ops->put(m->s3, d, m->tmpfd, 0, (size_t)size, &err)) != BLOB_OK)
		return ctl_mig_fail(m, hex, "uploading", st, err);
	if ((st = m->s3->ops->get(m->s3, d, &null, &err)) != BLOB_OK)
		return ctl_mig_fail(m, hex, "reading back from the object store", st, err);
	st = BLOB_OK;
	if (ctl_mig_flip_s3(m, d, hex, &st) == 1) {
		m->moved++;
		m->moved_bytes += size;
	} else if (st == BLOB_OK) {
		m->skipped++;
	}
	return st;
}

/* ctl_mig_to_pg - one blob: the object (verified) into the row, its
 * SHA-256 checked by PostgreSQL in the same statement, the object marked
 * for gc */
static int ctl_mig_to_pg(struct ctl_mig *m, const unsigned char d[SHA256_LEN], long long size)
{
	struct buf content = BUF_INIT;
	struct blob_sink sink = { -1, &content };
	char hex[CTL_BYTEA_HEX], *err = NULL;
	const char *p[2];
	int lens[2], fmts[2] = { 0, 1 }, st, ok;
	enum db_err_class cls;
	PGresult *res;

	ctl_blobs_hex(d, hex);
	if ((st = m->s3->ops->get(m->s3, d, &sink, &err)) != BLOB_OK) {
		buf_free(&content);
		return ctl_mig_fail(m, hex, "reading from the object store", st, err);
	}
	p[0] = hex;
	p[1] = content.data ? content.data : "";
	lens[0] = 0;
	lens[1] = (int)content.len;
	ctl_blobs_cmd(m->ctl, "BEGIN", 0, NULL);
	res = db_exec_bin(ctl_db(m->ctl),
			  "UPDATE blobs SET content = $2, location = 'postgresql'"
			  " WHERE sha256 = $1::bytea AND location = 's3'"
			  " RETURNING sha256(content) = sha256",
			  2, p, lens, fmts, &cls, &err);
	buf_free(&content);
	if (res == NULL)
		exit(ctl_fail(cls == DB_TEMPORARY ? CTL_UNAVAILABLE : CTL_SOFTWARE,
			      "blobs migrate: %s", err));
	ok = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	if (PQntuples(res) == 0) {
		m->skipped++; /* expunged or moved meanwhile */
	} else if (!ok) {
		ctl_blobs_cmd(m->ctl, "ROLLBACK", 0, NULL);
		PQclear(res);
		return ctl_mig_fail(m, hex, "copying into the blobs table", BLOB_CORRUPT,
				    xstrdup("the stored bytes do not match their SHA-256"));
	} else {
		p[1] = NULL;
		ctl_blobs_cmd(m->ctl,
			      "INSERT INTO blob_objects_freed (sha256) VALUES ($1::bytea)"
			      " ON CONFLICT (sha256) DO UPDATE SET freed_at = now()",
			      1, p);
		m->moved++;
		m->moved_bytes += size;
	}
	PQclear(res);
	ctl_blobs_cmd(m->ctl, "COMMIT", 0, NULL);
	return BLOB_OK;
}

/* ctl_mig_batch - the next batch after *last (keyset: a blob that
 * failed is not tried again in this run); rows, or -1 at a fatal error */
static int ctl_mig_batch(struct ctl_mig *m, char last[CTL_BYTEA_HEX], int *st_r)
{
	char batch[24], min[32];
	const char *p[4] = { m->to_s3 ? "postgresql" : "s3", last, batch, min };
	unsigned char d[SHA256_LEN];
	PGresult *res;
	int i, n;

	snprintf(batch, sizeof(batch), "%ld", m->batch);
	snprintf(min, sizeof(min), "%lld", m->to_s3 ? m->min_size : 0);
	res = ctl_blobs_exec(
		m->ctl,
		"SELECT encode(sha256, 'hex'), size_bytes FROM blobs"
		" WHERE location = $1 AND sha256 > $2::bytea AND size_bytes >= $4::bigint"
		" ORDER BY sha256 LIMIT $3::integer",
		4, p);
	n = PQntuples(res);
	for (i = 0; i < n && *st_r == BLOB_OK; i++) {
		long long size = atoll(PQgetvalue(res, i, 1));

		if (ctl_blobs_unhex(PQgetvalue(res, i, 0), d) < 0)
			continue;
		ctl_blobs_hex(d, last);
		*st_r = m->to_s3 ? ctl_mig_to_s3(m, d, size) : ctl_mig_to_pg(m, d, size);
	}
	PQclear(res);
	return n;
}

/* ctl_mig_count - what there is to move */
static void ctl_mig_count(struct ctl_mig *m)
{
	char min[32];
	const char *p[2] = { m->to_s3 ? "postgresql" : "s3", min };
	PGresult *res;

	snprintf(min, sizeof(min), "%lld", m->to_s3 ? m->min_size : 0);
	res = ctl_blobs_exec(m->ctl,
			     "SELECT count(*), COALESCE(sum(size_bytes), 0) FROM blobs"
			     " WHERE location = $1 AND size_bytes >= $2::bigint",
			     2, p);
	m->todo = atoll(PQgetvalue(res, 0, 0));
	m->todo_bytes = atoll(PQgetvalue(res, 0, 1));
	PQclear(res);
}

/* ctl_mig_summary - the last line (or JSON object) of a migrate run */
static void ctl_mig_summary(struct ctl_mig *m, int done)
{
	const char *to = m->to_s3 ? "s3" : "postgresql";

	if (m->ctl->json) {
		ctl_print_json(json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I}", "to", to,
					 "complete", done && m->errors == 0, "to_move",
					 (json_int_t)m->todo, "moved", (json_int_t)m->moved,
					 "moved_bytes", (json_int_t)m->moved_bytes, "skipped",
					 (json_int_t)m->skipped, "errors", (json_int_t)m->errors));
		return;
	}
	printf("blobs migrate: %lld of %lld blob%s moved to %s (%.1f of %.1f MB); %lld gone or "
	       "moved meanwhile; %lld error%s%s\n",
	       m->moved, m->todo, m->todo == 1 ? "" : "s", to, ctl_mb(m->moved_bytes),
	       ctl_mb(m->todo_bytes), m->skipped, m->errors, m->errors == 1 ? "" : "s",
	       done ? "" : "; stopped (run it again to continue)");
}

/* ctl_mig_run - batch after batch; the exit status */
static int ctl_mig_run(struct ctl_mig *m)
{
	char last[CTL_BYTEA_HEX] = "\\x";
	int st = BLOB_OK, n;

	ctl_mig_count(m);
	fprintf(stderr, "blobs migrate: %lld blob%s (%.1f MB) to move to %s\n", m->todo,
		m->todo == 1 ? "" : "s", ctl_mb(m->todo_bytes), m->to_s3 ? "s3" : "postgresql");
	do {
		n = ctl_mig_batch(m, last, &st);
		if (n > 0)
			fprintf(stderr, "blobs migrate: %lld/%lld moved (%.1f MB)\n", m->moved,
				m->todo, ctl_mb(m->moved_bytes));
	} while (n == m->batch && st == BLOB_OK);
	ctl_mig_summary(m, st == BLOB_OK);
	if (st != BLOB_OK)
		return ctl_blobs_status(st);
	return m->errors ? CTL_REFUSED : CTL_OK;
}

/* ctl_mig_files - the temporary file (to s3) and /dev/null (read-backs) */
static int ctl_mig_files(struct ctl_mig *m)
{
	char path[] = "/tmp/postroomctl-blob.XXXXXX";
	const char *dir = getenv("TMPDIR");
	char *tpl = dir && *dir ? xasprintf("%s/postroomctl-blob.XXXXXX", dir) : xstrdup(path);

	m->tmpfd = mkstemp(tpl);
	if (m->tmpfd >= 0)
		unlink(tpl);
	free(tpl);
	m->nullfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (m->tmpfd < 0 || m->nullfd < 0)
		return ctl_fail(CTL_UNAVAILABLE, "blobs migrate: temporary file: %s",
				strerror(errno));
	return CTL_OK;
}

/* ctl_blobs_migrate - blobs migrate --to s3|postgresql [--batch N] */
static int ctl_blobs_migrate(struct ctl *ctl, int argc, char **argv)
{
	char *to = NULL, *batch = NULL, *end = NULL;
	struct ctl_opt opts[] = { { "--to", &to, 0 }, { "--batch", &batch, 0 }, { NULL, NULL, 0 } };
	struct ctl_mig m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.ctl = ctl;
	m.batch = 100;
	m.tmpfd = m.nullfd = -1;
	m.min_size = conf_int(ctl->conf, "blobs.min_size");
	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0 || to == NULL ||
	    (strcmp(to, "s3") != 0 && strcmp(to, "postgresql") != 0) ||
	    (batch && ((m.batch = strtol(batch, &end, 10)) < 1 || *end || end == batch ||
		       m.batch > 100000))) {
		rc = ctl_usage("blobs migrate --to s3|postgresql [--batch N]");
		goto out;
	}
	m.to_s3 = strcmp(to, "s3") == 0;
	if ((m.s3 = ctl_blobs_s3(ctl, "migrate", &rc)) == NULL || (rc = ctl_mig_files(&m)) != 0)
		goto out;
	m.pg = blob_store_pg_new(ctl_db(ctl));
	rc = ctl_mig_run(&m);
out:
	if (m.tmpfd >= 0)
		close(m.tmpfd);
	if (m.nullfd >= 0)
		close(m.nullfd);
	blob_store_close(&m.pg);
	blob_store_close(&m.s3);
	free(to);
	free(batch);
	return rc;
}

int ctl_cmd_blobs(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "gc") == 0)
		return ctl_blobs_gc(ctl, argc - 1, argv + 1);
	if (argc >= 1 && strcmp(argv[0], "migrate") == 0)
		return ctl_blobs_migrate(ctl, argc - 1, argv + 1);
	return ctl_usage("blobs gc [--grace DAYS] [--dry-run] [--page N] | "
			 "blobs migrate --to s3|postgresql [--batch N]");
}
