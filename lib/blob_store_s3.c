/*
 * NAME
 *	blob_store_s3 - the blob backend of an S3-compatible object store
 * DESCRIPTION
 *	Objects at ENDPOINT/BUCKET/KEY (path style), KEY as blob_s3_key:
 *	"ab/cd/" then the 64 hex digits of the SHA-256 (two levels of
 *	prefixes spread the keys; the whole digest keeps each key unique).
 *	Requests are signed by libcurl's own AWS Signature V4
 *	(CURLOPT_AWS_SIGV4, region blobs.region, service s3); a PUT carries
 *	x-amz-content-sha256 = the digest, so the server itself refuses a
 *	body that does not match it; put always uploads (a new LastModified
 *	is what keeps blobs gc away from an object about to be referenced
 *	again). get streams the object to the sink and verifies its SHA-256.
 *	list is one ListObjectsV2 page (1000 keys, parsed by
 *	lib/blob_store_s3_list.c), stat a HEAD for LastModified: both for
 *	postroomctl blobs gc. Every request has a connect and a total
 *	time-out (blobs.timeout) and no retry.
 *	Errors: no connection, a time-out, 408/429/5xx -> BLOB_TEMP (4.3.0);
 *	401/403, NoSuchBucket, another 4xx, a malformed endpoint ->
 *	BLOB_CONFIG (4.3.5), logged at error level as an operator's mistake.
 *	Keys come from blobs.credentials_file (aws_access_key_id,
 *	aws_secret_access_key), refused when others can read it.
 *	libcurl is loaded with dlopen("libcurl.so.4") on first use, as in
 *	lib/store_notify.c.
 * NEVER
 *	logs or returns a key or a signature; follows redirects; keeps an
 *	object it could not verify in the sink's buffer.
 */
#include "blob_store.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "log.h"
#include "curl_dl.h"
#include "xalloc.h"

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_ERRBODY_MAX 4096
#define S3_CONNECT_TIMEOUT_MAX 10
#define S3_LIST_MAX_KEYS 1000
#define S3_LIST_BODY_MAX (16 * 1024 * 1024) /* 1000 keys are about 400 KB */

struct blob_store_s3 {
	struct blob_store bs; /* first: the generic part */
	char *endpoint;       /* without a trailing '/' */
	char *bucket;
	char *sigv4;   /* "aws:amz:REGION:s3" */
	char *userpwd; /* "KEY:SECRET": wiped when freed */
	long timeout;
};

/* One request and what came back. */
struct s3_req {
	CURL *h;
	const char *method; /* "GET", "PUT", "DELETE", "HEAD" */
	char key[BLOB_S3_KEY_LEN];
	const char *query;       /* a request on the bucket itself: its query string */
	const char *content_sha; /* hex, the x-amz-content-sha256 header */
	const char *range;       /* "0-0" or NULL */
	int fd;                  /* PUT: the bytes to send */
	off_t offset;
	size_t len, sent;
	int read_errno;
	const struct blob_sink *out; /* GET: where a 2xx body goes, or NULL */
	EVP_MD_CTX *sha;
	int sink_status;
	char *sink_error;
	struct buf errbody; /* the body of an error answer (capped) */
	long code;
	curl_off_t mtime; /* HEAD: Last-Modified, or -1 */
};

/* s3_read - the PUT body: pread from the caller's fd */
static size_t s3_read(char *p, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t want = size * n;
	ssize_t got;

	if (want > r->len - r->sent)
		want = r->len - r->sent;
	if (want == 0)
		return 0;
	got = pread(r->fd, p, want, r->offset + (off_t)r->sent);
	if (got <= 0) {
		r->read_errno = got < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	r->sent += (size_t)got;
	return (size_t)got;
}

/* s3_write - a response body: a 2xx one to the sink (hashed), an error
 * one kept for its <Code> */
static size_t s3_write(char *p, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n;
	long code = 0;

	curl_dl()->easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299 || r->out == NULL) {
		if (r->errbody.len < S3_ERRBODY_MAX)
			buf_append(&r->errbody, p,
				   len < S3_ERRBODY_MAX - r->errbody.len
					   ? len
					   : S3_ERRBODY_MAX - r->errbody.len);
		return len;
	}
	if (r->sha)
		EVP_DigestUpdate(r->sha, p, len);
	if (r->out->fd < 0 && r->sha == NULL && r->out->buf->len + len > S3_LIST_BODY_MAX) {
		r->sink_status = BLOB_TEMP;
		r->sink_error = xstrdup("object store: the listing is too large");
		return 0;
	}
	if (blob_sink_write(r->out, p, len, &r->sink_error) != BLOB_OK) {
		r->sink_status = BLOB_TEMP;
		return 0; /* CURLE_WRITE_ERROR */
	}
	return len;
}

