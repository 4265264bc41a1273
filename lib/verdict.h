/* verdict.h - the spam flag and reason deliver stores, read from the
 * headers added at this hop: postroom-policyd's signed verdict
 * (SIGHDR_VERDICT) and Authentication-Results of the trusted authserv-id
 * (OpenDKIM/OpenDMARC).
 *
 * What counts as "added at this hop": the headers above the first
 * Received: header. The MTA writes its own Received: header on receipt;
 * policyd's PREPEND (Postfix) and add_header :at_start: (Exim) and the
 * milters' inserted headers go above it, while everything the sender
 * wrote is below it. Of the verdict headers there, only the topmost
 * counts, and only when it verifies (HMAC with security.hmac_secret, the
 * queue id of this delivery when known, age). So a verdict or an
 * Authentication-Results header that the sender wrote into the message,
 * forged or copied from a genuine earlier message, has no effect. */
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
};

struct verdict_result {
	int spam;            /* 1: store the message flagged as spam */
	char reason[256];    /* "spf=fail,dnsbl=zone.example,dmarc=fail"; "" when not spam */
	int verdict_valid;   /* a verifying policyd verdict was found */
	const char *ignored; /* static: why a verdict header was ignored, or NULL */
	char spf[16];        /* policyd's SPF result ("" when none) */
	char dkim[16];       /* trusted A-R results ("" when none) */
	char dmarc[16];
};

/* verdict_from_headers - decide from n headers; never fails (no usable
 * header = not spam). */
void verdict_from_headers(const struct verdict_config *cfg, const struct verdict_header *h,
			  size_t n, struct verdict_result *out);

#endif
