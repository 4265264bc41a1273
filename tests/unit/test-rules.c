/* test-rules - the envelope rules engine, table-driven.
 * Every row of MISSION.md's two "Envelope rules" tables, the rows decided
 * below them, the codes of issue 5 and every hostile address form it names,
 * postmaster (RFC 5321 4.5.1, issue 17 item 6), and the storage quota
 * at RCPT (issue 18 item 4).
 * Expected codes are written by hand from MISSION.md, the issue and RFC
 * 5321/6531/3463, not copied from the engine's output. Lookups are a static
 * table standing in for PostgreSQL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "unit.h"

/* ---- the static lookup table -------------------------------------------- */

static const char *hosted[] = { "example.com",
				"b\xc3\xbc"
				"cher.de",
				NULL };
static const char *addresses[][2] = {
	/* address, owner (login) */
	{ "alice@example.com", "alice@example.com" },
	{ "alice.alias@example.com", "alice@example.com" },
	{ "bob@example.com", "bob@example.com" },
	{ "bounces@example.com", "bob@example.com" },
	{ "j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de",
	  "j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de" },
	{ NULL, NULL },
};

static int lookups_fail; /* every lookup answers RULES_LOOKUP_ERROR */
static int lookups_made;
static int contract_broken; /* a lookup got a non-canonical argument */

static void check_canonical(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			contract_broken = 1;
	if (*s == '\0' || s[strlen(s) - 1] == '.' || *s == '<')
		contract_broken = 1;
}

static enum rules_lookup lk_domain(void *ctx, const char *domain)
{
	size_t i;

	lookups_made++;
	check_canonical(domain);
	if (lookups_fail)
		return RULES_LOOKUP_ERROR;
	for (i = 0; hosted[i]; i++)
		if (strcmp(hosted[i], domain) == 0)
			return RULES_FOUND;
	return RULES_NOT_FOUND;
}

static enum rules_lookup lk_exists(void *ctx, const char *address)
{
	size_t i;

	lookups_made++;
	check_canonical(address);
	if (lookups_fail)
		return RULES_LOOKUP_ERROR;
	for (i = 0; addresses[i][0]; i++)
		if (strcmp(addresses[i][0], address) == 0)
			return RULES_FOUND;
	return RULES_NOT_FOUND;
}

static enum rules_lookup lk_owned(void *ctx, const char *address, const char *login)
{
	size_t i;

	lookups_made++;
	check_canonical(address);
	if (lookups_fail)
		return RULES_LOOKUP_ERROR;
	for (i = 0; addresses[i][0]; i++)
		if (strcmp(addresses[i][0], address) == 0)
			return strcasecmp(addresses[i][1], login) == 0 ? RULES_FOUND
								       : RULES_NOT_FOUND;
	return RULES_NOT_FOUND;
}

static const struct rules_lookups lookups = { .domain_hosted = lk_domain,
					      .address_exists = lk_exists,
					      .address_owned_by = lk_owned };

/* ---- cases ---------------------------------------------------------------- */

enum stage { MAIL, RCPT };
enum { MXOFF = 0, MXON = 1 };
#define R_MX RULES_ROLE_MX
#define R_SUB RULES_ROLE_SUBMISSION
#define R_OTH RULES_ROLE_OTHER
#define NOAUTH NULL
#define ALICE "alice@example.com"

/* options of a case */
#define O_UTF8 0x1    /* client sent SMTPUTF8 */
#define O_NOVALID 0x2 /* recipient_validation off */
#define O_NOLOGIN 0x4 /* sender_login_match off */
#define O_FAIL 0x8    /* the database is down */

struct rcase {
	const char *why;
	enum stage stage;
	int mx;
	enum rules_role role;
	const char *auth;
	const char *path;
	long long size;
	unsigned opts;
	const char *code; /* NULL = accept */
	const char *enhanced;
	int relay;
};

#define ACCEPT NULL, NULL, 0
#define AUTHREQ "530", "5.7.0", 0
#define RELAY "554", "5.7.1", 1
#define UNKNOWN "550", "5.1.1", 0
#define NOTOWNED "553", "5.7.1", 0
#define TEMP "451", "4.3.0", 0
#define BADRCPT "501", "5.1.3", 0
#define BADSENDER "501", "5.1.7", 0
#define TOOBIG "552", "5.3.4", 0
#define NEEDUTF8 "553", "5.6.7", 0
#define QUOTED "553", "5.1.3", 0

#define L64 "a234567890123456789012345678901234567890123456789012345678901234"
#define L63 "a23456789012345678901234567890123456789012345678901234567890123"
#define LBL "b23456789012345678901234567890123456789012345678901234567890123" /* 63 */
/* 63 + 1 + 63 + 1 + 62 = 190 octets */
#define D190 LBL "." LBL ".c2345678901234567890123456789012345678901234567890123456789012"

