/*
 * NAME
 *	crypto - hashing, HMAC and randomness through OpenSSL libcrypto
 * DESCRIPTION
 *	Thin wrappers so the rest of postroom names what it does
 *	(crypto_hmac_sha256) rather than how (EVP_*).
 * NEVER
 *	compares secrets with memcmp; uses a non-cryptographic RNG.
 */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"

void crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
		log_panic("EVP_Digest(sha256) failed");
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) == NULL)
		log_panic("HMAC(sha256) failed");
}

int crypto_equal(const void *a, const void *b, size_t len) { return CRYPTO_memcmp(a, b, len) == 0; }

void crypto_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int crypto_random(void *out, size_t len) { return RAND_bytes(out, (int)len) == 1 ? 0 : -1; }

void crypto_wipe(void *p, size_t len) { OPENSSL_cleanse(p, len); }
