/* cache.h - a thread-safe string-keyed cache of small fixed-size values
 * with a time to live per entry and a bound on the number of entries. */
#ifndef POSTROOM_POLICYD_CACHE_H
#define POSTROOM_POLICYD_CACHE_H

#include <stddef.h>
#include <time.h>

struct cache;

/* cache_new - values of vsize bytes, at most max entries */
struct cache *cache_new(size_t vsize, size_t max);
void cache_free(struct cache **c);
/* cache_get - 1 and *val filled when key is present and fresh at now */
int cache_get(struct cache *c, const char *key, void *val, time_t now);
/* cache_put - store (a copy of) val for ttl seconds; ttl <= 0 stores nothing */
void cache_put(struct cache *c, const char *key, const void *val, int ttl, time_t now);
/* cache_clear - drop every entry (a NOTIFY said the data changed) */
void cache_clear(struct cache *c);
size_t cache_count(struct cache *c);

#endif
