/* test-authd.c - table-driven tests of authd's pure parts: protocol
 * parsing, base64, PLAIN/LOGIN, the LRU table, the verified-result cache,
 * the rate limiter with a fake clock, and the decision with a static key
 * store standing in for PostgreSQL. Expected values are written out by
 * hand (base64 strings from `printf ... | base64`). */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../authd/cache.h"
#include "../../authd/limiter.h"
#include "../../authd/mac.h"
#include "../../authd/proto.h"
#include "../../authd/verify.h"
#include "apikey.h"
#include "buf.h"
#include "crypto.h"
#include "log.h"
#include "xalloc.h"

static void test_split(void)
{
	char line[] = "AUTH\t1\tPLAIN\tservice=smtp\tx=a\001tb\0011c\tresp=";
	char *f[AUTHD_FIELDS_MAX];
	size_t n = authd_proto_split(line, f, AUTHD_FIELDS_MAX);
	struct authd_auth_req r;
	const char *err = NULL;

	UNIT_OK(n == 6, "split: 6 fields");
	UNIT_STR_EQ(f[4], "x=a\tb\001c", "split: \\001 escapes undone");
	UNIT_OK(authd_proto_parse_auth(f, n, &r, &err) == 0, "parse AUTH");
	UNIT_OK(r.id == 1 && r.mech == AUTHD_MECH_PLAIN, "id 1, PLAIN");
	UNIT_OK(r.resp == NULL, "empty resp= is no initial response (Exim)");
	UNIT_STR_EQ(r.service, "smtp", "service");
}

