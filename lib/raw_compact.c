/*
 * NAME
 *	raw_compact - store each attachment's bytes once: cut its base64
 *	text out of the raw message, rebuild it from the blob
 * DESCRIPTION
 *	lib/mime_parse gives each base64 attachment the range of its encoded
 *	body in the message. The layout is read from the received text: the
 *	first line's length and ending (LF or CRLF); the decoded blob is
 *	encoded again in that layout and compared byte for byte with the
 *	received text (one line break after it may stay in the skeleton).
 *	Only when every such attachment matches are the ranges cut out:
 *	odd line lengths, mixed line endings, trailing white space and
 *	non-canonical base64 all differ somewhere, and the message is then
 *	stored whole. Text parts are cut the same way (sql/030): a part
 *	without transfer encoding whose received bytes are its decoded text
 *	in text_body or html_body, or a base64 one whose text encodes to
 *	them. The rebuild (postroomctl mail raw, compact-raw) is the same
 *	encoder, after checking each blob's SHA-256 (each text's length);
 *	the SQL function postroom_email_raw (sql/030) does the same in SQL.
 * NEVER
 *	cuts a range it has not compared byte for byte; returns a rebuild
 *	from a blob whose SHA-256 does not match its digest.
 */
#include "raw_compact.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store_spool.h"
#include "xalloc.h"

#define RAW_OUT 65536
#define RAW_CHUNK (3 * 16384) /* whole groups of three bytes */
/* a text part shorter than this stays in the skeleton: a reference row
 * and its index entry take about as many bytes */
#define RAW_TEXT_MIN 256

static const char raw_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* the encoder's state: output buffered, the column of the current line */
struct raw_enc {
	int line_len, crlf;
	long long col;
	char out[RAW_OUT];
	size_t n;
	raw_sink sink;
	void *arg;
	int stopped;
};

static void raw_flush(struct raw_enc *e)
{
	if (e->n > 0 && !e->stopped && e->sink(e->arg, e->out, e->n) < 0)
		e->stopped = 1;
	e->n = 0;
}

/* raw_put4 - four characters, a line break first when the line is full */
static void raw_put4(struct raw_enc *e, const char q[4], int k)
{
	int i;

	if (e->n + 12 > RAW_OUT)
		raw_flush(e);
	for (i = 0; i < k; i++) {
		if (e->col == e->line_len) {
			if (e->crlf)
				e->out[e->n++] = '\r';
			e->out[e->n++] = '\n';
			e->col = 0;
		}
		e->out[e->n++] = q[i];
		e->col++;
	}
}

