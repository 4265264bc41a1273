/*
 * NAME
 *	dns_dnsbl - DNS block list lookups of the client address
 * DESCRIPTION
 *	Parses the zone list (zones, listed return codes, action per zone)
 *	and looks an address up in each zone over a struct dns_resolver.
 *	Only the configured codes count as a listing; anything else in
 *	127.255.255.0/24 or outside the codes is "not listed", a DNS
 *	failure is an error (tagged temperror by the caller, never a
 *	listing, never a rejection).
 * NEVER
 *	queries a zone that is not configured (the default list is empty).
 */
#include "dns_dnsbl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* dnsbl_ip4 - dotted quad to host-order integer; -1 when invalid */
static int dnsbl_ip4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

/* dnsbl_parse_codes - "a,b-c" into ranges */
static int dnsbl_parse_codes(char *codes, struct dnsbl_zone *z)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(codes, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');

		if (z->nranges >= DNSBL_MAX_RANGES)
			return -1;
		if (dash != NULL)
			*dash = '\0';
		if (dnsbl_ip4(tok, &z->lo[z->nranges]) < 0 ||
		    dnsbl_ip4(dash ? dash + 1 : tok, &z->hi[z->nranges]) < 0 ||
		    z->lo[z->nranges] > z->hi[z->nranges])
			return -1;
		z->nranges++;
	}
	return z->nranges > 0 ? 0 : -1;
}

/* dnsbl_parse_zone - one ZONE[=CODES][:ACTION] entry */
static int dnsbl_parse_zone(char *entry, struct dnsbl_zone *z, char **error_r)
{
	char *colon = strrchr(entry, ':'), *eq = strchr(entry, '='), *p;

	memset(z, 0, sizeof(*z));
	if (colon != NULL) {
		*colon = '\0';
		if (strcmp(colon + 1, "reject") == 0)
			z->action = DNSBL_REJECT;
		else if (strcmp(colon + 1, "tag") != 0)
			goto bad;
	}
	if (eq != NULL) {
		*eq = '\0';
		if (dnsbl_parse_codes(eq + 1, z) < 0)
			goto bad;
	} else {
		z->nranges = 1;
		dnsbl_ip4("127.0.0.2", &z->lo[0]);
		dnsbl_ip4("127.0.0.254", &z->hi[0]);
	}
	if (*entry == '\0' || strlen(entry) >= sizeof(z->name) - 80)
		goto bad;
	for (p = entry; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			goto bad;
	snprintf(z->name, sizeof(z->name), "%s", entry);
	if (z->name[strlen(z->name) - 1] == '.')
		z->name[strlen(z->name) - 1] = '\0';
	for (p = z->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
bad:
	*error_r = xasprintf("invalid DNSBL zone entry near '%s' "
			     "(expected ZONE[=CODE[-CODE],...][:tag|:reject])",
			     entry);
	return -1;
}

int dnsbl_parse(const char *spec, struct dnsbl_config *cfg, char **error_r)
{
	char *copy, *save = NULL, *tok;
	int rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (spec == NULL)
		return 0;
	copy = xstrdup(spec);
	for (tok = strtok_r(copy, "; \t\n", &save); tok; tok = strtok_r(NULL, "; \t\n", &save)) {
		if (cfg->nzones >= DNSBL_MAX_ZONES) {
			*error_r = xasprintf("too many DNSBL zones (at most %d)", DNSBL_MAX_ZONES);
			rc = -1;
			break;
		}
		if (dnsbl_parse_zone(tok, &cfg->zones[cfg->nzones], error_r) < 0) {
			rc = -1;
			break;
		}
		cfg->nzones++;
	}
	free(copy);
	return rc;
}

int dnsbl_query_name(const char *ip, const char *zone, char *out, size_t outlen)
{
	unsigned char b[16];
	size_t n = 0;
	int i;

	if (inet_pton(AF_INET, ip, b) == 1) {
		n = (size_t)snprintf(out, outlen, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0], zone);
	} else if (inet_pton(AF_INET6, ip, b) == 1) {
		static const char hex[] = "0123456789abcdef";

		if (outlen < 64 + strlen(zone) + 1)
			return -1;
		for (i = 15; i >= 0; i--) {
			out[n++] = hex[b[i] & 0xf];
			out[n++] = '.';
			out[n++] = hex[b[i] >> 4];
			out[n++] = '.';
		}
		n += (size_t)snprintf(out + n, outlen - n, "%s", zone);
	} else
		return -1;
	return n < outlen ? 0 : -1;
}

void dnsbl_check(struct dns_resolver *r, const struct dnsbl_config *cfg, const char *ip,
		 struct dnsbl_hit hits[DNSBL_MAX_ZONES])
{
	int z, i, j, n;

	for (z = 0; z < cfg->nzones; z++) {
		const struct dnsbl_zone *zone = &cfg->zones[z];
		char qname[512], addrs[8][INET_ADDRSTRLEN];
		enum dns_status st;

		memset(&hits[z], 0, sizeof(hits[z]));
		if (dnsbl_query_name(ip, zone->name, qname, sizeof(qname)) < 0) {
			hits[z].status = DNSBL_NOT_LISTED;
			continue;
		}
		st = dns_query_a(r, qname, addrs, 8, &n);
		if (st == DNS_NXDOMAIN || st == DNS_NODATA) {
			hits[z].status = DNSBL_NOT_LISTED;
			continue;
		}
		if (st != DNS_OK) {
			hits[z].status = DNSBL_ERROR;
			continue;
		}
		hits[z].status = DNSBL_NOT_LISTED;
		for (i = 0; i < n && hits[z].status == DNSBL_NOT_LISTED; i++) {
			uint32_t v;

			if (dnsbl_ip4(addrs[i], &v) < 0)
				continue;
			for (j = 0; j < zone->nranges; j++)
				if (v >= zone->lo[j] && v <= zone->hi[j]) {
					hits[z].status = DNSBL_LISTED;
					memcpy(hits[z].code, addrs[i], sizeof(hits[z].code));
					break;
				}
		}
	}
}
