/* sighdr.h - postroom's signed internal headers.
 *
 * CONTRACT (fixed before the implementations; the milter issue owns
 * sighdr.c and may add to this header, never break it).
 *
 * A signed header carries name=value fields and an HMAC-SHA256 (keyed with
 * security.hmac_secret) over the header name and every field, so that it
 * cannot be forged and cannot be moved to another message: it binds at
 * least a timestamp and, where known, the Message-Id and the queue id.
 * Each kind has its own header name:
 *   SIGHDR_SUBMISSION - added by the milter at end of message for an
 *     authenticated session: user=<sasl user>, mid=<Message-Id>,
 *     qid=<queue id>, ts=<unix time>. deliver reads it for "sent by"
 *     where the MTA passes no SASL user (LMTP).
 *   SIGHDR_VERDICT - added by policyd (PREPEND at DATA): spam=yes|no,
 *     reason=..., spf=..., client=<ip>, qid=..., ts=... . deliver reads
 *     the topmost copy only.
 * Copies arriving from outside are removed by the milter (Postfix) and
 * stripped from outbound mail (contrib/postfix smtp_header_checks).
 */
#ifndef POSTROOM_SIGHDR_H
#define POSTROOM_SIGHDR_H

#include <stddef.h>
#include <time.h>

#define SIGHDR_SUBMISSION "X-Postroom-Submission"
#define SIGHDR_VERDICT "X-Postroom-Verdict"

#define SIGHDR_MAX_FIELDS 16

struct sighdr_field {
	const char *name;  /* [a-z0-9_-]+ */
	const char *value; /* printable, no ';' (encoded by sighdr if needed) */
};

struct sighdr {
	size_t nfields;
	struct sighdr_field fields[SIGHDR_MAX_FIELDS];
};

/* sighdr_sign - the header VALUE (no name, no CRLF) for header_name with
 * fields f, signed with secret; always includes ts=now. Caller frees. */
char *sighdr_sign(const char *secret, const char *header_name, const struct sighdr *f, time_t now);

/* What the verifier checks the header against. A NULL member is not
 * checked; a member that is set must match the field in the header (a
 * header lacking a field that is expected fails). */
struct sighdr_binding {
	const char *message_id;
	const char *queue_id;
	time_t now;
	long max_age; /* seconds: older timestamps fail (stale / replayed) */
};

/* sighdr_verify - parse value, check the HMAC (constant time), the
 * binding and the age. 0 ok (fields in *out point into *storage_r, which
 * the caller frees), -1 with a static *error_r. */
int sighdr_verify(const char *secret, const char *header_name, const char *value,
		  const struct sighdr_binding *b, struct sighdr *out, char **storage_r,
		  const char **error_r);

/* sighdr_get - a field's value or NULL */
const char *sighdr_get(const struct sighdr *h, const char *name);

/* ---- additions (milter issue) ---------------------------------------
 * Details of sighdr_verify: b == NULL checks the signature and that ts=
 * is neither older than SIGHDR_DEFAULT_MAX_AGE nor in the future; a
 * max_age <= 0 means SIGHDR_DEFAULT_MAX_AGE; now == 0 means time(NULL).
 * Message-Ids are compared with white space removed (folding) and without
 * their angle brackets ("<a@b>" matches "a@b"), queue ids exactly. sighdr_sign returns NULL when
 * secret is NULL/empty or a field is invalid (bad or duplicate name, "v"/"sig" used, NULL value).
 */
#define SIGHDR_DEFAULT_MAX_AGE 432000L /* 5 days: Postfix maximal_queue_lifetime */

#endif
