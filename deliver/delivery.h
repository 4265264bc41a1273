/* delivery.h - the one delivery core of the two storing programs,
 * postroom-deliver-store (deliver/dstore_main.c) and postroom-lmtpd
 * (deliver/lmtpd_data.c): from a spooled message to a stored one.
 *
 * The steps, in order: delivery_conf_read (the parameters both read),
 * delivery_prepare (finish the spool, message size limit, parse,
 * attachment limit), delivery_request (what store_message needs), then
 * the program stores (alone, or lmtpd's group commit) and reports:
 * delivery_log (the one line per delivery), delivery_log_notes (the
 * warnings of a stored message). What differs between the programs
 * (reading the message, exit statuses or LMTP replies) stays in the
 * program. Neither tells the application over HTTP: the events outbox,
 * written in the storing transaction, does (postroom-webhookd sends it).
 *
 * CONTRACT: no exits, no replies; the caller decides from the returned
 * step. Strings in struct delivery_conf point into the configuration it
 * was read from. Not thread-safe per struct delivery (one per delivery). */
#ifndef POSTROOM_DELIVER_DELIVERY_H
#define POSTROOM_DELIVER_DELIVERY_H

#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "mime_parse.h"
#include "store_mail.h"
#include "store_spool.h"

/* What both storing programs read from the configuration. */
struct delivery_conf {
	long long size_max, attachment_max; /* limits.* */
	long long parts_max;                /* limits.mime_parts_max */
	int recipient_validation;
	const char *subaddress_delims;
	long header_max_age;
	const char *hmac_secret;         /* NULL: none */
	const char *authserv_id;         /* NULL: none */
	const char *dmarc_spam_policies; /* NULL: the default */
	const char *postmaster_domain;   /* rules.postmaster_domain, NULL: none */
	const char *postmaster_address;  /* rules.postmaster_address, NULL: none */
	int suppression_per_domain;      /* rules.suppression_per_domain */
	int soft_bounce_count;           /* rules.suppression_soft_count */
	int soft_bounce_window;          /* rules.suppression_soft_window */
	/* blobs.backend = s3: the object store (delivery_blobs_open; owned,
	 * delivery_blobs_close) and blobs.min_size; NULL: PostgreSQL */
	struct blob_store *blobs;
	long long blob_min_size;
};

/* delivery_conf_read - limits.message_size_max, limits.attachment_size_max,
 * rules.recipient_validation, rules.subaddress_delimiters,
 * rules.internal_header_max_age, rules.postmaster_domain,
 * rules.postmaster_address, rules.suppression_*, security.hmac_secret,
 * deliver.trusted_authserv_id into *dc (empty strings
 * become NULL) */
void delivery_conf_read(const struct conf *cfg, struct delivery_conf *dc);
/* delivery_blobs_open - with blobs.backend = s3, open the object store
 * into dc->blobs (its credentials file is read now: call it while the
 * program may still read what the postroom group may); refused when
 * blobs.timeout is not below deliver.timeout (pipe(8) would kill deliver
 * mid-upload). 0 (dc->blobs NULL for postgresql), or a BLOB_* status with
 * *error_r (caller frees). */
int delivery_blobs_open(const struct conf *cfg, struct delivery_conf *dc, char **error_r);
void delivery_blobs_close(struct delivery_conf *dc);
/* delivery_conf_str - a declared string parameter that is set and not
 * empty, else NULL (points into cfg) */
const char *delivery_conf_str(const struct conf *cfg, const char *name);

/* One delivery from the spooled message on. */
struct delivery {
	const struct delivery_conf *dc;
	const char *log_prefix; /* before every log line: "" or "lmtp7: " */
	struct store_spool sp;  /* the program fills it (its own reader) */
	struct mime_msg *m;     /* parsed by delivery_prepare */
	char *error;            /* why the last step failed (freed here) */
	struct timespec start;  /* for ms= */
	struct timespec lap;    /* for delivery_lap */
	long us_hash, us_parse; /* what delivery_prepare took */
};

/* delivery_init - start a delivery now; the spool is empty (fd -1) */
void delivery_init(struct delivery *d, const struct delivery_conf *dc, const char *log_prefix);
/* delivery_free - release the spool, the message and the error */
void delivery_free(struct delivery *d);
/* delivery_lap - microseconds since the last lap (or the start) */
long delivery_lap(struct delivery *d);
/* delivery_elapsed - microseconds since the start */
long delivery_elapsed(const struct delivery *d);

enum delivery_step {
	DELIVERY_READY,      /* parsed, within the limits: store it */
	DELIVERY_TOO_BIG,    /* message or attachment over its limit: refuse (5.3.4) */
	DELIVERY_UNREADABLE, /* the spool failed: defer */
	DELIVERY_UNPARSABLE  /* the parser failed (a system error): defer */
};

/* delivery_too_big - d->error = "<what> of N bytes exceeds the limit of
 * M bytes"; returns DELIVERY_TOO_BIG */
enum delivery_step delivery_too_big(struct delivery *d, const char *what, long long size,
				    long long max);
/* delivery_prepare - from d->sp as the reader left it (too_big: the
 * reader stopped at limits.message_size_max) to a parsed message within
 * the limits; env gives the per-delivery prefix (store_spool_finish).
 * Anything but DELIVERY_READY sets d->error. A parse problem is logged. */
enum delivery_step delivery_prepare(struct delivery *d, int too_big,
				    const struct store_envelope *env);

/* delivery_request - *rq for store_message from the configuration and
 * this delivery's envelope (env and the strings must outlive rq) */
void delivery_request(const struct delivery_conf *dc, const struct store_envelope *env, int sent,
		      const char *sasl_user, const char *queue_id, struct store_request *rq);

/* What the program adds to the one log line. */
struct delivery_report {
	const char *head;       /* after the log prefix, before message-id= ("queue=X " or "") */
	const char *sender;     /* NULL: "" */
	const char *client;     /* NULL: "-" */
	const char *rcpts;      /* "a,b,c" */
	const char *rcpts_note; /* right after the list (" (sent copy)"), or NULL */
	const char *email_id;   /* NULL or "": "-" */
	const char *tail;       /* after ms= (timings), or NULL */
};

/* delivery_log - the one line per delivery: message-id, email, size,
 * from, client, rcpts, attachments, ms, result and the detail */
void delivery_log(const struct delivery *d, const struct delivery_report *r, const char *result,
		  const char *detail);
/* delivery_result - the result= word of a stored message */
const char *delivery_result(const struct store_result *res);
/* delivery_log_notes - the warnings of a stored message: recipients
 * without a user, an authenticated sender no user owns, ignored signed
 * headers */
void delivery_log_notes(const struct delivery *d, const char *sasl_user,
			const struct store_result *res);

#endif
