/* test-blob-store - the pure parts of lib/blob_store*.c: the object key
 * layout (two levels of two hex digits, then the whole digest), the
 * enhanced status code of each error class, and the permission check of
 * blobs.credentials_file (others, foreign groups refused; root's group and
 * owner-only files accepted), a key back to its digest, S3's time stamps,
 * and the parser of ListObjectsV2 answers (blobs gc): objects, foreign
 * keys, pagination, malformed XML and a DOCTYPE refused. Expected keys and
 * times written by hand. */
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

/* test_key_digest - keys of the layout round-trip; other keys refused */
static void test_key_digest(void)
{
	const char *k = "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	unsigned char d[SHA256_LEN], want[SHA256_LEN];

	crypto_sha256("abc", 3, want);
	UNIT_OK(blob_s3_key_digest(k, d) == 0 && memcmp(d, want, SHA256_LEN) == 0,
		"key -> digest of sha256(\"abc\")");
	UNIT_OK(blob_s3_key_digest(
			"ba/79/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
			d) < 0,
		"prefix not matching the digest: refused");
	UNIT_OK(blob_s3_key_digest(
			"BA/78/BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
			d) < 0,
		"uppercase hex: refused");
	UNIT_OK(blob_s3_key_digest("ba/78/ba7816bf", d) < 0, "short key: refused");
	UNIT_OK(blob_s3_key_digest("backups/db.dump", d) < 0, "foreign key: refused");
	UNIT_OK(blob_s3_key_digest(
			"ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag",
			d) < 0,
		"not hex: refused");
}

static void test_time(void)
{
	time_t t = 0;

	UNIT_OK(blob_s3_time("2026-12-05T17:53:55.000Z", &t) == 0 && t == 1796493235,
		"LastModified with milliseconds");
	UNIT_OK(blob_s3_time("1970-01-02T00:00:00Z", &t) == 0 && t == 86400, "without a fraction");
	UNIT_OK(blob_s3_time("2026-12-05T17:53:55.000+01:00", &t) < 0, "not UTC: refused");
	UNIT_OK(blob_s3_time("2026-12-05", &t) < 0, "a date alone: refused");
}

#define LIST_KEY_A "e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define LIST_KEY_B "ba/78/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* as radosgw writes a truncated page (one line here) */
static const char list_page1[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>postroom-blobs</Name><Prefix></Prefix><MaxKeys>2</MaxKeys>"
	"<IsTruncated>true</IsTruncated>"
	"<Contents><Key>" LIST_KEY_A "</Key><LastModified>2026-12-05T17:53:55.000Z</LastModified>"
	"<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
	"<StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>notes/readme.txt</Key><LastModified>2026-12-05T17:53:55.000Z</LastModified>"
	"<Size>12</Size></Contents>"
	"<KeyCount>2</KeyCount><NextContinuationToken>1ZR/+tok=</NextContinuationToken>"
	"</ListBucketResult>";
static const char list_page2[] =
	"<ListBucketResult><IsTruncated>false</IsTruncated>"
	"<Contents>\n  <Key>" LIST_KEY_B "</Key>\n  <Size>1048576</Size>\n"
	"  <LastModified>2026-11-01T00:00:00.000Z</LastModified>\n</Contents>"
	"<NextContinuationToken>ignored</NextContinuationToken></ListBucketResult>";

/* test_list_bad - xml is refused with an error containing want */
static void test_list_bad(const char *xml, const char *want, const char *what)
{
	struct blob_list page;
	char *err = NULL;

	memset(&page, 0, sizeof(page));
	UNIT_OK(blob_s3_list_parse(xml, strlen(xml), &page, &err) < 0 && err && strstr(err, want),
		"%s: refused (%s)", what, err ? err : "no error");
	free(err);
	blob_list_free(&page);
}

static void test_list(void)
{
	unsigned char a[SHA256_LEN], b[SHA256_LEN];
	struct blob_list page;
	char *err = NULL;

	crypto_sha256("", 0, a);
	crypto_sha256("abc", 3, b);
	memset(&page, 0, sizeof(page));
	UNIT_OK(blob_s3_list_parse(list_page1, strlen(list_page1), &page, &err) == 0,
		"page 1 parsed");
	UNIT_OK(page.n == 1 && memcmp(page.objs[0].digest, a, SHA256_LEN) == 0 &&
			page.objs[0].size == 0 && page.objs[0].mtime == 1796493235,
		"page 1: the object of postroom's layout, its size and time");
	UNIT_OK(page.foreign == 1, "page 1: the other key counted, left out");
	UNIT_STR_EQ(page.next ? page.next : "(null)", "1ZR/+tok=", "page 1: continuation token");
	page.n = 0;
	page.foreign = 0;
	UNIT_OK(blob_s3_list_parse(list_page2, strlen(list_page2), &page, &err) == 0,
		"page 2 parsed (whitespace, other order)");
	UNIT_OK(page.n == 1 && memcmp(page.objs[0].digest, b, SHA256_LEN) == 0 &&
			page.objs[0].size == 1048576,
		"page 2: its object");
	UNIT_OK(page.next == NULL, "page 2: the last (a token without IsTruncated ignored)");
	blob_list_free(&page);
	test_list_bad("<ListBucketResult><Contents><Key>x</Key>", "malformed XML", "cut short");
	test_list_bad("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
		      "without NextContinuationToken", "truncated without a token");
	test_list_bad("<ListBucketResult><Contents><Key>" LIST_KEY_A "</Key><Size>1</Size>"
		      "<LastModified>yesterday</LastModified></Contents></ListBucketResult>",
		      "not a time", "bad LastModified");
	test_list_bad("<ListBucketResult><Contents><Key>" LIST_KEY_A "</Key><Size>-1</Size>"
		      "<LastModified>2026-11-01T00:00:00Z</LastModified></Contents>"
		      "</ListBucketResult>",
		      "not a size", "negative Size");
	test_list_bad("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]>"
		      "<ListBucketResult><Name>&a;</Name></ListBucketResult>",
		      "DOCTYPE", "a DOCTYPE (entities)");
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
	test_key_digest();
	test_time();
	test_list();
	return unit_done();
}
