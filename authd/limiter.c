/*
 * NAME
 *	limiter - per-IP and per-account brute-force protection for authd
 * DESCRIPTION
 *	Per client IP (the real one, from rip=): after each failed
 *	verification the IP is refused for a window that starts at
 *	backoff_initial and doubles up to backoff_max; lockout_failures
 *	failures within failure_window (counted from the first one) lock it
 *	out for lockout_time. A success clears the IP's record. A refused
 *	attempt is answered at once by the caller and changes nothing here.
 *	Per account: account_failures failures (from any IPs) within
 *	account_window arm a guard under which only IPs that authenticated
 *	as that account in the last account_trust seconds may try; so a
 *	distributed guess cannot go on, and cannot lock the owner out.
 *	Tables are bounded (LRU) and keyed by HMACs under a per-process
 *	random secret.
 * NEVER
 *	delays anything; keeps addresses or IPs in clear text.
 * CONFIGURATION
 *	authd.ip_backoff_initial_ms, authd.ip_backoff_max_ms,
 *	authd.ip_lockout_failures, authd.ip_failure_window,
 *	authd.ip_lockout_time, authd.account_failure_limit,
 *	authd.account_failure_window, authd.account_trust_time,
 *	authd.limiter_max_entries
 */
#include "limiter.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "lru.h"
#include "mac.h"
#include "xalloc.h"

struct authd_ip_entry {
	struct lru_entry lru;
	double window_start, blocked_until, delay;
	unsigned failures;
};

struct authd_account_entry {
	struct lru_entry lru;
	double window_start;
	unsigned failures;
};

struct authd_trust_entry {
	struct lru_entry lru;
	double last_ok;
};

struct authd_limiter {
	struct authd_limits l;
	struct lru ips, accounts, trusted;
	struct authd_mac *mac;
};

static void authd_limiter_entry_free(struct lru_entry *e) { free(e); }

struct authd_limiter *authd_limiter_new(const struct authd_limits *l)
{
	struct authd_limiter *lim = xcalloc(1, sizeof(*lim));
	unsigned char secret[32];

	if (crypto_random(secret, sizeof(secret)) < 0)
		log_fatal(EX_OSERR, "no randomness for the rate limiter");
	lim->mac = authd_mac_new(secret, sizeof(secret));
	crypto_wipe(secret, sizeof(secret));
	lim->l = *l;
	lru_init(&lim->ips, l->max_entries, authd_limiter_entry_free);
	lru_init(&lim->accounts, l->max_entries, authd_limiter_entry_free);
	lru_init(&lim->trusted, l->max_entries, authd_limiter_entry_free);
	return lim;
}

void authd_limiter_free(struct authd_limiter **limp)
{
	struct authd_limiter *lim = *limp;

	if (lim == NULL)
		return;
	lru_deinit(&lim->ips);
	lru_deinit(&lim->accounts);
	lru_deinit(&lim->trusted);
	authd_mac_free(&lim->mac);
	xfree(limp);
}

void authd_limiter_configure(struct authd_limiter *lim, const struct authd_limits *l)
{
	lim->l = *l;
	lim->ips.max = lim->accounts.max = lim->trusted.max = l->max_entries;
}

void authd_limiter_ip_key(const char *ip, char *out, size_t size)
{
	unsigned char a[16];
	struct in_addr v4;

	if (inet_pton(AF_INET, ip, &v4) == 1) {
		snprintf(out, size, "%s", ip);
	} else if (inet_pton(AF_INET6, ip, a) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
		};
		char text[INET6_ADDRSTRLEN];

		if (memcmp(a, mapped, 12) == 0) {
			inet_ntop(AF_INET, a + 12, text, sizeof(text));
			snprintf(out, size, "%s", text);
			return;
		}
		memset(a + 8, 0, 8);
		inet_ntop(AF_INET6, a, text, sizeof(text));
		snprintf(out, size, "%s/64", text);
	} else {
		snprintf(out, size, "%s", ip);
	}
}

/* authd_limiter_digest - HMAC(secret, kind NUL a NUL b) */
static void authd_limiter_digest(const struct authd_limiter *lim, char kind, const char *a,
				 const char *b, unsigned char out[LRU_KEY_LEN])
{
	const void *parts[5] = { &kind, "", a, "", b ? b : "" };
	size_t lens[5] = { 1, 1, strlen(a), 1, b ? strlen(b) : 0 };

	authd_mac_parts(lim->mac, parts, lens, 5, out);
}

static struct lru_entry *authd_limiter_find(struct authd_limiter *lim, struct lru *t, char kind,
					    const char *a, const char *b,
					    unsigned char key[LRU_KEY_LEN])
{
	authd_limiter_digest(lim, kind, a, b, key);
	return lru_get(t, key);
}

