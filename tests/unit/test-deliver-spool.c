/* test-deliver-spool - the CRLF size, the per-delivery prefix and the
 * identity of a message (lib/store_spool.c), table-driven. Expected
 * values are worked out by hand in the comments. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "store_spool.h"
#include "unit.h"

static void test_crlf_size(void)
{
	static const struct {
		const char *in;
		long long want;
	} t[] = {
		{ "", 0 },
		{ "a\n", 3 },                   /* LF counts as CRLF */
		{ "a\r\n", 3 },                 /* CRLF counts once */
		{ "a\rb", 3 },                  /* bare CR is no line end */
		{ "\n\n\r\n", 6 },              /* 2 + 2 + 2 */
		{ "Subject: x\n\nbody\n", 20 }, /* 17 bytes + 3 bare LF */
	};
	size_t i;
	int cr;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr = 0;
		UNIT_OK(store_crlf_size(t[i].in, strlen(t[i].in), &cr) == t[i].want,
			"crlf size of case %zu is %lld", i, t[i].want);
	}
	/* a CRLF split between two chunks is still one line end */
	cr = 0;
	UNIT_OK(store_crlf_size("a\r", 2, &cr) + store_crlf_size("\nb", 2, &cr) == 4,
		"CR and LF in separate chunks count as one CRLF");
}

static void test_prefix(void)
{
	static const char *rcpts[] = { "bob@example.com", "carol@example.com" };
	struct store_envelope env = { "alice@example.org", rcpts, 2, "Bob.Orig@example.com" };
	struct store_envelope null_env = { "", rcpts, 1, NULL };
	static const struct {
		const char *in;
		size_t want;
		int null_sender;
	} t[] = {
		{ "Subject: x\n\nb\n", 0, 0 },
		{ "From alice@example.org Mon Nov 23 00:00:00 2026\nSubject: x\n", 48, 0 },
		{ "Return-Path: <alice@example.org>\nSubject: x\n", 33, 0 },
		{ "Delivered-To: BOB@example.com\r\nX-Original-To: bob.orig@example.com\r\nSubject: x\r\n",
		  31 + 37, 0 },
		/* a Delivered-To of another recipient (an earlier hop) stops the strip */
		{ "Delivered-To: dave@example.com\nDelivered-To: bob@example.com\nSubject: x\n", 0,
		  0 },
		/* only leading lines: the same header after another one stays */
		{ "Subject: x\nDelivered-To: bob@example.com\n", 0, 0 },
		/* a folded value */
		{ "Return-Path:\n <alice@example.org>\nSubject: x\n", 34, 0 },
		{ "Return-Path: <>\nSubject: x\n", 16, 1 },
		/* an unterminated last line is never stripped */
		{ "Delivered-To: bob@example.com", 0, 0 },
		/* a name that only starts like one of ours */
		{ "Delivered-Top: bob@example.com\n", 0, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		UNIT_OK(store_prefix_len(t[i].in, strlen(t[i].in),
					 t[i].null_sender ? &null_env : &env) == t[i].want,
			"prefix of case %zu is %zu bytes", i, t[i].want);
}

/* identity - the identity of in for env */
static void identity(const char *in, const struct store_envelope *env,
		     unsigned char out[SHA256_LEN], long long *size_r)
{
	struct store_spool sp;
	char *err = NULL;

	if (store_spool_from_mem(in, strlen(in), &sp, &err) < 0 ||
	    store_spool_finish(&sp, env, &err) < 0) {
		printf("# spool: %s\n", err);
		free(err);
		memset(out, 0, SHA256_LEN);
		return;
	}
	memcpy(out, sp.id, SHA256_LEN);
	*size_r = sp.size;
	store_spool_close(&sp);
}

static void test_identity(void)
{
	static const char *r1[] = { "bob@example.com" }, *r2[] = { "carol@example.com" };
	struct store_envelope e1 = { "a@example.org", r1, 1, NULL },
			      e2 = { "a@example.org", r2, 1, NULL };
	unsigned char a[SHA256_LEN], b[SHA256_LEN], want[SHA256_LEN];
	const char *crlf = "Subject: x\r\n\r\nbody\r\n";
	long long size = 0;

	crypto_sha256(crlf, strlen(crlf), want);
	identity("Subject: x\n\nbody\n", &e1, a, &size);
	UNIT_OK(memcmp(a, want, SHA256_LEN) == 0,
		"identity of an LF message is the SHA-256 of its CRLF form");
	UNIT_OK(size == 20, "its size is counted with CRLF (20)");
	identity(crlf, &e1, b, &size);
	UNIT_OK(memcmp(b, want, SHA256_LEN) == 0, "the CRLF form has the same identity");
	identity("From a@example.org Mon Nov 23 00:00:00 2026\nReturn-Path: <a@example.org>\n"
		 "Delivered-To: bob@example.com\nSubject: x\n\nbody\n",
		 &e1, a, &size);
	identity("Delivered-To: carol@example.com\nSubject: x\n\nbody\n", &e2, b, &size);
	UNIT_OK(memcmp(a, want, SHA256_LEN) == 0 && memcmp(b, want, SHA256_LEN) == 0,
		"per-recipient deliveries of one message share the identity");
	identity("Delivered-To: carol@example.com\nSubject: x\n\nbody\n", &e1, a, &size);
	UNIT_OK(memcmp(a, want, SHA256_LEN) != 0,
		"a Delivered-To that is not this delivery's recipient is part of the message");
	UNIT_OK(size == 20 + 33, "... and of its size");
}

/* crlf_form - the reference rule, written out byte by byte: every LF not
 * after a CR becomes CRLF; returns the new length (out: 2 * len bytes) */
static size_t crlf_form(const char *in, size_t len, char *out)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[n++] = '\r';
		out[n++] = in[i];
	}
	return n;
}

