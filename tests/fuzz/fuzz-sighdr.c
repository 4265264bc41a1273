/* fuzz-sighdr - libFuzzer target for the signed-header verifier
 * (lib/sighdr.c: folding, field splitting, percent-decoding, the HMAC,
 * the binding of Message-Id, queue id and age). The first input byte
 * picks the checks; the rest is a header value. It is verified three
 * ways: as it is (a signature the fuzzer cannot forge: every step up to
 * the HMAC); with its sig= replaced by the right HMAC of its text (so
 * the steps after the HMAC are reached with any fields); and, where its
 * fields can be signed, signed by sighdr_sign and verified back.
 * Invariants checked: no crash or sanitizer report; a value signed for
 * one header name never verifies for the other; a verified value
 * has at most SIGHDR_MAX_FIELDS fields, starting with v=1, with
 * distinct valid names and a timestamp within max_age; what sighdr_sign
 * makes verifies, gives back the same fields, and still verifies with
 * white space (folding) added; a signed value changed in one byte that
 * is not white space or hex case does not verify. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crypto.h"
#include "sighdr.h"

#define FUZZ_SECRET "fuzz-secret"
#define FUZZ_NOW 1763870000

/* fuzz_verified_check - what a successful verify returns */
static void fuzz_verified_check(const struct sighdr *h, const struct sighdr_binding *b)
{
	size_t i, j;

	if (h->nfields < 1 || h->nfields > SIGHDR_MAX_FIELDS)
		abort();
	if (strcmp(h->fields[0].name, "v") != 0 || strcmp(h->fields[0].value, "1") != 0)
		abort();
	for (i = 0; i < h->nfields; i++) {
		const char *n = h->fields[i].name;

		if (*n == '\0' || strlen(n) > 32 ||
		    strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(n))
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(h->fields[j].name, n) == 0)
				abort();
	}
	if (sighdr_get(h, "ts") == NULL)
		abort();
	if (b && b->queue_id &&
	    (sighdr_get(h, "qid") == NULL || strcmp(sighdr_get(h, "qid"), b->queue_id) != 0))
		abort();
}

/* fuzz_resign - the value with the text before its last sig= signed
 * right (caller frees), or NULL when it has no sig= */
