/*
 * NAME
 *	limiter - per-IP and per-account brute-force protection for authd
 * DESCRIPTION
 *	Three limits, checked together. Per (client IP, account) -- the IP
 *	is the real one, from rip= -- after each failed verification the
 *	pair is refused for a window that starts at backoff_initial and
 *	doubles up to backoff_max; pair_failures failures within
 *	failure_window (counted from the first one) lock the pair out for
 *	lockout_time; a success clears the pair. Per client IP, all
 *	accounts together: lockout_failures failures within failure_window
 *	lock the IP out for lockout_time (an office behind one NAT address
 *	shares it, so it is higher); trusted networks are exempt. Per
 *	account: account_failures failures (from any IPs) within
 *	account_window arm a guard under which only IPs that authenticated
 *	as that account in the last account_trust seconds may try; so a
 *	distributed guess cannot go on, and cannot lock the owner out.
 *	Admission counts the verifications still in flight as failures
 *	(authd_limiter_begin/end), so that N attempts sent at once cost at
 *	most the limit in bcrypts. A refused attempt is answered at once by
 *	the caller and changes nothing here. Tables are bounded (LRU) and
 *	keyed by HMACs under a per-process random secret.
 * NEVER
 *	delays anything; keeps addresses or IPs in clear text.
 * CONFIGURATION
 *	authd.ip_backoff_initial_ms, authd.ip_backoff_max_ms,
 *	authd.ip_account_lockout_failures, authd.ip_lockout_failures,
 *	authd.ip_failure_window, authd.ip_lockout_time,
 *	authd.trusted_networks, authd.account_failure_limit,
 *	authd.account_failure_window, authd.account_trust_time,
 *	authd.limiter_max_entries
 */
#include "limiter.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "lru.h"
#include "mac.h"
#include "xalloc.h"

/* A client IP or an (IP, account) pair. */
struct authd_ip_entry {
	struct lru_entry lru;
	double window_start, blocked_until, delay;
	unsigned failures, in_flight;
};

struct authd_account_entry {
	struct lru_entry lru;
	double window_start;
	unsigned failures, in_flight;
};

struct authd_trust_entry {
	struct lru_entry lru;
	double last_ok;
};

struct authd_limiter {
	struct authd_limits l;
	struct lru ips, pairs, accounts, trusted;
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
	lru_init(&lim->pairs, l->max_entries, authd_limiter_entry_free);
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
	lru_deinit(&lim->pairs);
	lru_deinit(&lim->accounts);
	lru_deinit(&lim->trusted);
	authd_mac_free(&lim->mac);
	xfree(limp);
}

void authd_limiter_configure(struct authd_limiter *lim, const struct authd_limits *l)
{
	lim->l = *l;
	lim->ips.max = lim->pairs.max = lim->accounts.max = lim->trusted.max = l->max_entries;
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

/* ---- trusted networks ------------------------------------------------------ */

/* authd_limiter_addr - parse an address; IPv4-mapped IPv6 as IPv4. The
 * family, or 0 when text is no address. */
static int authd_limiter_addr(const char *text, unsigned char a[16])
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(a, 0, 16);
	if (inet_pton(AF_INET, text, a) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, text, a) != 1)
		return 0;
	if (memcmp(a, mapped, 12) == 0) {
		memmove(a, a + 12, 4);
		memset(a + 4, 0, 12);
		return AF_INET;
	}
	return AF_INET6;
}

/* authd_limiter_net_item - one ADDRESS[/BITS]; 0 ok, -1 bad */
static int authd_limiter_net_item(const char *item, struct authd_net *n)
{
	char addr[INET6_ADDRSTRLEN + 8], *slash, *end;
	unsigned max;
	long bits;

	if (strlen(item) >= sizeof(addr))
		return -1;
	snprintf(addr, sizeof(addr), "%s", item);
	if ((slash = strchr(addr, '/')) != NULL)
		*slash++ = '\0';
	if ((n->family = authd_limiter_addr(addr, n->addr)) == 0)
		return -1;
	max = n->family == AF_INET ? 32 : 128;
	bits = max;
	if (slash != NULL) {
		bits = strtol(slash, &end, 10);
		if (*slash == '\0' || *end != '\0' || bits < 0 || bits > (long)max)
			return -1;
	}
	n->prefix = (unsigned)bits;
	return 0;
}

