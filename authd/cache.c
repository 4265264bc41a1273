/*
 * NAME
 *	cache - the verified-result cache of postroom-authd
 * DESCRIPTION
 *	Maps HMAC-SHA256(secret, address NUL key) to what a successful
 *	verification proved: user id, key id, canonical address, expiry.
 *	Only successes enter it. Entries live at most the TTL, are evicted
 *	least-recently-used beyond the size limit, and are purged by key or
 *	user id when PostgreSQL notifies a change (pgsql.c) and entirely
 *	when that notification channel was lost. Purges bump an epoch so a
 *	verification that read the database before a purge cannot re-insert
 *	a stale result afterwards. One mutex: lookups are O(1), purges by id
 *	scan the table (they are rare: a revocation, a scope change).
 * NEVER
 *	stores or logs the key, or a failure.
 * CONFIGURATION
 *	authd.cache_size, authd.cache_ttl, security.hmac_secret
 */
#include "cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "mac.h"
#include "xalloc.h"

struct authd_cache_entry {
	struct lru_entry lru; /* first */
	struct authd_cache_val val;
	double born;
};

struct authd_cache {
	pthread_mutex_t lock;
	struct lru table;
	double ttl;
	unsigned long epoch;
	struct authd_mac *mac;
};

static void authd_cache_entry_free(struct lru_entry *e)
{
	crypto_wipe(e, sizeof(struct authd_cache_entry));
	free(e);
}

struct authd_cache *authd_cache_new(size_t max, double ttl, const void *secret, size_t secret_len)
{
	struct authd_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	lru_init(&c->table, max, authd_cache_entry_free);
	c->ttl = ttl;
	c->mac = authd_mac_new(secret, secret_len);
	return c;
}

void authd_cache_free(struct authd_cache **cp)
{
	struct authd_cache *c = *cp;

	if (c == NULL)
		return;
	lru_deinit(&c->table);
	pthread_mutex_destroy(&c->lock);
	authd_mac_free(&c->mac);
	xfree(cp);
}

void authd_cache_reconfigure(struct authd_cache *c, size_t max, double ttl)
{
	pthread_mutex_lock(&c->lock);
	lru_deinit(&c->table);
	lru_init(&c->table, max, authd_cache_entry_free);
	c->ttl = ttl;
	c->epoch++;
	pthread_mutex_unlock(&c->lock);
}

void authd_cache_key(const struct authd_cache *c, const char *address, const char *key,
		     unsigned char out[LRU_KEY_LEN])
{
	const void *parts[3] = { address, "", key };
	size_t lens[3] = { strlen(address), 1, strlen(key) };

	authd_mac_parts(c->mac, parts, lens, 3, out);
}

int authd_cache_lookup(struct authd_cache *c, const unsigned char key[LRU_KEY_LEN], double now,
		       struct authd_cache_val *val_r)
{
	struct authd_cache_entry *e;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	e = (struct authd_cache_entry *)lru_get(&c->table, key);
	if (e && now - e->born >= c->ttl) {
		lru_remove(&c->table, &e->lru);
		e = NULL;
	}
	if (e) {
		*val_r = e->val;
		hit = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

unsigned long authd_cache_epoch(struct authd_cache *c)
{
	unsigned long e;

	pthread_mutex_lock(&c->lock);
	e = c->epoch;
	pthread_mutex_unlock(&c->lock);
	return e;
}

int authd_cache_insert(struct authd_cache *c, const unsigned char key[LRU_KEY_LEN],
		       const struct authd_cache_val *val, unsigned long epoch, double now)
{
	struct authd_cache_entry *e;
	int stored = 0;

	pthread_mutex_lock(&c->lock);
	if (epoch == c->epoch && c->table.max > 0 && c->ttl > 0) {
		e = xcalloc(1, sizeof(*e));
		memcpy(e->lru.key, key, LRU_KEY_LEN);
		e->val = *val;
		e->born = now;
		lru_put(&c->table, &e->lru);
		stored = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return stored;
}

/* authd_cache_purge_match - drop entries whose key id (or user id) is id */
static size_t authd_cache_purge_match(struct authd_cache *c, const char *id, int by_user)
{
	struct lru_entry *e, *next;
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (e = c->table.head; e; e = next) {
		struct authd_cache_entry *ce = (struct authd_cache_entry *)e;

		next = e->next;
		if (strcmp(by_user ? ce->val.user_id : ce->val.key_id, id) == 0) {
			lru_remove(&c->table, e);
			n++;
		}
	}
	c->epoch++;
	pthread_mutex_unlock(&c->lock);
	return n;
}

size_t authd_cache_purge_key(struct authd_cache *c, const char *key_id)
{
	return authd_cache_purge_match(c, key_id, 0);
}

size_t authd_cache_purge_user(struct authd_cache *c, const char *user_id)
{
	return authd_cache_purge_match(c, user_id, 1);
}

size_t authd_cache_flush(struct authd_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->table.count;
	lru_clear(&c->table);
	c->epoch++;
	pthread_mutex_unlock(&c->lock);
	return n;
}

double authd_cache_ttl(struct authd_cache *c)
{
	double ttl;

	pthread_mutex_lock(&c->lock);
	ttl = c->ttl;
	pthread_mutex_unlock(&c->lock);
	return ttl;
}

size_t authd_cache_count(struct authd_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->table.count;
	pthread_mutex_unlock(&c->lock);
	return n;
}
