/*
 * NAME
 *	spf_check - SPF verdicts with libspf2 over postroom's DNS layer
 * DESCRIPTION
 *	libspf2 resolves only through /etc/resolv.conf; here it gets a
 *	DNS layer of its own (an SPF_dns_server_t, public in spf2/spf_dns.h)
 *	whose lookup runs res_nquery() on the private res_state of a
 *	struct dns_resolver: configured server and port, per-query timeout,
 *	per-check budget. Queries for the obsolete SPF RR type (99) are
 *	answered "no data" locally (RFC 7208 section 3.1 drops the type),
 *	which saves a round trip per record.
 *	libspf2's results are mapped to RFC 7208 names; where libspf2 leaves
 *	the result unset it is derived from its error codes: a DNS failure
 *	is temperror, a record that does not compile is permerror, no record
 *	is none.
 * NEVER
 *	rejects anything itself, or lets libspf2 abort the process on
 *	malformed input from the network.
 */
#include "spf_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "log.h"
#include "xalloc.h"

struct spf_checker {
	SPF_dns_server_t *layer;
	SPF_server_t *server;
	struct dns_resolver *resolver;
};

/* spf_dns_rr_add - append one RR of len bytes to rr; NULL data = empty */
static int spf_dns_rr_add(SPF_dns_rr_t *rr, const void *data, size_t len)
{
	int idx = rr->num_rr;

	if (SPF_dns_rr_buf_realloc(rr, idx, len + 1) != SPF_E_SUCCESS)
		return -1;
	memcpy(rr->rr[idx], data, len);
	if (rr->rr_type != ns_t_a && rr->rr_type != ns_t_aaaa)
		((char *)rr->rr[idx])[len] = '\0';
	rr->num_rr++;
	return 0;
}

/* spf_dns_txt - the character-strings of a TXT RR concatenated */
static int spf_dns_add_txt(SPF_dns_rr_t *rr, const unsigned char *rdata, size_t rdlen)
{
	char buf[4096];
	size_t out = 0, pos = 0;

	while (pos < rdlen) {
		size_t n = rdata[pos++];

		if (n > rdlen - pos || out + n >= sizeof(buf))
			return 0; /* malformed or huge: skip the RR */
		memcpy(buf + out, rdata + pos, n);
		out += n;
		pos += n;
	}
	buf[out] = '\0';
	if (memchr(buf, '\0', out) != NULL)
		return 0; /* embedded NUL: not a usable record */
	return spf_dns_rr_add(rr, buf, out);
}

/* spf_dns_parse - fill rr from the answer section of a reply */
static void spf_dns_parse(SPF_dns_rr_t *rr, const unsigned char *ans, int len)
{
	ns_msg msg;
	ns_rr r;
	char name[NS_MAXDNAME];
	int i, count;

	if (ns_initparse(ans, len, &msg) < 0) {
		rr->herrno = NO_RECOVERY;
		return;
	}
	count = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < count; i++) {
		const unsigned char *rd;
		size_t rdlen;

		if (ns_parserr(&msg, ns_s_an, i, &r) < 0)
			break;
		if (ns_rr_type(r) != rr->rr_type)
			continue; /* CNAMEs: the target's RRs follow */
		rd = ns_rr_rdata(r);
		rdlen = ns_rr_rdlen(r);
		switch (rr->rr_type) {
		case ns_t_a:
			if (rdlen == 4)
				spf_dns_rr_add(rr, rd, 4);
			break;
		case ns_t_aaaa:
			if (rdlen == 16)
				spf_dns_rr_add(rr, rd, 16);
			break;
		case ns_t_txt: spf_dns_add_txt(rr, rd, rdlen); break;
		case ns_t_mx:
			if (rdlen > 2 &&
			    ns_name_uncompress(ans, ans + len, rd + 2, name, sizeof(name)) >= 0)
				spf_dns_rr_add(rr, name, strlen(name));
			break;
		case ns_t_ptr:
			if (ns_name_uncompress(ans, ans + len, rd, name, sizeof(name)) >= 0)
				spf_dns_rr_add(rr, name, strlen(name));
			break;
		default: break;
		}
	}
	if (rr->num_rr == 0)
		rr->herrno = NO_DATA;
}