/* raw_enc_feed - n bytes, a multiple of 3 unless last */
static void raw_enc_feed(struct raw_enc *e, const unsigned char *in, size_t n)
{
	char q[4];
	size_t i;

	for (i = 0; i + 3 <= n; i += 3) {
		q[0] = raw_alphabet[in[i] >> 2];
		q[1] = raw_alphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		q[2] = raw_alphabet[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		q[3] = raw_alphabet[in[i + 2] & 63];
		raw_put4(e, q, 4);
	}
	if (n - i == 1) {
		q[0] = raw_alphabet[in[i] >> 2];
		q[1] = raw_alphabet[(in[i] & 3) << 4];
		q[2] = q[3] = '=';
		raw_put4(e, q, 4);
	} else if (n - i == 2) {
		q[0] = raw_alphabet[in[i] >> 2];
		q[1] = raw_alphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		q[2] = raw_alphabet[(in[i + 1] & 15) << 2];
		q[3] = '=';
		raw_put4(e, q, 4);
	}
}

long long raw_b64_len(long long size, int line_len, int crlf)
{
	long long chars = (size + 2) / 3 * 4;

	if (chars == 0 || line_len <= 0)
		return chars;
	return chars + (chars - 1) / line_len * (crlf ? 2 : 1);
}

int raw_b64_write(const unsigned char *in, size_t n, int line_len, int crlf, raw_sink sink,
		  void *arg)
{
	struct raw_enc *e = xcalloc(1, sizeof(*e));
	int rc;

	e->line_len = line_len > 0 ? line_len : -1;
	e->crlf = crlf;
	e->sink = sink;
	e->arg = arg;
	raw_enc_feed(e, in, n);
	raw_flush(e);
	rc = e->stopped ? -1 : 0;
	free(e);
	return rc;
}

/* what the comparison sink compares with: the received text in fd */
struct raw_cmp {
	int fd;
	long long off;
	size_t left;
	char buf[RAW_OUT];
};

static int raw_cmp_sink(void *arg, const char *p, size_t n)
{
	struct raw_cmp *c = arg;

	if (n > c->left || n > sizeof(c->buf) ||
	    store_spool_pread_all(c->fd, c->buf, n, c->off) != (ssize_t)n ||
	    memcmp(c->buf, p, n) != 0)
		return -1;
	c->off += (long long)n;
	c->left -= n;
	return 0;
}

/* raw_layout - line length and ending of the encoded text at [off,
 * off + n) of fd (read in pieces: one line may be the whole text) */
static int raw_layout(int fd, long long off, size_t n, int *line_len, int *crlf)
{
	char buf[4096], prev = 0;
	size_t len = 0;
	const char *nl = NULL;

	while (len < n && nl == NULL) {
		size_t want = n - len < sizeof(buf) ? n - len : sizeof(buf);
		ssize_t got = store_spool_pread_all(fd, buf, want, off + (long long)len);

		if (got != (ssize_t)want)
			return -1;
		if ((nl = memchr(buf, '\n', want)) != NULL) {
			if (nl > buf)
				prev = nl[-1];
			len += (size_t)(nl - buf);
		} else {
			prev = buf[want - 1];
			len += want;
		}
	}
	*crlf = nl && len > 0 && prev == '\r';
	if (*crlf)
		len--;
	if (len == 0 || len > 1000000000)
		return -1;
	*line_len = (int)len;
	return 0;
}

/* raw_tail_eol - does [off, off + n) of fd end with a line break of
 * eol bytes (CRLF when 2)? */
static int raw_tail_eol(int fd, long long off, size_t n, size_t eol)
{
	char t[2];

	if (n < eol ||
	    store_spool_pread_all(fd, t, eol, off + (long long)(n - eol)) != (ssize_t)eol)
		return 0;
	return t[eol - 1] == '\n' && (eol == 1 || t[0] == '\r');
}

/* what a cut range is rebuilt from: the decoded bytes in a file
 * (an attachment in the message's att_fd) or in memory (a text body) */
struct raw_src {
	int fd;
	long long off;
	const unsigned char *mem;
	long long size;
};

/* raw_feed_src - the whole source through the encoder; 0, or -1 with
 * *error_r when the attachment could not be read back */
static int raw_feed_src(struct raw_enc *e, const struct raw_src *src, char **error_r)
{
	unsigned char *chunk;
	long long off, left;

	if (src->mem) {
		raw_enc_feed(e, src->mem, (size_t)src->size);
		return 0;
	}
	chunk = xmalloc(RAW_CHUNK);
	for (off = src->off, left = src->size; left > 0 && !e->stopped;) {
		size_t want = left < RAW_CHUNK ? (size_t)left : RAW_CHUNK;
		ssize_t got = store_spool_pread_all(src->fd, (char *)chunk, want, off);

		if (got != (ssize_t)want) {
			*error_r = xasprintf("reading an attachment back: %s",
					     got < 0 ? strerror(errno) : "short read");
			free(chunk);
			return -1;
		}
		raw_enc_feed(e, chunk, want);
		off += (long long)want;
		left -= (long long)want;
	}
	free(chunk);
	return 0;
}

/* raw_matches_b64 - does the base64 encoding of src in the layout read
 * from the received text (raw_fd at t, n bytes) reproduce it? *cut the
 * length of the range to cut (one line break after it stays) */
static int raw_matches_b64(int raw_fd, long long t, size_t n, const struct raw_src *src,
			   struct raw_ref *r, long long *cut, char **error_r)
{
	size_t eol;
	struct raw_enc *e;
	struct raw_cmp *cmp;
	long long exp;
	int ok;

	if (raw_layout(raw_fd, t, n, &r->line_len, &r->crlf) < 0)
		return 0;
	exp = raw_b64_len(src->size, r->line_len, r->crlf);
	eol = r->crlf ? 2 : 1;
	if ((long long)n != exp &&
	    !((long long)n == exp + (long long)eol && raw_tail_eol(raw_fd, t, n, eol)))
		return 0;
	*cut = exp;
	cmp = xcalloc(1, sizeof(*cmp));
	cmp->fd = raw_fd;
	cmp->off = t;
	cmp->left = (size_t)exp;
	e = xcalloc(1, sizeof(*e));
	e->line_len = r->line_len;
	e->crlf = r->crlf;
	e->sink = raw_cmp_sink;
	e->arg = cmp;
	if (raw_feed_src(e, src, error_r) < 0) {
		free(e);
		free(cmp);
		return -1;
	}
	raw_flush(e);
	ok = !e->stopped && cmp->left == 0;
	free(e);
	free(cmp);
	return ok;
}

/* raw_matches_verbatim - is the received text (raw_fd at t, n bytes)
 * the text of src itself, with at most one line break after it (which
 * stays)? *cut its length */
static int raw_matches_verbatim(int raw_fd, long long t, size_t n, const struct raw_src *src,
				struct raw_ref *r, long long *cut)
{
	struct raw_cmp *cmp;
	size_t len = (size_t)src->size, done;
	int ok = 1;

	if (n != len && !(n == len + 1 && raw_tail_eol(raw_fd, t, n, 1)) &&
	    !(n == len + 2 && raw_tail_eol(raw_fd, t, n, 2)))
		return 0;
	cmp = xcalloc(1, sizeof(*cmp));
	cmp->fd = raw_fd;
	cmp->off = t;
	cmp->left = len;
	for (done = 0; ok && done < len; done += RAW_OUT) {
		size_t k = len - done < RAW_OUT ? len - done : RAW_OUT;

		ok = raw_cmp_sink(cmp, (const char *)src->mem + done, k) == 0;
	}
	free(cmp);
	r->line_len = 0;
	r->crlf = 0;
	*cut = (long long)len;
	return ok;
}

/* raw_matches - may [enc_offset, enc_offset + enc_len) of the message
 * be cut, src rebuilding it (verbatim when line_len 0 is asked)? */
static int raw_matches(int raw_fd, long long raw_off, long long len, long long enc_offset,
		       long long enc_len, int verbatim, const struct raw_src *src,
		       struct raw_ref *r, long long *cut, char **error_r)
{
	if (enc_offset < 0 || enc_len <= 0 || enc_offset + enc_len > len)
		return 0;
	if (verbatim)
		return raw_matches_verbatim(raw_fd, raw_off + enc_offset, (size_t)enc_len, src, r,
					    cut);
	return raw_matches_b64(raw_fd, raw_off + enc_offset, (size_t)enc_len, src, r, cut, error_r);
}

/* raw_copy - [off, off + n) of fd appended to out */
static int raw_copy(int fd, long long off, long long n, int out, char *buf, char **error_r)
{
	while (n > 0) {
		size_t want = n < RAW_OUT ? (size_t)n : RAW_OUT, done = 0;

		if (store_spool_pread_all(fd, buf, want, off) != (ssize_t)want) {
			*error_r = xasprintf("reading the message back: %s", strerror(errno));
			return -1;
		}
		while (done < want) {
			ssize_t w = write(out, buf + done, want - done);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				*error_r = xasprintf("writing the skeleton: %s", strerror(errno));
				return -1;
			}
			done += (size_t)w;
		}
		off += (long long)want;
		n -= (long long)want;
	}
	return 0;
}

