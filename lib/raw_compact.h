/* raw_compact.h - a raw message stored once: the base64 bodies of its
 * extracted attachments cut out and rebuilt from their blobs (issue 20
 * item 1; doc/schema.md "How a raw message is rebuilt").
 *
 * CONTRACT: the skeleton is the raw message with the ranges cut out;
 * each reference says where in the skeleton the encoding of one
 * attachment row's blob goes back, in what layout (line length, LF or
 * CRLF), or where a text part's encoded body is its decoded text in
 * text_body or html_body, itself or in base64 (struct mime_text_piece).
 * raw_compact cuts only when the re-encoding of every base64 attachment
 * and text piece it may cut is byte for byte the received text;
 * otherwise it cuts nothing (the message is stored whole). */
#ifndef POSTROOM_RAW_COMPACT_H
#define POSTROOM_RAW_COMPACT_H

#include <stddef.h>

#include "crypto.h"
#include "mime_parse.h"

/* what a reference's bytes come from (email_raw_refs.source) */
#define RAW_SRC_BLOB 0 /* the blob of an email_attachments row */
#define RAW_SRC_TEXT 1 /* [src_off, src_off + size) of emails.text_body */
#define RAW_SRC_HTML 2 /* the same of emails.html_body */

struct raw_ref {
	int source;        /* RAW_SRC_* */
	int position;      /* email_attachments.position of the blob (0: a text) */
	long long src_off; /* where in the text body (RAW_SRC_TEXT, RAW_SRC_HTML) */
	long long at;      /* where in the skeleton its encoding goes */
	int line_len;      /* base64: characters a line (the last one may be
			    * shorter); 0: the bytes themselves (a text) */
	int crlf;          /* lines end in CRLF, else LF */
	long long size;    /* the blob's size (decoded), or the text's */
	long long cut_at;  /* where the encoding was in the raw message */
};

struct raw_plan {
	struct raw_ref *refs; /* in skeleton order; NULL when nrefs is 0 */
	size_t nrefs;
	int fd; /* memfd with the skeleton, -1 when nrefs is 0 */
	long long skel_len;
};

/* raw_sink - takes n bytes of output; 0, or -1 to stop */
typedef int (*raw_sink)(void *arg, const char *p, size_t n);

/* raw_b64_len - the length of the encoding of size bytes in a layout */
long long raw_b64_len(long long size, int line_len, int crlf);

/* raw_b64_write - the base64 encoding of in[0, n), lines of line_len
 * characters joined by LF or CRLF (none after the last), to sink;
 * 0, or -1 when the sink stopped */
int raw_b64_write(const unsigned char *in, size_t n, int line_len, int crlf, raw_sink sink,
		  void *arg);

/* raw_compact - the plan for the message at [raw_off, raw_off + len) of
 * raw_fd (read in pieces, never mapped whole) whose parse is m
 * (attachment contents in m->att_fd). positions[i] is the
 * email_attachments.position of m->atts[i] (0: none stored, not cut),
 * NULL for 1, 2, ... Returns 0 with *plan set (nrefs 0: store whole),
 * -1 with *error_r (caller frees) on a system error. raw_plan_free after. */
int raw_compact(int raw_fd, long long raw_off, long long len, const struct mime_msg *m,
		const int *positions, struct raw_plan *plan, char **error_r);
void raw_plan_free(struct raw_plan *plan);

/* raw_blob - one referenced blob as read back, with its stored digest;
 * for a text reference, its bytes in the body (sha256 unused) */
struct raw_blob {
	const unsigned char *content;
	size_t len;
	const unsigned char *sha256; /* SHA256_LEN bytes */
};

/* raw_rebuild - the original message from skel[0, len), n refs (in
 * order) and their blobs or texts, to sink; each blob's SHA-256 (each
 * text's length) is checked first. 0, or -1 with *error_r (caller
 * frees). */
int raw_rebuild(const char *skel, size_t len, const struct raw_ref *refs,
		const struct raw_blob *blobs, size_t n, raw_sink sink, void *arg, char **error_r);

#endif