static const struct rcase cases[] = {
	/* --- MISSION.md sender table ------------------------------------ */
	{ "sender: MX disabled, MX port, authenticated", MAIL, MXOFF, R_MX, ALICE,
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "sender: MX disabled, submission, authenticated", MAIL, MXOFF, R_SUB, ALICE,
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "sender: MX disabled, other port, authenticated", MAIL, MXOFF, R_OTH, ALICE,
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "sender: MX enabled, submission, authenticated", MAIL, MXON, R_SUB, ALICE,
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "sender: MX enabled, MX port, unauthenticated", MAIL, MXON, R_MX, NOAUTH,
	  "<someone@foreign.org>", -1, 0, ACCEPT },
	{ "sender: MX enabled, other port, unauthenticated", MAIL, MXON, R_OTH, NOAUTH,
	  "<someone@foreign.org>", -1, 0, AUTHREQ },
	/* decided rows */
	{ "sender: MX disabled, unauthenticated, MX port refused", MAIL, MXOFF, R_MX, NOAUTH,
	  "<someone@foreign.org>", -1, 0, AUTHREQ },
	{ "sender: MX disabled, unauthenticated, submission refused", MAIL, MXOFF, R_SUB, NOAUTH,
	  "<someone@foreign.org>", -1, 0, AUTHREQ },
	{ "sender: MX disabled, unauthenticated, other refused", MAIL, MXOFF, R_OTH, NOAUTH,
	  "<someone@foreign.org>", -1, 0, AUTHREQ },
	{ "sender: MX enabled, unauthenticated on submission: 530", MAIL, MXON, R_SUB, NOAUTH,
	  "<someone@foreign.org>", -1, 0, AUTHREQ },
	{ "sender: authenticated on the MX port is a submission", MAIL, MXON, R_MX, ALICE,
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "sender: authenticated on MX port, not own address", MAIL, MXON, R_MX, ALICE,
	  "<bob@example.com>", -1, 0, NOTOWNED },
	{ "sender: authenticated, own alias", MAIL, MXON, R_SUB, ALICE, "<alice.alias@example.com>",
	  -1, 0, ACCEPT },
	{ "sender: authenticated, own address in upper case", MAIL, MXON, R_SUB, ALICE,
	  "<ALICE@Example.COM>", -1, 0, ACCEPT },
	{ "sender: authenticated, own address with sub-address", MAIL, MXON, R_SUB, ALICE,
	  "<alice+news@example.com>", -1, 0, ACCEPT },
	{ "sender: authenticated, login in another case", MAIL, MXON, R_SUB, "ALICE@example.com",
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "sender: authenticated, null sender", MAIL, MXON, R_SUB, ALICE, "<>", -1, 0, ACCEPT },
	{ "sender: authenticated, another user's address", MAIL, MXON, R_SUB, ALICE,
	  "<bob@example.com>", -1, 0, NOTOWNED },
	{ "sender: authenticated, nobody's address", MAIL, MXON, R_SUB, ALICE, "<ceo@foreign.org>",
	  -1, 0, NOTOWNED },
	{ "sender: authenticated, quoted form of own address", MAIL, MXON, R_SUB, ALICE,
	  "<\"alice\"@example.com>", -1, 0, NOTOWNED },
	{ "sender: authenticated, MX disabled, not own", MAIL, MXOFF, R_SUB, ALICE,
	  "<bob@example.com>", -1, 0, NOTOWNED },
	{ "sender: sender_login_match off: any sender", MAIL, MXON, R_SUB, ALICE,
	  "<ceo@foreign.org>", -1, O_NOLOGIN, ACCEPT },
	{ "sender: ownership lookup fails: tempfail", MAIL, MXON, R_SUB, ALICE,
	  "<alice@example.com>", -1, O_FAIL, TEMP },
	{ "sender: unauthenticated MX needs no lookup", MAIL, MXON, R_MX, NOAUTH, "<x@foreign.org>",
	  -1, O_FAIL, ACCEPT },
	{ "sender: null sender on MX (bounces)", MAIL, MXON, R_MX, NOAUTH, "<>", -1, 0, ACCEPT },
	{ "sender: bad syntax", MAIL, MXON, R_MX, NOAUTH, "<a b@foreign.org>", -1, 0, BADSENDER },
	{ "sender: no brackets", MAIL, MXON, R_MX, NOAUTH, "x@foreign.org", -1, 0, BADSENDER },
	{ "sender: UTF-8 without SMTPUTF8", MAIL, MXON, R_MX, NOAUTH, "<j\xc3\xb6rg@foreign.org>",
	  -1, 0, NEEDUTF8 },
	{ "sender: UTF-8 with SMTPUTF8", MAIL, MXON, R_MX, NOAUTH, "<j\xc3\xb6rg@foreign.org>", -1,
	  O_UTF8, ACCEPT },
	{ "sender: malformed 8-bit with SMTPUTF8", MAIL, MXON, R_MX, NOAUTH,
	  "<j\xc3rg@foreign.org>", -1, O_UTF8, BADSENDER },
	{ "sender: authenticated UTF-8 own address", MAIL, MXON, R_SUB,
	  "j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de",
	  "<j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de>",
	  -1, O_UTF8, ACCEPT },
	/* SIZE= */
	{ "sender: SIZE= over the limit", MAIL, MXON, R_MX, NOAUTH, "<x@foreign.org>", 52428801, 0,
	  TOOBIG },
	{ "sender: SIZE= at the limit", MAIL, MXON, R_MX, NOAUTH, "<x@foreign.org>", 52428800, 0,
	  ACCEPT },
	{ "sender: SIZE= over the limit, authenticated", MAIL, MXON, R_SUB, ALICE,
	  "<alice@example.com>", 99999999, 0, TOOBIG },
	{ "sender: no SIZE=", MAIL, MXON, R_MX, NOAUTH, "<x@foreign.org>", -1, 0, ACCEPT },

	/* --- MISSION.md recipient table --------------------------------- */
	{ "rcpt: MX disabled, MX port, authenticated, foreign", RCPT, MXOFF, R_MX, ALICE,
	  "<friend@foreign.org>", -1, 0, ACCEPT },
	{ "rcpt: MX disabled, submission, authenticated, foreign", RCPT, MXOFF, R_SUB, ALICE,
	  "<friend@foreign.org>", -1, 0, ACCEPT },
	{ "rcpt: MX disabled, other, authenticated, hosted", RCPT, MXOFF, R_OTH, ALICE,
	  "<bob@example.com>", -1, 0, ACCEPT },
	{ "rcpt: MX enabled, submission, authenticated, to anyone", RCPT, MXON, R_SUB, ALICE,
	  "<friend@foreign.org>", -1, 0, ACCEPT },
	{ "rcpt: MX enabled, submission, authenticated, unknown hosted", RCPT, MXON, R_SUB, ALICE,
	  "<nobody@example.com>", -1, 0, ACCEPT },
	{ "rcpt: MX enabled, MX, unauthenticated, hosted", RCPT, MXON, R_MX, NOAUTH,
	  "<alice@example.com>", -1, 0, ACCEPT },
	{ "rcpt: MX enabled, MX, unauthenticated, foreign: relay", RCPT, MXON, R_MX, NOAUTH,
	  "<victim@foreign.org>", -1, 0, RELAY },
	{ "rcpt: MX enabled, MX, unauthenticated, unknown user", RCPT, MXON, R_MX, NOAUTH,
	  "<nobody@example.com>", -1, 0, UNKNOWN },
	{ "rcpt: unknown user, validation off: accepted", RCPT, MXON, R_MX, NOAUTH,
	  "<nobody@example.com>", -1, O_NOVALID, ACCEPT },
	{ "rcpt: MX enabled, other, unauthenticated", RCPT, MXON, R_OTH, NOAUTH,
	  "<alice@example.com>", -1, 0, AUTHREQ },
	/* decided rows */
	{ "rcpt: MX disabled, unauthenticated, MX port, hosted", RCPT, MXOFF, R_MX, NOAUTH,
	  "<alice@example.com>", -1, 0, AUTHREQ },
	{ "rcpt: MX disabled, unauthenticated, submission", RCPT, MXOFF, R_SUB, NOAUTH,
	  "<alice@example.com>", -1, 0, AUTHREQ },
	{ "rcpt: MX disabled, unauthenticated, other", RCPT, MXOFF, R_OTH, NOAUTH,
	  "<alice@example.com>", -1, 0, AUTHREQ },
	{ "rcpt: MX enabled, unauthenticated submission: 530", RCPT, MXON, R_SUB, NOAUTH,
	  "<alice@example.com>", -1, 0, AUTHREQ },
	{ "rcpt: authenticated on MX port: to anyone", RCPT, MXON, R_MX, ALICE,
	  "<friend@foreign.org>", -1, 0, ACCEPT },
	{ "rcpt: authenticated needs no lookup (db down)", RCPT, MXON, R_SUB, ALICE,
	  "<friend@foreign.org>", -1, O_FAIL, ACCEPT },
	{ "rcpt: authenticated, bad syntax", RCPT, MXON, R_SUB, ALICE, "<friend@@foreign.org>", -1,
	  0, BADRCPT },
	{ "rcpt: empty auth user is not authenticated", RCPT, MXON, R_SUB, "",
	  "<friend@foreign.org>", -1, 0, AUTHREQ },
	/* postmaster (RFC 5321 4.5.1, issue 17 item 6): MUST be accepted, at
	 * every hosted domain, and bare; never an open relay */
	{ "rcpt: bare <Postmaster>, MX: accepted", RCPT, MXON, R_MX, NOAUTH, "<Postmaster>", -1, 0,
	  ACCEPT },
	{ "rcpt: bare <postmaster> in lower case, MX: accepted", RCPT, MXON, R_MX, NOAUTH,
	  "<postmaster>", -1, 0, ACCEPT },
	{ "rcpt: bare <POSTMASTER>, MX, database down: accepted (no lookup)", RCPT, MXON, R_MX,
	  NOAUTH, "<POSTMASTER>", -1, O_FAIL, ACCEPT },
	{ "rcpt: bare <Postmaster>, unauthenticated submission: 530", RCPT, MXON, R_SUB, NOAUTH,
	  "<Postmaster>", -1, 0, AUTHREQ },
	{ "rcpt: bare <Postmaster>, MX disabled: 530", RCPT, MXOFF, R_MX, NOAUTH, "<Postmaster>",
	  -1, 0, AUTHREQ },
	{ "rcpt: bare <Postmaster>, authenticated submission: unchanged (501)", RCPT, MXON, R_SUB,
	  ALICE, "<Postmaster>", -1, 0, BADRCPT },
	{ "rcpt: bare <postmasters> is no postmaster", RCPT, MXON, R_MX, NOAUTH, "<postmasters>",
	  -1, 0, BADRCPT },
	{ "rcpt: bare <Postmaster> with text after it", RCPT, MXON, R_MX, NOAUTH, "<Postmaster> x",
	  -1, 0, BADRCPT },
	{ "rcpt: postmaster@hosted, no such user: accepted", RCPT, MXON, R_MX, NOAUTH,
	  "<postmaster@example.com>", -1, 0, ACCEPT },
	{ "rcpt: PostMaster@EXAMPLE.COM., no such user: accepted", RCPT, MXON, R_MX, NOAUTH,
	  "<PostMaster@EXAMPLE.COM.>", -1, 0, ACCEPT },
	{ "rcpt: postmaster@hosted (UTF-8 domain, SMTPUTF8): accepted", RCPT, MXON, R_MX, NOAUTH,
	  "<postmaster@b\xc3\xbc"
	  "cher.de>",
	  -1, O_UTF8, ACCEPT },
	{ "rcpt: postmaster@hosted, database down: 451", RCPT, MXON, R_MX, NOAUTH,
	  "<postmaster@example.com>", -1, O_FAIL, TEMP },
	{ "rcpt: postmaster@foreign: relay", RCPT, MXON, R_MX, NOAUTH, "<postmaster@foreign.org>",
	  -1, 0, RELAY },
	{ "rcpt: postmaster@ a sub-domain of a hosted one: relay", RCPT, MXON, R_MX, NOAUTH,
	  "<postmaster@sub.example.com>", -1, 0, RELAY },
	{ "rcpt: postmaster%foreign.org@hosted: relay", RCPT, MXON, R_MX, NOAUTH,
	  "<postmaster%foreign.org@example.com>", -1, 0, RELAY },
	{ "rcpt: source route to postmaster@hosted: relay", RCPT, MXON, R_MX, NOAUTH,
	  "<@foreign.org:postmaster@example.com>", -1, 0, RELAY },
	{ "rcpt: quoted \"postmaster\"@hosted: still refused", RCPT, MXON, R_MX, NOAUTH,
	  "<\"postmaster\"@example.com>", -1, 0, QUOTED },
	{ "rcpt: postmaster@hosted, unauthenticated submission: 530", RCPT, MXON, R_SUB, NOAUTH,
	  "<postmaster@example.com>", -1, 0, AUTHREQ },
	{ "rcpt: hosted alias", RCPT, MXON, R_MX, NOAUTH, "<alice.alias@example.com>", -1, 0,
	  ACCEPT },
	{ "rcpt: sub-address looked up as user", RCPT, MXON, R_MX, NOAUTH,
	  "<alice+tag@example.com>", -1, 0, ACCEPT },
	{ "rcpt: sub-address of unknown user", RCPT, MXON, R_MX, NOAUTH, "<nobody+tag@example.com>",
	  -1, 0, UNKNOWN },
	{ "rcpt: VERP at hosted bounce address", RCPT, MXON, R_MX, NOAUTH,
	  "<bounces+123-user=foreign.org@example.com>", -1, 0, ACCEPT },
	{ "rcpt: VERP form is ordinary (validation off)", RCPT, MXON, R_MX, NOAUTH,
	  "<bounce-123-user=foreign.org@example.com>", -1, O_NOVALID, ACCEPT },
	{ "rcpt: SRS form is ordinary (validation off)", RCPT, MXON, R_MX, NOAUTH,
	  "<SRS0=HHH=TT=foreign.org=user@example.com>", -1, O_NOVALID, ACCEPT },
	{ "rcpt: SRS form, unknown user, not a relay", RCPT, MXON, R_MX, NOAUTH,
	  "<SRS0=HHH=TT=foreign.org=user@example.com>", -1, 0, UNKNOWN },
	{ "rcpt: domain lookup fails: 451", RCPT, MXON, R_MX, NOAUTH, "<alice@example.com>", -1,
	  O_FAIL, TEMP },
	{ "rcpt: domain lookup fails, foreign: still 451, never 5xx", RCPT, MXON, R_MX, NOAUTH,
	  "<victim@foreign.org>", -1, O_FAIL, TEMP },
	{ "rcpt: domain lookup fails, validation off: 451", RCPT, MXON, R_MX, NOAUTH,
	  "<alice@example.com>", -1, O_FAIL | O_NOVALID, TEMP },

	/* --- hostile address forms, unauthenticated, MX port -------------- */
	{ "hostile: percent hack", RCPT, MXON, R_MX, NOAUTH, "<user%foreign.org@example.com>", -1,
	  0, RELAY },
	{ "hostile: percent hack, validation off", RCPT, MXON, R_MX, NOAUTH,
	  "<user%foreign.org@example.com>", -1, O_NOVALID, RELAY },
	{ "hostile: percent hack to hosted user", RCPT, MXON, R_MX, NOAUTH,
	  "<alice%example.com@example.com>", -1, 0, RELAY },
	{ "hostile: bare bang path", RCPT, MXON, R_MX, NOAUTH, "<foreign.org!user>", -1, 0,
	  BADRCPT },
	{ "hostile: bang path at hosted", RCPT, MXON, R_MX, NOAUTH,
	  "<foreign.org!user@example.com>", -1, 0, RELAY },
	{ "hostile: bang path, validation off", RCPT, MXON, R_MX, NOAUTH,
	  "<foreign.org!user@example.com>", -1, O_NOVALID, RELAY },
	{ "hostile: source route via hosted", RCPT, MXON, R_MX, NOAUTH,
	  "<@example.com:user@foreign.org>", -1, 0, RELAY },
	{ "hostile: source route, two hops", RCPT, MXON, R_MX, NOAUTH,
	  "<@example.com,@example.com:user@foreign.org>", -1, 0, RELAY },
	{ "hostile: source route to a hosted user", RCPT, MXON, R_MX, NOAUTH,
	  "<@foreign.org:alice@example.com>", -1, 0, RELAY },
	{ "hostile: quoted user@foreign", RCPT, MXON, R_MX, NOAUTH,
	  "<\"user@foreign.org\"@example.com>", -1, 0, RELAY },
	{ "hostile: quoted user%foreign", RCPT, MXON, R_MX, NOAUTH,
	  "<\"user%foreign.org\"@example.com>", -1, 0, RELAY },
	{ "hostile: quoted foreign!user", RCPT, MXON, R_MX, NOAUTH,
	  "<\"foreign.org!user\"@example.com>", -1, 0, RELAY },
	{ "hostile: quoted hosted user", RCPT, MXON, R_MX, NOAUTH, "<\"alice\"@example.com>", -1, 0,
	  QUOTED },
	{ "hostile: quoted hosted user, validation off", RCPT, MXON, R_MX, NOAUTH,
	  "<\"alice\"@example.com>", -1, O_NOVALID, QUOTED },
	{ "hostile: quoted-pair escaping @", RCPT, MXON, R_MX, NOAUTH,
	  "<\"user\\@foreign.org\"@example.com>", -1, 0, RELAY },
	{ "hostile: address literal", RCPT, MXON, R_MX, NOAUTH, "<user@[127.0.0.1]>", -1, 0,
	  RELAY },
	{ "hostile: address literal, validation off", RCPT, MXON, R_MX, NOAUTH,
	  "<alice@[127.0.0.1]>", -1, O_NOVALID, RELAY },
	{ "hostile: IPv6 literal", RCPT, MXON, R_MX, NOAUTH, "<user@[IPv6:::1]>", -1, 0, RELAY },
	{ "hostile: sub-domain of hosted", RCPT, MXON, R_MX, NOAUTH, "<alice@sub.example.com>", -1,
	  0, RELAY },
	{ "hostile: hosted as a prefix", RCPT, MXON, R_MX, NOAUTH,
	  "<alice@example.com.foreign.org>", -1, 0, RELAY },
	{ "hostile: hosted as a suffix", RCPT, MXON, R_MX, NOAUTH, "<alice@notexample.com>", -1, 0,
	  RELAY },
	{ "hostile: upper-case hosted domain", RCPT, MXON, R_MX, NOAUTH, "<ALICE@EXAMPLE.COM>", -1,
	  0, ACCEPT },
	{ "hostile: one trailing dot", RCPT, MXON, R_MX, NOAUTH, "<alice@example.com.>", -1, 0,
	  ACCEPT },
	{ "hostile: two trailing dots", RCPT, MXON, R_MX, NOAUTH, "<alice@example.com..>", -1, 0,
	  BADRCPT },
	{ "hostile: trailing dot on foreign", RCPT, MXON, R_MX, NOAUTH, "<victim@foreign.org.>", -1,
	  0, RELAY },
	{ "hostile: empty path", RCPT, MXON, R_MX, NOAUTH, "<>", -1, 0, BADRCPT },
	{ "hostile: empty string", RCPT, MXON, R_MX, NOAUTH, "", -1, 0, BADRCPT },
	{ "hostile: no brackets", RCPT, MXON, R_MX, NOAUTH, "alice@example.com", -1, 0, BADRCPT },
	{ "hostile: unbalanced brackets", RCPT, MXON, R_MX, NOAUTH, "<alice@example.com", -1, 0,
	  BADRCPT },
	{ "hostile: nested brackets", RCPT, MXON, R_MX, NOAUTH, "<<victim@foreign.org>>", -1, 0,
	  BADRCPT },
	{ "hostile: no domain", RCPT, MXON, R_MX, NOAUTH, "<alice>", -1, 0, BADRCPT },
	{ "hostile: two @", RCPT, MXON, R_MX, NOAUTH, "<victim@foreign.org@example.com>", -1, 0,
	  BADRCPT },
	{ "hostile: space", RCPT, MXON, R_MX, NOAUTH, "<victim@foreign.org example.com>", -1, 0,
	  BADRCPT },
	{ "hostile: control byte", RCPT, MXON, R_MX, NOAUTH, "<al\x01ice@example.com>", -1, 0,
	  BADRCPT },
	{ "hostile: CR LF injection", RCPT, MXON, R_MX, NOAUTH,
	  "<alice@example.com\r\nRCPT TO:<v@foreign.org>>", -1, 0, BADRCPT },
	{ "hostile: comma list", RCPT, MXON, R_MX, NOAUTH, "<alice@example.com,victim@foreign.org>",
	  -1, 0, BADRCPT },
	{ "hostile: 64-octet local part (maximum)", RCPT, MXON, R_MX, NOAUTH,
	  "<" L64 "@example.com>", -1, O_NOVALID, ACCEPT },
	{ "hostile: 65-octet local part", RCPT, MXON, R_MX, NOAUTH, "<" L64 "5@example.com>", -1,
	  O_NOVALID, BADRCPT },
	{ "hostile: 254-octet mailbox is syntax-valid (not hosted)", RCPT, MXON, R_MX, NOAUTH,
	  "<" L63 "@" D190 ">", -1, 0, RELAY },
	{ "hostile: 255-octet mailbox", RCPT, MXON, R_MX, NOAUTH, "<" L64 "@" D190 ">", -1, 0,
	  BADRCPT },
	/* SMTPUTF8 */
	{ "utf8: UTF-8 local and domain with SMTPUTF8", RCPT, MXON, R_MX, NOAUTH,
	  "<j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de>",
	  -1, O_UTF8, ACCEPT },
	{ "utf8: UTF-8 address without SMTPUTF8", RCPT, MXON, R_MX, NOAUTH,
	  "<j\xc3\xb6rg@b\xc3\xbc"
	  "cher.de>",
	  -1, 0, NEEDUTF8 },
	{ "utf8: UTF-8 unknown user at UTF-8 domain", RCPT, MXON, R_MX, NOAUTH,
	  "<anna@b\xc3\xbc"
	  "cher.de>",
	  -1, O_UTF8, UNKNOWN },
	{ "utf8: UTF-8 foreign domain", RCPT, MXON, R_MX, NOAUTH, "<j\xc3\xb6rg@m\xc3\xbcller.de>",
	  -1, O_UTF8, RELAY },
	{ "utf8: truncated sequence", RCPT, MXON, R_MX, NOAUTH, "<j\xc3rg@example.com>", -1, O_UTF8,
	  BADRCPT },
	{ "utf8: lone continuation byte", RCPT, MXON, R_MX, NOAUTH, "<j\x80rg@example.com>", -1,
	  O_UTF8, BADRCPT },
	{ "utf8: overlong '@' (C0 80)", RCPT, MXON, R_MX, NOAUTH,
	  "<victim\xc1\x80"
	  "foreign.org@example.com>",
	  -1, O_UTF8, BADRCPT },
	{ "utf8: overlong '/'", RCPT, MXON, R_MX, NOAUTH, "<j\xc0\xafrg@example.com>", -1, O_UTF8,
	  BADRCPT },
	{ "utf8: surrogate", RCPT, MXON, R_MX, NOAUTH, "<j\xed\xa0\x80rg@example.com>", -1, O_UTF8,
	  BADRCPT },
	{ "utf8: beyond U+10FFFF", RCPT, MXON, R_MX, NOAUTH, "<j\xf5\x80\x80\x80@example.com>", -1,
	  O_UTF8, BADRCPT },
	{ "utf8: 0xFF byte", RCPT, MXON, R_MX, NOAUTH, "<\xff@example.com>", -1, O_UTF8, BADRCPT },
	{ "utf8: 8-bit byte without SMTPUTF8", RCPT, MXON, R_MX, NOAUTH, "<\xff@example.com>", -1,
	  0, BADRCPT },
	{ "utf8: 8-bit in domain", RCPT, MXON, R_MX, NOAUTH, "<alice@example.co\xedm>", -1, O_UTF8,
	  BADRCPT },
};

