/*
 * NAME
 *	store_spool - spool an incoming message and compute its identity
 * DESCRIPTION
 *	The message read from the MTA goes into a memfd (anonymous memory
 *	file) in 64 KiB steps; the process heap never holds it whole. The
 *	stored message starts after the per-delivery prefix (a leading mbox
 *	From_ line and the leading Return-Path:, Delivered-To:, X-Original-To:
 *	lines whose values equal this delivery's envelope sender or a
 *	recipient): those lines differ per recipient and would show one
 *	recipient's address, a Bcc's included, to all. Its size counts every
 *	bare LF as CRLF (MISSION.md: the milter's definition), and its
 *	identity is the SHA-256 of it with LF normalised to CRLF, so an MTA
 *	retry or a per-recipient delivery of one message maps to one row.
 * NEVER
 *	holds the whole message in the heap; treats Message-Id as identity.
 */
#include "store_spool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "xalloc.h"

#define SPOOL_CHUNK 65536

/* The scans below jump from line end to line end with memchr (the
 * message passes through them three times; a byte-by-byte loop was a
 * tenth of postroom-lmtpd's CPU, perf at one LMTP session). */

/* bare_lf - is the LF at p (inside buf) bare: not after a CR, the CR of
 * the previous chunk (prev_cr) counting for the first byte? */
static int bare_lf(const char *buf, const char *p, int prev_cr)
{
	return !(p > buf ? p[-1] == '\r' : prev_cr);
}

long long store_crlf_size(const char *buf, size_t len, int *prev_cr)
{
	long long n = (long long)len;
	const char *p = buf, *end = buf + len, *lf;

	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n += bare_lf(buf, lf, *prev_cr);
		p = lf + 1;
	}
	if (len > 0)
		*prev_cr = buf[len - 1] == '\r';
	return n;
}

/* spool_new_fd - an anonymous file for the message */
static int spool_new_fd(char **error_r)
{
	int fd = memfd_create("postroom-message", MFD_CLOEXEC);

	if (fd < 0)
		*error_r = xasprintf("memfd_create: %s", strerror(errno));
	return fd;
}

