/*
 * NAME
 *	webhook_sign - Standard Webhooks signatures and the event bodies
 * DESCRIPTION
 *	A secret is "whsec_" + base64 of the key bytes. The signature of a
 *	request is "v1," + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")),
 *	one per secret, separated by spaces (two secrets during a rotation).
 *	HMAC from lib/crypto (OpenSSL), base64 from OpenSSL (EVP_EncodeBlock,
 *	EVP_DecodeBlock), JSON from jansson. The standard body is documented
 *	in postroom-webhookd(8); the legacy body is MISSION's notification
 *	(lib/store_notify: {"userIds":[...],"email":{...}}).
 * NEVER
 *	logs a secret; writes JSON or base64 by hand.
 */
#include "webhook_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "store_notify.h"
#include "xalloc.h"

int webhook_secret_parse(const char *text, struct webhook_secret *s, char **error_r)
{
	const char *b64;
	size_t n, pad = 0;
	int len;

	if (strncmp(text, "whsec_", 6) != 0) {
		*error_r = xstrdup("a webhook secret starts with whsec_");
		return -1;
	}
	b64 = text + 6;
	n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n > 4096) {
		*error_r = xstrdup("a webhook secret is whsec_ and padded base64");
		return -1;
	}
	if (b64[n - 1] == '=')
		pad = b64[n - 2] == '=' ? 2 : 1;
	s->key = xmalloc(n / 4 * 3 + 1);
	len = EVP_DecodeBlock(s->key, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad + 1) {
		free(s->key);
		s->key = NULL;
		*error_r = xstrdup("a webhook secret is whsec_ and padded base64");
		return -1;
	}
	s->len = (size_t)len - pad;
	return 0;
}

void webhook_secret_free(struct webhook_secret *s)
{
	if (s->key) {
		crypto_wipe(s->key, s->len);
		free(s->key);
	}
	s->key = NULL;
	s->len = 0;
}

char *webhook_signature(const struct webhook_secret *s, size_t n, const char *id, long long ts,
			const char *body)
{
	char *msg = xasprintf("%s.%lld.%s", id, ts, body);
	char *out = xmalloc(n * 50 + 1);
	unsigned char mac[SHA256_LEN];
	size_t i, off = 0;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		crypto_hmac_sha256(s[i].key, s[i].len, msg, strlen(msg), mac);
		if (i > 0)
			out[off++] = ' ';
		memcpy(out + off, "v1,", 3);
		off += 3;
		off += (size_t)EVP_EncodeBlock((unsigned char *)out + off, mac, SHA256_LEN);
		out[off] = '\0';
	}
	free(msg);
	return out;
}

/* sign_str - a JSON string or null */
static json_t *sign_str(const char *s) { return s ? json_string(s) : json_null(); }

/* sign_json - parsed JSON text, or null */
static json_t *sign_json(const char *s)
{
	json_t *j = s ? json_loads(s, 0, NULL) : NULL;

	return j ? j : json_null();
}

/* sign_dump - compact text of root (consumed; caller frees the result) */
static char *sign_dump(json_t *root)
{
	char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER), *copy;

	json_decref(root);
	copy = xstrdup(out);
	free(out);
	return copy;
}

char *webhook_body_standard(const struct webhook_event *e)
{
	json_t *addr = sign_json(e->addresses_json), *root = json_object();
	json_t *to = json_is_array(addr) && json_array_size(addr) > 0
			     ? json_incref(json_array_get(addr, 0))
			     : json_null();
	char *type = xasprintf("email.%s", e->kind ? e->kind : "unknown");

	json_object_set_new(root, "type", json_string(type));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "id", sign_str(e->event_id));
	json_object_set_new(root, "kind", sign_str(e->kind));
	json_object_set_new(root, "position", json_integer(e->position ? atoll(e->position) : 0));
	json_object_set_new(root, "time", sign_str(e->created_at));
	json_object_set_new(root, "user", sign_str(e->user));
	json_object_set_new(root, "user_id", sign_str(e->user_id));
	json_object_set_new(root, "delivered_to", to);
	json_object_set_new(root, "addresses", addr);
	json_object_set_new(root, "email_id", sign_str(e->email_id));
	json_object_set_new(root, "thread_id", sign_str(e->thread_id));
	json_object_set_new(root, "message_id", sign_str(e->message_id));
	json_object_set_new(root, "subject", sign_str(e->subject));
	json_object_set_new(root, "from", sign_str(e->from));
	json_object_set_new(root, "spam",
			    e->spam ? json_boolean(strcmp(e->spam, "t") == 0) : json_null());
	json_object_set_new(root, "received_at", sign_str(e->received_at));
	json_object_set_new(root, "data", sign_json(e->data_json));
	free(type);
	return sign_dump(root);
}

char *webhook_body_legacy(const struct webhook_event *e)
{
	struct store_notify_email m = { 0 };
	const char *users[1];
	char at[40], *dot;

	/* MISSION's receivedAt has whole seconds, as the inline POST had */
	snprintf(at, sizeof at, "%s", e->received_at ? e->received_at : "");
	if ((dot = strchr(at, '.')) != NULL)
		snprintf(dot, sizeof at - (size_t)(dot - at), "Z");
	users[0] = e->user_id ? e->user_id : "";
	m.id = e->email_id ? e->email_id : "";
	m.from = e->from ? e->from : "";
	m.from_display = e->from_display;
	m.subject = e->subject ? e->subject : "";
	m.received_at = at;
	m.has_attachments = e->has_attachments && strcmp(e->has_attachments, "t") == 0;
	return store_notify_body(users, 1, &m);
}