static void run_case(const struct rcase *c)
{
	struct rules_config cfg = {
		c->mx, !(c->opts & O_NOVALID), !(c->opts & O_NOLOGIN), "+", 52428800, NULL, 0
	};
	struct rules_session s = { c->role, c->auth, (c->opts & O_UTF8) != 0 };
	struct rules_verdict v;

	memset(&v, 0x5a, sizeof(v)); /* every member must be written */
	lookups_fail = (c->opts & O_FAIL) != 0;
	if (c->stage == MAIL)
		rules_check_mail(&cfg, &lookups, &s, c->path, c->size, &v);
	else
		rules_check_rcpt(&cfg, &lookups, &s, c->path, &v);
	lookups_fail = 0;
	if (c->code == NULL) {
		UNIT_OK(v.kind == RULES_ACCEPT && v.code == NULL && !v.relay_attempt, "%s: accept",
			c->why);
		if (v.kind != RULES_ACCEPT)
			printf("#   got %s %s %s\n", v.code, v.enhanced, v.text);
		return;
	}
	UNIT_OK(v.kind == (c->code[0] == '4' ? RULES_TEMPFAIL : RULES_REJECT) && v.code &&
			strcmp(v.code, c->code) == 0 && v.enhanced &&
			strcmp(v.enhanced, c->enhanced) == 0 && v.text && *v.text &&
			v.relay_attempt == c->relay,
		"%s: %s %s%s", c->why, c->code, c->enhanced, c->relay ? " (relay attempt)" : "");
	if (v.kind == RULES_ACCEPT)
		printf("#   got accept\n");
	else if (v.code && strcmp(v.code, c->code) != 0)
		printf("#   got %s %s %s\n", v.code, v.enhanced, v.text);
}

