/* spf_check.h - SPF (RFC 7208) of the MAIL FROM identity, or of the HELO
 * identity for the null sender, evaluated by libspf2 over a
 * struct dns_resolver (configured server and port, budget).
 *
 * One struct spf_checker belongs to one thread at a time. */
#ifndef POSTROOM_SPF_CHECK_H
#define POSTROOM_SPF_CHECK_H

#include "dns_resolver.h"

enum spf_check_result {
	SPFR_NONE,
	SPFR_NEUTRAL,
	SPFR_PASS,
	SPFR_FAIL,
	SPFR_SOFTFAIL,
	SPFR_TEMPERROR,
	SPFR_PERMERROR
};

struct spf_check_outcome {
	enum spf_check_result result;
	const char *identity; /* "mailfrom" or "helo" (static) */
	char domain[256];     /* the domain whose record was checked */
	char comment[256];    /* short human detail, no CR/LF/';' */
};

struct spf_checker;

/* spf_checker_new - a checker resolving through r (borrowed: it must
 * outlive the checker); receiver names this host in explanations. */
struct spf_checker *spf_checker_new(struct dns_resolver *r, const char *receiver);
void spf_checker_free(struct spf_checker **c);

/* spf_check - evaluate. ip is the client address (text, v4 or v6), helo
 * the HELO/EHLO name (may be NULL/""), sender the MAIL FROM address
 * without brackets ("" = null sender: the HELO identity is checked, as
 * postmaster@helo). Never fails: problems come back as temperror,
 * permerror or none, with the comment saying why. */
void spf_check(struct spf_checker *c, const char *ip, const char *helo, const char *sender,
	       struct spf_check_outcome *out);

/* spf_result_name - RFC 7208 result name: "pass", "fail", ... */
const char *spf_result_name(enum spf_check_result r);
/* spf_result_parse - the inverse, -1 when unknown */
int spf_result_parse(const char *name);

#endif
