/*
 * NAME
 *	ctl_domain_check - postroomctl domain check: what the world's DNS says
 * DESCRIPTION
 *	Looks up, for a hosted domain, what a receiving site sees and reports
 *	each item as ok or wrong, with the record to publish when wrong:
 *	  mx     at least one MX record;
 *	  spf    one "v=spf1" record, and with --ip ADDR, SPF (lib/spf_check.c,
 *	         the same evaluation as postroom-policyd) passes for
 *	         postmaster@DOMAIN sending from ADDR;
 *	  dkim   each active or pending selector (ctl/ctl_dkim.c) publishes the
 *	         key made on this host;
 *	  dmarc  a "v=DMARC1" record at _dmarc.DOMAIN;
 *	  ptr    with --ip ADDR: a PTR name whose A records include ADDR.
 *	Exit 0 when every item is ok, 1 otherwise. Asks dkim.dns_server, else
 *	the system resolver (lib/dns_resolver.c).
 * NEVER
 *	changes anything: it only reads DNS and the key directory.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "spf_check.h"
#include "xalloc.h"

struct check_out {
	struct ctl *ctl;
	json_t *arr;
	int wrong;
};

/* check_report - one item: ok or wrong, what was seen, the fix */
static void check_report(struct check_out *o, const char *item, int ok, const char *seen,
			 const char *fix)
{
	if (!ok)
		o->wrong++;
	if (o->ctl->json)
		json_array_append_new(o->arr, json_pack("{s:s, s:s, s:s, s:s?}", "item", item,
							"status", ok ? "ok" : "wrong", "seen", seen,
							"fix", ok ? NULL : fix));
	else
		printf("%-6s %-5s %s%s%s\n", item, ok ? "ok" : "WRONG", seen,
		       ok || fix == NULL ? "" : "\n       fix: ", ok || fix == NULL ? "" : fix);
}

/* check_mx - the MX hosts of dom, joined, into out; their count */
static int check_mx(struct dns_resolver *r, const char *dom, char *out, size_t outlen,
		    enum dns_status *st_r)
{
	unsigned char ans[4096];
	char host[NS_MAXDNAME];
	ns_msg msg;
	ns_rr rr;
	int len, i, n = 0;

	out[0] = '\0';
	*st_r = dns_query(r, dom, ns_t_mx, ans, sizeof(ans), &len);
	if (*st_r != DNS_OK || ns_initparse(ans, len, &msg) < 0)
		return 0;
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0 || ns_rr_type(rr) != ns_t_mx ||
		    ns_rr_rdlen(rr) < 3)
			continue;
		if (ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 2, host,
				       sizeof(host)) < 0)
			continue;
		if (strlen(out) + strlen(host) + 10 < outlen)
			snprintf(out + strlen(out), outlen - strlen(out), "%s%u %.*s",
				 n ? ", " : "", ns_get16(ns_rr_rdata(rr)),
				 (int)(outlen - strlen(out) - 10), host);
		n++;
	}
	return n;
}

/* check_ptr - the PTR name of the IPv4 address ip into name; whether one
 * of its A records is ip (forward-confirmed) */
static int check_ptr(struct dns_resolver *r, const char *ip, char *name, size_t len)
{
	unsigned char a[4], ans[4096];
	char q[64], addrs[8][16];
	ns_msg msg;
	ns_rr rr;
	int n, i, alen;

	name[0] = '\0';
	if (inet_pton(AF_INET, ip, a) != 1)
		return 0;
	snprintf(q, sizeof(q), "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
	if (dns_query(r, q, ns_t_ptr, ans, sizeof(ans), &alen) != DNS_OK ||
	    ns_initparse(ans, alen, &msg) < 0)
		return 0;
	for (i = 0; i < ns_msg_count(msg, ns_s_an) && name[0] == '\0'; i++)
		if (ns_parserr(&msg, ns_s_an, i, &rr) == 0 && ns_rr_type(rr) == ns_t_ptr)
			ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr), name,
					   len);
	if (name[0] == '\0' || dns_query_a(r, name, addrs, 8, &n) != DNS_OK)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(addrs[i], ip) == 0)
			return 1;
	return 0;
}