/* rules_postmaster_qualify: where a bare <Postmaster> goes */
static void test_postmaster_qualify(void)
{
	char *q;

	UNIT_OK(rules_postmaster_qualify(NULL, "<Postmaster>") == NULL,
		"qualify: no rules.postmaster_domain: NULL");
	UNIT_OK(rules_postmaster_qualify("", "<Postmaster>") == NULL,
		"qualify: empty rules.postmaster_domain: NULL");
	q = rules_postmaster_qualify("Example.COM.", "<POSTMASTER>");
	UNIT_OK(q && strcmp(q, "postmaster@example.com") == 0,
		"qualify: <POSTMASTER> -> postmaster@example.com (lower case, no trailing dot)");
	free(q);
	q = rules_postmaster_qualify("example.com", "postmaster");
	UNIT_OK(q && strcmp(q, "postmaster@example.com") == 0,
		"qualify: a path without brackets too");
	free(q);
	UNIT_OK(rules_postmaster_qualify("example.com", "<postmaster@example.org>") == NULL,
		"qualify: postmaster with a domain is left alone");
	UNIT_OK(rules_postmaster_qualify("example.com", "<alice>") == NULL,
		"qualify: another bare local part: NULL");
	UNIT_OK(rules_postmaster_bare("<PoStMaStEr>") && !rules_postmaster_bare("<postmaster@x>") &&
			!rules_postmaster_bare("<postmaster") && !rules_postmaster_bare(NULL),
		"rules_postmaster_bare: any case, brackets whole, no domain");
	UNIT_OK(rules_postmaster_local("POSTMASTER") && !rules_postmaster_local("postmaster+x") &&
			!rules_postmaster_local(NULL),
		"rules_postmaster_local: any case, exactly");
}