static void test_parse_auth(void)
{
	static const struct {
		const char *line;
		int rc;
		unsigned id;
		int mech;
		const char *rip, *resp;
		int secured;
	} t[] = {
		{ "AUTH\t7\tplain\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.1\tsecured\tresp=AA==",
		  0, 7, AUTHD_MECH_PLAIN, "192.0.2.1", "AA==", 1 },
		{ "AUTH\t8\tLogin\trip=::1", 0, 8, AUTHD_MECH_LOGIN, "::1", NULL, 0 },
		{ "AUTH\t9\tCRAM-MD5", 0, 9, AUTHD_MECH_NONE, "", NULL, 0 },
		{ "AUTH\t9\tPLAIN\tresp=QQ==\trip=10.0.0.1", 0, 9, AUTHD_MECH_PLAIN, "",
		  "QQ==", 0 },
		{ "AUTH\t0\tPLAIN", -1, 0, 0, NULL, NULL, 0 },
		{ "AUTH\t-1\tPLAIN", -1, 0, 0, NULL, NULL, 0 },
		{ "AUTH\t4294967296\tPLAIN", -1, 0, 0, NULL, NULL, 0 },
		{ "AUTH\t12x\tPLAIN", -1, 0, 0, NULL, NULL, 0 },
		{ "AUTH\t5", -1, 5, 0, NULL, NULL, 0 },
		{ "AUTH\t5\t", -1, 5, 0, NULL, NULL, 0 },
		{ "AUTH", -1, 0, 0, NULL, NULL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *line = xstrdup(t[i].line), *f[AUTHD_FIELDS_MAX];
		size_t n = authd_proto_split(line, f, AUTHD_FIELDS_MAX);
		struct authd_auth_req r;
		const char *err = NULL;
		int rc = authd_proto_parse_auth(f, n, &r, &err);

		UNIT_OK(rc == t[i].rc && r.id == t[i].id, "AUTH line %zu: rc %d id %u", i, rc,
			r.id);
		if (rc == 0) {
			UNIT_OK((int)r.mech == t[i].mech && strcmp(r.rip, t[i].rip) == 0 &&
					r.secured == t[i].secured,
				"AUTH line %zu: mech, rip, secured", i);
			UNIT_STR_EQ(r.resp, t[i].resp, "AUTH line %zu: resp (last)", i);
		}
		free(line);
	}
}

/* test_base64_error - found by tests/fuzz/authd.sh: a response that
 * goes bad after a few valid groups left its decoded bytes (part of a
 * password) in a buffer that server.c returns without freeing: leaked,
 * unwiped. The error leaves out as it was. */
static void test_base64_error(void)
{
	struct buf b = BUF_INIT;
	char *kept;

	UNIT_OK(authd_b64_decode("c2VjcmV0!!!!", &b) < 0, "base64 bad after 2 groups: -1");
	UNIT_OK(b.data == NULL && b.len == 0 && b.cap == 0,
		"base64 error: an empty buffer stays empty (nothing to free or leak)");
	buf_append_str(&b, "x");
	UNIT_OK(authd_b64_decode("c2VjcmV0YQ=!", &b) < 0, "base64 bad in the last group: -1");
	kept = b.data;
	UNIT_OK(b.len == 1 && kept[0] == 'x' && kept[1] == '\0' && b.cap > 7 &&
			memcmp(kept + 2, "\0\0\0\0\0", 5) == 0,
		"base64 error: what was there is kept, the bytes decoded are wiped");
	buf_free(&b);
}

/* test_plain_empty - found by tests/fuzz/authd.sh: "CONT <id>" with an
 * empty response to PLAIN decodes to no data at all (NULL, 0), which went
 * to memchr(NULL, ...): undefined behaviour (UBSan: "null pointer passed
 * as argument 1"). Refused as a PLAIN response without its NULs. */
static void test_plain_empty(void)
{
	struct buf b = BUF_INIT;
	const char *z = NULL, *u = NULL, *p = NULL, *err = NULL;

	UNIT_OK(authd_b64_decode("", &b) == 0 && b.data == NULL && b.len == 0,
		"empty CONT response: decoded to nothing");
	UNIT_OK(authd_sasl_plain(b.data, b.len, &z, &u, &p, &err) == -1 && err != NULL,
		"empty PLAIN response refused (%s)", err ? err : "");
}

static void test_base64(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *out;
		size_t len;
	} t[] = {
		{ "", 0, "", 0 },
		{ "dXNlckBleGFtcGxlLnRlc3Q=", 0, "user@example.test", 17 },
		{ "AHUAcA==", 0, "\0u\0p", 4 }, /* printf '\0u\0p' | base64 */
		{ "YWI=", 0, "ab", 2 },
		{ "YQ==", 0, "a", 1 },
		{ "YWJj", 0, "abc", 3 },
		{ "YQ=", -1, NULL, 0 },
		{ "Y===", -1, NULL, 0 },
		{ "YQ==YQ==", -1, NULL, 0 },
		{ "Y!Jj", -1, NULL, 0 },
		{ "YWJ", -1, NULL, 0 },
		{ "=", -1, NULL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b = BUF_INIT, e = BUF_INIT;
		int rc = authd_b64_decode(t[i].in, &b);

		UNIT_OK(rc == t[i].rc, "base64 decode '%s' -> %d", t[i].in, rc);
		if (rc == 0) {
			UNIT_OK(b.len == t[i].len && memcmp(buf_cstr(&b), t[i].out, t[i].len) == 0,
				"base64 decode '%s' content", t[i].in);
			authd_b64_encode(b.data, b.len, &e);
			UNIT_STR_EQ(buf_cstr(&e), t[i].in, "base64 round trip '%s'", t[i].in);
		}
		buf_free(&b);
		buf_free(&e);
	}
	test_base64_error();
	test_plain_empty();
}

static void test_plain(void)
{
	static const struct {
		const char *data;
		size_t len;
		int rc;
		const char *z, *u, *p;
	} t[] = {
		{ "\0u@x.test\0pw", 12, 0, "", "u@x.test", "pw" },
		{ "u@x.test\0u@x.test\0pw", 20, 0, "u@x.test", "u@x.test", "pw" },
		{ "u@x.test\0pw", 11, -1, NULL, NULL, NULL },
		{ "\0u\0p\0", 5, -1, NULL, NULL, NULL },
		{ "\0\0pw", 4, -1, NULL, NULL, NULL },
		{ "\0u\0", 3, -1, NULL, NULL, NULL },
		{ "", 0, -1, NULL, NULL, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct buf b = BUF_INIT;
		const char *z = NULL, *u = NULL, *p = NULL, *err = NULL;
		int rc;

		buf_append(&b, t[i].data, t[i].len);
		rc = authd_sasl_plain(b.data ? b.data : (char *)"", b.len, &z, &u, &p, &err);
		UNIT_OK(rc == t[i].rc, "PLAIN case %zu: rc %d", i, rc);
		if (rc == 0) {
			UNIT_STR_EQ(z, t[i].z, "PLAIN case %zu authzid", i);
			UNIT_STR_EQ(u, t[i].u, "PLAIN case %zu authcid", i);
			UNIT_STR_EQ(p, t[i].p, "PLAIN case %zu password", i);
		}
		buf_free(&b);
	}
	UNIT_OK(authd_sasl_text_ok("user", 4) && !authd_sasl_text_ok("", 0) &&
			!authd_sasl_text_ok("a\0b", 3),
		"LOGIN text: non-empty, no NUL");
	UNIT_OK(authd_proto_mech("pLaIn") == AUTHD_MECH_PLAIN &&
			authd_proto_mech("LOGIN") == AUTHD_MECH_LOGIN &&
			authd_proto_mech("XOAUTH2") == AUTHD_MECH_NONE,
		"mechanism names are case-insensitive");
}

static void test_escape(void)
{
	struct buf b = BUF_INIT;

	authd_proto_escape(&b, "a\tb\nc\001d");
	UNIT_STR_EQ(buf_cstr(&b), "a\001tb\001nc\0011d", "escape TAB, LF, \\001");
	buf_free(&b);
}

static void test_mac(void)
{
	static const char *const keys[] = {
		"k", "0123456789abcdef0123456789abcdef",
		"a key longer than the 64-byte block of SHA-256, hashed first as RFC 2104 says"
	};
	size_t i;

	for (i = 0; i < 3; i++) {
		struct authd_mac *m = authd_mac_new(keys[i], strlen(keys[i]));
		unsigned char a[32], b[32];
		const void *parts[3] = { "user@x.test", "", "pr_key" };
		size_t lens[3] = { 11, 1, 6 };

		authd_mac_parts(m, parts, lens, 3, a);
		crypto_hmac_sha256(keys[i], strlen(keys[i]), "user@x.test\0pr_key", 18, b);
		UNIT_OK(memcmp(a, b, 32) == 0, "mac equals OpenSSL HMAC-SHA256, key %zu bytes",
			strlen(keys[i]));
		authd_mac_free(&m);
	}
}

static void test_cache(void)
{
	struct authd_cache *c = authd_cache_new(2, 10, "0123456789abcdef0123456789abcdef", 32);
	unsigned char k1[32], k2[32], k3[32], k1b[32];
	struct authd_cache_val v, got;
	unsigned long ep;
	size_t n;
	int hit;

	memset(&v, 0, sizeof(v));
	authd_cache_key(c, "a@x.test", "pr_key1", k1);
	authd_cache_key(c, "a@x.test", "pr_key1", k1b);
	authd_cache_key(c, "a@x.test", "pr_key2", k2);
	authd_cache_key(c, "b@x.test", "pr_key1", k3);
	UNIT_OK(memcmp(k1, k1b, 32) == 0 && memcmp(k1, k2, 32) != 0 && memcmp(k1, k3, 32) != 0,
		"cache key: HMAC of address and key");
	strcpy(v.key_id, "K1");
	strcpy(v.user_id, "U1");
	strcpy(v.address, "a@x.test");
	ep = authd_cache_epoch(c);
	hit = authd_cache_insert(c, k1, &v, ep, 100);
	UNIT_OK(hit == 1, "insert");
	UNIT_OK(authd_cache_lookup(c, k1, 105, &got) == 1 && strcmp(got.key_id, "K1") == 0, "hit");
	UNIT_OK(authd_cache_lookup(c, k2, 105, &got) == 0, "other key: miss");
	UNIT_OK(authd_cache_lookup(c, k1, 110.5, &got) == 0, "past the TTL: miss");
	UNIT_OK(authd_cache_count(c) == 0, "expired entry dropped");

	authd_cache_insert(c, k1, &v, authd_cache_epoch(c), 200);
	strcpy(v.key_id, "K2");
	authd_cache_insert(c, k2, &v, authd_cache_epoch(c), 200);
	UNIT_OK(authd_cache_lookup(c, k1, 201, &got) == 1, "k1 used (most recent now)");
	strcpy(v.key_id, "K3");
	strcpy(v.user_id, "U2");
	authd_cache_insert(c, k3, &v, authd_cache_epoch(c), 202);
	UNIT_OK(authd_cache_count(c) == 2 && authd_cache_lookup(c, k2, 203, &got) == 0 &&
			authd_cache_lookup(c, k1, 203, &got) == 1,
		"LRU: the least recent (k2) evicted");

	ep = authd_cache_epoch(c);
	n = authd_cache_purge_key(c, "K1");
	hit = authd_cache_lookup(c, k1, 204, &got);
	UNIT_OK(n == 1 && hit == 0, "purge by key id");
	hit = authd_cache_insert(c, k1, &v, ep, 205);
	UNIT_OK(hit == 0, "insert refused when a purge happened since the lookup began");
	n = authd_cache_purge_user(c, "U2");
	UNIT_OK(n == 1 && authd_cache_count(c) == 0, "purge by user id");
	authd_cache_insert(c, k1, &v, authd_cache_epoch(c), 206);
	n = authd_cache_flush(c);
	UNIT_OK(n == 1 && authd_cache_count(c) == 0, "flush");
	authd_cache_reconfigure(c, 0, 10);
	UNIT_OK(authd_cache_insert(c, k1, &v, authd_cache_epoch(c), 207) == 0 &&
			authd_cache_count(c) == 0,
		"size 0: nothing cached");
	authd_cache_free(&c);
	UNIT_OK(c == NULL, "free clears the pointer");
}

static const struct authd_limits test_limits = {
	.backoff_initial = 1,
	.backoff_max = 30,
	.pair_failures = 5,
	.lockout_failures = 5,
	.failure_window = 900,
	.lockout_time = 900,
	.account_failures = 3,
	.account_window = 900,
	.account_trust = 86400,
	.max_entries = 1000,
};

/* test_check - the verdict for a new verification (in flight counted) */
static enum authd_limit_verdict test_check(struct authd_limiter *l, const char *ip,
					   const char *acct, double t)
{
	return authd_limiter_check(l, ip, acct, t, 1);
}

static void test_limiter_ip(void)
{
	struct authd_limits lim = test_limits;
	struct authd_limiter *l;
	const char *ip = "192.0.2.1", *acct = "a@x.test";
	double t = 1000;
	int i, locked = 0;

	lim.account_failures = 100; /* the account guard is tested below */
	l = authd_limiter_new(&lim);
	UNIT_OK(test_check(l, ip, acct, t) == AUTHD_LIMIT_PASS, "fresh IP passes");
	authd_limiter_failure(l, ip, acct, t);
	UNIT_OK(test_check(l, ip, acct, t + 0.5) == AUTHD_LIMIT_PAIR,
		"refused 1 s after a failure (for that account)");
	UNIT_OK(test_check(l, ip, "b@x.test", t + 0.5) == AUTHD_LIMIT_PASS,
		"the same IP may try another account at once (an office behind NAT)");
	UNIT_OK(test_check(l, ip, acct, t + 1.01) == AUTHD_LIMIT_PASS, "passes after 1 s");
	UNIT_OK(test_check(l, "192.0.2.2", acct, t + 0.5) == AUTHD_LIMIT_PASS,
		"another IP is not affected");
	authd_limiter_failure(l, ip, acct, t + 2);
	UNIT_OK(test_check(l, ip, acct, t + 3.9) == AUTHD_LIMIT_PAIR &&
			test_check(l, ip, acct, t + 4.01) == AUTHD_LIMIT_PASS,
		"second failure: 2 s");
	authd_limiter_failure(l, ip, acct, t + 5);
	UNIT_OK(test_check(l, ip, acct, t + 8.9) == AUTHD_LIMIT_PAIR &&
			test_check(l, ip, acct, t + 9.01) == AUTHD_LIMIT_PASS,
		"third failure: 4 s");
	authd_limiter_failure(l, ip, "c@x.test", t + 10);
	locked = authd_limiter_failure(l, ip, "d@x.test", t + 20);
	UNIT_OK(locked == 1, "fifth failure of the IP within 15 minutes locks it out");
	UNIT_OK(test_check(l, ip, "e@x.test", t + 20 + 899) == AUTHD_LIMIT_IP &&
			test_check(l, ip, "e@x.test", t + 20 + 900.1) == AUTHD_LIMIT_PASS,
		"locked out (all accounts) for 15 minutes, refusals do not extend it");
	authd_limiter_success(l, ip, acct, t + 1000);
	authd_limiter_failure(l, ip, acct, t + 1001);
	UNIT_OK(test_check(l, ip, acct, t + 1002.01) == AUTHD_LIMIT_PASS,
		"a success resets the back-off to 1 s");

	/* back-off stops doubling at the maximum */
	for (i = 0, t = 5000; i < 4; i++, t += 100)
		authd_limiter_failure(l, "192.0.2.9", "e@x.test", t);
	UNIT_OK(test_check(l, "192.0.2.9", "e@x.test", t - 100 + 7.9) == AUTHD_LIMIT_PAIR &&
			test_check(l, "192.0.2.9", "e@x.test", t - 100 + 8.01) == AUTHD_LIMIT_PASS,
		"fourth failure: 8 s");
	UNIT_OK(test_check(l, "", acct, 1) == AUTHD_LIMIT_PASS, "no rip: no per-IP limit");
	authd_limiter_free(&l);
}

/* the three limits with bursts: verifications in flight count */
static void test_limiter_in_flight(void)
{
	struct authd_limits lim = test_limits;
	struct authd_limiter *l;
	const char *ip = "192.0.2.1", *acct = "a@x.test";
	char a[32];
	int i;

	lim.lockout_failures = 8;
	lim.account_failures = 100; /* the account guard is tested below */
	l = authd_limiter_new(&lim);
	for (i = 0; i < 5; i++) {
		UNIT_OK(test_check(l, ip, acct, 10) == AUTHD_LIMIT_PASS, "attempt %d admitted",
			i + 1);
		authd_limiter_begin(l, ip, acct, 10);
	}
	UNIT_OK(test_check(l, ip, acct, 10) == AUTHD_LIMIT_PAIR,
		"6th concurrent attempt (IP, account) refused: 5 in flight");
	UNIT_OK(authd_limiter_check(l, ip, acct, 10, 0) == AUTHD_LIMIT_PASS,
		"an attempt that starts no verification (joins one) is not refused");
	UNIT_OK(authd_limiter_ip_in_flight(l, ip) == 5 && authd_limiter_ip_in_flight(l, "") == 0,
		"5 in flight from the IP");
	authd_limiter_end(l, ip, acct);
	UNIT_OK(test_check(l, ip, acct, 10) == AUTHD_LIMIT_PASS, "one ended (success): admitted");
	authd_limiter_failure(l, ip, acct, 10);
	UNIT_OK(authd_limiter_check(l, ip, acct, 10.5, 0) == AUTHD_LIMIT_PAIR,
		"its failure counts (back-off)");
	for (i = 0; i < 4; i++) {
		authd_limiter_end(l, ip, acct);
		authd_limiter_failure(l, ip, acct, 11);
	}
	UNIT_OK(authd_limiter_ip_in_flight(l, ip) == 0, "none in flight");
	UNIT_OK(test_check(l, ip, acct, 500) == AUTHD_LIMIT_PAIR, "5 failures: pair locked");
	UNIT_OK(test_check(l, ip, "b@x.test", 500) == AUTHD_LIMIT_PASS,
		"another account at that IP still passes");
	/* per IP: 5 failed + 3 in flight for other accounts reach 8 */
	for (i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "n%d@x.test", i);
		UNIT_OK(test_check(l, ip, a, 500) == AUTHD_LIMIT_PASS, "account %d admitted", i);
		authd_limiter_begin(l, ip, a, 500);
	}
	UNIT_OK(test_check(l, ip, "z@x.test", 500) == AUTHD_LIMIT_IP,
		"per-IP limit: 5 failures + 3 in flight refuse a 9th account");
	authd_limiter_free(&l);

	/* per account: 3 IPs in flight arm the guard */
	l = authd_limiter_new(&test_limits);
	authd_limiter_success(l, "192.0.2.50", acct, 1);
	for (i = 0; i < 3; i++) {
		snprintf(a, sizeof(a), "198.51.100.%d", i);
		UNIT_OK(test_check(l, a, acct, 2) == AUTHD_LIMIT_PASS, "IP %d admitted", i);
		authd_limiter_begin(l, a, acct, 2);
	}
	UNIT_OK(test_check(l, "198.51.100.9", acct, 2) == AUTHD_LIMIT_ACCOUNT,
		"4th IP at once: the account guard counts the 3 in flight");
	UNIT_OK(test_check(l, "192.0.2.50", acct, 2) == AUTHD_LIMIT_PASS,
		"the owner's known IP passes");
	authd_limiter_free(&l);
}

static void test_limiter_trusted(void)
{
	struct authd_limits lim = test_limits;
	struct authd_limiter *l;
	char a[32], *err = NULL;
	int i;
	static const char *const bad[] = { "10.0.0.0/33", "foo", "10.0.0.0/", "::1/129",
					   "1.2.3.4/x" };

	UNIT_OK(authd_limiter_nets_parse(" 10.0.0.0/8, 2001:db8::/32 192.0.2.7", &lim, &err) == 0 &&
			lim.ntrusted == 3,
		"three networks parsed");
	UNIT_OK(authd_limiter_trusted_ip(&lim, "10.200.1.1") &&
			authd_limiter_trusted_ip(&lim, "::ffff:10.1.1.1") &&
			authd_limiter_trusted_ip(&lim, "2001:db8:ffff::1") &&
			authd_limiter_trusted_ip(&lim, "192.0.2.7") &&
			!authd_limiter_trusted_ip(&lim, "192.0.2.8") &&
			!authd_limiter_trusted_ip(&lim, "11.0.0.1") &&
			!authd_limiter_trusted_ip(&lim, "2001:db9::1") &&
			!authd_limiter_trusted_ip(&lim, ""),
		"membership");
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		struct authd_limits x = test_limits;

		UNIT_OK(authd_limiter_nets_parse(bad[i], &x, &err) < 0, "refused: %s", bad[i]);
		free(err);
		err = NULL;
	}
	l = authd_limiter_new(&lim);
	for (i = 0; i < 20; i++) {
		snprintf(a, sizeof(a), "u%d@x.test", i);
		authd_limiter_failure(l, "10.1.2.3", a, 10);
	}
	UNIT_OK(test_check(l, "10.1.2.3", "new@x.test", 11) == AUTHD_LIMIT_PASS,
		"trusted network: 20 failures, no per-IP lockout");
	for (i = 0; i < 5; i++)
		authd_limiter_failure(l, "10.1.2.3", "new@x.test", 12);
	UNIT_OK(test_check(l, "10.1.2.3", "new@x.test", 100) == AUTHD_LIMIT_PAIR,
		"... the (IP, account) lockout still holds");
	authd_limiter_free(&l);
}

