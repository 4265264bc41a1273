/*
 * NAME
 *	apikey - API key primitives
 * DESCRIPTION
 *	A key is "pr_" followed by 40 base62 characters drawn by rejection
 *	sampling from OpenSSL's RAND_bytes (about 238 bits). The "pr_" tag
 *	lets secret scanners spot a leaked key; 43 characters stay under
 *	bcrypt's 72-byte limit. The 12 characters after the tag are the
 *	lookup prefix stored in clear; the whole key is stored only as a
 *	bcrypt ($2b$) hash made with libxcrypt.
 * NEVER
 *	logs a key; runs more than one bcrypt per verification; compares with
 *	memcmp.
 */
#include "apikey.h"

#include <crypt.h>
#include <string.h>

#include "crypto.h"

static const char apikey_alphabet[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int apikey_generate(char out[APIKEY_LEN + 1])
{
	unsigned char rnd[64];
	size_t n = 0, i;

	memcpy(out, APIKEY_TAG, APIKEY_TAG_LEN);
	while (n < APIKEY_BODY_LEN) {
		if (crypto_random(rnd, sizeof(rnd)) < 0)
			return -1;
		for (i = 0; i < sizeof(rnd) && n < APIKEY_BODY_LEN; i++)
			if (rnd[i] < 248) /* 248 = 4 * 62: no modulo bias */
				out[APIKEY_TAG_LEN + n++] = apikey_alphabet[rnd[i] % 62];
	}
	out[APIKEY_LEN] = '\0';
	crypto_wipe(rnd, sizeof(rnd));
	return 0;
}

int apikey_well_formed(const char *key)
{
	size_t i;

	if (strncmp(key, APIKEY_TAG, APIKEY_TAG_LEN) != 0 || strlen(key) != APIKEY_LEN)
		return 0;
	for (i = APIKEY_TAG_LEN; i < APIKEY_LEN; i++)
		if (strchr(apikey_alphabet, key[i]) == NULL)
			return 0;
	return 1;
}

int apikey_prefix(const char *key, char out[APIKEY_PREFIX_LEN + 1])
{
	if (!apikey_well_formed(key))
		return -1;
	memcpy(out, key + APIKEY_TAG_LEN, APIKEY_PREFIX_LEN);
	out[APIKEY_PREFIX_LEN] = '\0';
	return 0;
}

int apikey_hash(const char *key, int cost, char out[APIKEY_HASH_MAX])
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data data;
	const char *h;

	if (crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	memset(&data, 0, sizeof(data));
	h = crypt_r(key, salt, &data);
	if (h == NULL || h[0] == '*' || strlen(h) >= APIKEY_HASH_MAX) {
		crypto_wipe(&data, sizeof(data));
		return -1;
	}
	strcpy(out, h);
	crypto_wipe(&data, sizeof(data));
	return 0;
}

int apikey_verify(const char *key, const char *hash)
{
	struct crypt_data data;
	const char *h;
	size_t n = strlen(hash);
	int ok;

	if (strncmp(hash, "$2b$", 4) != 0 || n >= APIKEY_HASH_MAX)
		return 0;
	memset(&data, 0, sizeof(data));
	h = crypt_r(key, hash, &data);
	ok = h != NULL && h[0] != '*' && strlen(h) == n && crypto_equal(h, hash, n);
	crypto_wipe(&data, sizeof(data));
	return ok;
}