/* raw_skeleton - the message without the planned ranges, to a memfd */
static int raw_skeleton(int raw_fd, long long raw_off, long long len, struct raw_plan *plan,
			const long long *cuts, char **error_r)
{
	long long from = 0, skel = 0;
	char *buf = xmalloc(RAW_OUT);
	size_t i;
	int rc = 0;

	plan->fd = memfd_create("postroom-skeleton", MFD_CLOEXEC);
	if (plan->fd < 0) {
		*error_r = xasprintf("memfd_create: %s", strerror(errno));
		free(buf);
		return -1;
	}
	for (i = 0; rc == 0 && i <= plan->nrefs; i++) {
		long long to = i < plan->nrefs ? plan->refs[i].cut_at : len;

		if (i < plan->nrefs)
			plan->refs[i].at = skel + (to - from);
		skel += to - from;
		rc = raw_copy(raw_fd, raw_off + from, to - from, plan->fd, buf, error_r);
		if (i < plan->nrefs)
			from = to + cuts[i];
	}
	free(buf);
	plan->skel_len = skel;
	return rc;
}

/* a range raw_compact may cut: an attachment (index into m->atts) or a
 * text piece (index into m->texts), in message order */
struct raw_cand {
	long long enc_offset;
	int text;
	size_t i;
};

