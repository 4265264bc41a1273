/* limiter.h - brute-force protection of authd: per (client IP, account)
 * (exponential back-off, then lockout), per client IP (a higher lockout
 * limit behind it, trusted networks exempt) and per target account
 * (distributed guessing). Verifications still in flight count as failures
 * until they end, so a burst cannot outrun a limit. Pure: the caller
 * passes the time. Not thread-safe (the event loop owns it). */
#ifndef POSTROOM_AUTHD_LIMITER_H
#define POSTROOM_AUTHD_LIMITER_H

#include <stddef.h>

#define AUTHD_NETS_MAX 64

/* One network of authd.trusted_networks. */
struct authd_net {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix; /* bits */
};

struct authd_limits {
	double backoff_initial;    /* s, first refusal window of a pair after a failure */
	double backoff_max;        /* s, the doubling stops here */
	unsigned pair_failures;    /* failures of one (IP, account) that lock the pair */
	unsigned lockout_failures; /* failures of one IP (all accounts) that lock it out */
	double failure_window;     /* s, for both */
	double lockout_time;       /* s, for both */
	unsigned account_failures; /* failures of one account (all IPs) ... */
	double account_window;     /* ... within this many s arm the guard */
	double account_trust;      /* s an IP stays known after a success */
	size_t max_entries;        /* per table */
	struct authd_net trusted[AUTHD_NETS_MAX]; /* exempt from the per-IP limit */
	size_t ntrusted;
};

enum authd_limit_verdict {
	AUTHD_LIMIT_PASS = 0,
	AUTHD_LIMIT_IP,      /* this IP is locked out (all accounts) */
	AUTHD_LIMIT_ACCOUNT, /* account under attack, IP not known */
	AUTHD_LIMIT_PAIR     /* this IP is backing off or locked out for this account */
};

struct authd_limiter;

struct authd_limiter *authd_limiter_new(const struct authd_limits *l);
void authd_limiter_free(struct authd_limiter **lim);
/* authd_limiter_configure - new limits; entries are kept */
void authd_limiter_configure(struct authd_limiter *lim, const struct authd_limits *l);

/* authd_limiter_check - may this attempt proceed? ip may be "" (unknown:
 * no per-IP or per-pair limit); account is the canonical address tried.
 * in_flight 0: failures only (an attempt that would start no
 * verification, e.g. one joining an identical one); 1: verifications in
 * flight count as failures too (an attempt that would start one). A
 * refusal changes nothing (it never extends a lockout). */
enum authd_limit_verdict authd_limiter_check(struct authd_limiter *lim, const char *ip,
					     const char *account, double now, int in_flight);
/* authd_limiter_begin - a verification for (ip, account) starts: in
 * flight until authd_limiter_end with the same arguments */
void authd_limiter_begin(struct authd_limiter *lim, const char *ip, const char *account,
			 double now);
/* authd_limiter_end - that verification ended (before its failure or
 * success is recorded) */
void authd_limiter_end(struct authd_limiter *lim, const char *ip, const char *account);
/* authd_limiter_ip_in_flight - verifications in flight from ip ("" : 0) */
unsigned authd_limiter_ip_in_flight(struct authd_limiter *lim, const char *ip);
/* authd_limiter_failure - a verification failed; 1 when this failure locked
 * the IP or the pair out (for the lockout metric), else 0 */
int authd_limiter_failure(struct authd_limiter *lim, const char *ip, const char *account,
			  double now);
/* authd_limiter_success - clears the pair's record; the IP becomes known
 * for the account */
void authd_limiter_success(struct authd_limiter *lim, const char *ip, const char *account,
			   double now);
/* authd_limiter_ip_key - the text an IP is keyed on: IPv4 as is, IPv6 by
 * its /64 (an attacker usually holds a whole /64), IPv4-mapped IPv6 as
 * IPv4; unparsable text as is. out holds at least 64 bytes. */
void authd_limiter_ip_key(const char *ip, char *out, size_t size);
/* authd_limiter_nets_parse - text is networks (ADDRESS[/BITS]) separated
 * by commas or white space, NULL or "" for none; fills l->trusted. 0 ok,
 * -1 with *error_r (caller frees) on a bad item or more than
 * AUTHD_NETS_MAX. */
int authd_limiter_nets_parse(const char *text, struct authd_limits *l, char **error_r);
/* authd_limiter_trusted_ip - ip is in one of l's trusted networks */
int authd_limiter_trusted_ip(const struct authd_limits *l, const char *ip);

#endif