static void test_limiter_ip_key(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "192.0.2.1", "192.0.2.1" },
		{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
		{ "2001:db8:1:2:ffff::1", "2001:db8:1:2::/64" },
		{ "::ffff:192.0.2.7", "192.0.2.7" },
		{ "garbage", "garbage" },
	};
	size_t i;
	char out[64];

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		authd_limiter_ip_key(t[i].in, out, sizeof(out));
		UNIT_STR_EQ(out, t[i].out, "IP key of %s", t[i].in);
	}
}

static void test_limiter_account(void)
{
	struct authd_limiter *l = authd_limiter_new(&test_limits);
	const char *acct = "victim@x.test";

	authd_limiter_success(l, "192.0.2.50", acct, 100); /* the owner's IP */
	authd_limiter_failure(l, "198.51.100.1", acct, 200);
	authd_limiter_failure(l, "198.51.100.2", acct, 201);
	UNIT_OK(test_check(l, "198.51.100.3", acct, 202) == AUTHD_LIMIT_PASS,
		"two failures across IPs: not yet");
	authd_limiter_failure(l, "198.51.100.3", acct, 203);
	UNIT_OK(test_check(l, "198.51.100.4", acct, 204) == AUTHD_LIMIT_ACCOUNT,
		"guard armed: an unknown IP is refused");
	UNIT_OK(test_check(l, "192.0.2.50", acct, 204) == AUTHD_LIMIT_PASS,
		"the owner's known IP still passes");
	UNIT_OK(test_check(l, "198.51.100.4", "other@x.test", 204) == AUTHD_LIMIT_PASS,
		"other accounts unaffected");
	UNIT_OK(test_check(l, "198.51.100.4", acct, 200 + 901) == AUTHD_LIMIT_PASS,
		"guard ends with the window");
	authd_limiter_free(&l);
}

