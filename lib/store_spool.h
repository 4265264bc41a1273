/* store_spool.h - the incoming message on a memfd: size, identity, the
 * per-recipient delivery lines that are not part of the stored message.
 *
 * A message is read once from the MTA's pipe into an anonymous memory
 * file (memfd), never into the heap, so that a 50 MB message costs the
 * process a few pages of buffer. Everything else (MIME parsing, COPY to
 * PostgreSQL) reads it back from the fd. */
#ifndef POSTROOM_STORE_SPOOL_H
#define POSTROOM_STORE_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

#include "crypto.h"

/* How much of the start of a message may be per-delivery lines (mbox
 * From_ line, Return-Path:, Delivered-To:, X-Original-To:). */
#define STORE_PREFIX_MAX 65536

/* The envelope of one delivery. */
struct store_envelope {
	const char *sender;       /* "" = null sender */
	const char *const *rcpts; /* envelope recipients as passed */
	size_t nrcpts;
	const char *orig_rcpt; /* ORIGINAL_RECIPIENT (X-Original-To), or NULL */
};

struct store_spool {
	int fd;                       /* memfd with the input exactly as read; -1 = none */
	long long len;                /* bytes in fd */
	long long start;              /* offset of the stored message (after the prefix) */
	long long size;               /* size of [start, len) with CRLF line endings */
	unsigned char id[SHA256_LEN]; /* identity: SHA-256 of [start, len), CRLF-normalised */
};

/* store_spool_pread_all - read up to len bytes of fd at off (EINTR
 * retried); the bytes read (fewer only at end of file) or -1 */
ssize_t store_spool_pread_all(int fd, char *p, size_t len, long long off);

/* store_spool_read - copy everything from fd in into a fresh memfd. Stops
 * reading (and sets *too_big_r) as soon as the input, counted with CRLF
 * line endings, exceeds max_size + STORE_PREFIX_MAX; the rest of the
 * input is then read and discarded so the MTA sees no broken pipe.
 * 0 ok, -1 with *error_r (caller frees) on a system error. */
int store_spool_read(int in, long long max_size, struct store_spool *sp, int *too_big_r,
		     char **error_r);

/* store_spool_from_mem - the same for a buffer (tests, fuzzing). */
int store_spool_from_mem(const void *data, size_t len, struct store_spool *sp, char **error_r);

/* store_spool_finish - find the prefix for env, then measure size and
 * identity of the rest. 0 ok, -1 with *error_r on an I/O error. */
int store_spool_finish(struct store_spool *sp, const struct store_envelope *env, char **error_r);

void store_spool_close(struct store_spool *sp);

/* A writer that fills a spool piece by piece (LMTP DATA after
 * dot-unstuffing): buffered, measured with CRLF line endings, and capped
 * like store_spool_read: once the data exceeds max_size +
 * STORE_PREFIX_MAX, further pieces are counted but not kept (too_big). */
struct store_spool_writer {
	struct store_spool *sp;
	char *buf; /* pending bytes, flushed in 64 KiB writes */
	size_t used;
	long long crlf, cap;
	int prev_cr;
	int too_big;
};

/* store_spool_writer_open - a fresh memfd in *sp; 0 or -1 with *error_r */
int store_spool_writer_open(struct store_spool_writer *w, struct store_spool *sp,
			    long long max_size, char **error_r);
/* store_spool_writer_put - append; 0 or -1 with *error_r (I/O error) */
int store_spool_writer_put(struct store_spool_writer *w, const char *data, size_t len,
			   char **error_r);
/* store_spool_writer_close - flush and free the buffer (the spool stays
 * open; on too_big sp->size is set to the bytes counted). 0 or -1. */
int store_spool_writer_close(struct store_spool_writer *w, char **error_r);

/* store_prefix_len - pure: how many leading bytes of buf are a mbox
 * From_ line and Return-Path:/Delivered-To:/X-Original-To: lines whose
 * value equals the envelope sender or a recipient (case-insensitive,
 * angle brackets ignored). Only whole lines (ending in LF) count. */
size_t store_prefix_len(const char *buf, size_t len, const struct store_envelope *env);

/* store_crlf_size - pure: bytes of buf with every LF not preceded by CR
 * counted as CRLF. *prev_cr carries the last byte's CR-ness between
 * chunks (start with 0). */
long long store_crlf_size(const char *buf, size_t len, int *prev_cr);

#endif
