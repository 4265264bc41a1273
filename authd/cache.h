/* cache.h - verified-result cache of authd: HMAC-keyed, bounded (LRU),
 * with a TTL, purged by key id, user id or entirely. Thread-safe. */
#ifndef POSTROOM_AUTHD_CACHE_H
#define POSTROOM_AUTHD_CACHE_H

#include <stddef.h>

#include "lru.h"

#define AUTHD_ID_MAX 40 /* a UUID in text form fits */

/* What a successful verification proved (never the key itself). */
struct authd_cache_val {
	char user_id[AUTHD_ID_MAX];
	char key_id[AUTHD_ID_MAX];
	char address[256];    /* canonical login address */
	long long expires_at; /* key expiry, Unix seconds; 0 = never */
};

struct authd_cache;

/* authd_cache_new - max entries (0 disables caching), ttl seconds; secret
 * of secret_len bytes keys the HMAC (copied). */
struct authd_cache *authd_cache_new(size_t max, double ttl, const void *secret, size_t secret_len);
void authd_cache_free(struct authd_cache **c);
/* authd_cache_reconfigure - new size and TTL; drops every entry */
void authd_cache_reconfigure(struct authd_cache *c, size_t max, double ttl);

/* authd_cache_key - HMAC-SHA256(secret, address NUL key) */
void authd_cache_key(const struct authd_cache *c, const char *address, const char *key,
		     unsigned char out[LRU_KEY_LEN]);
/* authd_cache_lookup - 1 and *val_r filled when a live entry exists (now
 * is monotonic seconds); 0 otherwise. An entry past its TTL is dropped. */
int authd_cache_lookup(struct authd_cache *c, const unsigned char key[LRU_KEY_LEN], double now,
		       struct authd_cache_val *val_r);
/* authd_cache_epoch - a counter bumped by every purge. A verification
 * takes it before reading the database and passes it to insert, which
 * refuses to cache when a purge happened meanwhile (the row read may be
 * the one just revoked). */
unsigned long authd_cache_epoch(struct authd_cache *c);
/* authd_cache_insert - cache val; 1 stored, 0 refused (epoch moved on or
 * caching disabled) */
int authd_cache_insert(struct authd_cache *c, const unsigned char key[LRU_KEY_LEN],
		       const struct authd_cache_val *val, unsigned long epoch, double now);
/* Purges: each returns the number of entries dropped and bumps the epoch */
size_t authd_cache_purge_key(struct authd_cache *c, const char *key_id);
size_t authd_cache_purge_user(struct authd_cache *c, const char *user_id);
size_t authd_cache_flush(struct authd_cache *c);
size_t authd_cache_count(struct authd_cache *c);
/* authd_cache_ttl - the current TTL in seconds (a reload may change it) */
double authd_cache_ttl(struct authd_cache *c);

#endif