static int raw_cand_cmp(const void *a, const void *b)
{
	const struct raw_cand *x = a, *y = b;

	return x->enc_offset < y->enc_offset ? -1 : x->enc_offset > y->enc_offset;
}

/* raw_candidates - what may be cut, sorted; *n their number */
static struct raw_cand *raw_candidates(const struct mime_msg *m, const int *positions, size_t *n)
{
	struct raw_cand *c = xcalloc(m->natts + m->ntexts + 1, sizeof(*c));
	size_t i, k = 0;

	for (i = 0; i < m->natts; i++) {
		int pos = positions ? positions[i] : (int)i + 1;

		if (m->atts[i].enc_len <= 0 || m->atts[i].size <= 0 || pos <= 0)
			continue; /* not base64, empty, or not stored: stays */
		c[k].enc_offset = m->atts[i].enc_offset;
		c[k].text = 0;
		c[k++].i = i;
	}
	for (i = 0; i < m->ntexts; i++) {
		const struct mime_text_piece *t = &m->texts[i];
		const char *body = t->html ? m->html_body : m->text_body;

		if (body == NULL || t->len < RAW_TEXT_MIN || t->enc_len <= 0)
			continue; /* a short text stays: its reference would cost as much */
		c[k].enc_offset = t->enc_offset;
		c[k].text = 1;
		c[k++].i = i;
	}
	qsort(c, k, sizeof(*c), raw_cand_cmp);
	*n = k;
	return c;
}

/* raw_cand_match - raw_matches for one candidate, its reference filled */
static int raw_cand_match(int raw_fd, long long raw_off, long long len, const struct mime_msg *m,
			  const int *positions, const struct raw_cand *c, struct raw_ref *r,
			  long long *cut, char **error_r)
{
	struct raw_src src = { -1, 0, NULL, 0 };
	const struct mime_text_piece *t;
	const struct mime_attachment *a;
	int ok;

	if (c->text) {
		t = &m->texts[c->i];
		src.mem = (const unsigned char *)(t->html ? m->html_body : m->text_body) +
			  t->body_off;
		src.size = t->len;
		ok = raw_matches(raw_fd, raw_off, len, t->enc_offset, t->enc_len, !t->base64, &src,
				 r, cut, error_r);
		r->position = 0;
		r->source = t->html ? RAW_SRC_HTML : RAW_SRC_TEXT;
		r->src_off = t->body_off;
		r->size = t->len;
		r->cut_at = t->enc_offset;
		return ok;
	}
	a = &m->atts[c->i];
	src.fd = m->att_fd;
	src.off = a->offset;
	src.size = a->size;
	ok = raw_matches(raw_fd, raw_off, len, a->enc_offset, a->enc_len, 0, &src, r, cut, error_r);
	r->position = positions ? positions[c->i] : (int)c->i + 1;
	r->source = RAW_SRC_BLOB;
	r->src_off = 0;
	r->size = a->size;
	r->cut_at = a->enc_offset;
	return ok;
}

