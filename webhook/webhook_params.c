/*
 * NAME
 *	webhook_params - the webhook section of postroom.conf
 * DESCRIPTION
 *	Every webhook.* parameter, declared once. postroom-webhookd registers
 *	this table (and deliver's, for deliver.notify_url) before it loads the
 *	file; postroomctl registers it to list and check every parameter.
 *	doc/postroom.conf.5 documents each row (tests/unit/test-config-doc.sh).
 * NEVER
 *	declares a parameter of another section.
 */
#include "conf.h"
#include "webhook_params.h"

static const struct cfg_param webhook_params[] = {
	{ "webhook.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "postroom-webhookd's libpq connection string: a login role in group PREFIXwebhook; unset = database.conninfo" },
	{ "webhook.url", CFG_STRING, NULL, 0, 0, 0,
	  "the signed (Standard Webhooks) endpoint events are POSTed to; unset: none" },
	{ "webhook.secrets", CFG_STRING, NULL, 0, 0, CFG_SECRET,
	  "one or two signing secrets, whsec_ + base64, separated by a space: each signs every request (rotation)" },
	{ "webhook.kinds", CFG_STRING, "new,sent,link,thread_merge", 0, 0, 0,
	  "the event kinds sent to webhook.url, separated by commas" },
	{ "webhook.connect_timeout", CFG_INT, "5", 1, 60, 0, "seconds to connect to an endpoint" },
	{ "webhook.timeout", CFG_INT, "10", 1, 300, 0,
	  "seconds one request may take in all; a slower endpoint counts as a failed attempt" },
	{ "webhook.retry_period", CFG_INT, "259200", 60, 31536000, 0,
	  "seconds an event is retried before it is parked (default 3 days)" },
	{ "webhook.max_attempts", CFG_INT, "100", 1, 100000, 0,
	  "failed attempts after which an event is parked (a 410 answer parks at once)" },
	{ "webhook.backoff_base", CFG_INT, "5", 1, 3600, 0,
	  "seconds before the first retry; doubled each attempt, jittered to 50-100%" },
	{ "webhook.backoff_max", CFG_INT, "3600", 1, 86400, 0,
	  "longest wait between two attempts, in seconds" },
	{ "webhook.poll_interval", CFG_INT, "1000", 10, 60000, 0,
	  "milliseconds between looks for due retries (new events wake the worker at once)" },
	{ "webhook.batch", CFG_INT, "20", 1, 1000, 0, "deliveries one worker claims at a time" },
	{ "webhook.concurrency", CFG_INT, "8", 1, 100, 0,
	  "requests one worker has in flight at once, each on a connection kept open" },
	{ "webhook.metrics_listen", CFG_STRING, NULL, 0, 0, 0,
	  "HOST:PORT serving /metrics and /healthz over HTTP; unset = none" },
};

const struct cfg_table webhook_conf_table = { "postroom-webhookd", webhook_params,
					      sizeof webhook_params / sizeof webhook_params[0] };
