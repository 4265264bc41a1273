/* test-apikey - key format, prefix, bcrypt hash/verify (cost 4, and one
 * at the default cost 11), HMAC-SHA256 against RFC 4231 test vectors. */
#include <stdlib.h>
#include "apikey.h"
#include "crypto.h"
#include "unit.h"

static void test_format(void)
{
	char a[APIKEY_LEN + 1], b[APIKEY_LEN + 1], prefix[APIKEY_PREFIX_LEN + 1];
	int i, fine = 1;

	UNIT_OK(apikey_generate(a) == 0 && apikey_generate(b) == 0, "keys generated");
	UNIT_OK(strlen(a) == 43 && strncmp(a, "pr_", 3) == 0, "key is pr_ + 40 chars: %.3s...", a);
	for (i = 3; i < 43; i++)
		if (!((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'z') ||
		      (a[i] >= 'A' && a[i] <= 'Z')))
			fine = 0;
	UNIT_OK(fine, "key body is base62");
	UNIT_OK(strcmp(a, b) != 0, "two keys differ");
	UNIT_OK(apikey_prefix(a, prefix) == 0 && strlen(prefix) == 12 &&
			memcmp(prefix, a + 3, 12) == 0,
		"prefix is the 12 characters after pr_");
	UNIT_OK(apikey_prefix("pr_short", prefix) < 0, "short key has no prefix");
	UNIT_OK(!apikey_well_formed("xx_0123456789012345678901234567890123456789"),
		"wrong tag refused");
	UNIT_OK(!apikey_well_formed("pr_012345678901234567890123456789012345678!"),
		"non-base62 refused");
	UNIT_OK(apikey_well_formed("pr_0123456789012345678901234567890123456789"),
		"well-formed accepted");
}

static void test_bcrypt(int cost)
{
	char key[APIKEY_LEN + 1], other[APIKEY_LEN + 1], hash[APIKEY_HASH_MAX];
	char want[8];

	apikey_generate(key);
	apikey_generate(other);
	UNIT_OK(apikey_hash(key, cost, hash) == 0, "bcrypt hash at cost %d", cost);
	snprintf(want, sizeof(want), "$2b$%02d$", cost);
	UNIT_OK(strncmp(hash, want, 7) == 0, "hash is $2b$ with cost %d", cost);
	UNIT_OK(apikey_verify(key, hash) == 1, "right key verifies (cost %d)", cost);
	UNIT_OK(apikey_verify(other, hash) == 0, "wrong key fails (cost %d)", cost);
	hash[20] = hash[20] == 'a' ? 'b' : 'a';
	UNIT_OK(apikey_verify(key, hash) == 0, "tampered hash fails");
	UNIT_OK(apikey_verify(key, "$1$notbcrypt") == 0, "non-bcrypt hash fails");
	UNIT_OK(apikey_verify(key, "") == 0, "empty hash fails");
}

static void test_hmac(void)
{
	/* RFC 4231 test case 2 */
	unsigned char mac[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];

	crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	crypto_hex(mac, sizeof(mac), hex);
	UNIT_STR_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
		    "HMAC-SHA256 RFC 4231 case 2");
	/* FIPS 180-2: SHA-256("abc") */
	crypto_sha256("abc", 3, mac);
	crypto_hex(mac, sizeof(mac), hex);
	UNIT_STR_EQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		    "SHA-256 of abc");
	UNIT_OK(crypto_equal("abcd", "abcd", 4) && !crypto_equal("abcd", "abce", 4),
		"constant-time equal");
}

int main(void)
{
	test_format();
	test_bcrypt(4);
	test_bcrypt(11); /* the default cost, once */
	test_hmac();
	return unit_done();
}
