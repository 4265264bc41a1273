/* ttl_cache.h - a thread-safe string-keyed cache of small fixed-size values
 * with a time to live per entry and a bound on the number of entries.
 * Used by the rules lookups (rules_pg.c) and policyd's verdict cache. */
#ifndef POSTROOM_TTL_CACHE_H
#define POSTROOM_TTL_CACHE_H

#include <stddef.h>
#include <time.h>

struct ttl_cache;

/* ttl_cache_new - values of vsize bytes, at most max entries */
struct ttl_cache *ttl_cache_new(size_t vsize, size_t max);
void ttl_cache_free(struct ttl_cache **c);
/* ttl_cache_get - 1 and *val filled when key is present and fresh at now */
int ttl_cache_get(struct ttl_cache *c, const char *key, void *val, time_t now);
/* ttl_cache_put - store (a copy of) val for ttl seconds; ttl <= 0 stores nothing */
void ttl_cache_put(struct ttl_cache *c, const char *key, const void *val, int ttl, time_t now);
/* ttl_cache_clear - drop every entry (a NOTIFY said the data changed) and
 * start a new generation */
void ttl_cache_clear(struct ttl_cache *c);
/* ttl_cache_generation - the current generation: take it before reading
 * the source of truth, for ttl_cache_put_if */
unsigned long ttl_cache_generation(struct ttl_cache *c);
/* ttl_cache_put_if - as ttl_cache_put, but only while no clear happened
 * since generation was taken; 1 stored, 0 not */
int ttl_cache_put_if(struct ttl_cache *c, const char *key, const void *val, int ttl, time_t now,
		     unsigned long generation);

#endif
