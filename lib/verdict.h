/* verdict.h - the spam flag and reason deliver stores, read from the
 * headers added at this hop: postroom-policyd's signed verdict
 * (SIGHDR_VERDICT) and Authentication-Results of the trusted authserv-id
 * (OpenDKIM/OpenDMARC).
 *
 * What counts as "added at this hop": the headers above the first
 * Received: header for the signed policyd verdict. The MTA writes its
 * own Received: header on receipt;
 * policyd's PREPEND (Postfix) and add_header :at_start: (Exim) and the
 * milters' inserted headers go above it, while everything the sender
 * wrote is below it. Of the verdict headers there, only the topmost
 * counts, and only when it verifies (HMAC with security.hmac_secret, the
 * queue id of this delivery when known, age). So a verdict or an
 * Authentication-Results header that the sender wrote into the message,
 * forged or copied from a genuine earlier message, has no effect.
 *
 * Authentication-Results: Postfix places a milter's inserted header
 * (OpenDKIM, OpenDMARC insert at position 1) just BELOW its own
 * Received: header, so for A-R the zone is the headers above the SECOND
 * Received: header, i.e. this hop's Received: and what the milters put
 * right under it. A sender can write an A-R there too (at the top of a
 * message that has no Received: yet): such a header with our
 * authserv-id must be removed on receipt, before any milter reads it:
 * postroom-milter, first in smtpd_milters, removes every incoming one
 * with deliver.trusted_authserv_id, and so does OpenDKIM (KeepAuthResults
 * no, the default). Headers below
 * the second Received: (an earlier hop's) never count.
 *
 * The spam rule: dmarc=fail under a policy listed in
 * deliver.dmarc_spam_policies (default "reject quarantine") is spam;
 * dkim=fail alone is not (a mailing-list footer breaks DKIM). */
#ifndef POSTROOM_VERDICT_H
#define POSTROOM_VERDICT_H

#include <stddef.h>
#include <time.h>

/* One header of the message, in message order (index 0 = topmost). The
 * value may be folded (CRLF/LF + white space); name without the colon. */
struct verdict_header {
	const char *name;
	const char *value;
};

struct verdict_config {
	const char *hmac_secret; /* security.hmac_secret */
	const char *authserv_id; /* trusted A-R authserv-id; NULL/"" = ignore A-R */
	const char *queue_id;    /* this delivery's queue id; NULL = not bound */
	long max_age;            /* seconds (rules.internal_header_max_age); <= 0: default */
	time_t now;              /* 0 = time(NULL) */
	/* space-separated DMARC policies whose dmarc=fail is spam; NULL =
	 * "reject quarantine", "" = none */
	const char *dmarc_spam_policies;
};

struct verdict_result {
	int spam;            /* 1: store the message flagged as spam */
	char reason[256];    /* "spf=fail,dnsbl=zone.example,dmarc=fail"; "" when not spam */
	int verdict_valid;   /* a verifying policyd verdict was found */
	const char *ignored; /* static: why a verdict header was ignored, or NULL */
	char spf[16];        /* policyd's SPF result ("" when none) */
	char dkim[16];       /* trusted A-R results ("" when none) */
	char dmarc[16];
	char spf_ar[16];        /* spf= of a trusted A-R ("" when none) */
	char dkim_domains[256]; /* "d1 d2": header.d of every dkim=pass */
	char dmarc_policy[16];  /* "reject", from OpenDMARC's "(p=reject ...)" */
	char dmarc_from[128];   /* header.from of the dmarc= result */
};

/* verdict_ar_id_matches - the authserv-id of an Authentication-Results
 * value (comments and a version allowed) is id, case-insensitively; also
 * used by postroom-milter to remove incoming ones */
int verdict_ar_id_matches(const char *value, const char *id);

/* verdict_auth_json - the stored results as a JSON object
 * ({"spf":..,"dkim":..,"dkim_domains":[..],"dmarc":..,"dmarc_policy":..,
 * "dmarc_from":..}; keys with no value left out), or NULL when the
 * message has no result at all. Values hold only [A-Za-z0-9._-].
 * Caller frees. */
char *verdict_auth_json(const struct verdict_result *r);

/* verdict_from_headers - decide from n headers; never fails (no usable
 * header = not spam). */
void verdict_from_headers(const struct verdict_config *cfg, const struct verdict_header *h,
			  size_t n, struct verdict_result *out);

#endif
