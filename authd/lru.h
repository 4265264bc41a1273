/* lru.h - a bounded hash table keyed by 32-byte digests (HMACs), with
 * least-recently-used eviction. Not thread-safe: callers lock. */
#ifndef POSTROOM_AUTHD_LRU_H
#define POSTROOM_AUTHD_LRU_H

#include <stddef.h>

#define LRU_KEY_LEN 32

struct lru_entry {
	unsigned char key[LRU_KEY_LEN];
	struct lru_entry *hnext;       /* hash chain */
	struct lru_entry *prev, *next; /* recency list, head = newest */
};

/* Callers embed struct lru_entry first in their own entry struct; the
 * table frees evicted or removed entries with free_fn. */
struct lru {
	struct lru_entry **buckets;
	size_t nbuckets, count, max;
	struct lru_entry *head, *tail;
	void (*free_fn)(struct lru_entry *e);
};

/* lru_init - max entries (0: the table stays empty); free_fn frees one */
void lru_init(struct lru *t, size_t max, void (*free_fn)(struct lru_entry *));
void lru_deinit(struct lru *t);
/* lru_get - the entry for key, made most recent; NULL when absent */
struct lru_entry *lru_get(struct lru *t, const unsigned char key[LRU_KEY_LEN]);
/* lru_put - insert e (its key set by the caller), replacing an entry with
 * the same key and evicting the least recent one when full. With max 0, e
 * is freed at once. */
void lru_put(struct lru *t, struct lru_entry *e);
/* lru_remove - unlink and free e */
void lru_remove(struct lru *t, struct lru_entry *e);
/* lru_clear - remove everything */
void lru_clear(struct lru *t);
/* lru_oldest - the least recently used entry (for expiry sweeps), or NULL */
static inline struct lru_entry *lru_oldest(struct lru *t) { return t->tail; }

#endif
