/*
 * NAME
 *	mac - HMAC-SHA256 with precomputed key states
 * DESCRIPTION
 *	RFC 2104 over EVP: SHA-256 contexts that have absorbed key XOR ipad
 *	and key XOR opad are made once; each MAC copies them into a
 *	thread-local scratch context. Output equals HMAC(EVP_sha256()).
 * NEVER
 *	keeps the key itself (only the hash states derived from it).
 */
#include "mac.h"

#include <openssl/evp.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "xalloc.h"

struct authd_mac {
	EVP_MD_CTX *inner, *outer;
};

static __thread EVP_MD_CTX *authd_mac_scratch;

static EVP_MD_CTX *authd_mac_state(const unsigned char *key, unsigned char pad)
{
	unsigned char block[64];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t i;

	for (i = 0; i < sizeof(block); i++)
		block[i] = key[i] ^ pad;
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, block, sizeof(block)) != 1)
		log_panic("authd_mac: SHA-256 unavailable");
	crypto_wipe(block, sizeof(block));
	return c;
}

struct authd_mac *authd_mac_new(const void *key, size_t keylen)
{
	struct authd_mac *m = xcalloc(1, sizeof(*m));
	unsigned char k[64];

	memset(k, 0, sizeof(k));
	if (keylen > sizeof(k))
		crypto_sha256(key, keylen, k);
	else
		memcpy(k, key, keylen);
	m->inner = authd_mac_state(k, 0x36);
	m->outer = authd_mac_state(k, 0x5c);
	crypto_wipe(k, sizeof(k));
	return m;
}

void authd_mac_free(struct authd_mac **mp)
{
	if (*mp == NULL)
		return;
	EVP_MD_CTX_free((*mp)->inner);
	EVP_MD_CTX_free((*mp)->outer);
	xfree(mp);
}

void authd_mac_parts(const struct authd_mac *m, const void *const *parts, const size_t *lens,
		     size_t n, unsigned char out[AUTHD_MAC_LEN])
{
	unsigned char ih[AUTHD_MAC_LEN];
	unsigned int len;
	size_t i;
	int ok;

	if (authd_mac_scratch == NULL && (authd_mac_scratch = EVP_MD_CTX_new()) == NULL)
		log_panic("authd_mac: out of memory");
	ok = EVP_MD_CTX_copy_ex(authd_mac_scratch, m->inner);
	for (i = 0; i < n && ok; i++)
		ok = EVP_DigestUpdate(authd_mac_scratch, parts[i], lens[i]);
	ok = ok && EVP_DigestFinal_ex(authd_mac_scratch, ih, &len) &&
	     EVP_MD_CTX_copy_ex(authd_mac_scratch, m->outer) &&
	     EVP_DigestUpdate(authd_mac_scratch, ih, sizeof(ih)) &&
	     EVP_DigestFinal_ex(authd_mac_scratch, out, &len);
	if (!ok)
		log_panic("authd_mac: SHA-256 failed");
	crypto_wipe(ih, sizeof(ih));
}
