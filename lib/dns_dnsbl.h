/* dns_dnsbl.h - DNS block lists of the client IP (RFC 5782): zones, the
 * return codes that count as "listed" for each, and what a listing does.
 *
 * Zone list syntax (policyd.dnsbl_zones), entries separated by ';' or
 * white space:   ZONE[=CODES][:ACTION]
 *   CODES   comma-separated A values or ranges "127.0.0.2-127.0.0.11";
 *           default 127.0.0.2-127.0.0.254 (127.255.255.x are the error
 *           codes some lists answer to refused resolvers: never a listing)
 *   ACTION  "tag" (default: accept, tag as spam) or "reject" (550) */
#ifndef POSTROOM_DNS_DNSBL_H
#define POSTROOM_DNS_DNSBL_H

#include <stdint.h>

#include "dns_resolver.h"

#define DNSBL_MAX_ZONES 16
#define DNSBL_MAX_RANGES 16

enum dnsbl_action { DNSBL_TAG, DNSBL_REJECT };

struct dnsbl_zone {
	char name[256];
	int nranges;
	uint32_t lo[DNSBL_MAX_RANGES], hi[DNSBL_MAX_RANGES]; /* host order */
	enum dnsbl_action action;
};

struct dnsbl_config {
	int nzones;
	struct dnsbl_zone zones[DNSBL_MAX_ZONES];
};

enum dnsbl_status { DNSBL_NOT_LISTED, DNSBL_LISTED, DNSBL_ERROR };

struct dnsbl_hit {
	enum dnsbl_status status;
	char code[16]; /* the A value that listed it */
};

/* dnsbl_parse - parse spec (NULL/"" = no zones). 0 ok, -1 with *error_r
 * (caller frees). */
int dnsbl_parse(const char *spec, struct dnsbl_config *cfg, char **error_r);

/* dnsbl_query_name - the query name for ip in zone ("4.3.2.1.zone", or
 * 32 nibbles for IPv6) into out; -1 when ip is not an address. */
int dnsbl_query_name(const char *ip, const char *zone, char *out, size_t outlen);

/* dnsbl_check - look ip up in every zone; hits[i] for zones[i]. A DNS
 * failure gives DNSBL_ERROR for that zone (never a listing). */
void dnsbl_check(struct dns_resolver *r, const struct dnsbl_config *cfg, const char *ip,
		 struct dnsbl_hit hits[DNSBL_MAX_ZONES]);

#endif