/* the texts the client sees, from issue 5 */
static void test_texts(void)
{
	struct rules_config cfg = { 1, 1, 1, "+", 1000, NULL, 0 };
	struct rules_session mx = { R_MX, NULL, 0 }, sub = { R_SUB, NULL, 0 },
			     au = { R_SUB, ALICE, 0 };
	struct rules_verdict v;

	rules_check_rcpt(&cfg, &lookups, &sub, "<alice@example.com>", &v);
	UNIT_STR_EQ(v.text, "Authentication required", "530 text");
	rules_check_rcpt(&cfg, &lookups, &mx, "<v@foreign.org>", &v);
	UNIT_STR_EQ(v.text, "Relay access denied", "relay text");
	rules_check_rcpt(&cfg, &lookups, &mx, "<nobody@example.com>", &v);
	UNIT_STR_EQ(v.text, "User unknown", "unknown user text");
	rules_check_mail(&cfg, &lookups, &au, "<bob@example.com>", -1, &v);
	UNIT_STR_EQ(v.text, "Sender address not owned by user", "not-owned text");
	rules_check_mail(&cfg, &lookups, &mx, "<x@foreign.org>", 1001, &v);
	UNIT_STR_EQ(v.text, "Message size exceeds fixed limit", "SIZE= text");
	rules_check_size(&cfg, 1000, &v);
	UNIT_OK(v.kind == RULES_ACCEPT, "end of data: size at the limit accepted");
	rules_check_size(&cfg, 1001, &v);
	UNIT_OK(v.kind == RULES_REJECT && strcmp(v.code, "552") == 0 &&
			strcmp(v.enhanced, "5.3.4") == 0 &&
			strcmp(v.text, "Message size exceeds fixed limit") == 0,
		"end of data: one byte over: 552 5.3.4");
}