int authd_limiter_nets_parse(const char *text, struct authd_limits *l, char **error_r)
{
	const char *p = text ? text : "";
	char item[128];
	size_t len;

	l->ntrusted = 0;
	for (;;) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return 0;
		len = strcspn(p, ", \t\r\n");
		snprintf(item, sizeof(item), "%.*s", (int)(len < sizeof(item) ? len : 0), p);
		if (l->ntrusted >= AUTHD_NETS_MAX) {
			*error_r = xasprintf("authd.trusted_networks: more than %d networks",
					     AUTHD_NETS_MAX);
			return -1;
		}
		if (len >= sizeof(item) ||
		    authd_limiter_net_item(item, &l->trusted[l->ntrusted]) < 0) {
			*error_r = xasprintf("authd.trusted_networks: '%.*s' is not an address or "
					     "ADDRESS/BITS",
					     (int)(len > 60 ? 60 : len), p);
			return -1;
		}
		l->ntrusted++;
		p += len;
	}
}

/* authd_limiter_net_match - a (of family) lies in n */
static int authd_limiter_net_match(const struct authd_net *n, int family, const unsigned char *a)
{
	unsigned full = n->prefix / 8, rest = n->prefix % 8;

	if (n->family != family || memcmp(n->addr, a, full) != 0)
		return 0;
	return rest == 0 || ((n->addr[full] ^ a[full]) & (0xff00 >> rest) & 0xff) == 0;
}

int authd_limiter_trusted_ip(const struct authd_limits *l, const char *ip)
{
	unsigned char a[16];
	int family;
	size_t i;

	if (l->ntrusted == 0 || (family = authd_limiter_addr(ip, a)) == 0)
		return 0;
	for (i = 0; i < l->ntrusted; i++)
		if (authd_limiter_net_match(&l->trusted[i], family, a))
			return 1;
	return 0;
}

/* ---- tables ---------------------------------------------------------------- */

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

/* authd_limiter_get - the entry of (kind, a, b), made when absent (NULL
 * when the table keeps nothing); a new one starts a window at now */
static void *authd_limiter_get(struct authd_limiter *lim, struct lru *t, char kind, const char *a,
			       const char *b, size_t size, double now)
{
	unsigned char key[LRU_KEY_LEN];
	struct lru_entry *e = authd_limiter_find(lim, t, kind, a, b, key);

	if (e != NULL || t->max == 0)
		return e;
	e = xcalloc(1, size);
	memcpy(e->key, key, LRU_KEY_LEN);
	lru_put(t, e);
	/* window_start follows lru in both entry kinds */
	if (kind == 'a')
		((struct authd_account_entry *)e)->window_start = now;
	else
		((struct authd_ip_entry *)e)->window_start = now;
	return e;
}

static struct authd_ip_entry *authd_limiter_ip(struct authd_limiter *lim, const char *ipk,
					       double now)
{
	return authd_limiter_get(lim, &lim->ips, 'i', ipk, NULL, sizeof(struct authd_ip_entry),
				 now);
}

static struct authd_ip_entry *authd_limiter_pair(struct authd_limiter *lim, const char *ipk,
						 const char *account, double now)
{
	return authd_limiter_get(lim, &lim->pairs, 'p', ipk, account, sizeof(struct authd_ip_entry),
				 now);
}

static struct authd_account_entry *authd_limiter_account(struct authd_limiter *lim,
							 const char *account, double now)
{
	return authd_limiter_get(lim, &lim->accounts, 'a', account, NULL,
				 sizeof(struct authd_account_entry), now);
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

/* authd_limiter_ip_refused - an IP or pair entry refuses: locked or
 * backing off, or failures (plus what is in flight) at the limit */
static int authd_limiter_ip_refused(const struct authd_ip_entry *e, unsigned limit, double window,
				    double now, int in_flight)
{
	unsigned failures;

	if (e == NULL)
		return 0;
	if (now < e->blocked_until)
		return 1;
	failures = now - e->window_start < window ? e->failures : 0;
	return in_flight && limit > 0 && failures + e->in_flight >= limit;
}

enum authd_limit_verdict authd_limiter_check(struct authd_limiter *lim, const char *ip,
					     const char *account, double now, int in_flight)
{
	unsigned char key[LRU_KEY_LEN];
	char ipk[64];
	struct authd_ip_entry *e;
	struct authd_account_entry *ae;
	unsigned failures;

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip) {
		e = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->pairs, 'p', ipk, account,
								key);
		if (authd_limiter_ip_refused(e, lim->l.pair_failures, lim->l.failure_window, now,
					     in_flight))
			return AUTHD_LIMIT_PAIR;
		e = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->ips, 'i', ipk, NULL,
								key);
		if (!authd_limiter_trusted_ip(&lim->l, ip) &&
		    authd_limiter_ip_refused(e, lim->l.lockout_failures, lim->l.failure_window, now,
					     in_flight))
			return AUTHD_LIMIT_IP;
	}
	ae = (struct authd_account_entry *)authd_limiter_find(lim, &lim->accounts, 'a', account,
							      NULL, key);
	if (ae == NULL)
		return AUTHD_LIMIT_PASS;
	failures = now - ae->window_start < lim->l.account_window ? ae->failures : 0;
	if (in_flight)
		failures += ae->in_flight;
	if (failures >= lim->l.account_failures && !authd_limiter_trusted(lim, ipk, account, now))
		return AUTHD_LIMIT_ACCOUNT;
	return AUTHD_LIMIT_PASS;
}