/* spf_dns_lookup - the layer's lookup: one query over our resolver */
static SPF_dns_rr_t *spf_dns_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
				    int should_cache)
{
	struct dns_resolver *r = layer->hook;
	unsigned char ans[8192];
	int len = 0;
	enum dns_status st;
	int herrno;

	if (type == ns_t_spf) /* RFC 7208 3.1: type 99 is not used */
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	st = dns_query(r, domain, type, ans, sizeof(ans), &len);
	switch (st) {
	case DNS_OK: herrno = NETDB_SUCCESS; break;
	case DNS_NXDOMAIN: herrno = HOST_NOT_FOUND; break;
	case DNS_NODATA: herrno = NO_DATA; break;
	default: herrno = TRY_AGAIN; break;
	}
	{
		SPF_dns_rr_t *rr = SPF_dns_rr_new_init(layer, domain, type, 0, herrno);

		if (rr != NULL && st == DNS_OK)
			spf_dns_parse(rr, ans, len);
		return rr;
	}
}

/* libspf2 message handlers: into our log, never exit() from here */
static void spf_log_error(const char *file, int line, const char *msg) __attribute__((noreturn));
static void spf_log_error(const char *file, int line, const char *msg)
{
	log_panic("libspf2 internal error at %s:%d: %s", file ? file : "?", line, msg);
}
static void spf_log_warn(const char *file, int line, const char *msg)
{
	log_debug("libspf2: %s", msg);
}
static void spf_log_debug(const char *file, int line, const char *msg)
{
	log_debug("libspf2: %s", msg);
}

static pthread_once_t spf_once = PTHREAD_ONCE_INIT;

static void spf_init_handlers(void)
{
	SPF_error_handler = spf_log_error;
	SPF_warning_handler = spf_log_warn;
	SPF_info_handler = spf_log_debug;
	SPF_debug_handler = spf_log_debug;
}

struct spf_checker *spf_checker_new(struct dns_resolver *r, const char *receiver)
{
	struct spf_checker *c = xcalloc(1, sizeof(*c));

	pthread_once(&spf_once, spf_init_handlers);
	c->resolver = r;
	c->layer = xcalloc(1, sizeof(*c->layer));
	c->layer->destroy = NULL; /* freed by spf_checker_free */
	c->layer->lookup = spf_dns_lookup;
	c->layer->name = "postroom";
	c->layer->hook = r;
	c->server = SPF_server_new_dns(c->layer, 0);
	if (c->server == NULL)
		log_fatal(EX_SOFTWARE, "libspf2: cannot create an SPF server");
	if (receiver != NULL && *receiver != '\0')
		SPF_server_set_rec_dom(c->server, receiver);
	return c;
}

void spf_checker_free(struct spf_checker **cp)
{
	if (*cp == NULL)
		return;
	/* a layer passed to SPF_server_new_dns() stays ours to free */
	SPF_server_free((*cp)->server);
	free((*cp)->layer);
	xfree(cp);
}

static const char *const spf_names[] = { "none",     "neutral",   "pass",     "fail",
					 "softfail", "temperror", "permerror" };

const char *spf_result_name(enum spf_check_result r)
{
	return (unsigned)r < sizeof(spf_names) / sizeof(spf_names[0]) ? spf_names[r] : "none";
}

int spf_result_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(spf_names) / sizeof(spf_names[0]); i++)
		if (strcasecmp(name, spf_names[i]) == 0)
			return (int)i;
	return -1;
}

/* spf_set_comment - a header-safe copy of text (no CR/LF, ';' -> ',') */
static void spf_set_comment(struct spf_check_outcome *out, const char *text)
{
	size_t i, n = 0;

	for (i = 0; text != NULL && text[i] != '\0' && n + 1 < sizeof(out->comment); i++) {
		unsigned char ch = (unsigned char)text[i];

		out->comment[n++] = ch < 0x20 || ch >= 0x7f ? ' ' : ch == ';' ? ',' : (char)ch;
	}
	out->comment[n] = '\0';
}

