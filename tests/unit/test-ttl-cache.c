/* test-ttl-cache - lib/ttl_cache: per-entry times to live, nothing kept
 * for ttl <= 0, values copied, the bound (expired entries go first, then
 * all), clear. Time is passed in, so no test sleeps. */
#include <stdlib.h>

#include "ttl_cache.h"
#include "unit.h"

/* one step of a table: put (ttl >= 0) or get (ttl < 0) at time now */
struct step {
	const char *key;
	int val, ttl;
	time_t now;
	int want_hit, want_val; /* gets only */
	const char *what;
};

static const struct step steps[] = {
	{ "a", 1, 10, 100, 0, 0, "put a for 10 s" },
	{ "a", 0, -1, 100, 1, 1, "a found at once" },
	{ "a", 0, -1, 109, 1, 1, "a found 9 s later" },
	{ "a", 0, -1, 110, 0, 0, "a gone after its 10 s" },
	{ "b", 2, 0, 100, 0, 0, "put b for 0 s" },
	{ "b", 0, -1, 100, 0, 0, "ttl 0 keeps nothing" },
	{ "c", 3, 60, 100, 0, 0, "put c (found) for 60 s" },
	{ "d", 4, 5, 100, 0, 0, "put d (unknown) for 5 s" },
	{ "d", 0, -1, 106, 0, 0, "d's short time is its own" },
	{ "c", 0, -1, 106, 1, 3, "c still there" },
	{ "c", 5, 60, 107, 0, 0, "put c again with another value" },
	{ "c", 0, -1, 107, 1, 5, "the new value replaces the old" },
};

static void test_table(void)
{
	struct ttl_cache *c = ttl_cache_new(sizeof(int), 100);
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct step *s = &steps[i];
		int v = -1, hit;

		if (s->ttl >= 0) {
			ttl_cache_put(c, s->key, &s->val, s->ttl, s->now);
			continue;
		}
		hit = ttl_cache_get(c, s->key, &v, s->now);
		UNIT_OK(hit == s->want_hit && (!hit || v == s->want_val), "%s", s->what);
	}
	ttl_cache_free(&c);
	UNIT_OK(c == NULL, "free sets the pointer to NULL");
}

/* fill - three entries: "old" expiring at 101, "x" and "y" at 160 */
static void fill(struct ttl_cache *c)
{
	int v = 7;

	ttl_cache_put(c, "old", &v, 1, 100);
	ttl_cache_put(c, "x", &v, 60, 100);
	ttl_cache_put(c, "y", &v, 60, 100);
}

static void test_bound(void)
{
	struct ttl_cache *c = ttl_cache_new(sizeof(int), 3);
	int v = 7;

	fill(c);
	ttl_cache_put(c, "z", &v, 60, 105); /* full: the expired "old" makes room */
	UNIT_OK(ttl_cache_get(c, "x", &v, 105) && ttl_cache_get(c, "y", &v, 105) &&
			ttl_cache_get(c, "z", &v, 105),
		"full: an expired entry goes, the fresh ones stay");
	ttl_cache_clear(c);
	UNIT_OK(!ttl_cache_get(c, "x", &v, 105) && !ttl_cache_get(c, "z", &v, 105),
		"clear empties it");
	fill(c);
	ttl_cache_put(c, "z", &v, 60, 100); /* full, nothing expired: emptied */
	UNIT_OK(ttl_cache_get(c, "z", &v, 100) && !ttl_cache_get(c, "x", &v, 100) &&
			!ttl_cache_get(c, "y", &v, 100),
		"full of fresh entries: emptied, then kept");
	ttl_cache_free(&c);
}

/* a lookup that read its source before a clear must not store after it */
static void test_generation(void)
{
	struct ttl_cache *c = ttl_cache_new(sizeof(int), 8);
	unsigned long g = ttl_cache_generation(c);
	int v = 7;

	UNIT_OK(ttl_cache_put_if(c, "a", &v, 60, 100, g) == 1 && ttl_cache_get(c, "a", &v, 100),
		"put_if with the current generation stores");
	g = ttl_cache_generation(c);
	ttl_cache_clear(c); /* a NOTIFY while the lookup was asking the database */
	UNIT_OK(ttl_cache_put_if(c, "a", &v, 60, 100, g) == 0 && !ttl_cache_get(c, "a", &v, 100),
		"put_if after a clear since the generation was taken stores nothing");
	UNIT_OK(ttl_cache_put_if(c, "a", &v, 60, 100, ttl_cache_generation(c)) == 1,
		"a lookup begun after the clear stores again");
	UNIT_OK(ttl_cache_put_if(c, "b", &v, 0, 100, ttl_cache_generation(c)) == 0,
		"put_if with ttl 0 stores nothing");
	ttl_cache_free(&c);
}

int main(void)
{
	test_table();
	test_bound();
	test_generation();
	return unit_done();
}
