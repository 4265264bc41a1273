/* fuzz-lmtpd - libFuzzer target for postroom-lmtpd's LMTP parsing: the
 * command lines (deliver/lmtpd_proto.c: verbs, paths, ESMTP parameters,
 * xtext, XFORWARD) and the DATA reader (the dot-unstuffing end-of-data
 * machine feeding lib/store_spool's writer, as deliver/lmtpd_data.c's
 * data_read does). The first two input bytes seed the sizes of the
 * pieces the data arrives in (as recv() would cut it); the rest is what
 * a client sends on one connection: command lines framed as
 * lmtpd_conn_line frames them (LF, an optional CR, the 64 KiB buffer), and
 * after a DATA command the message up to CRLF.CRLF, then commands again.
 * Invariants checked: no crash or sanitizer report (the output buffer of
 * each piece is exactly the size the contract promises, len + 1, on the
 * heap); the data and where it ends are the same whether it comes in one
 * piece or in many, and the same as a plain reference implementation of
 * RFC 5321 4.5.2; the spool holds exactly that data and counts it with
 * CRLF line endings, or is too big exactly when that count is over its
 * cap; parsed paths, parameters and xtext are sane. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lmtpd_proto.h"
#include "store_spool.h"

#define FUZZ_IN_SIZE 65536 /* LMTPD_IN_SIZE: the most one piece can be */

/* fuzz_rand - the piece sizes: a small LCG from the input's seed */
static unsigned fuzz_rand(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 16) & 0x7fff;
}

/* fuzz_dot_ref - RFC 5321 4.5.2 the plain way: a line (after CRLF, or
 * at the start) that is "." CRLF ends the data; a leading dot of any
 * other line is dropped; a line ending in a bare LF goes on. At the end
 * of the input a line start of "." or ".\r" is held back (it may still
 * become the end). Returns the bytes consumed (len when no end). */
static size_t fuzz_dot_ref(const char *in, size_t len, char *out, size_t *outlen, int *done)
{
	size_t i = 0, o = 0;

	*done = 0;
	while (i < len) {
		int prev_cr = 0;

		if (in[i] == '.') {
			if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n') {
				*done = 1;
				*outlen = o;
				return i + 3;
			}
			if (i + 2 == len && in[i + 1] == '\r')
				break; /* ".\r" held back */
			i++;           /* the stuffed dot */
		}
		while (i < len) {
			char c = in[i++];

			out[o++] = c;
			if (c == '\n' && prev_cr)
				break;
			prev_cr = c == '\r';
		}
	}
	*outlen = o;
	return len;
}

/* fuzz_data - one DATA: returns the bytes of in it consumed */
static size_t fuzz_data(const char *in, size_t len, unsigned *seed)
{
	struct lmtpd_dot dot;
	struct store_spool sp;
	struct store_spool_writer w;
	char *whole = malloc(len + 1), *ref = malloc(len + 1), *pieces = malloc(len + 1);
	size_t used_whole, used_ref, n_whole, n_ref, off = 0, n_pieces = 0;
	int done_whole, done_ref, done = 0;
	char *err = NULL;
	/* a cap (max_size + STORE_PREFIX_MAX) of 0..4095 bytes, so that
	 * inputs of fuzzing size reach the too-big path */
	long long max_size = (long long)(fuzz_rand(seed) % 4096) - STORE_PREFIX_MAX;

	/* all at once */
	lmtpd_dot_init(&dot);
	used_whole = lmtpd_dot_feed(&dot, in, len, whole, &n_whole, &done_whole);
	/* the reference */
	used_ref = fuzz_dot_ref(in, len, ref, &n_ref, &done_ref);
	if (used_whole != used_ref || done_whole != done_ref || n_whole != n_ref ||
	    memcmp(whole, ref, n_whole) != 0)
		abort();
	/* in pieces, into the spool, as data_read does */
	if (store_spool_writer_open(&w, &sp, max_size, &err) < 0)
		abort();
	lmtpd_dot_init(&dot);
	while (!done && off < len) {
		size_t piece = fuzz_rand(seed) & 1 ? 16 : FUZZ_IN_SIZE;
		size_t outlen, used;
		char *out;

		piece = 1 + fuzz_rand(seed) % piece;
		if (piece > len - off)
			piece = len - off;
		out = malloc(piece + 1);
		used = lmtpd_dot_feed(&dot, in + off, piece, out, &outlen, &done);
		if (used > piece || outlen > piece + 1 || (!done && used != piece))
			abort();
		if (store_spool_writer_put(&w, out, outlen, &err) < 0)
			abort();
		memcpy(pieces + n_pieces, out, outlen);
		n_pieces += outlen;
		off += used;
		free(out);
	}
	if (store_spool_writer_close(&w, &err) < 0)
		abort();
	if (off != used_whole || done != done_whole || n_pieces != n_whole ||
	    memcmp(pieces, whole, n_whole) != 0)
		abort();
	if (w.too_big != (w.crlf > max_size + STORE_PREFIX_MAX))
		abort();
	if (!w.too_big) {
		char *back = malloc(n_whole + 1);

		if (sp.len != (long long)n_whole ||
		    store_spool_pread_all(sp.fd, back, n_whole + 1, 0) != (ssize_t)n_whole ||
		    memcmp(back, whole, n_whole) != 0)
			abort();
		free(back);
	}
	store_spool_close(&sp);
	free(whole);
	free(ref);
	free(pieces);
	return used_whole;
}

