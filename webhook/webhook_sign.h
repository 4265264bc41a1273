/* webhook_sign.h - Standard Webhooks signatures and the event bodies */
#ifndef POSTROOM_WEBHOOK_SIGN_H
#define POSTROOM_WEBHOOK_SIGN_H

#include <stddef.h>

/* One decoded secret (the bytes after whsec_). */
struct webhook_secret {
	unsigned char *key;
	size_t len;
};

/* webhook_secret_parse - "whsec_" + base64 into *s; -1 with *error_r */
int webhook_secret_parse(const char *text, struct webhook_secret *s, char **error_r);
void webhook_secret_free(struct webhook_secret *s);

/* webhook_signature - "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>"
 * for each secret, separated by a space (caller frees) */
char *webhook_signature(const struct webhook_secret *s, size_t n, const char *id, long long ts,
			const char *body);

/* The fields of one claimed event (strings may be NULL). */
struct webhook_event {
	const char *position, *event_id, *kind, *user_id, *user, *addresses_json, *email_id,
		*thread_id, *message_id, *subject, *from, *from_display, *spam, *received_at,
		*has_attachments, *data_json, *created_at;
};

/* webhook_body_standard - the signed format's JSON body (caller frees) */
char *webhook_body_standard(const struct webhook_event *e);
/* webhook_body_legacy - MISSION's notification body (caller frees) */
char *webhook_body_legacy(const struct webhook_event *e);

#endif
