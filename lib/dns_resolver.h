/* dns_resolver.h - a private DNS resolver state for SPF and DNS block
 * lists: one configured server address and port (or the system's
 * /etc/resolv.conf), a per-query timeout and an overall deadline per
 * check, on a res_state of its own (never the process-wide _res).
 *
 * One struct dns_resolver belongs to one thread at a time. */
#ifndef POSTROOM_DNS_RESOLVER_H
#define POSTROOM_DNS_RESOLVER_H

#include <stddef.h>

enum dns_status {
	DNS_OK,       /* answers present */
	DNS_NXDOMAIN, /* the name does not exist */
	DNS_NODATA,   /* the name exists, no record of that type */
	DNS_TEMPFAIL, /* timeout, SERVFAIL, deadline passed */
	DNS_PERMFAIL  /* FORMERR, REFUSED, NOTIMP, malformed reply */
};

struct dns_resolver;

/* Observer called after every query that went to the network (metrics):
 * seconds taken and the status. */
typedef void dns_observe_fn(double seconds, enum dns_status st);

/* dns_resolver_new - server is "ADDR" or "ADDR:PORT" (IPv4 or [IPv6]),
 * NULL/"" for the system resolver; timeout in seconds per try, attempts
 * tries. NULL with *error_r (caller frees) on a bad server spec. */
struct dns_resolver *dns_resolver_new(const char *server, int timeout, int attempts,
				      char **error_r);
void dns_resolver_free(struct dns_resolver **r);
void dns_resolver_set_observer(dns_observe_fn *fn);

/* dns_resolver_set_budget - from now on, queries after `seconds` have
 * passed fail at once with DNS_TEMPFAIL (0 = no deadline). */
void dns_resolver_set_budget(struct dns_resolver *r, double seconds);

/* dns_query - one query of class IN. On DNS_OK the raw reply is in
 * ans[0..*len_r). */
enum dns_status dns_query(struct dns_resolver *r, const char *name, int type, unsigned char *ans,
			  size_t anslen, int *len_r);

/* dns_query_a - the IPv4 addresses of name as dotted quads into out
 * (up to max of 16 bytes each); *n_r is their number. */
enum dns_status dns_query_a(struct dns_resolver *r, const char *name, char out[][16], int max,
			    int *n_r);

const char *dns_status_name(enum dns_status st);

/* dns_check_server_spec - 0 when spec is a valid server, else -1 with
 * *error_r (caller frees); for configuration checks. */
int dns_check_server_spec(const char *spec, char **error_r);

#endif