/* no lookup is made for a refused unauthenticated session, and a lookup
 * never sees a non-canonical argument */
static void test_lookup_contract(void)
{
	struct rules_config cfg = { 1, 1, 1, "+", 1000, NULL, 0 };
	struct rules_session oth = { R_OTH, NULL, 0 }, mx = { R_MX, NULL, 1 };
	struct rules_verdict v;

	lookups_made = 0;
	rules_check_rcpt(&cfg, &lookups, &oth, "<alice@example.com>", &v);
	UNIT_OK(lookups_made == 0, "no lookup for a refused session");
	contract_broken = 0;
	rules_check_rcpt(&cfg, &lookups, &mx, "<Alice+Tag@EXAMPLE.Com.>", &v);
	UNIT_OK(v.kind == RULES_ACCEPT && !contract_broken,
		"lookups get lower case without trailing dot");
	rules_check_rcpt(&cfg, &lookups, &mx,
			 "<J\xc3\xb6rg@B\xc3\xbc"
			 "CHER.DE>",
			 &v);
	UNIT_OK(!contract_broken, "UTF-8 domain looked up in lower-case ASCII letters");
}

/* hostile_forms - none of these is ever accepted unauthenticated, in any
 * role, MX on or off, validation on or off, with or without SMTPUTF8 */
static const char *const hostile_forms[] = {
	"<user%foreign.org@example.com>",
	"<foreign.org!user>",
	"<foreign.org!user@example.com>",
	"<@example.com:user@foreign.org>",
	"<\"user@foreign.org\"@example.com>",
	"<\"user%foreign.org\"@example.com>",
	"<user@[127.0.0.1]>",
	"<alice@[127.0.0.1]>",
	"<alice@sub.example.com>",
	"<victim@foreign.org>",
	"<victim@FOREIGN.ORG.>",
	"<>",
	"",
	"<alice@example.com..>",
	"<" L64 "5@example.com>",
	"<" L64 "@" D190 ">",
	"<victim\xc1\x80"
	"foreign.org@example.com>",
	"<victim@foreign.org@example.com>",
	"<\"alice\"@example.com>",
	"<@foreign.org:alice@example.com>",
};

static void test_hostile_matrix(void)
{
	size_t i;
	int bad = 0, total = 0, mxon, valid, utf8;
	enum rules_role r;

	for (i = 0; i < sizeof(hostile_forms) / sizeof(hostile_forms[0]); i++)
		for (mxon = 0; mxon <= 1; mxon++)
			for (valid = 0; valid <= 1; valid++)
				for (utf8 = 0; utf8 <= 1; utf8++)
					for (r = R_MX; r <= R_OTH; r++) {
						struct rules_config cfg = { mxon, valid, 1, "+",
									    1000, NULL,  0 };
						struct rules_session s = { r, NULL, utf8 };
						struct rules_verdict v;

						rules_check_rcpt(&cfg, &lookups, &s,
								 hostile_forms[i], &v);
						total++;
						if (v.kind == RULES_ACCEPT) {
							bad++;
							printf("#   accepted %s (mx %d valid %d utf8 %d role %d)\n",
							       hostile_forms[i], mxon, valid, utf8,
							       r);
						}
					}
	UNIT_OK(bad == 0, "hostile matrix: %d combinations, none accepted", total);
}

/* fuzz_oracle - the only unauthenticated recipients that may be accepted
 * (validation off, SMTPUTF8 on): <local@example.com>, one optional trailing
 * dot, any letter case, the local part atext without '!' and '%' or 8-bit
 * (UTF-8): nothing that routes elsewhere */
static int fuzz_oracle(const char *p, size_t len)
{
	const char *at, *dom;
	size_t i, dlen;

	if (len < 3 || p[0] != '<' || p[len - 1] != '>')
		return 0;
	at = memchr(p, '@', len);
	if (at == NULL || at == p + 1)
		return 0;
	for (i = 1; p + i < at; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c >= 0x80 || strchr("#$&'*+-/=?^_`{|}~.", c)))
			return 0;
	}
	dom = at + 1;
	dlen = (size_t)(p + len - 1 - dom);
	if (dlen > 0 && dom[dlen - 1] == '.')
		dlen--;
	return dlen == 11 && strncasecmp(dom, "example.com", 11) == 0;
}

