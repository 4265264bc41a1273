/* test-address - RFC 5321 path parsing, ordinary local parts, canonical forms.
 * Expected values are written by hand from RFC 5321/6531, not copied from
 * the parser's output. */
#include <stdlib.h>
#include "address.h"
#include "unit.h"

struct addr_case {
	const char *in;
	unsigned opts;
	int ok;            /* parses */
	int ordinary;      /* local part ordinary (when ok) */
	const char *canon; /* canonical form (when ok), NULL = skip */
};

#define P 0 /* SMTP path: brackets required */
#define B ADDR_OPT_BARE
#define U (ADDR_OPT_BARE | ADDR_OPT_UTF8)
#define R (ADDR_OPT_ROUTE)
#define N (ADDR_OPT_NULL)

static const struct addr_case cases[] = {
	{ "<user@example.com>", P, 1, 1, "user@example.com" },
	{ "<User@Example.COM>", P, 1, 1, "user@example.com" },
	{ "<user@example.com.>", P, 1, 1, "user@example.com" }, /* one trailing dot */
	{ "<user@example.com..>", P, 0, 0, NULL },
	{ "<user.@example.com>", P, 0, 0, NULL },
	{ "<.user@example.com>", P, 0, 0, NULL },
	{ "<us..er@example.com>", P, 0, 0, NULL },
	{ "user@example.com", P, 0, 0, NULL }, /* brackets required */
	{ "user@example.com", B, 1, 1, "user@example.com" },
	{ "<user+tag@example.com>", P, 1, 1, "user+tag@example.com" },
	{ "<bounce-123-user=example.org@example.com>", P, 1, 1, NULL },  /* VERP */
	{ "<SRS0=HHH=TT=example.org=user@example.com>", P, 1, 1, NULL }, /* SRS */
	{ "<user%foreign.org@example.com>", P, 1, 0, NULL },             /* percent hack */
	{ "<foreign.org!user@example.com>", P, 1, 0, NULL },             /* bang path */
	{ "<foreign.org!user>", P, 0, 0, NULL }, /* bare bang path: no domain */
	{ "<\"user@foreign.org\"@example.com>", P, 1, 0, "\"user@foreign.org\"@example.com" },
	{ "<\"user%foreign\"@example.com>", P, 1, 0, NULL },
	{ "<\"plain\"@example.com>", P, 1, 0, NULL },         /* quoted is never ordinary */
	{ "<@example.com:user@foreign.org>", P, 0, 0, NULL }, /* route refused by default */
	{ "<@example.com:user@foreign.org>", R, 1, 0, NULL }, /* accepted, never ordinary */
	{ "<@a.com,@b.com:user@foreign.org>", R, 1, 0, NULL },
	{ "<user@[127.0.0.1]>", P, 1, 1, "user@[127.0.0.1]" },
	{ "<user@[]>", P, 0, 0, NULL },
	{ "<user@[127.0.0.1>", P, 0, 0, NULL },
	{ "<>", P, 0, 0, NULL },
	{ "<>", N, 1, 0, "" },
	{ "", B, 0, 0, NULL },
	{ "<user@>", P, 0, 0, NULL },
	{ "<@example.com>", P, 0, 0, NULL },
	{ "<user@-example.com>", P, 0, 0, NULL },
	{ "<user@example-.com>", P, 0, 0, NULL },
	{ "<user@exa_mple.com>", P, 0, 0, NULL },
	{ "<user@@example.com>", P, 0, 0, NULL },
	{ "<user name@example.com>", P, 0, 0, NULL },
	{ "<user@example.com", P, 0, 0, NULL },
	{ "<us\x01r@example.com>", P, 0, 0, NULL },
	/* SMTPUTF8 */
	{ "j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de",
	  U, 1, 1,
	  "j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de" },
	{ "j\xc3\xb6rg@example.com", B, 0, 0, NULL },       /* 8-bit without SMTPUTF8 */
	{ "j\xc3rg@example.com", U, 0, 0, NULL },           /* truncated sequence */
	{ "j\xc0\xafrg@example.com", U, 0, 0, NULL },       /* overlong '/' */
	{ "j\xed\xa0\x80rg@example.com", U, 0, 0, NULL },   /* UTF-16 surrogate */
	{ "j\xf5\x80\x80\x80@example.com", U, 0, 0, NULL }, /* > U+10FFFF */
	/* lengths: 64-octet local part is the maximum */
	{ "1234567890123456789012345678901234567890123456789012345678901234@example.com", B, 1, 1,
	  NULL },
	{ "12345678901234567890123456789012345678901234567890123456789012345@example.com", B, 0, 0,
	  NULL },
	{ "u@a23456789012345678901234567890123456789012345678901234567890123.com", B, 1, 1, NULL },
	{ "u@a234567890123456789012345678901234567890123456789012345678901234.com", B, 0, 0, NULL },
};

static void test_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct addr_case *c = &cases[i];
		struct mailbox mb;
		const char *err = NULL;
		int rc = addr_parse(c->in, strlen(c->in), c->opts, &mb, &err);

		UNIT_OK((rc == 0) == c->ok, "parse %s %s", c->in, c->ok ? "accepted" : "refused");
		if (rc != 0) {
			UNIT_OK(err != NULL && *err, "refusal of %s says why (%s)", c->in,
				err ? err : "");
			continue;
		}
		if (c->ok) {
			UNIT_OK(addr_local_is_ordinary(&mb) == c->ordinary, "%s is %sordinary",
				c->in, c->ordinary ? "" : "not ");
			if (c->canon) {
				char *canon = addr_canonical(&mb);
				UNIT_STR_EQ(canon, c->canon, "canonical form of %s", c->in);
				free(canon);
			}
		}
		addr_free(&mb);
	}
}

static void test_subaddress(void)
{
	struct mailbox mb;
	const char *err;
	char *s;

	addr_parse("User+Tag@Example.com", 20, B, &mb, &err);
	s = addr_strip_subaddress(&mb, "+");
	UNIT_STR_EQ(s, "user@example.com", "sub-address stripped with '+'");
	free(s);
	s = addr_strip_subaddress(&mb, "-");
	UNIT_STR_EQ(s, "user+tag@example.com", "no '-' delimiter: unchanged");
	free(s);
	addr_free(&mb);
}

static void test_canonicalize(void)
{
	const char *err = NULL;
	char *s;

	s = addr_canonicalize("Alice@Example.ORG", &err);
	UNIT_STR_EQ(s, "alice@example.org", "CLI canonical form lower-cases");
	free(s);
	UNIT_OK(addr_canonicalize("a%b@example.org", &err) == NULL, "CLI refuses percent hack");
	UNIT_OK(addr_canonicalize("a@[10.0.0.1]", &err) == NULL, "CLI refuses address literal");
	UNIT_OK(addr_canonicalize("not-an-address", &err) == NULL, "CLI refuses missing domain");
	UNIT_OK(addr_utf8_valid((const unsigned char *)"\xe2\x82\xac", 3),
		"euro sign is valid UTF-8");
	UNIT_OK(!addr_utf8_valid((const unsigned char *)"\xe2\x82", 2),
		"truncated euro sign is not");
}

int main(void)
{
	test_cases();
	test_subaddress();
	test_canonicalize();
	return unit_done();
}
