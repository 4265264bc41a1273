/* store_notify.h - tell the application about a delivered email (HTTP).
 *
 * CONTRACT: called after commit, never fails the delivery: the return
 * value only decides what the caller logs. */
#ifndef POSTROOM_STORE_NOTIFY_H
#define POSTROOM_STORE_NOTIFY_H

#include <stddef.h>

struct store_notify_conf {
	const char *url;      /* full URL of the endpoint; NULL/"" = off */
	const char *api_key;  /* sent as "Authorization: ApiKey <key>"; NULL = none */
	long connect_timeout; /* seconds */
	long timeout;         /* seconds, whole request */
};

struct store_notify_email {
	const char *id, *from, *from_display, *subject, *received_at;
	int has_attachments;
};

/* store_notify_body - the JSON body (caller frees):
 * {"userIds":[...],"email":{"id","from","fromDisplay","subject",
 *  "receivedAt","hasAttachments"}} */
char *store_notify_body(const char *const *user_ids, size_t n, const struct store_notify_email *e);

/* store_notify_post - POST body to the endpoint; one retry after a
 * transport error or a 5xx answer. 0 = a 2xx answer, -1 with *error_r
 * (caller frees) otherwise. */
int store_notify_post(const struct store_notify_conf *cf, const char *body, char **error_r);

#endif