/* authd_limiter_trusted - ip authenticated as account recently */
static int authd_limiter_trusted(struct authd_limiter *lim, const char *ipk, const char *account,
				 double now)
{
	unsigned char key[LRU_KEY_LEN];
	struct authd_trust_entry *t = (struct authd_trust_entry *)authd_limiter_find(
		lim, &lim->trusted, 't', account, ipk, key);

	return t != NULL && now - t->last_ok < lim->l.account_trust;
}

enum authd_limit_verdict authd_limiter_check(struct authd_limiter *lim, const char *ip,
					     const char *account, double now)
{
	unsigned char key[LRU_KEY_LEN];
	char ipk[64];
	struct authd_ip_entry *ie;
	struct authd_account_entry *ae;

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip) {
		ie = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->ips, 'i', ipk, NULL,
								 key);
		if (ie && now < ie->blocked_until)
			return AUTHD_LIMIT_IP;
	}
	ae = (struct authd_account_entry *)authd_limiter_find(lim, &lim->accounts, 'a', account,
							      NULL, key);
	if (ae && ae->failures >= lim->l.account_failures &&
	    now - ae->window_start < lim->l.account_window &&
	    !authd_limiter_trusted(lim, ipk, account, now))
		return AUTHD_LIMIT_ACCOUNT;
	return AUTHD_LIMIT_PASS;
}

/* authd_limiter_ip_failure - back off or lock out the IP; 1 on a lockout */
static int authd_limiter_ip_failure(struct authd_limiter *lim, const char *ipk, double now)
{
	unsigned char key[LRU_KEY_LEN];
	struct authd_ip_entry *ie =
		(struct authd_ip_entry *)authd_limiter_find(lim, &lim->ips, 'i', ipk, NULL, key);

	if (ie == NULL) {
		ie = xcalloc(1, sizeof(*ie));
		memcpy(ie->lru.key, key, LRU_KEY_LEN);
		ie->window_start = now;
		lru_put(&lim->ips, &ie->lru);
		if (lim->ips.max == 0)
			return 0;
	}
	if (now - ie->window_start >= lim->l.failure_window) {
		ie->window_start = now;
		ie->failures = 0;
		ie->delay = 0;
	}
	ie->failures++;
	ie->delay = ie->delay == 0 ? lim->l.backoff_initial : ie->delay * 2;
	if (ie->delay > lim->l.backoff_max)
		ie->delay = lim->l.backoff_max;
	if (lim->l.lockout_failures > 0 && ie->failures >= lim->l.lockout_failures) {
		ie->blocked_until = now + lim->l.lockout_time;
		return ie->failures == lim->l.lockout_failures;
	}
	ie->blocked_until = now + ie->delay;
	return 0;
}

int authd_limiter_failure(struct authd_limiter *lim, const char *ip, const char *account,
			  double now)
{
	unsigned char key[LRU_KEY_LEN];
	struct authd_account_entry *ae;
	char ipk[64];
	int locked = 0;

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip)
		locked = authd_limiter_ip_failure(lim, ipk, now);
	ae = (struct authd_account_entry *)authd_limiter_find(lim, &lim->accounts, 'a', account,
							      NULL, key);
	if (ae == NULL) {
		ae = xcalloc(1, sizeof(*ae));
		memcpy(ae->lru.key, key, LRU_KEY_LEN);
		ae->window_start = now;
		lru_put(&lim->accounts, &ae->lru);
		if (lim->accounts.max == 0)
			return locked;
	}
	if (now - ae->window_start >= lim->l.account_window) {
		ae->window_start = now;
		ae->failures = 0;
	}
	ae->failures++;
	return locked;
}

void authd_limiter_success(struct authd_limiter *lim, const char *ip, const char *account,
			   double now)
{
	unsigned char key[LRU_KEY_LEN];
	struct lru_entry *e;
	struct authd_trust_entry *t;
	char ipk[64];

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip && (e = authd_limiter_find(lim, &lim->ips, 'i', ipk, NULL, key)) != NULL)
		lru_remove(&lim->ips, e);
	t = (struct authd_trust_entry *)authd_limiter_find(lim, &lim->trusted, 't', account, ipk,
							   key);
	if (t == NULL) {
		t = xcalloc(1, sizeof(*t));
		memcpy(t->lru.key, key, LRU_KEY_LEN);
		lru_put(&lim->trusted, &t->lru);
		if (lim->trusted.max == 0)
			return;
	}
	t->last_ok = now;
}