/* ---- decision with a static key store ---------------------------------- */

static char test_key[APIKEY_LEN + 1], test_hash[APIKEY_HASH_MAX], dummy_hash[APIKEY_HASH_MAX];
static int test_lookups, test_down, test_scope = 1, test_expired;

static int test_lookup(void *ctx, const char *prefix, const char *address, const char *scope,
		       struct authd_keyrow *row, char **error_r)
{
	char p[APIKEY_PREFIX_LEN + 1];

	(void)ctx;
	test_lookups++;
	if (test_down) {
		*error_r = xstrdup("database down");
		return -1;
	}
	apikey_prefix(test_key, p);
	if (strcmp(prefix, p) != 0 || strcmp(address, "a@x.test") != 0 ||
	    strcmp(scope, "smtp") != 0)
		return 0;
	strcpy(row->key_id, "K1");
	strcpy(row->user_id, "U1");
	strcpy(row->address, "a@x.test");
	strcpy(row->hash, test_hash);
	row->has_scope = test_scope;
	row->expired = test_expired;
	return 1;
}

static void test_verify(void)
{
	struct authd_backend be = { test_lookup, NULL };
	struct authd_verify_result r;
	char other[APIKEY_LEN + 1], wrong[APIKEY_LEN + 1];

	apikey_generate(test_key);
	apikey_generate(other);
	apikey_hash(test_key, 4, test_hash);
	apikey_hash(other, 4, dummy_hash);
	strcpy(wrong, test_key);
	wrong[APIKEY_LEN - 1] = wrong[APIKEY_LEN - 1] == 'a' ? 'b' : 'a'; /* same prefix */

	authd_verify(&be, dummy_hash, "a@x.test", test_key, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_OK && r.bcrypts == 1 && strcmp(r.val.key_id, "K1") == 0,
		"right key: OK after one bcrypt");
	authd_verify(&be, dummy_hash, "a@x.test", wrong, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_INVALID && r.bcrypts == 1,
		"wrong key, same prefix: invalid");
	authd_verify(&be, dummy_hash, "a@x.test", other, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_INVALID && r.bcrypts == 1,
		"unknown key: invalid, dummy bcrypt");
	authd_verify(&be, dummy_hash, "b@x.test", test_key, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_INVALID && r.bcrypts == 1,
		"unknown user: invalid, dummy bcrypt");
	test_lookups = 0;
	authd_verify(&be, dummy_hash, NULL, test_key, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_INVALID && r.bcrypts == 1 && test_lookups == 0,
		"not an address: invalid, no lookup, still one bcrypt");
	authd_verify(&be, dummy_hash, "a@x.test", "not-a-key", "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_INVALID && r.bcrypts == 1 && test_lookups == 0,
		"malformed key: invalid, no lookup, still one bcrypt");
	UNIT_STR_EQ(authd_verdict_reason(AUTHD_FAIL_INVALID), "Invalid address or API key",
		    "one reason for unknown user, unknown key, wrong key");
	test_scope = 0;
	authd_verify(&be, dummy_hash, "a@x.test", test_key, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_SCOPE, "right key without the scope");
	authd_verify(&be, dummy_hash, "a@x.test", wrong, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_INVALID, "wrong key without the scope: invalid (no hint)");
	test_scope = 1;
	test_expired = 1;
	authd_verify(&be, dummy_hash, "a@x.test", test_key, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_FAIL_EXPIRED, "right key, expired");
	test_expired = 0;
	test_down = 1;
	authd_verify(&be, dummy_hash, "a@x.test", test_key, "smtp", &r);
	UNIT_OK(r.verdict == AUTHD_TEMPFAIL && r.bcrypts == 0 && r.error != NULL,
		"store down: temporary failure, no bcrypt");
	free(r.error);
	test_down = 0;
}

int main(void)
{
	log_init("test-authd", 0, 1);
	test_split();
	test_parse_auth();
	test_base64();
	test_plain();
	test_escape();
	test_mac();
	test_cache();
	test_limiter_ip();
	test_limiter_in_flight();
	test_limiter_trusted();
	test_limiter_ip_key();
	test_limiter_account();
	test_verify();
	return unit_done();
}
