/* store_notify.h - MISSION's new-email notification body, the legacy
 * webhook format of postroom-webhookd (deliver.notify_url). */
#ifndef POSTROOM_STORE_NOTIFY_H
#define POSTROOM_STORE_NOTIFY_H

#include <stddef.h>

struct store_notify_email {
	const char *id, *from, *from_display, *subject, *received_at;
	int has_attachments;
};

/* store_notify_body - the JSON body (caller frees):
 * {"userIds":[...],"email":{"id","from","fromDisplay","subject",
 *  "receivedAt","hasAttachments"}} */
char *store_notify_body(const char *const *user_ids, size_t n, const struct store_notify_email *e);

#endif
