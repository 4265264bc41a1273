/* store_mail.h - store one parsed message in PostgreSQL, exactly once.
 *
 * CONTRACT: one transaction per call: the email, its recipients, its
 * attachments (blobs content-addressed), its raw bytes, its thread and
 * NOTIFY postroom_new_email — all or nothing. A message whose identity
 * (store_spool.id) is already stored is not stored again: the call only
 * marks this delivery's envelope recipients delivered. No logging here:
 * the result says what happened and the caller logs it. */
#ifndef POSTROOM_STORE_MAIL_H
#define POSTROOM_STORE_MAIL_H

#include <stddef.h>

#include "db.h"
#include "mime_parse.h"
#include "store_spool.h"

struct blob_store;

struct store_request {
	const struct store_envelope *env;
	int sent;                      /* --sent: a copy of a submission, nobody's inbox */
	const char *sasl_user;         /* authenticated user, NULL/"" = none */
	int recipient_validation;      /* an unknown single recipient is refused */
	const char *subaddress_delims; /* "+" ... ; NULL/"" = none */
	const char *hmac_secret;       /* for postroom's signed headers; NULL = ignore them */
	long header_max_age;           /* seconds a signed header stays valid */
	const char *queue_id;          /* this delivery's queue id: binds policyd's verdict */
	const char *authserv_id;       /* trusted Authentication-Results id; NULL = none */
	/* DMARC policies whose dmarc=fail is spam, space-separated; NULL =
	 * "reject quarantine" (deliver.dmarc_spam_policies) */
	const char *dmarc_spam_policies;
	/* rules.postmaster_address: whose mailbox postmaster@ a hosted domain
	 * without its own user or alias goes to; NULL = none (stored unlinked) */
	const char *postmaster_address;
	/* issue 21: a bounce, auto-reply or complaint is recorded
	 * (lib/mail_class.c, postroom_report_store); a hard bounce or a
	 * complaint suppresses the recipient for the user ("user", NULL) or
	 * its domain ("domain"), as do soft_bounce_count soft bounces
	 * (0: never) within soft_bounce_window seconds */
	const char *suppression_scope;
	int soft_bounce_count;
	int soft_bounce_window;
	/* issue 20: blobs.backend = s3: every attachment of at least
	 * blob_min_size bytes goes to this object store, uploaded before the
	 * transaction begins (lib/blob_store.h; not owned); NULL: every blob
	 * in PostgreSQL */
	struct blob_store *blobs;
	long long blob_min_size;
	/* uploaded by the caller before this call (store_uploads_lookup and
	 * store_uploads_put): per attachment, its blobs row goes in with
	 * location 's3' when nonzero; store_message then neither uploads nor
	 * looks for the objects after COMMIT (store_uploads_recheck, the
	 * caller's). NULL: store_message does both. */
	const unsigned char *blob_s3;
};

enum store_status {
	STORE_OK,
	STORE_TEMPFAIL,    /* any database or object store error: defer, nothing stored */
	STORE_PERMFAIL,    /* can never be stored: beyond bytea's 1 GB */
	STORE_UNKNOWN_RCPT /* one-recipient call for an unknown address */
};

struct store_result {
	char email_id[40];
	char received_at[32];   /* ISO 8601 UTC, "2026-01-01T00:00:00Z" */
	int duplicate;          /* the message was already stored */
	size_t newly_delivered; /* recipient rows this call marked delivered */
	char **notify_users;    /* linked user ids newly delivered to */
	size_t nnotify;
	char **unknown; /* envelope recipients no user owns */
	size_t nunknown;
	int sent_by_linked;       /* sent_by set to a known user */
	const char *sent_by_note; /* static: why no sender was linked, or NULL */
	int spam;                 /* from this hop's verified verdict / trusted A-R */
	const char *verdict_note; /* static: why a verdict header was ignored, or NULL */
	int attempts;             /* transactions tried (deadlock retries) */
	long us_sql;              /* microseconds in statements before COMMIT (last attempt) */
	long us_commit;           /* microseconds in COMMIT (the WAL flush) */
	/* STORE_TEMPFAIL because the object store failed: its BLOB_* status
	 * (BLOB_CONFIG: an operator's mistake, 4.3.5; else 4.3.0); 0 otherwise */
	int blob_status;
	long us_upload; /* microseconds uploading to the object store */
	/* after COMMIT, each object this call uploaded is looked for again
	 * (blobs gc may have deleted it between the upload and the commit):
	 * how many were missing and uploaded again, and the error when one
	 * could not be (the message is stored; its object is missing) */
	int blobs_reuploaded;
	char *blob_recheck_error;
};

/* store_message - see above. STORE_OK fills *res; other statuses set
 * *error_r (caller frees). Free *res with store_result_free. */
enum store_status store_message(struct db *db, const struct store_spool *sp,
				const struct mime_msg *m, const struct store_request *rq,
				struct store_result *res, char **error_r);
void store_result_free(struct store_result *res);

/* The uploads of store_message, done by its caller first, so that the
 * thread running the transaction never waits for the object store
 * (postroom-lmtpd: in the session's thread, not the group's). Same
 * rules: store_uploads_needed - anything to upload at all?
 * store_uploads_lookup - where each large attachment is already (one
 * SELECT each; *blob_s3_r, caller frees; 0, or -1 with *error_r);
 * store_uploads_put - without a database, each one found nowhere PUT
 * (0, or -1 with *error_r and res->blob_status); then store_message
 * with rq->blob_s3; after STORE_OK, store_uploads_recheck (failures go
 * to res, as store_message's own). */
int store_uploads_needed(const struct mime_msg *m, const struct store_request *rq);
int store_uploads_lookup(struct db *db, const struct mime_msg *m, const struct store_request *rq,
			 struct store_result *res, unsigned char **blob_s3_r, char **error_r);
int store_uploads_put(const struct mime_msg *m, const struct store_request *rq,
		      unsigned char *blob_s3, struct store_result *res, char **error_r);
void store_uploads_recheck(const struct mime_msg *m, const struct store_request *rq,
			   unsigned char *blob_s3, struct store_result *res);

/* store_session_init - ready a long-lived connection for store_message:
 * generic plans for the store's prepared statements (see store_mail.c);
 * 0, or -1 with *error_r (caller frees). A connection used for one
 * message (postroom-deliver) needs nothing. */
int store_session_init(struct db *db, char **error_r);

/* store_rcpt_known - does a user own address (exactly, or without its
 * sub-address: rules.subaddress_delimiters), or is it postmaster@ a
 * hosted domain (RFC 5321 4.5.1: always accepted)? 1 yes, 0 no, -1 with
 * *error_r (caller frees) on a database error. For RCPT-time checks. */
int store_rcpt_known(struct db *db, const char *address, const char *subaddress_delims,
		     char **error_r);

/* store_pg_array - a PostgreSQL array literal of n strings (NULL
 * elements allowed); the caller frees it */
char *store_pg_array(const char *const *v, size_t n);

/* store_lock_key - a 64-bit advisory lock key for a digest */
long long store_lock_key(const unsigned char *digest);

#endif