/* spf_map_unset - libspf2 left no result: decide from its error codes */
static enum spf_check_result spf_map_unset(SPF_response_t *resp, SPF_errcode_t err)
{
	int i;

	if (err == SPF_E_DNS_ERROR)
		return SPFR_TEMPERROR;
	for (i = 0; resp != NULL && i < SPF_response_messages(resp); i++) {
		SPF_error_t *e = SPF_response_message(resp, i);
		SPF_errcode_t code = SPF_error_code(e);

		if (code == SPF_E_DNS_ERROR)
			return SPFR_TEMPERROR;
		if (code != SPF_E_NOT_SPF && code != SPF_E_SUCCESS &&
		    code != SPF_E_RESULT_UNKNOWN && SPF_error_errorp(e))
			return SPFR_PERMERROR; /* the record did not compile */
	}
	return SPFR_NONE;
}

static enum spf_check_result spf_map(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_NEUTRAL: return SPFR_NEUTRAL;
	case SPF_RESULT_PASS: return SPFR_PASS;
	case SPF_RESULT_FAIL: return SPFR_FAIL;
	case SPF_RESULT_SOFTFAIL: return SPFR_SOFTFAIL;
	case SPF_RESULT_NONE: return SPFR_NONE;
	case SPF_RESULT_TEMPERROR: return SPFR_TEMPERROR;
	case SPF_RESULT_PERMERROR: return SPFR_PERMERROR;
	default: return SPFR_NONE;
	}
}

void spf_check(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
	       struct spf_check_outcome *out)
{
	SPF_request_t *req;
	SPF_response_t *resp = NULL;
	SPF_errcode_t err;
	struct in6_addr a6;
	struct in_addr a4;
	const char *at;
	char *from = NULL;

	memset(out, 0, sizeof(*out));
	out->result = SPFR_NONE;
	out->identity = sender != NULL && *sender != '\0' ? "mailfrom" : "helo";
	if (sender != NULL && *sender != '\0')
		from = xstrdup(sender);
	else if (helo != NULL && *helo != '\0' && helo[0] != '[')
		from = xasprintf("postmaster@%s", helo);
	else {
		spf_set_comment(out, "no identity to check (null sender, no usable HELO)");
		return;
	}
	at = strrchr(from, '@');
	snprintf(out->domain, sizeof(out->domain), "%s", at ? at + 1 : from);

	req = SPF_request_new(c->server);
	if (inet_pton(AF_INET, ip, &a4) == 1)
		err = SPF_request_set_ipv4(req, a4);
	else if (inet_pton(AF_INET6, ip, &a6) == 1)
		err = SPF_request_set_ipv6(req, a6);
	else
		err = SPF_E_INVALID_IP4;
	if (err == SPF_E_SUCCESS && helo != NULL && *helo != '\0')
		err = SPF_request_set_helo_dom(req, helo);
	if (err != SPF_E_SUCCESS || SPF_request_set_env_from(req, from) != 0) {
		spf_set_comment(out, "client address or sender not checkable");
		SPF_request_free(req);
		free(from);
		return;
	}
	err = SPF_request_query_mailfrom(req, &resp);
	if (resp != NULL && SPF_response_result(resp) != SPF_RESULT_INVALID)
		out->result = spf_map(SPF_response_result(resp));
	else
		out->result = spf_map_unset(resp, err);
	if (resp != NULL && SPF_response_get_header_comment(resp) != NULL &&
	    out->result != SPFR_TEMPERROR)
		spf_set_comment(out, SPF_response_get_header_comment(resp));
	else
		spf_set_comment(out,
				out->result == SPFR_TEMPERROR ? "DNS lookup failed or timed out"
				: out->result == SPFR_NONE    ? "no SPF record"
							   : "SPF record could not be evaluated");
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_request_free(req);
	free(from);
}