/* Random messages of CR, LF and text (the line-end scans jump with memchr:
 * every position of a line end, a chunk boundary between CR and LF, runs
 * of them), against the reference above: the size cut in two chunks at
 * every point, and the identity of a spool crossing its 64 KiB chunks. */
static void test_line_ends_random(void)
{
	static const char alphabet[] = "\r\na";
	enum { N = 600, BIG = 200000 };
	char in[N], ref[2 * N], *big = malloc(BIG), *bigref = malloc(2 * BIG);
	unsigned char got[SHA256_LEN], want[SHA256_LEN];
	struct store_envelope env = { "", NULL, 0, NULL };
	size_t len, cut, i, bad_size = 0, bad_split = 0;
	unsigned seed = 23;
	long long size = 0;
	int cr, round;

	for (round = 0; round < 2000; round++) {
		len = (size_t)(rand_r(&seed) % N);
		for (i = 0; i < len; i++)
			in[i] = alphabet[rand_r(&seed) % 3];
		cr = 0;
		if (store_crlf_size(in, len, &cr) != (long long)crlf_form(in, len, ref))
			bad_size++;
		cut = len ? (size_t)(rand_r(&seed) % (len + 1)) : 0;
		cr = 0;
		if (store_crlf_size(in, cut, &cr) + store_crlf_size(in + cut, len - cut, &cr) !=
		    (long long)crlf_form(in, len, ref))
			bad_split++;
	}
	UNIT_OK(bad_size == 0, "CRLF size of 2,000 random messages matches the reference");
	UNIT_OK(bad_split == 0, "... and cut in two chunks at a random point");

	/* 'S' first: no per-delivery prefix; a CR at the end of the first
	 * 64 KiB chunk and its LF at the start of the next */
	for (i = 0; i < BIG - 1; i++)
		big[i] = i == 0 ? 'S' : alphabet[rand_r(&seed) % 3];
	big[65535] = '\r';
	big[65536] = '\n';
	big[BIG - 1] = '\0';
	crypto_sha256(bigref, crlf_form(big, BIG - 1, bigref), want);
	identity(big, &env, got, &size);
	UNIT_OK(memcmp(got, want, SHA256_LEN) == 0,
		"identity of a random 200 KB message is the SHA-256 of its CRLF form");
	UNIT_OK(size == (long long)crlf_form(big, BIG - 1, bigref), "... and its size");
	free(big);
	free(bigref);
}

int main(void)
{
	test_crlf_size();
	test_prefix();
	test_identity();
	test_line_ends_random();
	return unit_done();
}
