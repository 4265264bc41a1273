/*
 * NAME
 *	cache - small TTL cache for lookup results and per-message verdicts
 * DESCRIPTION
 *	Chained hash table under one mutex; values are copied in and out,
 *	so no pointer into the cache ever escapes the lock. When full,
 *	expired entries are swept; if it is still full the table is
 *	emptied (a cache, never a source of truth).
 */
#include "cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct cache_entry {
	struct cache_entry *next;
	time_t expires;
	char *key;
	unsigned char val[];
};

struct cache {
	pthread_mutex_t lock;
	size_t vsize, max, count, nbuckets;
	struct cache_entry **buckets;
};

static size_t cache_hash(const struct cache *c, const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)(h % c->nbuckets);
}

struct cache *cache_new(size_t vsize, size_t max)
{
	struct cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	c->vsize = vsize;
	c->max = max > 0 ? max : 1;
	c->nbuckets = c->max < 64 ? 64 : c->max;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

/* cache_sweep - drop entries expired at now, or all (lock held) */
static void cache_sweep(struct cache *c, time_t now, int all)
{
	size_t i;

	for (i = 0; i < c->nbuckets; i++) {
		struct cache_entry **pp = &c->buckets[i];

		while (*pp != NULL) {
			struct cache_entry *e = *pp;

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

void cache_free(struct cache **cp)
{
	if (*cp == NULL)
		return;
	cache_sweep(*cp, 0, 1);
	free((*cp)->buckets);
	pthread_mutex_destroy(&(*cp)->lock);
	xfree(cp);
}

int cache_get(struct cache *c, const char *key, void *val, time_t now)
{
	struct cache_entry *e;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	for (e = c->buckets[cache_hash(c, key)]; e != NULL; e = e->next)
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

void cache_put(struct cache *c, const char *key, const void *val, int ttl, time_t now)
{
	size_t h;
	struct cache_entry *e;

	if (ttl <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	h = cache_hash(c, key);
	for (e = c->buckets[h]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		if (c->count >= c->max) {
			cache_sweep(c, now, 0);
			if (c->count >= c->max)
				cache_sweep(c, now, 1);
		}
		e = xmalloc(sizeof(*e) + c->vsize);
		e->key = xstrdup(key);
		e->next = c->buckets[h];
		c->buckets[h] = e;
		c->count++;
	}
	memcpy(e->val, val, c->vsize);
	e->expires = now + ttl;
	pthread_mutex_unlock(&c->lock);
}

void cache_clear(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	cache_sweep(c, 0, 1);
	pthread_mutex_unlock(&c->lock);
}

size_t cache_count(struct cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->count;
	pthread_mutex_unlock(&c->lock);
	return n;
}
