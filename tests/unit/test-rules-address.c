/* test-rules-address - RFC 5321 limits the relay decision relies on, for
 * lib/address.c (fixed in the milter issue): a mailbox of at most 254
 * octets (a path of 256 with its brackets), counted in octets also for
 * UTF-8, whatever the local part and domain lengths. Expected values from
 * RFC 5321 4.5.3.1 by hand. */
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "unit.h"

#define L63 "a23456789012345678901234567890123456789012345678901234567890123"
#define L64 L63 "4"
#define LBL "b23456789012345678901234567890123456789012345678901234567890123"
/* 63 + 1 + 63 + 1 + 62 = 190 octets */
#define D190 LBL "." LBL ".c2345678901234567890123456789012345678901234567890123456789012"
/* 190 + 1 + 63 = 254 octets */
#define D254 D190 "." LBL

static int parses(const char *s, unsigned opts)
{
	struct mailbox mb;
	const char *err = NULL;
	int rc = addr_parse(s, strlen(s), opts, &mb, &err);

	if (rc == 0)
		addr_free(&mb);
	return rc == 0;
}

int main(void)
{
	UNIT_OK(strlen(L63 "@" D190) == 254, "fixture: 254-octet mailbox");
	UNIT_OK(parses("<" L63 "@" D190 ">", 0), "254-octet mailbox (256-octet path) accepted");
	UNIT_OK(!parses("<" L64 "@" D190 ">", 0), "255-octet mailbox refused although local part "
						  "(64) and domain (190) are each within limits");
	UNIT_OK(!parses("<a@" D254 ">", 0),
		"short local part, 254-octet domain: 256-octet mailbox refused");
	UNIT_OK(parses("<a@" D190 ">", 0), "short mailbox at a long domain accepted");
	/* UTF-8 counts octets: 62 ASCII + one 2-octet character = 64 octets */
	UNIT_OK(parses("<a2345678901234567890123456789012345678901234567890123456789012\xc3\xa9@" D190
		       ">",
		       ADDR_OPT_UTF8) == 0,
		"UTF-8: 64-octet local part + 190 = 255 octets refused");
	UNIT_OK(parses("<a234567890123456789012345678901234567890123456789012345678901\xc3\xa9@" D190
		       ">",
		       ADDR_OPT_UTF8) == 1,
		"UTF-8: 63-octet local part + 190 = 254 octets accepted");
	UNIT_OK(!parses(L64 "@" D190, ADDR_OPT_BARE), "bare form: the same limit");
	return unit_done();
}
