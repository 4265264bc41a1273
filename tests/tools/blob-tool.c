/* blob-tool - drive lib/blob_store*.c from tests/integration/blobstore-*.sh.
 *   blob-tool CONF put FILE          store FILE, print its SHA-256 (hex)
 *   blob-tool CONF get HEX OUT       write the blob to OUT (a file)
 *   blob-tool CONF getbuf HEX OUT    the same, through a memory buffer
 *   blob-tool CONF exists HEX        print 1 or 0
 *   blob-tool CONF del HEX
 * CONF: a postroom.conf whose blobs section names the backend. Exit 0 on
 * success, else 10 - status (11 temporary, 12 configuration, 13 corrupt,
 * 14 not found) with "STATUS DSN: ERROR" on stderr; 2 on bad use. Logs go
 * to stderr. A test helper, never installed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob_store.h"
#include "conf.h"
#include "db.h"
#include "log.h"

/* tool_digest - 32 bytes of 64 hex digits, 0 or -1 */
static int tool_digest(const char *hex, unsigned char d[SHA256_LEN])
{
	unsigned i, v;

	if (strlen(hex) != 2 * SHA256_LEN)
		return -1;
	for (i = 0; i < SHA256_LEN; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		d[i] = (unsigned char)v;
	}
	return 0;
}

/* tool_put - the file's digest, then put */
static int tool_put(struct blob_store *bs, const char *path, char **err)
{
	unsigned char d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	struct stat st;
	char *data;
	int fd = open(path, O_RDONLY), rc;

	if (fd < 0 || fstat(fd, &st) < 0)
		return 2;
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL || read(fd, data, (size_t)st.st_size) != st.st_size)
		return 2;
	crypto_sha256(data, (size_t)st.st_size, d);
	free(data);
	rc = bs->ops->put(bs, d, fd, 0, (size_t)st.st_size, err);
	close(fd);
	crypto_hex(d, SHA256_LEN, hex);
	if (rc == BLOB_OK)
		printf("%s\n", hex);
	return rc;
}

/* tool_get - the blob into a file, directly or through a buffer */
static int tool_get(struct blob_store *bs, const unsigned char *d, const char *out, int viabuf,
		    char **err)
{
	struct buf b = BUF_INIT;
	struct blob_sink sink = { -1, &b };
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), rc;

	if (fd < 0)
		return 2;
	if (!viabuf)
		sink.fd = fd;
	rc = bs->ops->get(bs, d, &sink, err);
	if (rc == BLOB_OK && viabuf && write(fd, b.data, b.len) != (ssize_t)b.len)
		rc = 2;
	buf_free(&b);
	close(fd);
	return rc;
}

static int tool_run(struct blob_store *bs, int argc, char **argv, char **err)
{
	unsigned char d[SHA256_LEN];
	const char *cmd = argv[2];
	int rc;

	if (strcmp(cmd, "put") == 0 && argc == 4)
		return tool_put(bs, argv[3], err);
	if (argc < 4 || tool_digest(argv[3], d) < 0)
		return 2;
	if ((strcmp(cmd, "get") == 0 || strcmp(cmd, "getbuf") == 0) && argc == 5)
		return tool_get(bs, d, argv[4], cmd[3] == 'b', err);
	if (strcmp(cmd, "exists") == 0) {
		if ((rc = bs->ops->exists(bs, d, err)) >= 0)
			printf("%d\n", rc);
		return rc < 0 ? rc : 0;
	}
	if (strcmp(cmd, "del") == 0)
		return bs->ops->del(bs, d, err);
	return 2;
}

int main(int argc, char **argv)
{
	struct blob_store_conf bc;
	struct blob_store *bs;
	struct conf *cfg;
	struct db *db = NULL;
	char *err = NULL;
	int rc;

	log_init("blob-tool", 1, 1);
	if (argc < 3) {
		fprintf(stderr, "usage: blob-tool CONF put|get|getbuf|exists|del ...\n");
		return 2;
	}
	if ((cfg = conf_load(argv[1], 0, &err)) == NULL) {
		fprintf(stderr, "blob-tool: %s\n", err);
		return 2;
	}
	blob_store_conf_read(cfg, &bc);
	if (bc.backend == NULL || strcmp(bc.backend, "postgresql") == 0) {
		db = db_connect(conf_str(cfg, "database.conninfo"), 10, &err);
		if (db == NULL) {
			fprintf(stderr, "blob-tool: %s\n", err);
			return 2;
		}
	}
	if ((bs = blob_store_open(&bc, db, &rc, &err)) != NULL) {
		rc = tool_run(bs, argc, argv, &err);
		blob_store_close(&bs);
	}
	if (rc < 0)
		fprintf(stderr, "%s %s: %s\n", blob_status_name(rc), blob_status_dsn(rc),
			err ? err : "");
	free(err);
	db_close(&db);
	conf_free(&cfg);
	return rc < 0 ? 10 - rc : rc;
}
