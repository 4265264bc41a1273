/* apikey.h - API keys: generation, prefix, bcrypt hash and verification. */
#ifndef POSTROOM_APIKEY_H
#define POSTROOM_APIKEY_H

#include <stddef.h>

#define APIKEY_TAG "pr_"
#define APIKEY_TAG_LEN 3
#define APIKEY_BODY_LEN 40                            /* base62 characters */
#define APIKEY_LEN (APIKEY_TAG_LEN + APIKEY_BODY_LEN) /* 43 */
#define APIKEY_PREFIX_LEN 12                          /* lookup prefix */
#define APIKEY_HASH_MAX 128

/* apikey_generate - "pr_" + 40 base62 chars from the OS's randomness;
 * out holds APIKEY_LEN+1 bytes. 0 ok, -1 when no randomness. */
int apikey_generate(char out[APIKEY_LEN + 1]);
/* apikey_well_formed - right tag, length and alphabet */
int apikey_well_formed(const char *key);
/* apikey_prefix - the 12 characters after "pr_"; -1 when malformed */
int apikey_prefix(const char *key, char out[APIKEY_PREFIX_LEN + 1]);
/* apikey_hash - bcrypt ($2b$) of key at cost; -1 on failure */
int apikey_hash(const char *key, int cost, char out[APIKEY_HASH_MAX]);
/* apikey_verify - exactly one bcrypt; 1 match, 0 no match (also for a
 * malformed hash). Constant-time comparison. */
int apikey_verify(const char *key, const char *hash);

#endif