void authd_limiter_begin(struct authd_limiter *lim, const char *ip, const char *account, double now)
{
	struct authd_ip_entry *e;
	struct authd_account_entry *ae;
	char ipk[64];

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip) {
		if ((e = authd_limiter_pair(lim, ipk, account, now)) != NULL)
			e->in_flight++;
		if ((e = authd_limiter_ip(lim, ipk, now)) != NULL)
			e->in_flight++;
	}
	if ((ae = authd_limiter_account(lim, account, now)) != NULL)
		ae->in_flight++;
}

void authd_limiter_end(struct authd_limiter *lim, const char *ip, const char *account)
{
	unsigned char key[LRU_KEY_LEN];
	struct authd_ip_entry *e;
	struct authd_account_entry *ae;
	char ipk[64];

	/* an entry dropped meanwhile (LRU) took its count with it */
	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip) {
		e = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->pairs, 'p', ipk, account,
								key);
		if (e && e->in_flight > 0)
			e->in_flight--;
		e = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->ips, 'i', ipk, NULL,
								key);
		if (e && e->in_flight > 0)
			e->in_flight--;
	}
	ae = (struct authd_account_entry *)authd_limiter_find(lim, &lim->accounts, 'a', account,
							      NULL, key);
	if (ae && ae->in_flight > 0)
		ae->in_flight--;
}

unsigned authd_limiter_ip_in_flight(struct authd_limiter *lim, const char *ip)
{
	unsigned char key[LRU_KEY_LEN];
	struct authd_ip_entry *e;
	char ipk[64];

	if (*ip == '\0')
		return 0;
	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	e = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->ips, 'i', ipk, NULL, key);
	return e ? e->in_flight : 0;
}

/* authd_limiter_count - one more failure of an IP or pair entry within
 * its window; 1 when it reached limit (a lockout) */
static int authd_limiter_count(struct authd_ip_entry *e, const struct authd_limits *l,
			       unsigned limit, int backoff, double now)
{
	if (now - e->window_start >= l->failure_window) {
		e->window_start = now;
		e->failures = 0;
		e->delay = 0;
	}
	e->failures++;
	if (backoff) {
		e->delay = e->delay == 0 ? l->backoff_initial : e->delay * 2;
		if (e->delay > l->backoff_max)
			e->delay = l->backoff_max;
		if (now + e->delay > e->blocked_until)
			e->blocked_until = now + e->delay;
	}
	if (limit > 0 && e->failures >= limit) {
		e->blocked_until = now + l->lockout_time;
		return e->failures == limit;
	}
	return 0;
}

int authd_limiter_failure(struct authd_limiter *lim, const char *ip, const char *account,
			  double now)
{
	struct authd_ip_entry *e;
	struct authd_account_entry *ae;
	char ipk[64];
	int locked = 0;

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip) {
		if ((e = authd_limiter_pair(lim, ipk, account, now)) != NULL)
			locked |= authd_limiter_count(e, &lim->l, lim->l.pair_failures, 1, now);
		if (!authd_limiter_trusted_ip(&lim->l, ip) &&
		    (e = authd_limiter_ip(lim, ipk, now)) != NULL)
			locked |= authd_limiter_count(e, &lim->l, lim->l.lockout_failures, 0, now);
	}
	if ((ae = authd_limiter_account(lim, account, now)) == NULL)
		return locked;
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
	struct authd_ip_entry *e;
	struct authd_trust_entry *t;
	char ipk[64];

	authd_limiter_ip_key(ip, ipk, sizeof(ipk));
	if (*ip && (e = (struct authd_ip_entry *)authd_limiter_find(lim, &lim->pairs, 'p', ipk,
								    account, key)) != NULL) {
		/* keep the entry (and what it has in flight), clear its record */
		e->failures = 0;
		e->delay = 0;
		e->blocked_until = 0;
		e->window_start = now;
	}
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
