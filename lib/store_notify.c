/*
 * NAME
 *	store_notify - the HTTP notification of a new email (libcurl, jansson)
 * DESCRIPTION
 *	POST {"userIds":[...],"email":{...}} with "Authorization: ApiKey
 *	<key>" to the configured URL (deliver.notify_url, deliver.notify_key,
 *	deliver.notify_connect_timeout, deliver.notify_timeout), with bounded
 *	connect and total timeouts and at most one retry (after a refused
 *	connection or a 5xx answer, never after a timeout), so an application
 *	that hangs delays a delivery by one timeout, and nothing by more
 *	than twice the timeout.
 *	libcurl is loaded with dlopen("libcurl.so.4") the first time a
 *	notification is sent (once per process, thread-safe), not linked:
 *	its ~20 libraries (TLS, HTTP/2, SSH, LDAP, ...) would otherwise be
 *	mapped at every start of postroom-deliver-store, notification URL
 *	or not. The headers are used for the types only.
 * NEVER
 *	fails a delivery; logs or returns the API key; follows redirects.
 */
#include "store_notify.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "curl_dl.h"
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

/* notify_discard - ignore the response body */
static size_t notify_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* notify_once - one POST: 0 on 2xx, 1 retryable, -1 final failure */
static int notify_once(const struct store_notify_conf *cf, const char *body, char **error_r)
{
	CURL *h = curl_dl()->easy_init();
	struct curl_slist *hdrs = NULL;
	char *auth = NULL;
	long code = 0;
	CURLcode rc;

	if (h == NULL) {
		*error_r = xstrdup("curl_easy_init failed");
		return -1;
	}
	hdrs = curl_dl()->slist_append(hdrs, "Content-Type: application/json");
	if (cf->api_key && *cf->api_key) {
		auth = xasprintf("Authorization: ApiKey %s", cf->api_key);
		hdrs = curl_dl()->slist_append(hdrs, auth);
	}
	curl_dl()->easy_setopt(h, CURLOPT_URL, cf->url);
	curl_dl()->easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_dl()->easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_dl()->easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_dl()->easy_setopt(h, CURLOPT_CONNECTTIMEOUT, cf->connect_timeout);
	curl_dl()->easy_setopt(h, CURLOPT_TIMEOUT, cf->timeout);
	curl_dl()->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_dl()->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_dl()->easy_setopt(h, CURLOPT_WRITEFUNCTION, notify_discard);
	curl_dl()->easy_setopt(h, CURLOPT_USERAGENT, "postroom-deliver");
	rc = curl_dl()->easy_perform(h);
	if (rc == CURLE_OK)
		curl_dl()->easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_dl()->slist_free_all(hdrs);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	curl_dl()->easy_cleanup(h);
	if (rc != CURLE_OK) {
		*error_r = xasprintf("%s", curl_dl()->easy_strerror(rc));
		/* a timeout is final: an endpoint that hangs once would hang
		 * again, and the delivery must not wait for it twice */
		return rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
				       rc == CURLE_OPERATION_TIMEDOUT
			       ? -1
			       : 1;
	}
	if (code >= 200 && code < 300)
		return 0;
	*error_r = xasprintf("HTTP status %ld", code);
	return code >= 500 ? 1 : -1;
}

int store_notify_post(const struct store_notify_conf *cf, const char *body, char **error_r)
{
	char *err = NULL;
	int rc;

	if (curl_dl()->error) {
		*error_r = xstrdup(curl_dl()->error);
		return -1;
	}
	rc = notify_once(cf, body, &err);
	if (rc == 1) {
		free(err);
		err = NULL;
		rc = notify_once(cf, body, &err);
	}
	if (rc != 0) {
		*error_r = err;
		return -1;
	}
	return 0;
}