/* test_fuzz - mutated recipients: accepted only when the oracle agrees */
static void test_fuzz(void)
{
	static const char *seeds[] = { "<alice@example.com>", "<a%b@example.com>",
				       "<\"a\"@example.com>", "<@x:a@example.com>" };
	static const char alphabet[] = "@%!\".:,<>[]\\ \t\r\nAz09.-+=\x80\xc3\xbc\xff";
	struct rules_config cfg = { 1, 0, 1, "+", 1000, NULL, 0 };
	struct rules_session s = { R_MX, NULL, 1 };
	uint32_t seed = 12345;
	int i, bad = 0, accepted = 0;

	for (i = 0; i < 200000; i++) {
		char buf[64];
		const char *base = seeds[i % 4];
		size_t len = strlen(base), k, muts;
		struct rules_verdict v;

		memcpy(buf, base, len + 1);
		seed = seed * 1103515245u + 12345u;
		muts = 1 + (seed >> 16) % 3;
		for (k = 0; k < muts; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t pos = (seed >> 8) % len;
			seed = seed * 1103515245u + 12345u;
			char ch = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 12) % 3 == 0 && len < sizeof(buf) - 2) { /* insert */
				memmove(buf + pos + 1, buf + pos, len - pos + 1);
				buf[pos] = ch;
				len++;
			} else {
				buf[pos] = ch;
			}
		}
		if (memchr(buf, '\0', len))
			continue;
		rules_check_rcpt(&cfg, &lookups, &s, buf, &v);
		if (v.kind == RULES_ACCEPT) {
			accepted++;
			if (!fuzz_oracle(buf, len)) {
				if (bad++ < 5)
					printf("#   accepted non-ordinary %s\n", buf);
			}
		}
	}
	UNIT_OK(bad == 0,
		"fuzz: 200000 mutated recipients, %d accepted, all ordinary at the hosted domain",
		accepted);
}

static void test_roles(void)
{
	const char *map = "25=mx 587=submission 465=submission ORIGINATING=submission";
	char *err = NULL;
	int rc;

	UNIT_OK(rules_role_resolve(map, "mail.example.com", "25") == R_MX, "role: port 25 is mx");
	UNIT_OK(rules_role_resolve(map, NULL, "587") == R_SUB, "role: port 587 is submission");
	UNIT_OK(rules_role_resolve(map, "", "465") == R_SUB, "role: port 465 is submission");
	UNIT_OK(rules_role_resolve(map, "ORIGINATING", "25") == R_SUB,
		"role: a mapped name wins over the port");
	UNIT_OK(rules_role_resolve(map, "originating", NULL) == R_SUB,
		"role: names compare case-insensitively");
	UNIT_OK(rules_role_resolve(map, "mail.example.com", "2525") == R_OTH,
		"role: unmapped is other");
	UNIT_OK(rules_role_resolve(map, NULL, NULL) == R_OTH, "role: nothing known is other");
	UNIT_OK(rules_role_resolve("MX=mx,SUB=submission", "SUB", "25") == R_SUB,
		"role: comma separated");
	UNIT_OK(rules_role_resolve(map, "25=mx", NULL) == R_OTH,
		"role: a name is not parsed as an entry");
	UNIT_OK(rules_role_map_check(map, &err) == 0, "role map: default is valid");
	UNIT_OK(rules_role_map_check("", &err) == 0, "role map: empty is valid");
	rc = rules_role_map_check("25=relay", &err);
	UNIT_OK(rc < 0 && err && strstr(err, "25=relay"), "role map: unknown role refused, named");
	free(err);
	err = NULL;
	rc = rules_role_map_check("=mx", &err);
	UNIT_OK(rc < 0, "role map: empty key refused");
	free(err);
	err = NULL;
	rc = rules_role_map_check("25", &err);
	UNIT_OK(rc < 0, "role map: missing role refused");
	free(err);
	UNIT_STR_EQ(rules_role_name(R_MX), "mx", "role name mx");
	UNIT_STR_EQ(rules_role_name(R_SUB), "submission", "role name submission");
}

/* lk_suppressed - dead@remote.example is on alice's list (issue 21) */
static enum rules_lookup lk_suppressed(void *ctx, const char *address, const char *login)
{
	lookups_made++;
	check_canonical(address);
	if (lookups_fail)
		return RULES_LOOKUP_ERROR;
	return strcmp(address, "dead@remote.example") == 0 && strcasecmp(login, ALICE) == 0
		       ? RULES_FOUND
		       : RULES_NOT_FOUND;
}

/* test_suppressed - an authenticated RCPT to a suppressed address: 550
 * 5.1.1 naming the suppression; a failed lookup 451; unauthenticated
 * mail and other senders are not concerned */
static void test_suppressed(void)
{
	static const struct rules_lookups lk = { .domain_hosted = lk_domain,
						 .address_exists = lk_exists,
						 .address_owned_by = lk_owned,
						 .suppressed = lk_suppressed };
	struct rules_config cfg = { 0 };
	struct rules_session sub = { R_SUB, ALICE, 0 }, bob = { R_SUB, "bob@example.com", 0 };
	struct rules_session mx = { R_MX, NULL, 0 };
	struct rules_verdict v;

	cfg.mx_enabled = 1;
	cfg.recipient_validation = 1;
	cfg.message_size_max = 1000000;
	rules_check_rcpt(&cfg, &lk, &sub, "<Dead@Remote.Example>", &v);
	UNIT_OK(v.kind == RULES_REJECT && strcmp(v.code, "550") == 0 &&
			strcmp(v.enhanced, "5.1.1") == 0 && strstr(v.text, "suppression list"),
		"suppressed: 550 5.1.1 naming the suppression list");
	rules_check_rcpt(&cfg, &lk, &sub, "<other@remote.example>", &v);
	UNIT_OK(v.kind == RULES_ACCEPT, "suppressed: another address is accepted");
	rules_check_rcpt(&cfg, &lk, &bob, "<dead@remote.example>", &v);
	UNIT_OK(v.kind == RULES_ACCEPT, "suppressed: another sender's list does not apply");
	rules_check_rcpt(&cfg, &lk, &mx, "<dead@remote.example>", &v);
	UNIT_OK(v.kind == RULES_REJECT && strcmp(v.code, "554") == 0,
		"suppressed: unauthenticated mail keeps its own verdict (relay refused)");
	lookups_fail = 1;
	rules_check_rcpt(&cfg, &lk, &sub, "<dead@remote.example>", &v);
	lookups_fail = 0;
	UNIT_OK(v.kind == RULES_TEMPFAIL && strcmp(v.code, "451") == 0,
		"suppressed: a failed lookup is 451, never an accept");
	UNIT_OK(!contract_broken, "suppressed: canonical addresses passed to the lookup");
}

