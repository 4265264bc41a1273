/*
 * NAME
 *	dns_resolver - private resolver state for SPF and DNSBL queries
 * DESCRIPTION
 *	libspf2 and the block-list checks need a resolver that talks to a
 *	configured server and port (block lists refuse public resolvers, and
 *	tests run their own server on a loopback high port), with short
 *	timeouts. glibc's res_nquery() on a res_state of our own does that:
 *	res_ninit() fills it from /etc/resolv.conf, then the name server list
 *	is replaced by the configured IPv4 address and port. Each query also
 *	respects a per-check budget so that one slow zone cannot hold a
 *	policy reply past the MTA's own timeout.
 * NEVER
 *	touches the process-wide _res; queries a server other than the
 *	configured one (or the system resolver when none is configured).
 * PARAMETERS
 *	none directly: policyd passes policyd.dns_server, dns_timeout,
 *	dns_attempts.
 */
#include "dns_resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

struct dns_resolver {
	struct __res_state res;
	double deadline; /* monotonic seconds; 0 = none */
};

static dns_observe_fn *dns_observer;

void dns_resolver_set_observer(dns_observe_fn *fn) { dns_observer = fn; }

static double dns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* dns_parse_server - "A.B.C.D" or "A.B.C.D:PORT" into sin */
static int dns_parse_server(const char *spec, struct sockaddr_in *sin, char **error_r)
{
	char host[64];
	const char *colon = strchr(spec, ':');
	size_t hlen = colon ? (size_t)(colon - spec) : strlen(spec);
	long port = 53;

	memset(sin, 0, sizeof(*sin));
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if (colon != NULL) {
		char *end;

		port = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
			goto bad;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		goto bad;
	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short)port);
	return 0;
bad:
	*error_r = xasprintf("invalid DNS server '%s' (expected IPv4ADDRESS[:PORT])", spec);
	return -1;
}

int dns_check_server_spec(const char *spec, char **error_r)
{
	struct sockaddr_in sin;

	if (spec == NULL || *spec == '\0')
		return 0;
	return dns_parse_server(spec, &sin, error_r);
}

struct dns_resolver *dns_resolver_new(const char *server, int timeout, int attempts, char **error_r)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	struct sockaddr_in sin;

	if (server != NULL && *server != '\0' && dns_parse_server(server, &sin, error_r) < 0) {
		free(r);
		return NULL;
	}
	/* res_ninit fails only without any usable configuration; the
	 * defaults it leaves (127.0.0.1:53) are then used, or replaced. */
	(void)res_ninit(&r->res);
	if (server != NULL && *server != '\0') {
		int i;

		for (i = 0; i < MAXNS; i++) {
			/* an IPv6 server from resolv.conf lives in _ext */
			free(r->res._u._ext.nsaddrs[i]);
			r->res._u._ext.nsaddrs[i] = NULL;
		}
		r->res.nscount = 1;
		r->res.nsaddr_list[0] = sin;
	}
	r->res.retrans = timeout > 0 ? timeout : 1;
	r->res.retry = attempts > 0 ? attempts : 1;
	r->res.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES | RES_ROTATE);
	r->res.options |= RES_USE_EDNS0;
	return r;
}

void dns_resolver_free(struct dns_resolver **rp)
{
	if (*rp == NULL)
		return;
	res_nclose(&(*rp)->res);
	xfree(rp);
}

void dns_resolver_set_budget(struct dns_resolver *r, double seconds)
{
	r->deadline = seconds > 0 ? dns_now() + seconds : 0;
}

const char *dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK: return "ok";
	case DNS_NXDOMAIN: return "nxdomain";
	case DNS_NODATA: return "nodata";
	case DNS_TEMPFAIL: return "tempfail";
	case DNS_PERMFAIL: return "permfail";
	}
	return "?";
}

enum dns_status dns_query(struct dns_resolver *r, const char *name, int type, unsigned char *ans,
			  size_t anslen, int *len_r)
{
	enum dns_status st;
	double start = dns_now();
	int n;

	*len_r = 0;
	if (r->deadline > 0 && start >= r->deadline)
		return DNS_TEMPFAIL;
	n = res_nquery(&r->res, name, ns_c_in, type, ans, (int)anslen);
	if (n >= 0) {
		*len_r = n > (int)anslen ? (int)anslen : n;
		st = DNS_OK;
	} else {
		switch (r->res.res_h_errno) {
		case HOST_NOT_FOUND: st = DNS_NXDOMAIN; break;
		case NO_DATA: st = DNS_NODATA; break;
		case NO_RECOVERY: st = DNS_PERMFAIL; break;
		default: st = DNS_TEMPFAIL; break; /* TRY_AGAIN, timeouts */
		}
	}
	if (dns_observer != NULL)
		dns_observer(dns_now() - start, st);
	return st;
}

enum dns_status dns_query_a(struct dns_resolver *r, const char *name, char out[][16], int max,
			    int *n_r)
{
	unsigned char ans[1024];
	ns_msg msg;
	ns_rr rr;
	int len, i, count;
	enum dns_status st = dns_query(r, name, ns_t_a, ans, sizeof(ans), &len);

	*n_r = 0;
	if (st != DNS_OK)
		return st;
	if (ns_initparse(ans, len, &msg) < 0)
		return DNS_PERMFAIL;
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count && *n_r < max; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return DNS_PERMFAIL;
		if (ns_rr_type(rr) != ns_t_a || ns_rr_rdlen(rr) != 4)
			continue;
		inet_ntop(AF_INET, ns_rr_rdata(rr), out[*n_r], 16);
		(*n_r)++;
	}
	return *n_r > 0 ? DNS_OK : DNS_NODATA;
}
