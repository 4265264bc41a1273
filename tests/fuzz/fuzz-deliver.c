/* fuzz-deliver - libFuzzer target over deliver's parse-and-build-rows path:
 * spool (prefix, CRLF size, identity), GMime parse into rows, attachment
 * decoding into the memory file, the array literals of the INSERTs. The
 * invariants checked are what PostgreSQL needs: every text valid UTF-8
 * without NUL, ids bounded, attachments inside their memory file, sizes
 * consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "mime_parse.h"
#include "store_mail.h"
#include "store_spool.h"

/* text_ok - valid for a PostgreSQL text column (NULL allowed) */
static void text_ok(const char *s)
{
	if (s && !g_utf8_validate(s, -1, NULL))
		abort();
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
	mime_msg_free(&m);
	store_spool_close(&sp);
	return 0;
}
