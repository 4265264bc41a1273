/* fuzz-deliver - libFuzzer target over deliver's parse-and-build-rows path:
 * spool (prefix, CRLF size, identity), GMime parse into rows, attachment
 * decoding into the memory file, the array literals of the INSERTs. The
 * invariants checked are what PostgreSQL needs: every text valid UTF-8
 * without NUL, ids bounded, attachments inside their memory file, sizes
 * consistent; the raw message cut by lib/raw_compact (attachments and
 * text parts) rebuilds byte for byte from its skeleton and references. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "mime_parse.h"
#include "raw_compact.h"
#include "store_mail.h"
#include "store_spool.h"

/* text_ok - valid for a PostgreSQL text column (NULL allowed) */
static void text_ok(const char *s)
{
	if (s && !g_utf8_validate(s, -1, NULL))
		abort();
}

/* what the rebuild writes, compared with the message as it goes */
struct cmp_out {
	const unsigned char *want;
	size_t len, at;
};

static int cmp_sink(void *arg, const char *p, size_t n)
{
	struct cmp_out *c = arg;

	if (n > c->len - c->at || memcmp(c->want + c->at, p, n) != 0)
		abort(); /* the rebuild differs from the message */
	c->at += n;
	return 0;
}

/* rebuild_ok - raw_compact's plan for the message at [start, len) of
 * the spool rebuilds it byte for byte (its text pieces inside their
 * bodies and the message first) */
static void rebuild_ok(const struct store_spool *sp, const struct mime_msg *m)
{
	long long len = sp->len - sp->start;
	struct raw_plan plan;
	struct raw_blob *blobs;
	unsigned char *whole, *atts = NULL, *skel;
	struct stat st;
	struct cmp_out c;
	char *err = NULL;
	size_t i;

	for (i = 0; i < m->ntexts; i++) {
		const struct mime_text_piece *t = &m->texts[i];
		const char *body = t->html ? m->html_body : m->text_body;

		if (body == NULL || t->body_off < 0 || t->len < 0 ||
		    (size_t)(t->body_off + t->len) > strlen(body) || t->enc_offset < 0 ||
		    t->enc_offset + t->enc_len > len)
			abort();
	}
	if (len <= 0 || raw_compact(sp->fd, sp->start, len, m, NULL, &plan, &err) < 0) {
		free(err);
		return;
	}
	if (plan.nrefs == 0)
		return;
	whole = malloc((size_t)len);
	skel = malloc((size_t)plan.skel_len + 1);
	if (m->att_fd >= 0 && fstat(m->att_fd, &st) == 0 && st.st_size > 0) {
		atts = malloc((size_t)st.st_size);
		if (store_spool_pread_all(m->att_fd, (char *)atts, (size_t)st.st_size, 0) !=
		    (ssize_t)st.st_size)
			abort();
	}
	if (store_spool_pread_all(sp->fd, (char *)whole, (size_t)len, sp->start) != (ssize_t)len ||
	    store_spool_pread_all(plan.fd, (char *)skel, (size_t)plan.skel_len, 0) !=
		    (ssize_t)plan.skel_len)
		abort();
	blobs = calloc(plan.nrefs, sizeof(*blobs));
	for (i = 0; i < plan.nrefs; i++) {
		const struct raw_ref *r = &plan.refs[i];

		if (r->source == RAW_SRC_BLOB) {
			const struct mime_attachment *a = &m->atts[r->position - 1];

			blobs[i].content = atts + a->offset;
			blobs[i].len = (size_t)a->size;
			blobs[i].sha256 = a->sha256;
		} else {
			blobs[i].content =
				(const unsigned char *)(r->source == RAW_SRC_TEXT ? m->text_body
										  : m->html_body) +
				r->src_off;
			blobs[i].len = (size_t)r->size;
		}
	}
	c.want = whole;
	c.len = (size_t)len;
	c.at = 0;
	if (raw_rebuild((const char *)skel, (size_t)plan.skel_len, plan.refs, blobs, plan.nrefs,
			cmp_sink, &c, &err) < 0 ||
	    c.at != c.len)
		abort();
	free(blobs);
	free(atts);
	free(skel);
	free(whole);
	raw_plan_free(&plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *rcpts[] = { "bob@example.com", "alice+tag@example.com" };
	struct store_envelope env = { "carol@example.org", rcpts, 2, NULL };
	struct store_spool sp;
	struct mime_msg *m = NULL;
	struct stat st;
	char *err = NULL, *arr;
	size_t i;

	if (store_spool_from_mem(data, size, &sp, &err) < 0 ||
	    store_spool_finish(&sp, &env, &err) < 0)
		abort(); /* only system errors can fail here */
	if (sp.start < 0 || sp.start > sp.len || sp.size < sp.len - sp.start ||
	    sp.size > 2 * (sp.len - sp.start))
		abort();
	if (mime_parse(sp.fd, sp.start, -1, sp.id, NULL, &m, &err) < 0)
		abort();
	text_ok(m->message_id);
	text_ok(m->from_address);
	text_ok(m->from_display);
	text_ok(m->subject);
	text_ok(m->text_body);
	text_ok(m->html_body);
	text_ok(m->in_reply_to);
	text_ok(m->parse_problem);
	if (m->message_id == NULL || m->subject == NULL || m->from_address == NULL ||
	    strlen(m->message_id) > 1000)
		abort();
	for (i = 0; i < m->nreferences; i++)
		text_ok(m->references[i]);
	arr = store_pg_array((const char *const *)m->references, m->nreferences);
	free(arr);
	for (i = 0; i < m->nrcpts; i++) {
		text_ok(m->rcpts[i].address);
		text_ok(m->rcpts[i].display);
		if (*m->rcpts[i].address == '\0')
			abort();
	}
	for (i = 0; i < m->natts; i++) {
		text_ok(m->atts[i].filename);
		text_ok(m->atts[i].content_type);
		text_ok(m->atts[i].content_id);
		if (*m->atts[i].filename == '\0' || m->atts[i].size < 0 ||
		    fstat(m->att_fd, &st) < 0 || m->atts[i].offset + m->atts[i].size > st.st_size)
			abort();
	}
	rebuild_ok(&sp, m);
	mime_msg_free(&m);
	store_spool_close(&sp);
	return 0;
}
