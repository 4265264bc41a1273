/*
 * NAME
 *	ttl_cache - small TTL cache for lookup results and per-message verdicts
 * DESCRIPTION
 *	Chained hash table under one mutex; values are copied in and out,
 *	so no pointer into the cache ever escapes the lock. When full,
 *	expired entries are swept; if it is still full the table is
 *	emptied (a cache, never a source of truth). Every clear starts a new
 *	generation: a caller that read the database before a clear can
 *	store its answer with ttl_cache_put_if and the generation it saw
 *	before the read, so an answer older than the clear is never stored.
 * NEVER
 *	lets a pointer into the table escape the lock.
 * PARAMETERS
 *	none: the caller gives the sizes and times to live.
 */
#include "ttl_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct ttl_cache_entry {
	struct ttl_cache_entry *next;
	time_t expires;
	char *key;
	unsigned char val[];
};

struct ttl_cache {
	pthread_mutex_t lock;
	size_t vsize, max, count, nbuckets;
	unsigned long generation; /* bumped by every clear */
	struct ttl_cache_entry **buckets;
};

static size_t ttl_cache_hash(const struct ttl_cache *c, const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)(h % c->nbuckets);
}

struct ttl_cache *ttl_cache_new(size_t vsize, size_t max)
{
	struct ttl_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	c->vsize = vsize;
	c->max = max > 0 ? max : 1;
	c->nbuckets = c->max < 64 ? 64 : c->max;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

/* ttl_cache_sweep - drop entries expired at now, or all (lock held) */
static void ttl_cache_sweep(struct ttl_cache *c, time_t now, int all)
{
	size_t i;

	for (i = 0; i < c->nbuckets; i++) {
		struct ttl_cache_entry **pp = &c->buckets[i];

		while (*pp != NULL) {
			struct ttl_cache_entry *e = *pp;

			if (all || e->expires <= now) {
				*pp = e->next;
				free(e->key);
				free(e);
				c->count--;
			} else
				pp = &e->next;
		}
	}
}

void ttl_cache_free(struct ttl_cache **cp)
{
	if (*cp == NULL)
		return;
	ttl_cache_sweep(*cp, 0, 1);
	free((*cp)->buckets);
	pthread_mutex_destroy(&(*cp)->lock);
	xfree(cp);
}

int ttl_cache_get(struct ttl_cache *c, const char *key, void *val, time_t now)
{
	struct ttl_cache_entry *e;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	for (e = c->buckets[ttl_cache_hash(c, key)]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0) {
			if (e->expires > now) {
				memcpy(val, e->val, c->vsize);
				hit = 1;
			}
			break;
		}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

/* ttl_cache_store - store (a copy of) val for ttl seconds (lock held) */
static void ttl_cache_store(struct ttl_cache *c, const char *key, const void *val, int ttl,
			    time_t now)
{
	size_t h = ttl_cache_hash(c, key);
	struct ttl_cache_entry *e;

	for (e = c->buckets[h]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		if (c->count >= c->max) {
			ttl_cache_sweep(c, now, 0);
			if (c->count >= c->max)
				ttl_cache_sweep(c, now, 1);
		}
		e = xmalloc(sizeof(*e) + c->vsize);
		e->key = xstrdup(key);
		e->next = c->buckets[h];
		c->buckets[h] = e;
		c->count++;
	}
	memcpy(e->val, val, c->vsize);
	e->expires = now + ttl;
}

void ttl_cache_put(struct ttl_cache *c, const char *key, const void *val, int ttl, time_t now)
{
	if (ttl <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	ttl_cache_store(c, key, val, ttl, now);
	pthread_mutex_unlock(&c->lock);
}

unsigned long ttl_cache_generation(struct ttl_cache *c)
{
	unsigned long g;

	pthread_mutex_lock(&c->lock);
	g = c->generation;
	pthread_mutex_unlock(&c->lock);
	return g;
}

int ttl_cache_put_if(struct ttl_cache *c, const char *key, const void *val, int ttl, time_t now,
		     unsigned long generation)
{
	int stored = 0;

	if (ttl <= 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (c->generation == generation) {
		ttl_cache_store(c, key, val, ttl, now);
		stored = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return stored;
}

void ttl_cache_clear(struct ttl_cache *c)
{
	pthread_mutex_lock(&c->lock);
	ttl_cache_sweep(c, 0, 1);
	c->generation++;
	pthread_mutex_unlock(&c->lock);
}
