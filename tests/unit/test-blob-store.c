/* test-blob-store - the pure parts of lib/blob_store*.c: the object key
 * layout (two levels of two hex digits, then the whole digest), the
 * enhanced status code of each error class, and the permission check of
 * blobs.credentials_file (others, foreign groups refused; root's group and
 * owner-only files accepted). Expected keys written by hand. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob_store.h"
#include "unit.h"

/* test_key - the key of the SHA-256 of text */
static void test_key(const char *text, const char *want)
{
	unsigned char d[SHA256_LEN];
	char key[BLOB_S3_KEY_LEN];

	crypto_sha256(text, strlen(text), d);
	memset(key, 'x', sizeof(key));
	blob_s3_key(d, key);
	UNIT_STR_EQ(key, want, "key of sha256(\"%s\")", text);
	UNIT_OK(strlen(key) == BLOB_S3_KEY_LEN - 1, "key is %d characters", BLOB_S3_KEY_LEN - 1);
}

/* test_mode - the credentials check of a file of mode and group gid */
static int test_mode(const char *path, mode_t mode, gid_t gid, char **err)
{
	int fd, rc;

	if (chmod(path, mode) < 0 || (geteuid() == 0 && chown(path, 0, gid) < 0))
		return -2;
	fd = open(path, 0);
	rc = blob_s3_credentials_check(path, fd, err);
	close(fd);
	return rc;
}

static void test_credentials(void)
{
	char path[] = "/tmp/test-blob-store.XXXXXX", *err = NULL;
	int fd = mkstemp(path);

	UNIT_OK(fd >= 0, "temporary file");
	if (fd < 0)
		return;
	close(fd);
	UNIT_OK(test_mode(path, 0600, 0, &err) == 0, "0600: accepted");
	UNIT_OK(test_mode(path, 0640, 0, &err) == 0, "0640 group root: accepted");
	UNIT_OK(test_mode(path, 0644, 0, &err) == -1 && err && strstr(err, "o-rwx"),
		"0644: refused, says chmod o-rwx");
	free(err);
	err = NULL;
	UNIT_OK(test_mode(path, 0602, 0, &err) == -1, "world-writable: refused");
	free(err);
	err = NULL;
	if (geteuid() == 0) {
		UNIT_OK(test_mode(path, 0640, 12345, &err) == -1 && err && strstr(err, "group"),
			"0640 of a foreign group: refused");
		free(err);
		err = NULL;
		UNIT_OK(test_mode(path, 0600, 12345, &err) == 0,
			"0600 of a foreign group: accepted (the group cannot read it)");
	}
	unlink(path);
}

int main(void)
{
	/* sha256("") = e3b0c442...; sha256("abc") = ba7816bf... */
	test_key("", "e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	test_key("abc", "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	UNIT_STR_EQ(blob_status_dsn(BLOB_CONFIG), "4.3.5", "operator mistake defers 4.3.5");
	UNIT_STR_EQ(blob_status_dsn(BLOB_TEMP), "4.3.0", "unreachable defers 4.3.0");
	UNIT_STR_EQ(blob_status_dsn(BLOB_CORRUPT), "4.3.0", "corrupt defers 4.3.0");
	UNIT_STR_EQ(blob_status_name(BLOB_CONFIG), "configuration", "status name");
	test_credentials();
	return unit_done();
}
