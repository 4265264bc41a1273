/* limiter.h - brute-force protection of authd: per client IP (exponential
 * back-off, then lockout) and per target account (distributed guessing).
 * Pure: the caller passes the time. Not thread-safe (the event loop owns
 * it). */
#ifndef POSTROOM_AUTHD_LIMITER_H
#define POSTROOM_AUTHD_LIMITER_H

#include <stddef.h>

struct authd_limits {
	double backoff_initial;    /* s, first refusal window after a failure */
	double backoff_max;        /* s, the doubling stops here */
	unsigned lockout_failures; /* failures in failure_window that lock out */
	double failure_window;     /* s */
	double lockout_time;       /* s */
	unsigned account_failures; /* failures of one account (all IPs) ... */
	double account_window;     /* ... within this many s arm the guard */
	double account_trust;      /* s an IP stays known after a success */
	size_t max_entries;        /* per table */
};

enum authd_limit_verdict {
	AUTHD_LIMIT_PASS = 0,
	AUTHD_LIMIT_IP,     /* this IP is backing off or locked out */
	AUTHD_LIMIT_ACCOUNT /* account under attack, IP not known */
};

struct authd_limiter;

struct authd_limiter *authd_limiter_new(const struct authd_limits *l);
void authd_limiter_free(struct authd_limiter **lim);
/* authd_limiter_configure - new limits; entries are kept */
void authd_limiter_configure(struct authd_limiter *lim, const struct authd_limits *l);

/* authd_limiter_check - may this attempt proceed? ip may be "" (unknown:
 * no per-IP limit); account is the canonical address tried. A refusal
 * changes nothing (it never extends a lockout). */
enum authd_limit_verdict authd_limiter_check(struct authd_limiter *lim, const char *ip,
					     const char *account, double now);
/* authd_limiter_failure - a verification failed; 1 when this failure locked
 * the IP out (for the lockout metric), else 0 */
int authd_limiter_failure(struct authd_limiter *lim, const char *ip, const char *account,
			  double now);
/* authd_limiter_success - clears the IP's record; the IP becomes known for
 * the account */
void authd_limiter_success(struct authd_limiter *lim, const char *ip, const char *account,
			   double now);
/* authd_limiter_ip_key - the text an IP is keyed on: IPv4 as is, IPv6 by
 * its /64 (an attacker usually holds a whole /64), IPv4-mapped IPv6 as
 * IPv4; unparsable text as is. out holds at least 64 bytes. */
void authd_limiter_ip_key(const char *ip, char *out, size_t size);

#endif
