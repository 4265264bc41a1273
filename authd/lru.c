/*
 * NAME
 *	lru - bounded digest-keyed hash table with LRU eviction
 * DESCRIPTION
 *	Chained hash table sized to a power of two at least the maximum
 *	entry count, plus a doubly linked recency list. Keys are HMAC or
 *	SHA-256 outputs, uniformly distributed, so the first bytes serve as
 *	the hash (no hash flooding: an attacker cannot choose HMAC outputs).
 * NEVER
 *	grows beyond max entries.
 */
#include "lru.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static size_t lru_bucket(const struct lru *t, const unsigned char *key)
{
	size_t h;

	memcpy(&h, key, sizeof(h));
	return h & (t->nbuckets - 1);
}

void lru_init(struct lru *t, size_t max, void (*free_fn)(struct lru_entry *))
{
	memset(t, 0, sizeof(*t));
	t->max = max;
	t->free_fn = free_fn;
	t->nbuckets = 16;
	while (t->nbuckets < max && t->nbuckets < ((size_t)1 << 24))
		t->nbuckets <<= 1;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
}

void lru_deinit(struct lru *t)
{
	lru_clear(t);
	xfree(&t->buckets);
}

/* lru_unlink_list - take e out of the recency list */
static void lru_unlink_list(struct lru *t, struct lru_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_link_head(struct lru *t, struct lru_entry *e)
{
	e->prev = NULL;
	e->next = t->head;
	if (t->head)
		t->head->prev = e;
	t->head = e;
	if (t->tail == NULL)
		t->tail = e;
}

struct lru_entry *lru_get(struct lru *t, const unsigned char key[LRU_KEY_LEN])
{
	struct lru_entry *e;

	for (e = t->buckets[lru_bucket(t, key)]; e; e = e->hnext)
		if (memcmp(e->key, key, LRU_KEY_LEN) == 0)
			break;
	if (e && e != t->head) {
		lru_unlink_list(t, e);
		lru_link_head(t, e);
	}
	return e;
}

void lru_remove(struct lru *t, struct lru_entry *e)
{
	struct lru_entry **pp = &t->buckets[lru_bucket(t, e->key)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink_list(t, e);
	t->count--;
	t->free_fn(e);
}

void lru_put(struct lru *t, struct lru_entry *e)
{
	struct lru_entry *old;
	size_t b;

	if (t->max == 0) {
		t->free_fn(e);
		return;
	}
	if ((old = lru_get(t, e->key)) != NULL)
		lru_remove(t, old);
	while (t->count >= t->max && t->tail)
		lru_remove(t, t->tail);
	b = lru_bucket(t, e->key);
	e->hnext = t->buckets[b];
	t->buckets[b] = e;
	lru_link_head(t, e);
	t->count++;
}

void lru_clear(struct lru *t)
{
	while (t->tail)
		lru_remove(t, t->tail);
}