/* spool_write_all - write len bytes or fail */
static int spool_write_all(int fd, const char *p, size_t len, char **error_r)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			*error_r = xasprintf("spool write: %s",
					     w < 0 ? strerror(errno) : "short write");
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int store_spool_read(int in, long long max_size, struct store_spool *sp, int *too_big_r,
		     char **error_r)
{
	char *chunk = xmalloc(SPOOL_CHUNK);
	long long crlf = 0, cap = max_size + STORE_PREFIX_MAX;
	int prev_cr = 0, rc = 0;
	ssize_t n;

	memset(sp, 0, sizeof(*sp));
	*too_big_r = 0;
	if ((sp->fd = spool_new_fd(error_r)) < 0) {
		free(chunk);
		return -1;
	}
	for (;;) {
		n = read(in, chunk, SPOOL_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("reading the message: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		if (*too_big_r)
			continue; /* drain: the MTA must not see a broken pipe */
		crlf += store_crlf_size(chunk, (size_t)n, &prev_cr);
		if (crlf > cap) {
			*too_big_r = 1;
			continue;
		}
		if (spool_write_all(sp->fd, chunk, (size_t)n, error_r) < 0) {
			rc = -1;
			break;
		}
		sp->len += n;
	}
	free(chunk);
	if (*too_big_r)
		sp->size = crlf; /* at least this much */
	return rc;
}

int store_spool_from_mem(const void *data, size_t len, struct store_spool *sp, char **error_r)
{
	memset(sp, 0, sizeof(*sp));
	if ((sp->fd = spool_new_fd(error_r)) < 0)
		return -1;
	if (spool_write_all(sp->fd, data, len, error_r) < 0) {
		store_spool_close(sp);
		return -1;
	}
	sp->len = (long long)len;
	return 0;
}

void store_spool_close(struct store_spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
}

int store_spool_writer_open(struct store_spool_writer *w, struct store_spool *sp,
			    long long max_size, char **error_r)
{
	memset(w, 0, sizeof(*w));
	memset(sp, 0, sizeof(*sp));
	if ((sp->fd = spool_new_fd(error_r)) < 0)
		return -1;
	w->sp = sp;
	w->cap = max_size + STORE_PREFIX_MAX;
	w->buf = xmalloc(SPOOL_CHUNK);
	return 0;
}

/* spool_writer_flush - write out what is buffered */
static int spool_writer_flush(struct store_spool_writer *w, char **error_r)
{
	if (w->used > 0 && spool_write_all(w->sp->fd, w->buf, w->used, error_r) < 0)
		return -1;
	w->sp->len += (long long)w->used;
	w->used = 0;
	return 0;
}

int store_spool_writer_put(struct store_spool_writer *w, const char *data, size_t len,
			   char **error_r)
{
	w->crlf += store_crlf_size(data, len, &w->prev_cr);
	if (w->too_big || w->crlf > w->cap) {
		w->too_big = 1;
		return 0;
	}
	if (w->used + len > SPOOL_CHUNK && spool_writer_flush(w, error_r) < 0)
		return -1;
	if (len >= SPOOL_CHUNK) {
		if (spool_write_all(w->sp->fd, data, len, error_r) < 0)
			return -1;
		w->sp->len += (long long)len;
		return 0;
	}
	memcpy(w->buf + w->used, data, len);
	w->used += len;
	return 0;
}

int store_spool_writer_close(struct store_spool_writer *w, char **error_r)
{
	int rc = w->too_big ? 0 : spool_writer_flush(w, error_r);

	if (w->too_big)
		w->sp->size = w->crlf;
	xfree(&w->buf);
	return rc;
}

/* prefix_value_matches - does the (unfolded, trimmed) header value equal
 * the sender or one of the recipients? */
static int prefix_value_matches(const char *v, size_t n, const struct store_envelope *env)
{
	size_t i;

	while (n > 0 && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'))
		v++, n--;
	while (n > 0 &&
	       (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	if (n >= 2 && v[0] == '<' && v[n - 1] == '>')
		v++, n -= 2;
	if (env->sender && strlen(env->sender) == n && strncasecmp(v, env->sender, n) == 0)
		return 1;
	if (env->orig_rcpt && strlen(env->orig_rcpt) == n && strncasecmp(v, env->orig_rcpt, n) == 0)
		return 1;
	for (i = 0; i < env->nrcpts; i++)
		if (strlen(env->rcpts[i]) == n && strncasecmp(v, env->rcpts[i], n) == 0)
			return 1;
	return 0;
}

/* prefix_field_end - end (after its last LF) of the header field starting
 * at pos, folded lines included; 0 when it does not end inside buf */
static size_t prefix_field_end(const char *buf, size_t len, size_t pos)
{
	const char *lf;

	for (;;) {
		lf = memchr(buf + pos, '\n', len - pos);
		if (lf == NULL)
			return 0;
		pos = (size_t)(lf - buf) + 1;
		if (pos >= len || (buf[pos] != ' ' && buf[pos] != '\t'))
			return pos;
	}
}

size_t store_prefix_len(const char *buf, size_t len, const struct store_envelope *env)
{
	static const char *const names[] = { "Return-Path:", "Delivered-To:", "X-Original-To:" };
	size_t pos = 0, end, i, nl;
	const char *lf;

	if (len >= 5 && memcmp(buf, "From ", 5) == 0) {
		if ((lf = memchr(buf, '\n', len)) == NULL)
			return 0;
		pos = (size_t)(lf - buf) + 1;
	}
	for (;;) {
		for (i = 0; i < 3; i++) {
			nl = strlen(names[i]);
			if (len - pos >= nl && strncasecmp(buf + pos, names[i], nl) == 0)
				break;
		}
		if (i == 3 || (end = prefix_field_end(buf, len, pos)) == 0)
			return pos;
		if (!prefix_value_matches(buf + pos + nl, end - pos - nl, env))
			return pos;
		pos = end;
	}
}

ssize_t store_spool_pread_all(int fd, char *p, size_t len, long long off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, p + got, len - got, (off_t)(off + (long long)got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* spool_hash_chunk - feed buf to the digest with bare LF made CRLF */
static void spool_hash_chunk(EVP_MD_CTX *md, const char *buf, size_t len, int *prev_cr)
{
	const char *from = buf, *p = buf, *end = buf + len, *lf;

	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (bare_lf(buf, lf, *prev_cr)) {
			EVP_DigestUpdate(md, from, (size_t)(lf - from));
			EVP_DigestUpdate(md, "\r\n", 2);
			from = lf + 1;
		}
		p = lf + 1;
	}
	EVP_DigestUpdate(md, from, (size_t)(end - from));
	if (len > 0)
		*prev_cr = buf[len - 1] == '\r';
}

int store_spool_finish(struct store_spool *sp, const struct store_envelope *env, char **error_r)
{
	char *chunk = xmalloc(SPOOL_CHUNK);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	long long off;
	int prev_cr = 0, size_cr = 0, rc = 0;
	ssize_t n;

	n = store_spool_pread_all(
		sp->fd, chunk, sp->len < STORE_PREFIX_MAX ? (size_t)sp->len : STORE_PREFIX_MAX, 0);
	if (md == NULL || n < 0 || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		*error_r = xasprintf("spool read: %s", n < 0 ? strerror(errno) : "digest failed");
		rc = -1;
		goto out;
	}
	sp->start = (long long)store_prefix_len(chunk, (size_t)n, env);
	sp->size = 0;
	for (off = sp->start; off < sp->len; off += n) {
		size_t want = sp->len - off < SPOOL_CHUNK ? (size_t)(sp->len - off) : SPOOL_CHUNK;

		if ((n = store_spool_pread_all(sp->fd, chunk, want, off)) <= 0) {
			*error_r =
				xasprintf("spool read: %s", n < 0 ? strerror(errno) : "short read");
			rc = -1;
			goto out;
		}
		sp->size += store_crlf_size(chunk, (size_t)n, &size_cr);
		spool_hash_chunk(md, chunk, (size_t)n, &prev_cr);
	}
	EVP_DigestFinal_ex(md, sp->id, NULL);
out:
	EVP_MD_CTX_free(md);
	free(chunk);
	return rc;
}
