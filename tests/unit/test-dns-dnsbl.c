/* test-dns-dnsbl - DNSBL zone list parsing (codes, ranges, actions,
 * errors), RFC 5782 query names for IPv4 and IPv6, SPF result names and
 * DNS server specs. The lookups themselves are tested against a real
 * DNS server in tests/integration/policyd-dns.sh. */
#include <stdlib.h>
#include "dns_dnsbl.h"
#include "spf_check.h"
#include "unit.h"

/* T - UNIT_OK evaluating cond once (the assertions here have side effects) */
#define T(cond, ...)                      \
	do {                              \
		int t_ = !!(cond);        \
		UNIT_OK(t_, __VA_ARGS__); \
	} while (0)

int main(void)
{
	struct dnsbl_config c;
	char *err = NULL, name[512];

	T(dnsbl_parse(NULL, &c, &err) == 0 && c.nzones == 0, "unset: no zones");
	T(dnsbl_parse("", &c, &err) == 0 && c.nzones == 0, "empty: no zones (the default)");
	T(dnsbl_parse("bl.example", &c, &err) == 0 && c.nzones == 1 &&
		  c.zones[0].action == DNSBL_TAG && c.zones[0].nranges == 1 &&
		  c.zones[0].lo[0] == 0x7f000002 && c.zones[0].hi[0] == 0x7f0000fe,
	  "bare zone: tag, codes 127.0.0.2-127.0.0.254");
	T(dnsbl_parse("Zen.Example.=127.0.0.2-127.0.0.11,127.0.0.20:reject; other.example:tag", &c,
		      &err) == 0 &&
		  c.nzones == 2,
	  "two zones with codes and actions");
	UNIT_STR_EQ(c.zones[0].name, "zen.example", "zone lower-cased, trailing dot removed");
	T(c.zones[0].action == DNSBL_REJECT && c.zones[0].nranges == 2 &&
		  c.zones[0].hi[0] == 0x7f00000b && c.zones[0].lo[1] == 0x7f000014,
	  "codes and ranges kept");
	T(c.zones[1].action == DNSBL_TAG, "explicit :tag");
	T(dnsbl_parse("a.example b.example\tc.example", &c, &err) == 0 && c.nzones == 3,
	  "white space separates zones too");
	T(dnsbl_parse("bl.example:drop", &c, &err) < 0, "unknown action refused");
	free(err);
	err = NULL;
	T(dnsbl_parse("bl.example=127.0.0.9-127.0.0.2", &c, &err) < 0, "reversed range refused");
	free(err);
	err = NULL;
	T(dnsbl_parse("bl.example=banana", &c, &err) < 0, "bad code refused");
	free(err);
	err = NULL;
	T(dnsbl_parse("bad/zone", &c, &err) < 0, "bad zone name refused");
	free(err);
	err = NULL;

	T(dnsbl_query_name("192.0.2.99", "bl.example", name, sizeof(name)) == 0, "v4 name");
	UNIT_STR_EQ(name, "99.2.0.192.bl.example", "v4 octets reversed (RFC 5782 2.1)");
	T(dnsbl_query_name("2001:db8:1:2:3:4:567:89ab", "bl.example", name, sizeof(name)) == 0,
	  "v6 name");
	UNIT_STR_EQ(name,
		    "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example",
		    "v6 nibbles reversed (RFC 5782 2.4 example)");
	T(dnsbl_query_name("not-an-ip", "bl.example", name, sizeof(name)) < 0, "garbage refused");

	UNIT_STR_EQ(spf_result_name(SPFR_SOFTFAIL), "softfail", "softfail name");
	UNIT_STR_EQ(spf_result_name(SPFR_TEMPERROR), "temperror", "temperror name");
	T(spf_result_parse("PermError") == SPFR_PERMERROR, "names parse case-insensitively");
	T(spf_result_parse("unknown") < 0, "unknown name");

	T(dns_check_server_spec("127.0.0.1:5353", &err) == 0, "server with port");
	T(dns_check_server_spec("127.0.0.1", &err) == 0, "server without port");
	T(dns_check_server_spec("", &err) == 0, "empty: system resolver");
	T(dns_check_server_spec("localhost:53", &err) < 0, "names refused (no DNS to find DNS)");
	free(err);
	err = NULL;
	T(dns_check_server_spec("127.0.0.1:99999", &err) < 0, "port out of range");
	free(err);
	return unit_done();
}