/* check_spf - the record, and SPF's verdict for postmaster@dom from ip */
static void check_spf(struct check_out *o, struct dns_resolver *r, const char *dom, const char *ip)
{
	char txt[4096], *seen, *fix;
	struct spf_check_outcome res;
	struct spf_checker *c;
	enum dns_status st = ctl_dns_txt(r, dom, "v=spf1", txt, sizeof(txt));

	if (st != DNS_OK) {
		seen = xasprintf("no SPF record (%s)", dns_status_name(st));
		fix = xasprintf("%s. IN TXT \"v=spf1 %s%s -all\"", dom, ip ? "ip4:" : "mx",
				ip ? ip : "");
		check_report(o, "spf", 0, seen, fix);
	} else if (ip == NULL) {
		seen = xasprintf("\"%s\" (give --ip to check the sending address)", txt);
		fix = NULL;
		check_report(o, "spf", 1, seen, NULL);
	} else {
		char *from = xasprintf("postmaster@%s", dom);

		c = spf_checker_new(r, "postroomctl");
		spf_check(c, ip, dom, from, &res);
		spf_checker_free(&c);
		free(from);
		seen = xasprintf("\"%s\": %s for %s", txt, spf_result_name(res.result), ip);
		fix = xasprintf("add ip4:%s to %s's SPF record", ip, dom);
		check_report(o, "spf", res.result == SPFR_PASS, seen, fix);
	}
	free(seen);
	free(fix);
}

/* check_dkim - every active or pending selector publishes our key */
static void check_dkim(struct check_out *o, const char *dom)
{
	struct ctl_dkim_sel sel[16];
	int i, n = ctl_dkim_selectors(o->ctl, dom, sel, 16);
	char *seen, *fix;
	const char *why;

	if (n <= 0) {
		check_report(o, "dkim", 0, "no DKIM key on this host",
			     n < 0 ? "dkim.key_dir" : "postroomctl domain dkim DOMAIN");
		return;
	}
	for (i = 0; i < n; i++) {
		int ok = sel[i].record &&
			 ctl_dkim_dns_matches(o->ctl, dom, sel[i].name, sel[i].record, &why);

		seen = xasprintf("selector %s (%s): %s", sel[i].name, sel[i].state,
				 sel[i].record ? why : "no record file");
		fix = xasprintf("%s._domainkey.%s. IN TXT \"%s\"", sel[i].name, dom,
				sel[i].record ? sel[i].record : "?");
		check_report(o, "dkim", ok, seen, fix);
		free(seen);
		free(fix);
		free(sel[i].record);
	}
}

int ctl_domain_check(struct ctl *ctl, const char *dom, int argc, char **argv)
{
	char *ip = NULL, *err = NULL, txt[4096], buf[4096], *seen, *fix;
	const struct ctl_opt opts[] = { { "--ip", &ip, 0 }, { NULL, NULL, 0 } };
	struct check_out o = { ctl, json_array(), 0 };
	struct dns_resolver *r;
	enum dns_status st;
	int n;

	if (ctl_parse_args(argc, argv, opts, NULL, 0, 0) < 0) {
		json_decref(o.arr);
		return CTL_USAGE;
	}
	r = dns_resolver_new(conf_str(ctl->conf, "dkim.dns_server"), 3, 2, &err);
	if (r == NULL) {
		n = ctl_fail(CTL_CONFIG, "dkim.dns_server: %s", err);
		free(err);
		free(ip);
		json_decref(o.arr);
		return n;
	}
	n = check_mx(r, dom, buf, sizeof(buf), &st);
	seen = n ? xstrdup(buf) : xasprintf("no MX record (%s)", dns_status_name(st));
	fix = xasprintf("%s. IN MX 10 mail.%s.", dom, dom);
	check_report(&o, "mx", n > 0, seen, fix);
	free(seen);
	free(fix);
	check_spf(&o, r, dom, ip);
	check_dkim(&o, dom);
	seen = xasprintf("_dmarc.%s", dom);
	st = ctl_dns_txt(r, seen, "v=DMARC1", txt, sizeof(txt));
	free(seen);
	seen = st == DNS_OK ? xasprintf("\"%s\"", txt)
			    : xasprintf("no DMARC record (%s)", dns_status_name(st));
	fix = xasprintf("_dmarc.%s. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@%s\"",
			dom, dom);
	check_report(&o, "dmarc", st == DNS_OK, seen, fix);
	free(seen);
	free(fix);
	if (ip) {
		n = check_ptr(r, ip, buf, sizeof(buf));
		seen = xasprintf("%s -> %s", ip, buf[0] ? buf : "no PTR");
		fix = xasprintf(
			"a PTR for %s naming a host whose A record is %s (ask the address's owner)",
			ip, ip);
		check_report(&o, "ptr", n, seen, fix);
		free(seen);
		free(fix);
	}
	dns_resolver_free(&r);
	ctl_print_list(ctl, o.arr);
	free(ip);
	return o.wrong ? CTL_REFUSED : CTL_OK;
}
