/*
 * NAME
 *	blob_store - choose a blob backend from postroom.conf; what the
 *	backends share
 * DESCRIPTION
 *	Reads the blobs section (blobs.backend, blobs.endpoint, blobs.bucket,
 *	blobs.region, blobs.credentials_file, blobs.timeout, blobs.min_size)
 *	and opens lib/blob_store_pg.c or lib/blob_store_s3.c behind the
 *	struct blob_store_ops interface of blob_store.h. Also the object key
 *	layout and the enhanced status code of each error class.
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