int raw_compact(int raw_fd, long long raw_off, long long len, const struct mime_msg *m,
		const int *positions, struct raw_plan *plan, char **error_r)
{
	size_t ncand, i;
	struct raw_cand *cand = raw_candidates(m, positions, &ncand);
	long long *cuts = xcalloc(ncand + 1, sizeof(long long)), end = 0;
	int rc = 0, ok;

	memset(plan, 0, sizeof(*plan));
	plan->fd = -1;
	plan->refs = xcalloc(ncand + 1, sizeof(*plan->refs));
	for (i = 0; i < ncand; i++) {
		struct raw_ref *r = &plan->refs[plan->nrefs];

		if (cand[i].enc_offset < end) {
			ok = 0; /* overlapping or out of order: not expected from the walk */
		} else if ((ok = raw_cand_match(raw_fd, raw_off, len, m, positions, &cand[i], r,
						&cuts[plan->nrefs], error_r)) < 0) {
			rc = -1;
			break;
		}
		if (!ok) { /* one mismatch: the message stays whole */
			plan->nrefs = 0;
			break;
		}
		end = r->cut_at + cuts[plan->nrefs];
		plan->nrefs++;
	}
	if (rc == 0 && plan->nrefs > 0)
		rc = raw_skeleton(raw_fd, raw_off, len, plan, cuts, error_r);
	free(cuts);
	free(cand);
	if (rc < 0 || plan->nrefs == 0) {
		raw_plan_free(plan);
		plan->fd = -1;
	}
	return rc;
}

void raw_plan_free(struct raw_plan *plan)
{
	if (plan->fd >= 0)
		close(plan->fd);
	xfree(&plan->refs);
	plan->nrefs = 0;
	plan->fd = -1;
}

/* raw_ref_check - the bytes of reference i (from 0), before anything is
 * written: a blob matches its SHA-256, a text has its recorded length */
static int raw_ref_check(const struct raw_ref *r, const struct raw_blob *b, size_t i,
			 char **error_r)
{
	unsigned char digest[SHA256_LEN];

	if (r->source != RAW_SRC_BLOB) {
		if (b->len == (size_t)r->size)
			return 0;
		*error_r = xasprintf("the text of reference %zu is not in its body", i + 1);
		return -1;
	}
	crypto_sha256(b->content, b->len, digest);
	if (memcmp(digest, b->sha256, SHA256_LEN) == 0)
		return 0;
	*error_r = xasprintf("the blob of attachment %d does not match its SHA-256", r->position);
	return -1;
}

int raw_rebuild(const char *skel, size_t len, const struct raw_ref *refs,
		const struct raw_blob *blobs, size_t n, raw_sink sink, void *arg, char **error_r)
{
	long long from = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (raw_ref_check(&refs[i], &blobs[i], i, error_r) < 0)
			return -1;
		if (refs[i].at < from || refs[i].at > (long long)len) {
			*error_r = xasprintf("reference %zu out of the skeleton", i + 1);
			return -1;
		}
	}
	for (i = 0; i <= n; i++) {
		long long to = i < n ? refs[i].at : (long long)len;

		if (to > from && sink(arg, skel + from, (size_t)(to - from)) < 0)
			goto stopped;
		if (i < n && refs[i].line_len == 0 && blobs[i].len > 0 &&
		    sink(arg, (const char *)blobs[i].content, blobs[i].len) < 0)
			goto stopped;
		if (i < n && refs[i].line_len > 0 &&
		    raw_b64_write(blobs[i].content, blobs[i].len, refs[i].line_len, refs[i].crlf,
				  sink, arg) < 0)
			goto stopped;
		from = to;
	}
	return 0;
stopped:
	*error_r = xstrdup("write error");
	return -1;
}