/* s3_error_code - the <Code> of an S3 error body, or "" (into out) */
static void s3_error_code(const struct buf *body, char *out, size_t outlen)
{
	const char *b, *e;

	out[0] = '\0';
	if (body->data == NULL || (b = strstr(body->data, "<Code>")) == NULL)
		return;
	b += 6;
	if ((e = strstr(b, "</Code>")) == NULL || (size_t)(e - b) >= outlen)
		return;
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
}

/* s3_config_error - an operator's mistake: a loud log line and the
 * error for the caller */
static int s3_config_error(struct blob_store_s3 *s, char **error_r, char *msg)
{
	log_error("blobs: CONFIGURATION ERROR, deliveries defer (4.3.5) until it is fixed: "
		  "%s (blobs.endpoint %s, blobs.bucket %s, blobs.credentials_file)",
		  msg, s->endpoint, s->bucket);
	*error_r = msg;
	return BLOB_CONFIG;
}

/* s3_classify - the status of a finished request */
static int s3_classify(struct blob_store_s3 *s, struct s3_req *r, CURLcode rc, char **error_r)
{
	char code[64];

	if (r->sink_status != BLOB_OK) {
		*error_r = r->sink_error;
		r->sink_error = NULL;
		return r->sink_status;
	}
	if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
	    rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
		return s3_config_error(s, error_r,
				       xasprintf("object store %s %s: %s", r->method, r->key,
						 curl_dl()->easy_strerror(rc)));
	if (rc == CURLE_ABORTED_BY_CALLBACK || (rc != CURLE_OK && r->read_errno)) {
		*error_r = xasprintf("reading the blob's bytes: %s", strerror(r->read_errno));
		return BLOB_TEMP;
	}
	if (rc != CURLE_OK) {
		*error_r = xasprintf("object store unreachable or slow (%s %s, time-out %lds): %s",
				     r->method, r->key, s->timeout, curl_dl()->easy_strerror(rc));
		return BLOB_TEMP;
	}
	if ((r->code >= 200 && r->code <= 299) || (r->range && r->code == 416))
		return BLOB_OK; /* 416: the range of an empty object */
	s3_error_code(&r->errbody, code, sizeof(code));
	if (r->code == 404 && strcmp(code, "NoSuchBucket") != 0) {
		*error_r = xasprintf("object %s not found", r->key);
		return BLOB_NOTFOUND;
	}
	if (r->code == 400 && strcmp(code, "XAmzContentSHA256Mismatch") == 0) {
		*error_r = xasprintf("object store: the bytes of %s do not match their SHA-256",
				     r->key);
		return BLOB_CORRUPT;
	}
	if (r->code == 408 || r->code == 429 || r->code >= 500) {
		*error_r = xasprintf("object store %s %s: HTTP %ld %s", r->method, r->key, r->code,
				     code);
		return BLOB_TEMP;
	}
	return s3_config_error(s, error_r,
			       xasprintf("object store refused %s %s: HTTP %ld %s", r->method,
					 r->key, r->code, code[0] ? code : "(no error code)"));
}

