/* mime_scan.h - the byte-level structure of a message held in memory:
 * where a header block ends, how many fields it has, which lines are a
 * multipart's delimiters. What lets lib/mime_parse hand GMime one part
 * at a time instead of the whole tree (bounded memory), written to
 * GMime's own rules (RFC 2046 delimiters: "--" boundary, optionally
 * "--", then linear white space; the line break before a delimiter
 * belongs to it). Pure functions over a buffer: no allocation except
 * mime_scan_filter_headers, no I/O. */
#ifndef POSTROOM_MIME_SCAN_H
#define POSTROOM_MIME_SCAN_H

#include <stddef.h>

#define MIME_SCAN_DEPTH_MAX 66 /* nested multipart boundaries tracked */

struct mime_bounds;

/* mime_scan_headers - the header block at p[0, len): returns the offset
 * of the body (after the empty line ending the block; len when there is
 * none; where a delimiter line of b starts, when one comes first: the
 * part has no body), with the block's own length (up to and without the
 * empty line) in *hdr_len_r, its field count in *nfields_r (a field
 * starts on a line that does not begin with white space) and its line
 * count in *nlines_r. b may be NULL. */
size_t mime_scan_headers(const char *p, size_t len, const struct mime_bounds *b, size_t *hdr_len_r,
			 size_t *nfields_r, size_t *nlines_r);

/* mime_scan_filter_headers - a copy of the header block p[0, len) with
 * its first max fields and, after them, only the fields named in keep
 * (NULL-terminated, case-insensitive), each field whole with its
 * continuation lines, or, when unfold is set, unfolded (RFC 5322 2.2.3:
 * the line break before a continuation line removed, its white space
 * kept); *out_len_r its length, *dropped_r the fields left out. The
 * caller frees the copy. */
char *mime_scan_filter_headers(const char *p, size_t len, size_t max, const char *const *keep,
			       int unfold, size_t *out_len_r, size_t *dropped_r);

/* the boundaries of the multiparts an entity sits in, outermost first */
struct mime_bounds {
	const char *boundary[MIME_SCAN_DEPTH_MAX];
	size_t len[MIME_SCAN_DEPTH_MAX];
	size_t n;
};

/* one delimiter line found by mime_scan_boundary */
struct mime_delim {
	int which;          /* index into the bounds, -1: none (end of the buffer) */
	int close;          /* the closing delimiter ("--boundary--") */
	size_t content_end; /* where what precedes it ends (its line break excluded) */
	size_t next;        /* the first byte after the delimiter line */
};

/* mime_scan_boundary - the first line at or after from (a line start)
 * that is a delimiter of any of the bounds, the innermost tried first
 * and its closing form before its plain one (GMime's order). Without
 * one, which = -1 and content_end = next = len. */
void mime_scan_boundary(const char *p, size_t len, size_t from, const struct mime_bounds *b,
			struct mime_delim *d);

/* mime_scan_match - the line [from, end) (without its LF) as a delimiter
 * of b: fills d->which and d->close and returns 1, or returns 0 */
int mime_scan_match(const char *p, size_t from, size_t end, const struct mime_bounds *b,
		    struct mime_delim *d);

#endif
