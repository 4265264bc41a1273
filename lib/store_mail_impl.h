/* store_mail_impl.h - the parts of store_mail.c that store_group.c
 * shares: one message's transaction context, the batch of pipelined
 * statements, and the steps of a transaction. Not for programs: they
 * use store_mail.h and store_group.h. */
#ifndef POSTROOM_STORE_MAIL_IMPL_H
#define POSTROOM_STORE_MAIL_IMPL_H

#include <time.h>

#include "store_mail.h"

/* A raw message or attachment up to this size goes as a statement
 * parameter, so that a new email is written in one round trip with its
 * commit; a larger one is streamed with COPY. */
#define STORE_INLINE_MAX (256 * 1024)
#define STORE_ATTEMPTS 3

#define STORE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* One envelope recipient, resolved before the transaction. */
struct store_rcpt {
	const char *address;
	char *user_id;  /* NULL: no user owns it */
	int postmaster; /* postmaster@ a hosted domain: never refused as unknown */
};

/* Everything one transaction needs. */
struct store_ctx {
	struct db *db;
	const struct store_spool *sp;
	const struct mime_msg *m;
	const struct store_request *rq;
	struct store_result *res;
	struct store_rcpt *rcpts; /* distinct envelope recipients (none with --sent) */
	size_t nrcpts;
	char *sent_by; /* user id or NULL */
	char *spam_reason;
	char *auth_results; /* JSON of the trusted spf/dkim/dmarc results, or NULL */
	enum db_err_class cls;
	char *error;
	int too_big;      /* beyond what PostgreSQL can store: permanent */
	int unknown_rcpt; /* the one recipient is unknown (validation on) */
	int atts_locked;  /* the caller took the attachment locks (store_group) */
	/* per attachment: its blobs row goes in with location 's3' (uploaded,
	 * or in the object store already: store_blobs_upload); NULL: none */
	unsigned char *blob_s3;
};

/* What a statement of a batch returns that the transaction needs. */
enum store_stmt_kind { STMT_OTHER, STMT_EMAIL, STMT_RCPTS };

/* Statements sent together in one round trip (libpq pipeline mode);
 * their parameters live in owned[] until the batch has run. */
struct store_batch {
	struct db_stmt *st;
	enum store_stmt_kind *kind;
	struct store_ctx **ctx; /* whose result a statement's rows go to */
	struct store_ctx *cur;  /* the owner of statements added now */
	size_t n, cap;
	void **owned;
	size_t nowned;
};

/* Is the address (an SQL expression) postmaster@ a hosted domain? RFC
 * 5321 4.5.1: such mail is always accepted, owned or not. */
#define STORE_POSTMASTER_SQL(a)                                                          \
	"(lower(regexp_replace(" a ", '@[^@]*$', '')) = 'postmaster' AND EXISTS (SELECT" \
	" 1 FROM domains d WHERE d.name = lower(regexp_replace(" a ", '^.*@', ''))))"

/* The owners of the recipients $1 (without sub-address: $2), in order:
 * the user owning the exact address, else the one owning it without its
 * sub-address, else, for postmaster@ a hosted domain, the owner of
 * rules.postmaster_address ($3); and whether it is such a postmaster
 * (never an unknown recipient). The postmaster rule of the store lives
 * here and in store_postmaster_missing (lib/store_postmaster.c). */
#define STORE_OWNERS_SQL                                                                                      \
	"SELECT COALESCE((SELECT ua.user_id FROM user_addresses ua WHERE"                                     \
	" lower(ua.address) IN (lower(r.a), lower(r.s)) ORDER BY lower(ua.address) = lower(r.a)"              \
	" DESC LIMIT 1), CASE WHEN r.pm THEN (SELECT ua.user_id FROM user_addresses ua WHERE"                 \
	" lower(ua.address) = lower($3::text)) END), r.pm FROM (SELECT u.a, u.s, u.n, " STORE_POSTMASTER_SQL( \
		"u.a") " AS pm FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"                           \
		       " AS u(a, s, n)) r ORDER BY r.n"

#define STORE_FIND_SQL \
	"SELECT id, " STORE_TS("received_at") " FROM emails WHERE content_sha256 = $1"
#define STORE_LOCK_KEYS_SQL                                            \
	"SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT k FROM" \
	" unnest($1::bigint[]) AS u(k) ORDER BY k) s"
/* attachment digests are locked in their own key space, striped: a
 * message of 20,000 distinct attachments takes at most STORE_ATT_STRIPES
 * advisory locks, not 20,000 (PostgreSQL's shared lock table holds
 * max_locks_per_transaction x max_connections, 6,400 by default: past
 * it, "out of shared memory", a deferral for ever) */
#define STORE_ATT_KEY_XOR 0x5a5a5a5a5a5a5a5aLL
#define STORE_ATT_STRIPES 512

/* store_att_key - the advisory lock key of an attachment's digest (its
 * stripe), as text (caller frees) */
char *store_att_key(const struct mime_attachment *a);

/* store_ctx_init - a context for one message; store_ctx_free after */
void store_ctx_init(struct store_ctx *c, struct db *db, const struct store_spool *sp,
		    const struct mime_msg *m, const struct store_request *rq,
		    struct store_result *res);
void store_ctx_free(struct store_ctx *c);
/* store_ctx_inline - is every part small enough for a batch (no COPY)? */
int store_ctx_inline(const struct store_ctx *c);
/* store_ctx_uploads - would store_blobs_upload upload anything (an
 * object store, an attachment of at least its minimum size)? */
int store_ctx_uploads(const struct store_ctx *c);
/* store_blobs_upload - before the transaction: the attachments bound for
 * the object store uploaded (c->blob_s3); 0, or -1 recorded in c */
int store_blobs_upload(struct store_ctx *c);
/* store_fail - record a failure (the first one wins); returns -1 */
int store_fail(struct store_ctx *c, enum db_err_class cls, char *error);
void store_owners_params(struct store_ctx *c, char *arr[2]);
void store_apply_owners(struct store_ctx *c, const PGresult *res);
void store_resolve_rcpts(struct store_ctx *c);
int store_resolve_sender(struct store_ctx *c);
/* store_redeliver - the email exists: mark this call's recipients */
int store_redeliver(struct store_ctx *c);
void *store_keep(struct store_batch *b, void *p);
void store_add(struct store_batch *b, enum store_stmt_kind kind, const char *sql, int n,
	       const char *const *params, const int *lengths, const int *formats);
/* store_new - a message not stored before: its statements join b */
int store_new(struct store_ctx *c, struct store_batch *b);
/* store_batch_run - send b in one round trip (failure recorded in c) */
int store_batch_run(struct store_ctx *c, struct store_batch *b);
void store_batch_free(struct store_batch *b);
long store_us(struct timespec *t);
void store_result_reset_tx(struct store_result *r);
/* store_retryable - the last error was a deadlock or serialization failure */
int store_retryable(struct db *db);

#endif
