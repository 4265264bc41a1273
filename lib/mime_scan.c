/*
 * NAME
 *	mime_scan - header blocks and multipart delimiters in a buffer
 * DESCRIPTION
 *	The structure lib/mime_parse needs to give GMime one part at a
 *	time: where a header block ends (the first empty line: LF or CRLF,
 *	as GMime accepts both), how many fields it holds, a filtered copy
 *	of a block with too many fields, and the next delimiter line of the
 *	multiparts an entity sits in (their boundaries as GMime parsed
 *	them). The delimiter rules are GMime's: a line (CR stripped) equal
 *	to "--" boundary or "--" boundary "--", followed only by spaces and
 *	tabs; the innermost multipart's boundary is tried first, so a
 *	nested multipart ends at its own closing line even when that line
 *	also looks like an outer one; the line break before a delimiter
 *	belongs to it. Linear in the buffer: lines are found with memchr, a
 *	delimiter candidate is compared only where a line starts with "--".
 * NEVER
 *	reads outside [p, p + len); decodes, converts or interprets header
 *	values (GMime does); allocates except for the filtered copy.
 */
#include "mime_scan.h"

#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* scan_line_end - the offset of the LF ending the line at from, or len */
static size_t scan_line_end(const char *p, size_t len, size_t from)
{
	const char *nl = memchr(p + from, '\n', len - from);

	return nl ? (size_t)(nl - p) : len;
}

/* scan_is_empty_line - the line [from, end) holds nothing but a CR */
static int scan_is_empty_line(const char *p, size_t from, size_t end)
{
	return end == from || (end == from + 1 && p[from] == '\r');
}

size_t mime_scan_headers(const char *p, size_t len, const struct mime_bounds *b, size_t *hdr_len_r,
			 size_t *nfields_r, size_t *nlines_r)
{
	size_t pos = 0, end, nfields = 0, nlines = 0, body = len;
	struct mime_delim d;

	while (pos < len) {
		end = scan_line_end(p, len, pos);
		if (scan_is_empty_line(p, pos, end)) {
			body = end < len ? end + 1 : len;
			break;
		}
		if (p[pos] == '-' && mime_scan_match(p, pos, end, b, &d)) {
			body = pos;
			break;
		}
		if (p[pos] != ' ' && p[pos] != '\t')
			nfields++;
		nlines++;
		pos = end < len ? end + 1 : len;
	}
	*hdr_len_r = pos < len ? pos : len;
	*nfields_r = nfields;
	*nlines_r = nlines;
	return body;
}

/* scan_field_wanted - the field at p[0, n) is named in keep */
static int scan_field_wanted(const char *p, size_t n, const char *const *keep)
{
	const char *colon = memchr(p, ':', n);
	size_t namelen;

	if (colon == NULL)
		return 0;
	namelen = (size_t)(colon - p);
	while (namelen > 0 && (p[namelen - 1] == ' ' || p[namelen - 1] == '\t'))
		namelen--;
	for (; keep && *keep; keep++)
		if (strlen(*keep) == namelen && strncasecmp(p, *keep, namelen) == 0)
			return 1;
	return 0;
}

/* scan_copy_unfolded - the field p[0, n) without the line breaks before
 * its continuation lines (its last line break kept), at out; its length */
static size_t scan_copy_unfolded(char *out, const char *p, size_t n)
{
	size_t i, o = 0, brk;

	for (i = 0; i < n; i++) {
		if (p[i] == '\n' && i + 1 < n) { /* a continuation follows: drop CR LF */
			brk = o > 0 && out[o - 1] == '\r' ? 1 : 0;
			o -= brk;
			continue;
		}
		out[o++] = p[i];
	}
	return o;
}

char *mime_scan_filter_headers(const char *p, size_t len, size_t max, const char *const *keep,
			       int unfold, size_t *out_len_r, size_t *dropped_r)
{
	char *out = xmalloc(len + 1);
	size_t pos = 0, o = 0, nfields = 0, dropped = 0, start, end;

	while (pos < len) {
		/* one field: its first line and its continuation lines */
		start = pos;
		do {
			end = scan_line_end(p, len, pos);
			pos = end < len ? end + 1 : len;
		} while (pos < len && (p[pos] == ' ' || p[pos] == '\t'));
		if (nfields++ < max || scan_field_wanted(p + start, pos - start, keep)) {
			if (unfold) {
				o += scan_copy_unfolded(out + o, p + start, pos - start);
			} else {
				memcpy(out + o, p + start, pos - start);
				o += pos - start;
			}
		} else {
			dropped++;
		}
	}
	out[o] = '\0';
	*out_len_r = o;
	*dropped_r = dropped;
	return out;
}

/* scan_is_delimiter - the line text[0, n) (CR stripped) is "--" and the
 * boundary (blen bytes), then "--" when final, then only spaces and tabs */
static int scan_is_delimiter(const char *text, size_t n, const char *boundary, size_t blen,
			     int final)
{
	size_t i = 2 + blen;

	if (n < i || text[0] != '-' || text[1] != '-' || memcmp(text + 2, boundary, blen) != 0)
		return 0;
	if (final) {
		if (n < i + 2 || text[i] != '-' || text[i + 1] != '-')
			return 0;
		i += 2;
	}
	for (; i < n; i++)
		if (text[i] != ' ' && text[i] != '\t')
			return 0;
	return 1;
}

int mime_scan_match(const char *p, size_t from, size_t end, const struct mime_bounds *b,
		    struct mime_delim *d)
{
	size_t k, n = end - from;

	if (b == NULL || n < 2 || p[from] != '-' || p[from + 1] != '-')
		return 0;
	if (p[end - 1] == '\r')
		n--;
	for (k = b->n; k-- > 0;) {
		if (scan_is_delimiter(p + from, n, b->boundary[k], b->len[k], 1)) {
			d->which = (int)k;
			d->close = 1;
			return 1;
		}
		if (scan_is_delimiter(p + from, n, b->boundary[k], b->len[k], 0)) {
			d->which = (int)k;
			d->close = 0;
			return 1;
		}
	}
	return 0;
}

void mime_scan_boundary(const char *p, size_t len, size_t from, const struct mime_bounds *b,
			struct mime_delim *d)
{
	size_t pos = from, end;

	while (pos < len && b && b->n > 0) {
		end = scan_line_end(p, len, pos);
		if (p[pos] == '-' && mime_scan_match(p, pos, end, b, d)) {
			d->content_end = pos;
			if (pos > from && p[pos - 1] == '\n')
				d->content_end =
					pos - 1 > from && p[pos - 2] == '\r' ? pos - 2 : pos - 1;
			d->next = end < len ? end + 1 : len;
			return;
		}
		pos = end < len ? end + 1 : len;
	}
	d->which = -1;
	d->close = 0;
	d->content_end = d->next = len;
}