/* fuzz_xtext - decode; what comes out has no NUL and is not longer */
static void fuzz_xtext(const char *v)
{
	char *out = NULL, *x;

	if (lmtpd_xtext_decode(v, &out) == 0) {
		if (strlen(out) > strlen(v))
			abort();
		free(out);
	}
	if ((x = lmtpd_xforward_value(v)) != NULL)
		free(x);
}

/* fuzz_params - the parameters, as session_mail_params and
 * session_xforward read them */
static void fuzz_params(const struct lmtpd_cmd *c)
{
	size_t i;

	if (c->nparams > LMTPD_PARAMS_MAX)
		abort();
	for (i = 0; i < c->nparams; i++) {
		const struct lmtpd_param *p = &c->params[i];

		if (p->name == NULL || *p->name == '\0' || strpbrk(p->name, " \t=") != NULL)
			abort();
		if (lmtpd_param_get(c, p->name) == NULL)
			abort();
		if (p->value)
			fuzz_xtext(p->value);
	}
}

/* fuzz_command - one command line; 1 when it was DATA */
static int fuzz_command(char *line)
{
	struct lmtpd_cmd c, attrs;
	const char *err = NULL;
	char *copy;

	if (lmtpd_cmd_parse(line, &c, &err) < 0) {
		if (err == NULL || strncmp(err, "5.5.", 4) != 0)
			abort();
		return 0;
	}
	if (c.arg == NULL)
		abort();
	switch (c.verb) {
	case LMTPD_MAIL:
	case LMTPD_RCPT:
		if (c.path == NULL || strchr(c.path, '\0') == NULL)
			abort();
		fuzz_params(&c);
		break;
	case LMTPD_XFORWARD:
		copy = malloc(strlen(c.arg) + 14);
		memcpy(copy, "MAIL FROM:<> ", 13);
		strcpy(copy + 13, c.arg);
		if (c.arg[0] != '\0' && lmtpd_cmd_parse(copy, &attrs, &err) == 0) {
			if (attrs.verb != LMTPD_MAIL || *attrs.path != '\0')
				abort();
			fuzz_params(&attrs);
		}
		free(copy);
		break;
	case LMTPD_DATA: return 1;
	default: break;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *lf, *end;
	size_t off = 0, len;
	unsigned seed;

	if (size < 2)
		return 0;
	seed = (unsigned)data[0] << 8 | data[1];
	len = size - 2;
	in = malloc(len + 1);
	memcpy(in, data + 2, len);
	in[len] = '\0';
	end = in + len;
	while (off < len) {
		char *line = in + off;

		lf = memchr(line, '\n', (size_t)(end - line));
		if (lf == NULL || lf - line >= FUZZ_IN_SIZE)
			break; /* no line yet, or over the buffer: the session ends */
		off = (size_t)(lf - in) + 1;
		if (lf > line && lf[-1] == '\r')
			lf--;
		*lf = '\0';
		if (fuzz_command(line))
			off += fuzz_data(in + off, len - off, &seed);
	}
	free(in);
	return 0;
}
