/* fuzz-mimecheck - libFuzzer target over the session's attachment check
 * (lib/mime_check: what postroom-milter and postroom-mimecheck run), the
 * path fuzz-deliver does not take: mime_parse with an attachment limit
 * (attachments left out, their memory file cut back) and the shortcut
 * that skips a message no larger than the limit. Invariants: no decoded
 * attachment is larger than its message in CRLF size (the shortcut's
 * premise); with limit L, the check reports exactly the largest
 * attachment over L of an unlimited parse (the two parses agree), for L
 * one under the largest and for a small fixed L; at the largest, nothing.
 * And the bounce classifier (lib/mail_class, issue 21) on the same parse,
 * with the envelope sender unknown, null and a mailbox: every string it
 * returns is valid UTF-8, at most 100 recipients, and with a known
 * non-null sender no non-standard bounce. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mail_class.h"
#include "mime_check.h"
#include "store_spool.h"

#define FUZZ_SMALL_LIMIT 64

/* fuzz_over - the largest attachment of m over max (0: none) */
static long long fuzz_over(const struct mime_msg *m, long long max)
{
	long long over = 0;
	size_t i;

	for (i = 0; i < m->natts; i++)
		if (m->atts[i].size > max && m->atts[i].size > over)
			over = m->atts[i].size;
	return over;
}

/* fuzz_check - the check with limit max must report want */
static void fuzz_check(const struct store_spool *sp, long long size, long long max, long long want)
{
	struct mime_limits lim = { max, 0 };
	long long got;
	char *err = NULL;

	if (mime_check_attachments(sp->fd, 0, sp->len, size, &lim, &got, &err) < 0 || got != want)
		abort();
}

/* fuzz_valid - NULL or valid UTF-8 */
static void fuzz_valid(const char *s)
{
	if (s && !g_utf8_validate(s, -1, NULL))
		abort();
}

/* fuzz_classify - the classifier's invariants for one envelope sender */
static void fuzz_classify(const struct mime_msg *m, const char *sender)
{
	struct mail_class_report r;
	size_t i;

	mail_class_classify(m, sender, &r);
	if (r.rule == NULL || r.nrcpts > 100)
		abort();
	if (sender && *sender && strncmp(r.rule, "non-standard", 12) == 0)
		abort();
	fuzz_valid(r.original_message_id);
	for (i = 0; i < r.nrcpts; i++) {
		fuzz_valid(r.rcpts[i].address);
		fuzz_valid(r.rcpts[i].action);
		fuzz_valid(r.rcpts[i].status);
		fuzz_valid(r.rcpts[i].diagnostic);
	}
	mail_class_report_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char id[SHA256_LEN];
	struct store_spool sp;
	struct mime_msg *m = NULL;
	long long crlf, largest;
	int prev_cr = 0;
	char *err = NULL;

	if (store_spool_from_mem(data, size, &sp, &err) < 0)
		abort();
	crlf = store_crlf_size((const char *)data, size, &prev_cr);
	if (mime_parse(sp.fd, 0, -1, id, NULL, &m, &err) < 0)
		abort();
	largest = fuzz_over(m, 0);
	if (largest > crlf)
		abort(); /* a decoded part larger than its message */
	if (largest > 1)
		fuzz_check(&sp, crlf, largest - 1, largest);
	if (largest > 0)
		fuzz_check(&sp, crlf, largest, 0);
	fuzz_check(&sp, crlf, FUZZ_SMALL_LIMIT, fuzz_over(m, FUZZ_SMALL_LIMIT));
	fuzz_classify(m, NULL);
	fuzz_classify(m, "");
	fuzz_classify(m, "someone@example.org");
	mime_msg_free(&m);
	store_spool_close(&sp);
	return 0;
}
