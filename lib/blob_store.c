/*
 * NAME
 *	blob_store - choose a blob backend from postroom.conf; what the
 *	backends share
 * DESCRIPTION
 *	Reads the blobs section (blobs.backend, blobs.endpoint, blobs.bucket,
 *	blobs.region, blobs.credentials_file, blobs.timeout, blobs.min_size)
 *	and opens lib/blob_store_pg.c or lib/blob_store_s3.c behind the
 *	struct blob_store_ops interface of blob_store.h. Also the object key
 *	layout (and back: a key to its digest, for blobs gc's listing), S3's
 *	time stamps, and the enhanced status code of each error class.
 * NEVER
 *	logs a credential; does network or database I/O itself.
 */
#include "blob_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "xalloc.h"

void blob_store_conf_read(const struct conf *cfg, struct blob_store_conf *bc)
{
	bc->backend = conf_str(cfg, "blobs.backend");
	bc->endpoint = conf_str(cfg, "blobs.endpoint");
	bc->bucket = conf_str(cfg, "blobs.bucket");
	bc->region = conf_str(cfg, "blobs.region");
	bc->credentials_file = conf_str(cfg, "blobs.credentials_file");
	bc->timeout = (long)conf_int(cfg, "blobs.timeout");
	bc->min_size = conf_int(cfg, "blobs.min_size");
}

struct blob_store *blob_store_open(const struct blob_store_conf *bc, struct db *db, int *status_r,
				   char **error_r)
{
	const char *b = bc->backend ? bc->backend : "postgresql";

	if (strcmp(b, "postgresql") == 0)
		return blob_store_pg_new(db);
	if (strcmp(b, "s3") == 0)
		return blob_store_s3_new(bc, status_r, error_r);
	*status_r = BLOB_CONFIG;
	*error_r = xasprintf("blobs.backend: unknown backend \"%s\" (postgresql or s3)", b);
	return NULL;
}

void blob_store_close(struct blob_store **bs)
{
	if (*bs == NULL)
		return;
	(*bs)->ops->free(*bs);
	*bs = NULL;
}

void blob_s3_key(const unsigned char digest[SHA256_LEN], char out[BLOB_S3_KEY_LEN])
{
	char hex[2 * SHA256_LEN + 1];

	crypto_hex(digest, SHA256_LEN, hex);
	memcpy(out, hex, 2);
	out[2] = '/';
	memcpy(out + 3, hex + 2, 2);
	out[5] = '/';
	memcpy(out + 6, hex, sizeof(hex)); /* with its NUL: 6 + 64 + 1 = 71 */
}

int blob_s3_key_digest(const char *key, unsigned char digest[SHA256_LEN])
{
	size_t i;

	if (strlen(key) != BLOB_S3_KEY_LEN - 1 || key[2] != '/' || key[5] != '/' ||
	    memcmp(key, key + 6, 2) != 0 || memcmp(key + 3, key + 8, 2) != 0)
		return -1;
	for (i = 0; i < SHA256_LEN; i++) {
		const char *h = key + 6 + 2 * i;
		int hi = h[0] >= '0' && h[0] <= '9'   ? h[0] - '0'
			 : h[0] >= 'a' && h[0] <= 'f' ? h[0] - 'a' + 10
						      : -1;
		int lo = h[1] >= '0' && h[1] <= '9'   ? h[1] - '0'
			 : h[1] >= 'a' && h[1] <= 'f' ? h[1] - 'a' + 10
						      : -1;

		if (hi < 0 || lo < 0)
			return -1;
		digest[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int blob_s3_time(const char *s, time_t *t_r)
{
	struct tm tm;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0)
		return -1;
	*t_r = timegm(&tm);
	return 0;
}

void blob_list_free(struct blob_list *page)
{
	free(page->objs);
	free(page->next);
	memset(page, 0, sizeof(*page));
}

int blob_sink_write(const struct blob_sink *out, const char *data, size_t len, char **error_r)
{
	size_t done = 0;

	if (out->fd < 0) {
		buf_append(out->buf, data, len);
		return BLOB_OK;
	}
	while (done < len) {
		ssize_t n = write(out->fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("writing the blob: %s", strerror(errno));
			return BLOB_TEMP;
		}
		done += (size_t)n;
	}
	return BLOB_OK;
}

const char *blob_status_dsn(int status) { return status == BLOB_CONFIG ? "4.3.5" : "4.3.0"; }

const char *blob_status_name(int status)
{
	switch (status) {
	case BLOB_OK: return "ok";
	case BLOB_TEMP: return "temporary";
	case BLOB_CONFIG: return "configuration";
	case BLOB_CORRUPT: return "corrupt";
	case BLOB_NOTFOUND: return "not found";
	}
	return "unknown";
}
