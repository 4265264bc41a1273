/*
 * NAME
 *	store_notify - MISSION's new-email notification body (jansson)
 * DESCRIPTION
 *	{"userIds":[...],"email":{...}}: the legacy body format that
 *	postroom-webhookd sends to deliver.notify_url (webhook/webhook_sign.c)
 *	from the events outbox. The storing programs no longer POST it
 *	themselves (issue 19: no once-only request, no double notification).
 * NEVER
 *	makes a request; changes the documented body.
 */
#include "store_notify.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "xalloc.h"

char *store_notify_body(const char *const *user_ids, size_t n, const struct store_notify_email *e)
{
	json_t *ids = json_array(), *email, *root;
	char *out, *copy;
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(ids, json_string(user_ids[i]));
	email = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:b}", "id", e->id, "from", e->from,
			  "fromDisplay", e->from_display, "subject", e->subject, "receivedAt",
			  e->received_at, "hasAttachments", e->has_attachments);
	root = json_pack("{s:o, s:o}", "userIds", ids, "email", email);
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	copy = xstrdup(out);
	free(out);
	return copy;
}