/* the storage quota's stand-in: alice@example.com is full; bob@example.com
 * has 100 bytes of room; the addresses asked are kept */
static int storage_fail, storage_asked;
static char storage_last[2][64];
static int storage_last_n;

static enum rules_lookup lk_storage(void *ctx, const char *const *addrs, int n, long long size)
{
	int i, full = 0;

	storage_asked++;
	storage_last_n = n;
	for (i = 0; i < n && i < 2; i++) {
		check_canonical(addrs[i]);
		snprintf(storage_last[i], sizeof(storage_last[i]), "%s", addrs[i]);
		if (strcmp(addrs[i], "alice@example.com") == 0 ||
		    (strcmp(addrs[i], "bob@example.com") == 0 && size > 100))
			full = 1;
	}
	if (storage_fail)
		return RULES_LOOKUP_ERROR;
	return full ? RULES_FOUND : RULES_NOT_FOUND;
}

/* storage_452 - the verdict is 452 4.2.2 Mailbox full, a temporary one */
static int storage_452(const struct rules_verdict *v)
{
	return v->kind == RULES_TEMPFAIL && strcmp(v->code, "452") == 0 &&
	       strcmp(v->enhanced, "4.2.2") == 0 && strcmp(v->text, "Mailbox full") == 0;
}

/* test_storage - the storage quota at RCPT (issue 18 item 4): 452 4.2.2
 * for a full user (alias, sub-address), for a SIZE= that would cross the
 * limit, on the MX role and for a submission to a hosted user; never for
 * postmaster, a foreign or unknown recipient, or with the check off; a
 * failed lookup is 451 */
static void test_storage(void)
{
	static const struct rules_lookups lk = { .domain_hosted = lk_domain,
						 .address_exists = lk_exists,
						 .address_owned_by = lk_owned,
						 .storage_full = lk_storage };
	struct rules_config cfg = { 0 };
	struct rules_session mx = { R_MX, NULL, 0 }, sub = { R_SUB, "bob@example.com", 0 };
	struct rules_verdict v;

	cfg.mx_enabled = 1;
	cfg.recipient_validation = 1;
	cfg.subaddress_delims = "+";
	cfg.message_size_max = 1000000;
	cfg.storage_quota = 1;
	rules_check_rcpt_size(&cfg, &lk, &mx, "<alice@example.com>", -1, &v);
	UNIT_OK(storage_452(&v), "storage: a full user: 452 4.2.2 Mailbox full");
	rules_check_rcpt(&cfg, &lk, &mx, "<Alice+News@Example.COM.>", &v);
	UNIT_OK(storage_452(&v) && storage_last_n == 2 &&
			strcmp(storage_last[0], "alice+news@example.com") == 0 &&
			strcmp(storage_last[1], "alice@example.com") == 0,
		"storage: a sub-address: asked as given and without the tag, 452");
	rules_check_rcpt_size(&cfg, &lk, &mx, "<bob@example.com>", -1, &v);
	UNIT_OK(v.kind == RULES_ACCEPT, "storage: room left, no SIZE=: accepted");
	rules_check_rcpt_size(&cfg, &lk, &mx, "<bob@example.com>", 100, &v);
	UNIT_OK(v.kind == RULES_ACCEPT, "storage: SIZE= that fills the room: accepted");
	rules_check_rcpt_size(&cfg, &lk, &mx, "<bob@example.com>", 101, &v);
	UNIT_OK(storage_452(&v), "storage: SIZE= that would cross the limit: 452");
	rules_check_rcpt_size(&cfg, &lk, &sub, "<alice@example.com>", -1, &v);
	UNIT_OK(storage_452(&v), "storage: a submission to a full hosted user: 452");
	storage_asked = 0;
	rules_check_rcpt_size(&cfg, &lk, &sub, "<friend@foreign.org>", 999, &v);
	UNIT_OK(v.kind == RULES_ACCEPT && storage_asked == 0,
		"storage: a submission to a foreign domain: accepted, not asked");
	rules_check_rcpt_size(&cfg, &lk, &mx, "<postmaster@example.com>", 999, &v);
	UNIT_OK(v.kind == RULES_ACCEPT && storage_asked == 0,
		"storage: postmaster is never refused nor asked for");
	rules_check_rcpt_size(&cfg, &lk, &mx, "<nobody@example.com>", -1, &v);
	UNIT_OK(v.kind == RULES_REJECT && strcmp(v.code, "550") == 0 && storage_asked == 0,
		"storage: an unknown user keeps 550 5.1.1 (asked only once accepted)");
	storage_fail = 1;
	rules_check_rcpt_size(&cfg, &lk, &mx, "<bob@example.com>", -1, &v);
	storage_fail = 0;
	UNIT_OK(v.kind == RULES_TEMPFAIL && strcmp(v.code, "451") == 0 &&
			strcmp(v.enhanced, "4.3.0") == 0,
		"storage: a failed lookup is 451 4.3.0, never an accept");
	cfg.storage_quota = 0;
	storage_asked = 0;
	rules_check_rcpt_size(&cfg, &lk, &mx, "<alice@example.com>", 999, &v);
	UNIT_OK(v.kind == RULES_ACCEPT && storage_asked == 0,
		"storage: rules.storage_quota off: accepted, not asked");
	cfg.storage_quota = 1;
	rules_check_rcpt_size(&cfg, &lookups, &mx, "<alice@example.com>", 999, &v);
	UNIT_OK(v.kind == RULES_ACCEPT, "storage: lookups without the check: accepted");
	UNIT_OK(!contract_broken, "storage: canonical addresses passed to the lookup");
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
	test_texts();
	test_postmaster_qualify();
	test_lookup_contract();
	test_hostile_matrix();
	test_fuzz();
	test_roles();
	test_suppressed();
	test_storage();
	return unit_done();
}
