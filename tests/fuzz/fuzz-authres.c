/* fuzz-authres - libFuzzer target for the Authentication-Results parser
 * of lib/verdict.c (the authserv-id, comments, "method=result" after
 * each ';') and the trusted-zone walk around it (the first Received:
 * header ends the zone; the topmost X-Postroom-Verdict counts). The
 * input is a header block: "Name: value" lines, a line starting with
 * white space continues the value (folding kept, as GMime gives it),
 * an empty line ends the block. A first line "id=ID" sets the trusted
 * authserv-id (else mx.postroom.test). A verdict header is fed as it
 * is (it fails the signature) and, once more, signed with the test
 * secret, so the fields after a valid signature are reached too.
 * Invariants checked: no crash or sanitizer report; the results are
 * short lower-case alphanumerics; the reason is within its buffer;
 * spam when and only when dmarc=fail or a verifying verdict says so;
 * a Received: header put on top leaves nothing trusted. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sighdr.h"
#include "verdict.h"

#define FUZZ_HEADERS_MAX 64
#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_NOW 1763870000

/* fuzz_result_ok - "" or [a-z0-9]+ within its buffer */
static int fuzz_result_ok(const char *r, size_t size)
{
	size_t n = strnlen(r, size);

	if (n == size)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)r[i]) && !isdigit((unsigned char)r[i]))
			return 0;
	return 1;
}

static void fuzz_check(const struct verdict_result *v)
{
	if (!fuzz_result_ok(v->dkim, sizeof(v->dkim)) ||
	    !fuzz_result_ok(v->dmarc, sizeof(v->dmarc)) ||
	    strnlen(v->spf, sizeof(v->spf)) == sizeof(v->spf) ||
	    strnlen(v->reason, sizeof(v->reason)) == sizeof(v->reason))
		abort();
	/* the default rule: dmarc=fail is spam under p=reject/quarantine */
	if (strcmp(v->dmarc, "fail") == 0 && !v->spam &&
	    (strcmp(v->dmarc_policy, "reject") == 0 || strcmp(v->dmarc_policy, "quarantine") == 0))
		abort();
	if (v->spam && strcmp(v->dmarc, "fail") != 0 && !v->verdict_valid)
		abort();
	if (v->spam && v->reason[0] == '\0')
		abort();
	if (!v->spam && v->reason[0] != '\0')
		abort();
	{
		/* the stored JSON: only its own punctuation and token bytes */
		char *j = verdict_auth_json(v), *c;

		for (c = j; c && *c; c++)
			if (!isalnum((unsigned char)*c) && strchr("{}[]\":,._-", *c) == NULL)
				abort();
		free(j);
	}
}

/* fuzz_headers - split the block in place into h; returns the count */
static size_t fuzz_headers(char *p, char *end, struct verdict_header *h)
{
	size_t n = 0;

	while (p < end && n < FUZZ_HEADERS_MAX) {
		char *lf = p, *colon;

		for (;;) {
			if ((lf = memchr(lf, '\n', (size_t)(end - lf))) == NULL) {
				lf = end;
				break;
			}
			if (lf + 1 >= end || (lf[1] != ' ' && lf[1] != '\t'))
				break;
			lf++; /* folded: the value goes on */
		}
		if (lf == p || (lf == p + 1 && *p == '\r'))
			break; /* the empty line */
		*lf = '\0';
		if ((colon = strchr(p, ':')) != NULL) {
			*colon = '\0';
			h[n].name = p;
			h[n].value = colon + 1 + strspn(colon + 1, " \t");
			n++;
		}
		p = lf + 1;
	}
	return n;
}

/* fuzz_resign - a verdict value signed again with the test secret */
static char *fuzz_resign(const char *value)
{
	struct sighdr f;
	char *copy = strdup(value), *p, *field, *out;

	memset(&f, 0, sizeof(f));
	for (p = copy; (field = strsep(&p, ";")) != NULL && f.nfields < SIGHDR_MAX_FIELDS;) {
		char *eq = strchr(field, '=');
		char *name = field + strspn(field, " \t\r\n");

		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(name, "v") == 0 || strcmp(name, "sig") == 0)
			continue;
		f.fields[f.nfields].name = name;
		f.fields[f.nfields].value = eq + 1;
		f.nfields++;
	}
	out = sighdr_sign(FUZZ_SECRET, SIGHDR_VERDICT, &f, FUZZ_NOW);
	free(copy);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verdict_header h[FUZZ_HEADERS_MAX + 2];
	struct verdict_config cfg;
	struct verdict_result v;
	char *in = malloc(size + 1), *p = in, *end = in + size, *signed_value = NULL;
	size_t n, i;

	memcpy(in, data, size);
	in[size] = '\0';
	memset(&cfg, 0, sizeof(cfg));
	cfg.hmac_secret = FUZZ_SECRET;
	cfg.authserv_id = "mx.postroom.test";
	cfg.now = FUZZ_NOW;
	if (size > 3 && memcmp(in, "id=", 3) == 0) {
		char *lf = memchr(in, '\n', size);

		if (lf == NULL)
			lf = end;
		*lf = '\0';
		cfg.authserv_id = in + 3;
		p = lf < end ? lf + 1 : end;
	}
	/* the strings end at a NUL of the input, as GMime's would */
	end = p + strlen(p);
	n = fuzz_headers(p, end, h + 2);
	verdict_from_headers(&cfg, h + 2, n, &v);
	fuzz_check(&v);
	/* the topmost verdict once more, with a valid signature */
	for (i = 2; i <= n + 1; i++) {
		if (strcasecmp(h[i].name, "Received") == 0)
			break;
		if (strcasecmp(h[i].name, SIGHDR_VERDICT) == 0) {
			if ((signed_value = fuzz_resign(h[i].value)) != NULL) {
				h[i].value = signed_value;
				verdict_from_headers(&cfg, h + 2, n, &v);
				fuzz_check(&v);
			}
			break;
		}
	}
	/* two Received: on top (this hop's, an earlier one): nothing below
	 * the second is trusted */
	h[0].name = h[1].name = "Received";
	h[0].value = h[1].value = "from outside";
	verdict_from_headers(&cfg, h, n + 2, &v);
	fuzz_check(&v);
	if (v.spam || v.verdict_valid || v.dkim[0] || v.dmarc[0] || v.spf[0])
		abort();
	free(signed_value);
	free(in);
	return 0;
}
