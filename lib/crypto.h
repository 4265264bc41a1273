/* crypto.h - SHA-256, HMAC-SHA256, constant-time compare, hex. */
#ifndef POSTROOM_CRYPTO_H
#define POSTROOM_CRYPTO_H

#include <stddef.h>

#define SHA256_LEN 32

void crypto_sha256(const void *data, size_t len, unsigned char out[SHA256_LEN]);
void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			unsigned char out[SHA256_LEN]);
/* crypto_equal - constant-time comparison of two equal-length buffers */
int crypto_equal(const void *a, const void *b, size_t len);
/* crypto_hex - lower-case hex of len bytes into out (2*len+1 bytes) */
void crypto_hex(const unsigned char *in, size_t len, char *out);
/* crypto_random - fill with cryptographically secure bytes; -1 on failure */
int crypto_random(void *out, size_t len);
/* crypto_wipe - erase key material */
void crypto_wipe(void *p, size_t len);

#endif