/* s3_perform - run request r; its status */
static int s3_perform(struct blob_store_s3 *s, struct s3_req *r, char **error_r)
{
	struct curl_slist *hdrs = NULL;
	char *url, *hdr, range[32];
	CURLcode rc;
	int status;

	if (curl_dl()->error) {
		*error_r = xstrdup(curl_dl()->error);
		return BLOB_CONFIG;
	}
	if ((r->h = curl_dl()->easy_init()) == NULL) {
		*error_r = xstrdup("curl_easy_init failed");
		return BLOB_TEMP;
	}
	if (r->query)
		url = xasprintf("%s/%s?%s", s->endpoint, s->bucket, r->query);
	else
		url = xasprintf("%s/%s/%s", s->endpoint, s->bucket, r->key);
	hdr = xasprintf("x-amz-content-sha256: %s", r->content_sha);
	hdrs = curl_dl()->slist_append(hdrs, hdr);
	curl_dl()->easy_setopt(r->h, CURLOPT_URL, url);
	curl_dl()->easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_dl()->easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
	curl_dl()->easy_setopt(r->h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_dl()->easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT,
			       s->timeout < S3_CONNECT_TIMEOUT_MAX ? s->timeout
								   : S3_CONNECT_TIMEOUT_MAX);
	curl_dl()->easy_setopt(r->h, CURLOPT_TIMEOUT, s->timeout);
	curl_dl()->easy_setopt(r->h, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_dl()->easy_setopt(r->h, CURLOPT_USERPWD, s->userpwd);
	curl_dl()->easy_setopt(r->h, CURLOPT_WRITEFUNCTION, s3_write);
	curl_dl()->easy_setopt(r->h, CURLOPT_WRITEDATA, r);
	if (strcmp(r->method, "PUT") == 0) {
		curl_dl()->easy_setopt(r->h, CURLOPT_UPLOAD, 1L);
		curl_dl()->easy_setopt(r->h, CURLOPT_READFUNCTION, s3_read);
		curl_dl()->easy_setopt(r->h, CURLOPT_READDATA, r);
		curl_dl()->easy_setopt(r->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
	} else if (strcmp(r->method, "HEAD") == 0) {
		curl_dl()->easy_setopt(r->h, CURLOPT_NOBODY, 1L);
		curl_dl()->easy_setopt(r->h, CURLOPT_FILETIME, 1L);
	} else if (strcmp(r->method, "GET") != 0) {
		curl_dl()->easy_setopt(r->h, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (r->range) {
		snprintf(range, sizeof(range), "%s", r->range);
		curl_dl()->easy_setopt(r->h, CURLOPT_RANGE, range);
	}
	curl_dl()->easy_setopt(r->h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_dl()->easy_perform(r->h);
	curl_dl()->easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->code);
	r->mtime = -1;
	if (strcmp(r->method, "HEAD") == 0)
		curl_dl()->easy_getinfo(r->h, CURLINFO_FILETIME_T, &r->mtime);
	status = s3_classify(s, r, rc, error_r);
	curl_dl()->easy_cleanup(r->h);
	curl_dl()->slist_free_all(hdrs);
	free(hdr);
	free(url);
	return status;
}

/* s3_req_init - a request for digest */
static void s3_req_init(struct s3_req *r, const char *method,
			const unsigned char digest[SHA256_LEN])
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->fd = -1;
	r->content_sha = S3_EMPTY_SHA256;
	blob_s3_key(digest, r->key);
}

static void s3_req_free(struct s3_req *r)
{
	buf_free(&r->errbody);
	free(r->sink_error);
	if (r->sha)
		EVP_MD_CTX_free(r->sha);
}

/* blob_s3_exists - a one-byte ranged GET: the object is there or not */
static int blob_s3_exists(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
			  char **error_r)
{
	struct blob_store_s3 *s = (struct blob_store_s3 *)bs;
	struct s3_req r;
	int status;

	s3_req_init(&r, "GET", digest);
	r.range = "0-0";
	status = s3_perform(s, &r, error_r);
	s3_req_free(&r);
	if (status == BLOB_NOTFOUND) {
		free(*error_r);
		*error_r = NULL;
		return 0;
	}
	return status == BLOB_OK ? 1 : status;
}

/* blob_s3_put - upload (again, when it is there: a new LastModified);
 * the server checks the bytes against the digest */
static int blob_s3_put(struct blob_store *bs, const unsigned char digest[SHA256_LEN], int fd,
		       off_t offset, size_t len, char **error_r)
{
	struct blob_store_s3 *s = (struct blob_store_s3 *)bs;
	char hex[2 * SHA256_LEN + 1];
	struct s3_req r;
	int status;

	crypto_hex(digest, SHA256_LEN, hex);
	s3_req_init(&r, "PUT", digest);
	r.content_sha = hex;
	r.fd = fd;
	r.offset = offset;
	r.len = len;
	status = s3_perform(s, &r, error_r);
	s3_req_free(&r);
	return status;
}

/* blob_s3_get - stream the object to out, then verify its digest */
static int blob_s3_get(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
		       const struct blob_sink *out, char **error_r)
{
	struct blob_store_s3 *s = (struct blob_store_s3 *)bs;
	unsigned char got[EVP_MAX_MD_SIZE];
	size_t start = out->fd < 0 ? out->buf->len : 0;
	unsigned int glen = 0;
	struct s3_req r;
	int status;

	s3_req_init(&r, "GET", digest);
	r.out = out;
	r.sha = EVP_MD_CTX_new();
	if (r.sha == NULL || EVP_DigestInit_ex(r.sha, EVP_sha256(), NULL) != 1)
		log_panic("blob_s3_get: EVP_DigestInit_ex failed");
	status = s3_perform(s, &r, error_r);
	if (status == BLOB_OK) {
		EVP_DigestFinal_ex(r.sha, got, &glen);
		if (glen != SHA256_LEN || !crypto_equal(got, digest, SHA256_LEN)) {
			*error_r = xasprintf("object %s does not match its SHA-256", r.key);
			status = BLOB_CORRUPT;
		}
	}
	if (status != BLOB_OK && out->fd < 0)
		buf_truncate(out->buf, start);
	s3_req_free(&r);
	return status;
}

/* blob_s3_del - DELETE the object (S3 answers 204 either way) */
static int blob_s3_del(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
		       char **error_r)
{
	struct s3_req r;
	int status;

	s3_req_init(&r, "DELETE", digest);
	status = s3_perform((struct blob_store_s3 *)bs, &r, error_r);
	s3_req_free(&r);
	return status;
}

/* s3_query_escape - v percent-encoded as SigV4's canonical query wants
 * (RFC 3986 unreserved characters kept), appended to out */
static void s3_query_escape(struct buf *out, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *v; v++) {
		unsigned char c = (unsigned char)*v;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			buf_append(out, v, 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		buf_append(out, e, 3);
	}
}

/* blob_s3_list - one ListObjectsV2 page (parameters in canonical order:
 * SigV4 signs the query as it is sent) */
static int blob_s3_list(struct blob_store *bs, const char *token, int max, struct blob_list *page,
			char **error_r)
{
	struct buf query = { 0 }, body = { 0 };
	struct blob_sink sink = { -1, &body };
	unsigned char none[SHA256_LEN] = { 0 };
	struct s3_req r;
	int status;

	page->n = 0;
	page->foreign = 0;
	if (token) {
		buf_append_str(&query, "continuation-token=");
		s3_query_escape(&query, token);
		buf_append_str(&query, "&");
	}
	buf_printf(&query, "list-type=2&max-keys=%d",
		   max > 0 && max < S3_LIST_MAX_KEYS ? max : S3_LIST_MAX_KEYS);
	s3_req_init(&r, "GET", none);
	strcpy(r.key, "(listing)");
	r.query = query.data;
	r.out = &sink;
	status = s3_perform((struct blob_store_s3 *)bs, &r, error_r);
	if (status == BLOB_NOTFOUND) { /* a 404 on the bucket itself */
		free(*error_r);
		status = s3_config_error((struct blob_store_s3 *)bs, error_r,
					 xstrdup("object store: the bucket was not found"));
	}
	if (status == BLOB_OK &&
	    blob_s3_list_parse(body.data ? body.data : "", body.len, page, error_r) < 0)
		status = BLOB_TEMP;
	s3_req_free(&r);
	buf_free(&query);
	buf_free(&body);
	return status;
}

/* blob_s3_stat - a HEAD: the object's LastModified */
static int blob_s3_stat(struct blob_store *bs, const unsigned char digest[SHA256_LEN],
			time_t *mtime_r, char **error_r)
{
	struct s3_req r;
	int status;

	s3_req_init(&r, "HEAD", digest);
	status = s3_perform((struct blob_store_s3 *)bs, &r, error_r);
	if (status == BLOB_OK && r.mtime < 0) {
		*error_r = xasprintf("object store: no Last-Modified for %s", r.key);
		status = BLOB_TEMP;
	}
	if (status == BLOB_OK)
		*mtime_r = (time_t)r.mtime;
	s3_req_free(&r);
	return status;
}

static void blob_s3_free(struct blob_store *bs)
{
	struct blob_store_s3 *s = (struct blob_store_s3 *)bs;

	free(s->endpoint);
	free(s->bucket);
	free(s->sigv4);
	if (s->userpwd) {
		crypto_wipe(s->userpwd, strlen(s->userpwd));
		free(s->userpwd);
	}
	free(s);
}

static const struct blob_store_ops blob_store_s3_ops = {
	.name = "s3",
	.put = blob_s3_put,
	.get = blob_s3_get,
	.exists = blob_s3_exists,
	.del = blob_s3_del,
	.free = blob_s3_free,
	.list = blob_s3_list,
	.stat = blob_s3_stat,
};

int blob_s3_credentials_check(const char *path, int fd, char **error_r)
{
	struct group *gr = getgrnam("postroom");
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		*error_r = xasprintf("%s holds S3 keys and others can read or write it: "
				     "chmod o-rwx it",
				     path);
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		*error_r = xasprintf("%s holds S3 keys and belongs to uid %u: "
				     "chown it to root or to this program's user",
				     path, (unsigned)st.st_uid);
		return -1;
	}
	if ((st.st_mode & (S_IRGRP | S_IWGRP)) && st.st_gid != 0 &&
	    (gr == NULL || st.st_gid != gr->gr_gid)) {
		*error_r = xasprintf("%s holds S3 keys and group %u can read it: "
				     "chgrp it to postroom (or root), or chmod g-rw it",
				     path, (unsigned)st.st_gid);
		return -1;
	}
	return 0;
}

/* s3_cred_value - the value of "NAME = VALUE" when line sets name */
static char *s3_cred_value(char *line, const char *name)
{
	size_t n = strlen(name);
	char *v, *e;

	while (*line == ' ' || *line == '\t')
		line++;
	if (strncmp(line, name, n) != 0)
		return NULL;
	v = line + n;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v++ != '=')
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	e = v + strlen(v);
	while (e > v && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return v;
}

/* s3_read_credentials - "KEY:SECRET" from the file (caller wipes and
 * frees), or NULL with *error_r */
static char *s3_read_credentials(const char *path, char **error_r)
{
	char line[512], *key = NULL, *secret = NULL, *v, *out = NULL;
	FILE *fp;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*error_r = xasprintf("blobs.credentials_file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (blob_s3_credentials_check(path, fd, error_r) < 0) {
		close(fd);
		return NULL;
	}
	fp = fdopen(fd, "r");
	while (fp && fgets(line, sizeof(line), fp)) {
		if ((v = s3_cred_value(line, "aws_access_key_id")) != NULL && !key)
			key = xstrdup(v);
		else if ((v = s3_cred_value(line, "aws_secret_access_key")) != NULL && !secret)
			secret = xstrdup(v);
	}
	crypto_wipe(line, sizeof(line));
	if (fp)
		fclose(fp);
	else
		close(fd);
	if (key && secret && *key && *secret && !strchr(key, ':'))
		out = xasprintf("%s:%s", key, secret);
	else
		*error_r = xasprintf("blobs.credentials_file %s: needs aws_access_key_id = ... "
				     "and aws_secret_access_key = ... (a key without ':')",
				     path);
	if (secret) {
		crypto_wipe(secret, strlen(secret));
		free(secret);
	}
	free(key);
	return out;
}

/* s3_bucket_ok - a DNS-compatible bucket name (3-63 of a-z 0-9 . -) */
static int s3_bucket_ok(const char *b)
{
	size_t n = b ? strlen(b) : 0;

	return n >= 3 && n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

struct blob_store *blob_store_s3_new(const struct blob_store_conf *bc, int *status_r,
				     char **error_r)
{
	struct blob_store_s3 *s;
	char *userpwd;
	size_t n;

	*status_r = BLOB_CONFIG;
	if (bc->endpoint == NULL || (strncmp(bc->endpoint, "http://", 7) != 0 &&
				     strncmp(bc->endpoint, "https://", 8) != 0)) {
		*error_r = xstrdup("blobs.endpoint: an http:// or https:// URL is needed for s3");
		return NULL;
	}
	if (!s3_bucket_ok(bc->bucket)) {
		*error_r =
			xasprintf("blobs.bucket: \"%s\" is not a bucket name (3-63 of a-z 0-9 . -)",
				  bc->bucket ? bc->bucket : "");
		return NULL;
	}
	if (bc->credentials_file == NULL) {
		*error_r = xstrdup("blobs.credentials_file is needed for s3");
		return NULL;
	}
	if ((userpwd = s3_read_credentials(bc->credentials_file, error_r)) == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->bs.ops = &blob_store_s3_ops;
	s->endpoint = xstrdup(bc->endpoint);
	n = strlen(s->endpoint);
	while (n > 0 && s->endpoint[n - 1] == '/')
		s->endpoint[--n] = '\0';
	s->bucket = xstrdup(bc->bucket);
	s->sigv4 = xasprintf("aws:amz:%s:s3", bc->region ? bc->region : "us-east-1");
	s->userpwd = userpwd;
	s->timeout = bc->timeout > 0 ? bc->timeout : 30;
	*status_r = BLOB_OK;
	return &s->bs;
}