static char *fuzz_resign(const char *header, const char *value)
{
	struct buf text = BUF_INIT, in = BUF_INIT, out = BUF_INIT;
	unsigned char mac[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	const char *p, *sig;

	for (p = value; *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			buf_append_char(&text, *p);
	if (text.data == NULL || (sig = strstr(text.data, ";sig=")) == NULL) {
		buf_free(&text);
		return NULL;
	}
	while (strstr(sig + 1, ";sig=") != NULL)
		sig = strstr(sig + 1, ";sig=");
	buf_append(&in, "postroom-sighdr-v1", sizeof("postroom-sighdr-v1"));
	for (p = header; *p; p++)
		buf_append_char(&in, (char)tolower((unsigned char)*p));
	buf_append_char(&in, '\0');
	buf_append(&in, text.data, (size_t)(sig - text.data));
	crypto_hmac_sha256(FUZZ_SECRET, strlen(FUZZ_SECRET), in.data, in.len, mac);
	crypto_hex(mac, SHA256_LEN, hex);
	buf_append(&out, text.data, (size_t)(sig - text.data));
	buf_printf(&out, ";sig=%s", hex);
	buf_free(&in);
	buf_free(&text);
	return buf_steal(&out);
}

/* fuzz_sign_back - the fields of value (split at ';', names before '=')
 * signed and verified back */
static void fuzz_sign_back(const char *header, const char *value, unsigned opts)
{
	struct sighdr f, got;
	struct sighdr_binding b;
	char *copy = strdup(value), *p = copy, *field, *v, *storage = NULL;
	const char *err;
	size_t i, k;

	memset(&f, 0, sizeof(f));
	while ((field = strsep(&p, ";")) != NULL && f.nfields < SIGHDR_MAX_FIELDS - 1) {
		char *eq = strchr(field, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		f.fields[f.nfields].name = field;
		f.fields[f.nfields].value = eq + 1;
		f.nfields++;
	}
	if ((v = sighdr_sign(FUZZ_SECRET, header, &f, FUZZ_NOW)) == NULL) {
		free(copy);
		return;
	}
	memset(&b, 0, sizeof(b));
	b.now = FUZZ_NOW;
	/* a ts= of the fields' own may be old or in the future */
	if (sighdr_verify(FUZZ_SECRET, header, v, &b, &got, &storage, &err) == 0) {
		fuzz_verified_check(&got, &b);
		if (got.nfields != f.nfields + 1 + (sighdr_get(&f, "ts") == NULL))
			abort();
		for (i = 0; i < f.nfields; i++)
			if (strcmp(got.fields[i + 1].name, f.fields[i].name) != 0 ||
			    strcmp(got.fields[i + 1].value, f.fields[i].value) != 0)
				abort();
		free(storage);
		/* folding anywhere changes nothing (within the length limit) */
		if (strlen(v) + 4 <= 8192) {
			struct buf folded = BUF_INIT;
			size_t at = (opts >> 2) % (strlen(v) + 1);

			buf_append(&folded, v, at);
			buf_append_str(&folded, "\r\n\t ");
			buf_append_str(&folded, v + at);
			if (sighdr_verify(FUZZ_SECRET, header, folded.data, &b, &got, &storage,
					  &err) != 0)
				abort();
			free(storage);
			buf_free(&folded);
		}
		/* one byte changed: never verifies */
		k = (opts >> 4) % strlen(v);
		if (!isspace((unsigned char)v[k]) && !isxdigit((unsigned char)v[k])) {
			v[k] = v[k] == 'x' ? 'y' : 'x';
			if (sighdr_verify(FUZZ_SECRET, header, v, &b, &got, &storage, &err) == 0)
				abort();
		}
	}
	free(v);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const qids[] = { NULL, "4XyZ", "", "B1" };
	const char *header = SIGHDR_VERDICT, *err;
	struct sighdr_binding b;
	struct sighdr h;
	char *value, *storage = NULL, *resigned;
	unsigned opts;
	int rc;

	if (size < 1)
		return 0;
	opts = data[0];
	if (opts & 1)
		header = SIGHDR_SUBMISSION;
	value = malloc(size);
	memcpy(value, data + 1, size - 1);
	value[size - 1] = '\0';
	memset(&b, 0, sizeof(b));
	b.now = FUZZ_NOW;
	b.queue_id = qids[(opts >> 1) & 3];
	b.message_id = opts & 8 ? "<id@host.example>" : NULL;
	b.max_age = opts & 16 ? 60 : 0;
	/* as it is */
	rc = sighdr_verify(FUZZ_SECRET, header, value, opts & 32 ? NULL : &b, &h, &storage, &err);
	if (rc == 0) {
		fuzz_verified_check(&h, opts & 32 ? NULL : &b);
		free(storage);
	} else if (storage != NULL || h.nfields != 0) {
		abort();
	}
	/* signed right */
	if ((resigned = fuzz_resign(header, value)) != NULL) {
		if (sighdr_verify(FUZZ_SECRET, header, resigned, &b, &h, &storage, &err) == 0) {
			fuzz_verified_check(&h, &b);
			free(storage);
		}
		/* the same text under the other header name: never */
		if (sighdr_verify(FUZZ_SECRET, opts & 1 ? SIGHDR_VERDICT : SIGHDR_SUBMISSION,
				  resigned, &b, &h, &storage, &err) == 0)
			abort();
		free(resigned);
	}
	/* signed by sighdr_sign */
	fuzz_sign_back(header, value, opts);
	free(value);
	return 0;
}
