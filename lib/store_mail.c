/*
 * NAME
 *	store_mail - one transaction per message: rows, blobs, raw, thread
 * DESCRIPTION
 *	The identity lock (an advisory transaction lock on the content hash)
 *	serialises deliveries of one message, so that an MTA retry or a
 *	per-recipient call finds the stored email and only marks its
 *	envelope recipient delivered. A new email is inserted with all its
 *	recipient rows in one statement; attachment contents and the raw
 *	message are streamed with COPY ... (FORMAT binary) from their memory
 *	files in 64 KiB pieces, so a 45 MB message never sits in libpq's
 *	buffer. Blobs are content-addressed: an advisory lock per digest
 *	(taken in sorted order) makes "insert unless present" safe between
 *	concurrent deliveries. Threading runs in the database
 *	(postroom_thread_email, sql/002_deliver.sql) under its own locks.
 *	Deadlocks and serialization failures are retried (3 attempts).
 *	With an object store (store_request.blobs: blobs.backend = s3),
 *	every attachment of at least blobs.min_size bytes is uploaded
 *	before the transaction begins and its blobs row has location 's3'
 *	and no content (sql/027); an object store failure defers with its
 *	status in store_result.blob_status. A caller may do those uploads
 *	itself first (store_uploads_*: postroom-lmtpd, in the session's
 *	thread, so the group's transactions never wait for the object store).
 *	Postmaster (RFC 5321 4.5.1): postmaster@ a hosted domain is stored
 *	for the user or alias postmaster@DOMAIN, else for the owner of
 *	rules.postmaster_address, else unlinked like any address nobody
 *	owns yet (linked when postmaster@DOMAIN is created); it is never
 *	refused as an unknown recipient (STORE_OWNERS_SQL).
 *	A new inbound email that lib/mail_class finds to be a bounce, delay
 *	notice, auto-reply or complaint is recorded in the same transaction
 *	(postroom_report_store, sql/019_bounces.sql): linked to the sent
 *	email it names (or that its VERP envelope recipient names, lib/verp.c),
 *	its recipients suppressed as the rules say.
 *	Parameters come from the caller (deliver/delivery.c reads
 *	rules.recipient_validation, rules.subaddress_delimiters,
 *	rules.internal_header_max_age, rules.postmaster_address,
 *	rules.suppression_scope, rules.suppression_soft_count,
 *	rules.suppression_soft_window and security.hmac_secret).
 * NEVER
 *	leaves half a message behind; logs; trusts a signed header that does
 *	not verify; keeps a transaction open across an upload.
 */
#include "store_mail.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "blob_store.h"
#include "buf.h"
#include "crypto.h"
#include "mail_class.h"
#include "verp.h"
#include "raw_compact.h"
#include "sighdr.h"
#include "xalloc.h"

#include "store_mail_impl.h"

#define STORE_COPY_CHUNK 65536
#define STORE_BYTEA_MAX 0x3fffffffLL /* PostgreSQL's 1 GB field limit */

long long store_lock_key(const unsigned char *d)
{
	uint64_t k = 0;
	int i;

	for (i = 0; i < 8; i++)
		k = (k << 8) | d[i];
	return (long long)k;
}

char *store_pg_array(const char *const *v, size_t n)
{
	struct buf b = BUF_INIT;
	const char *p;
	size_t i;

	buf_append_char(&b, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_append_char(&b, ',');
		if (v[i] == NULL) {
			buf_append_str(&b, "NULL");
			continue;
		}
		buf_append_char(&b, '"');
		for (p = v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_append_char(&b, '\\');
			buf_append_char(&b, *p);
		}
		buf_append_char(&b, '"');
	}
	buf_append_char(&b, '}');
	return buf_steal(&b);
}

/* store_fail - record a failure (first one wins) */
int store_fail(struct store_ctx *c, enum db_err_class cls, char *error)
{
	if (c->error == NULL) {
		c->cls = cls;
		c->error = error;
	} else {
		free(error);
	}
	return -1;
}

/* store_q - run a statement; NULL (and the failure recorded) on error */
static PGresult *store_q(struct store_ctx *c, const char *sql, int n, const char *const *params)
{
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res = db_exec_prepared(c->db, sql, n, params, NULL, NULL, &cls, &err);

	if (res == NULL)
		store_fail(c, cls, err);
	return res;
}

/* store_cmd - a statement whose result is not needed: 0 or -1 */
static int store_cmd(struct store_ctx *c, const char *sql, int n, const char *const *params)
{
	PGresult *res = store_q(c, sql, n, params);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* store_user_of - id of the user owning address (exact, then without a
 * sub-address); 0 found, 1 none, -1 database error */
static int store_user_of(struct store_ctx *c, const char *address, int strip, char **user_id_r)
{
	struct mailbox mb;
	const char *perr, *params[2];
	char *stripped = NULL;
	PGresult *res;
	int rc;

	*user_id_r = NULL;
	if (strip &&
	    addr_parse(address, strlen(address), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb, &perr) == 0) {
		stripped = addr_strip_subaddress(
			&mb, c->rq->subaddress_delims ? c->rq->subaddress_delims : "");
		addr_free(&mb);
	}
	params[0] = address;
	params[1] = stripped ? stripped : address;
	res = store_q(
		c,
		"SELECT user_id FROM user_addresses WHERE lower(address) IN (lower($1), lower($2))"
		" ORDER BY lower(address) = lower($1) DESC LIMIT 1",
		2, params);
	free(stripped);
	if (res == NULL)
		return -1;
	rc = PQntuples(res) > 0 ? 0 : 1;
	if (rc == 0)
		*user_id_r = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

/* store_postmaster_of_hosted - is address postmaster@ a hosted domain?
 * 0 yes, 1 no, -1 database error */
static int store_postmaster_of_hosted(struct store_ctx *c, const char *address)
{
	const char *params[1] = { address };
	PGresult *res = store_q(c, "SELECT " STORE_POSTMASTER_SQL("$1::text"), 1, params);
	int rc;

	if (res == NULL)
		return -1;
	rc = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 0 : 1;
	PQclear(res);
	return rc;
}

/* store_stripped - address without its sub-address (caller frees), or a copy */
static char *store_stripped(const struct store_request *rq, const char *address)
{
	struct mailbox mb;
	const char *perr;
	char *stripped = NULL;

	if (addr_parse(address, strlen(address), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb, &perr) == 0) {
		stripped = addr_strip_subaddress(&mb, rq->subaddress_delims ? rq->subaddress_delims
									    : "");
		addr_free(&mb);
	}
	return stripped ? stripped : xstrdup(address);
}

/* store_owners_params - the two array parameters of the statement
 * that finds the owners of the c->nrcpts distinct recipients (exact
 * address first, then without sub-address); the caller frees both */
void store_owners_params(struct store_ctx *c, char *arr[2])
{
	const char **addr = xcalloc(c->nrcpts + 1, sizeof(char *));
	char **strip = xcalloc(c->nrcpts + 1, sizeof(char *));
	size_t i;

	for (i = 0; i < c->nrcpts; i++) {
		addr[i] = c->rcpts[i].address;
		strip[i] = store_stripped(c->rq, addr[i]);
	}
	arr[0] = store_pg_array(addr, c->nrcpts);
	arr[1] = store_pg_array((const char *const *)strip, c->nrcpts);
	for (i = 0; i < c->nrcpts; i++)
		free(strip[i]);
	free(strip);
	free(addr);
}

/* store_apply_owners - the owners found (one row per recipient, in
 * order), and the recipients nobody owns */
void store_apply_owners(struct store_ctx *c, const PGresult *res)
{
	size_t i;

	for (i = 0; i < c->res->nunknown; i++)
		free(c->res->unknown[i]);
	xfree(&c->res->unknown);
	c->res->nunknown = 0;
	for (i = 0; i < c->nrcpts; i++) {
		xfree(&c->rcpts[i].user_id);
		c->rcpts[i].postmaster = i < (size_t)PQntuples(res) && PQnfields(res) > 1 &&
					 strcmp(PQgetvalue(res, (int)i, 1), "t") == 0;
		if (i < (size_t)PQntuples(res) && !PQgetisnull(res, (int)i, 0)) {
			c->rcpts[i].user_id = xstrdup(PQgetvalue(res, (int)i, 0));
			continue;
		}
		c->res->unknown = xgrow(c->res->unknown, c->res->nunknown, sizeof(char *));
		c->res->unknown[c->res->nunknown++] = xstrdup(c->rcpts[i].address);
	}
}

/* store_resolve_rcpts - the distinct envelope recipients (their owners
 * are looked up with the transaction's first round trip) */
void store_resolve_rcpts(struct store_ctx *c)
{
	const struct store_envelope *env = c->rq->env;
	size_t i, j;

	if (c->rq->sent)
		return; /* the route's marker, not a recipient */
	c->rcpts = xcalloc(env->nrcpts ? env->nrcpts : 1, sizeof(*c->rcpts));
	for (i = 0; i < env->nrcpts; i++) {
		for (j = 0; j < c->nrcpts; j++)
			if (strcasecmp(c->rcpts[j].address, env->rcpts[i]) == 0)
				break;
		if (j == c->nrcpts)
			c->rcpts[c->nrcpts++].address = env->rcpts[i];
	}
}

int store_rcpt_known(struct db *db, const char *address, const char *subaddress_delims,
		     char **error_r)
{
	struct store_request rq;
	struct store_result res;
	struct store_ctx c;
	char *uid = NULL;
	int rc;

	memset(&rq, 0, sizeof(rq));
	memset(&res, 0, sizeof(res));
	memset(&c, 0, sizeof(c));
	rq.subaddress_delims = subaddress_delims;
	c.db = db;
	c.rq = &rq;
	c.res = &res;
	rc = store_user_of(&c, address, 1, &uid);
	free(uid);
	if (rc == 1)
		rc = store_postmaster_of_hosted(&c, address);
	if (rc < 0) {
		*error_r = c.error ? c.error : xstrdup("database error");
		return -1;
	}
	free(c.error);
	return rc == 0 ? 1 : 0;
}

/* store_verify - a signed header of kind name; 0 and *h filled, or -1 */
static int store_verify(struct store_ctx *c, const char *name, const char *value, struct sighdr *h,
			char **storage_r, const char **why_r)
{
	struct sighdr_binding b;
	char *mid = NULL;
	int rc;

	*storage_r = NULL;
	if (value == NULL || c->rq->hmac_secret == NULL || *c->rq->hmac_secret == '\0') {
		*why_r = value ? "no security.hmac_secret to verify the signed header" : NULL;
		return -1;
	}
	memset(&b, 0, sizeof(b));
	b.max_age = c->rq->header_max_age;
	/* a submission header is bound to its message */
	if (!c->m->message_id_generated)
		b.message_id = mid = xasprintf("<%s>", c->m->message_id);
	rc = sighdr_verify(c->rq->hmac_secret, name, value, &b, h, storage_r, why_r);
	free(mid);
	return rc;
}

/* store_resolve_verdict - spam flag, reason and the stored spf/dkim/dmarc
 * results from this hop's headers (lib/verdict.c: topmost verifying
 * policyd verdict above the first Received:, trusted
 * Authentication-Results above the second) */
static void store_resolve_verdict(struct store_ctx *c)
{
	struct verdict_config vc;
	struct verdict_result vr;

	memset(&vc, 0, sizeof(vc));
	vc.hmac_secret = c->rq->hmac_secret;
	vc.authserv_id = c->rq->authserv_id;
	vc.queue_id = c->rq->queue_id;
	vc.max_age = c->rq->header_max_age;
	vc.dmarc_spam_policies = c->rq->dmarc_spam_policies;
	verdict_from_headers(&vc, c->m->top_headers, c->m->ntop_headers, &vr);
	c->res->verdict_note = vr.ignored;
	free(c->auth_results);
	c->auth_results = verdict_auth_json(&vr);
	if (vr.spam) {
		c->res->spam = 1;
		c->spam_reason = xstrdup(vr.reason[0] ? vr.reason : "policy verdict");
	}
}

/* store_resolve_sender - sent by: the SASL user, else a verified
 * submission header; and the spam verdict */
int store_resolve_sender(struct store_ctx *c)
{
	struct sighdr h;
	const char *user = NULL, *why = NULL;
	char *storage = NULL;
	int rc = 0;

	if (c->rq->sasl_user && *c->rq->sasl_user)
		user = c->rq->sasl_user;
	else if (store_verify(c, SIGHDR_SUBMISSION, c->m->submission_hdr, &h, &storage, &why) == 0)
		user = sighdr_get(&h, "user");
	else if (why)
		c->res->sent_by_note = why;
	if (user && *user) {
		rc = store_user_of(c, user, 0, &c->sent_by);
		if (rc == 1)
			c->res->sent_by_note = "the authenticated user is not a known user";
		rc = rc < 0 ? -1 : 0;
		c->res->sent_by_linked = c->sent_by != NULL;
	}
	free(storage);
	store_resolve_verdict(c);
	return rc;
}

/* store_add_notify - remember a user to notify (distinct) */
static void store_add_notify(struct store_result *r, const char *user_id)
{
	size_t i;

	for (i = 0; i < r->nnotify; i++)
		if (strcmp(r->notify_users[i], user_id) == 0)
			return;
	r->notify_users = xgrow(r->notify_users, r->nnotify, sizeof(char *));
	r->notify_users[r->nnotify++] = xstrdup(user_id);
}

/* store_redeliver - the email exists: mark this call's recipients */
int store_redeliver(struct store_ctx *c)
{
	const char *p[3];
	PGresult *res;
	size_t i;

	p[0] = c->res->email_id;
	if (c->rq->sent) {
		p[1] = c->sent_by;
		return store_cmd(
			c,
			"UPDATE emails SET sent_by_user_id = COALESCE(sent_by_user_id, $2::uuid)"
			" WHERE id = $1",
			2, p);
	}
	for (i = 0; i < c->nrcpts; i++) {
		p[1] = c->rcpts[i].address;
		p[2] = c->rcpts[i].user_id;
		/* the row as it was, then the row as it is now */
		res = store_q(
			c,
			"WITH old AS (SELECT id, delivered FROM email_recipients"
			"   WHERE email_id = $1 AND lower(address) = lower($2) FOR UPDATE),"
			" upd AS (UPDATE email_recipients r SET delivered = true,"
			"   user_id = COALESCE(r.user_id, $3::uuid) FROM old"
			"   WHERE r.id = old.id AND NOT old.delivered RETURNING r.user_id),"
			" ins AS (INSERT INTO email_recipients (email_id, address, type, user_id, delivered)"
			"   SELECT $1, $2, 'bcc', $3::uuid, true WHERE NOT EXISTS (SELECT 1 FROM old)"
			"   RETURNING user_id)"
			" SELECT user_id FROM upd UNION ALL SELECT user_id FROM ins",
			3, p);
		if (res == NULL)
			return -1;
		if (PQntuples(res) > 0) {
			c->res->newly_delivered++;
			if (!PQgetisnull(res, 0, 0))
				store_add_notify(c->res, PQgetvalue(res, 0, 0));
		}
		PQclear(res);
	}
	return 0;
}

/* store_keep - p, freed when the batch has run */
void *store_keep(struct store_batch *b, void *p)
{
	b->owned = xgrow(b->owned, b->nowned, sizeof(void *));
	b->owned[b->nowned++] = p;
	return p;
}

/* store_dup - a copy of n bytes at p, freed when the batch has run */
static void *store_dup(struct store_batch *b, const void *p, size_t n)
{
	return memcpy(store_keep(b, xmalloc(n ? n : 1)), p, n);
}

/* store_add - a statement into the batch; params (n of them, copied)
 * must live until the batch runs */
void store_add(struct store_batch *b, enum store_stmt_kind kind, const char *sql, int n,
	       const char *const *params, const int *lengths, const int *formats)
{
	struct db_stmt *st;

	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->st = xrealloc(b->st, b->cap * sizeof(*b->st));
		b->kind = xrealloc(b->kind, b->cap * sizeof(*b->kind));
		b->ctx = xrealloc(b->ctx, b->cap * sizeof(*b->ctx));
	}
	b->ctx[b->n] = b->cur;
	st = &b->st[b->n];
	memset(st, 0, sizeof(*st));
	st->sql = sql;
	st->nparams = n;
	if (n > 0) {
		st->params = store_dup(b, params, (size_t)n * sizeof(char *));
		if (lengths)
			st->lengths = store_dup(b, lengths, (size_t)n * sizeof(int));
		if (formats)
			st->formats = store_dup(b, formats, (size_t)n * sizeof(int));
	}
	b->kind[b->n++] = kind;
}

/* store_new_id - a fresh random (version 4) uuid for the new email */
static int store_new_id(struct store_ctx *c)
{
	unsigned char u[16];

	if (crypto_random(u, sizeof(u)) < 0)
		return store_fail(c, DB_TEMPORARY, xstrdup("no random bytes for the email id"));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	snprintf(c->res->email_id, sizeof(c->res->email_id),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
	return 0;
}

/* store_insert_email - the emails row (its time comes back with the
 * batch's results); a new email starts as its own thread, so that
 * threading rewrites the row only when it joins another */
static void store_insert_email(struct store_ctx *c, struct store_batch *b)
{
	const struct mime_msg *m = c->m;
	const char *p[16];
	int lens[16] = { 0 }, fmts[16] = { 0 };
	char *size = store_keep(b, xasprintf("%lld", c->sp->size));
	char *refs =
		store_keep(b, store_pg_array((const char *const *)m->references, m->nreferences));

	p[0] = m->message_id;
	p[1] = m->from_address;
	p[2] = m->from_display;
	p[3] = m->subject;
	p[4] = m->text_body;
	p[5] = m->html_body;
	p[6] = size;
	p[7] = m->in_reply_to;
	p[8] = refs;
	p[9] = c->sent_by;
	p[10] = c->res->spam ? "true" : "false";
	p[11] = c->spam_reason;
	p[12] = m->parse_problem;
	p[13] = (const char *)c->sp->id;
	lens[13] = SHA256_LEN;
	fmts[13] = 1;
	p[14] = c->res->email_id;
	p[15] = c->auth_results;
	store_add(
		b, STMT_EMAIL,
		"INSERT INTO emails (id, thread_id, message_id, from_address,"
		" from_display_name, subject, text_body, html_body, size_bytes, in_reply_to, reference_ids,"
		" sent_by_user_id, spam, spam_reason, parse_problem, content_sha256, auth_results)"
		" VALUES ($15::uuid, $15::uuid, $1, $2, $3, $4, $5, $6, $7::bigint, $8, $9::text[],"
		" $10::uuid, $11::boolean, $12, $13, $14, $16::jsonb) RETURNING " STORE_TS(
			"received_at"),
		16, p, lens, fmts);
}

/* store_insert_rcpts - header rows and envelope rows in one statement */
static void store_insert_rcpts(struct store_ctx *c, struct store_batch *b)
{
	static const char *types[] = { "to", "cc", "bcc" };
	const struct mime_msg *m = c->m;
	size_t n = 0, i, j, max = m->nrcpts + c->nrcpts;
	const char **addr = xcalloc(max + 1, sizeof(char *)),
		   **disp = xcalloc(max + 1, sizeof(char *));
	const char **type = xcalloc(max + 1, sizeof(char *)),
		   **uid = xcalloc(max + 1, sizeof(char *));
	const char **dl = xcalloc(max + 1, sizeof(char *)), *p[6];

	for (i = 0; i < m->nrcpts; i++, n++) {
		addr[n] = m->rcpts[i].address;
		disp[n] = m->rcpts[i].display;
		type[n] = types[m->rcpts[i].type];
		dl[n] = "f";
	}
	for (i = 0; i < c->nrcpts; i++) {
		for (j = 0; j < m->nrcpts; j++)
			if (strcasecmp(addr[j], c->rcpts[i].address) == 0)
				break;
		if (j == m->nrcpts) {
			addr[n] = c->rcpts[i].address;
			type[n] = "bcc";
			j = n++;
		}
		uid[j] = c->rcpts[i].user_id;
		dl[j] = "t";
	}
	if (n > 0) {
		p[0] = c->res->email_id;
		p[1] = store_keep(b, store_pg_array(addr, n));
		p[2] = store_keep(b, store_pg_array(disp, n));
		p[3] = store_keep(b, store_pg_array(type, n));
		p[4] = store_keep(b, store_pg_array(uid, n));
		p[5] = store_keep(b, store_pg_array(dl, n));
		store_add(
			b, STMT_RCPTS,
			"INSERT INTO email_recipients (email_id, address, display_name,"
			" type, user_id, delivered) SELECT $1::uuid, r.a, r.d, r.t, COALESCE(r.u, (SELECT"
			" ua.user_id FROM user_addresses ua WHERE lower(ua.address) = lower(r.a))), r.dl FROM"
			" unnest($2::text[], $3::text[], $4::text[], $5::uuid[], $6::boolean[]) WITH ORDINALITY"
			" AS r(a, d, t, u, dl, n) ORDER BY r.n RETURNING user_id, delivered",
			6, p, NULL, NULL);
	}
	free(addr);
	free(disp);
	free(type);
	free(uid);
	free(dl);
}

/* store_batch_results - what the batch's statements returned: the new
 * email's time, the recipients newly delivered (each statement's rows
 * go to the message it was added for) */
static void store_batch_results(struct store_batch *b)
{
	struct store_result *r;
	PGresult *res;
	size_t k;
	int i;

	for (k = 0; k < b->n; k++) {
		res = b->st[k].res;
		if (b->ctx[k] == NULL)
			continue;
		r = b->ctx[k]->res;
		if (b->kind[k] == STMT_EMAIL && PQntuples(res) > 0)
			snprintf(r->received_at, sizeof(r->received_at), "%s",
				 PQgetvalue(res, 0, 0));
		for (i = 0; b->kind[k] == STMT_RCPTS && i < PQntuples(res); i++) {
			if (strcmp(PQgetvalue(res, i, 1), "t") != 0)
				continue;
			r->newly_delivered++;
			if (!PQgetisnull(res, i, 0))
				store_add_notify(r, PQgetvalue(res, i, 0));
		}
	}
}

/* store_batch_clear - forget the statements (sent or not) and their
 * parameters */
static void store_batch_clear(struct store_batch *b)
{
	size_t k;

	for (k = 0; k < b->n; k++)
		PQclear(b->st[k].res);
	for (k = 0; k < b->nowned; k++)
		free(b->owned[k]);
	xfree(&b->owned);
	b->n = b->nowned = 0;
}

/* store_batch_free - and the statement arrays */
void store_batch_free(struct store_batch *b)
{
	store_batch_clear(b);
	xfree(&b->st);
	xfree(&b->kind);
	xfree(&b->ctx);
	b->cap = 0;
}

/* store_batch_run - send the batch in one round trip; emptied either way */
int store_batch_run(struct store_ctx *c, struct store_batch *b)
{
	enum db_err_class cls;
	char *err = NULL;
	int rc = 0;

	if (b->n > 0 && db_pipeline(c->db, b->st, b->n, &cls, &err) < 0)
		rc = store_fail(c, cls, err);
	else if (b->n > 0)
		store_batch_results(b);
	store_batch_clear(b);
	return rc;
}

/* store_read_inline - [off, off + len) of fd into memory kept by the batch */
static const char *store_read_inline(struct store_ctx *c, struct store_batch *b, int fd,
				     long long off, long long len)
{
	char *p = store_keep(b, xmalloc((size_t)len + 1));
	ssize_t n = store_spool_pread_all(fd, p, (size_t)len, off);

	if (n != (ssize_t)len) {
		store_fail(
			c, DB_TEMPORARY,
			xasprintf("reading the spool: %s", n < 0 ? strerror(errno) : "short read"));
		return NULL;
	}
	return p;
}

/* store_copy_fail - finish a failed COPY and record why */
static int store_copy_result(struct store_ctx *c, const char *what)
{
	PGconn *conn = db_conn(c->db);
	PGresult *res;
	int rc = 0;

	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0) {
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *msg = PQresultErrorMessage(res);

			store_fail(c,
				   PQstatus(conn) != CONNECTION_OK ? DB_TEMPORARY
								   : db_classify_sqlstate(st),
				   xasprintf("COPY %s: %.*s", what, (int)strcspn(msg, "\n"), msg));
			rc = -1;
		}
		PQclear(res);
	}
	return rc;
}

/* store_copy_put - send bytes of a COPY */
static int store_copy_put(struct store_ctx *c, const void *p, size_t n)
{
	if (PQputCopyData(db_conn(c->db), p, (int)n) != 1)
		return store_fail(c, DB_TEMPORARY,
				  xasprintf("COPY: %s", PQerrorMessage(db_conn(c->db))));
	return 0;
}

/* store_copy_fd - stream [off, off + len) of fd into the COPY */
static int store_copy_fd(struct store_ctx *c, int fd, long long off, long long len)
{
	char *chunk = xmalloc(STORE_COPY_CHUNK);
	int rc = 0;

	while (rc == 0 && len > 0) {
		ssize_t n =
			pread(fd, chunk, len < STORE_COPY_CHUNK ? (size_t)len : STORE_COPY_CHUNK,
			      (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = store_fail(c, DB_TEMPORARY,
					xasprintf("reading the spool: %s",
						  n < 0 ? strerror(errno) : "short read"));
			break;
		}
		rc = store_copy_put(c, chunk, (size_t)n);
		off += n;
		len -= n;
	}
	free(chunk);
	return rc;
}

/* store_copy_row - COPY one binary row: leading fixed fields, then the
 * big field from fd (the last column) */
static int store_copy_row(struct store_ctx *c, const char *sql, const struct buf *fields,
			  int nfields, int fd, long long off, long long len)
{
	static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
	PGconn *conn = db_conn(c->db);
	PGresult *res = PQexec(conn, sql);
	uint16_t nf = htons((uint16_t)nfields), trailer = 0xffff;
	uint32_t blen = htonl((uint32_t)len);
	int rc;

	if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
		const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

		store_fail(c,
			   PQstatus(conn) != CONNECTION_OK ? DB_TEMPORARY
							   : db_classify_sqlstate(st),
			   xasprintf("%s: %.*s", sql, (int)strcspn(PQerrorMessage(conn), "\n"),
				     PQerrorMessage(conn)));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	rc = store_copy_put(c, header, sizeof(header));
	if (rc == 0)
		rc = store_copy_put(c, &nf, 2);
	if (rc == 0)
		rc = store_copy_put(c, fields->data, fields->len);
	if (rc == 0)
		rc = store_copy_put(c, &blen, 4);
	if (rc == 0)
		rc = store_copy_fd(c, fd, off, len);
	if (rc == 0)
		rc = store_copy_put(c, &trailer, 2);
	if (PQputCopyEnd(conn, rc == 0 ? NULL : "postroom-deliver: aborted") != 1 && rc == 0)
		rc = store_fail(c, DB_TEMPORARY, xasprintf("COPY end: %s", PQerrorMessage(conn)));
	return store_copy_result(c, sql) < 0 ? -1 : rc;
}

/* store_field - append one binary COPY field */
static void store_field(struct buf *b, const void *p, uint32_t n)
{
	uint32_t be = htonl(n);

	buf_append(b, &be, 4);
	buf_append(b, p, n);
}

/* store_uuid_bytes - the 16 bytes of a textual uuid */
static void store_uuid_bytes(const char *text, unsigned char out[16])
{
	int i = 0;

	for (; *text && i < 32; text++) {
		int v = *text >= '0' && *text <= '9'   ? *text - '0'
			: *text >= 'a' && *text <= 'f' ? *text - 'a' + 10
			: *text >= 'A' && *text <= 'F' ? *text - 'A' + 10
						       : -1;

		if (v < 0)
			continue;
		if (i % 2 == 0)
			out[i / 2] = (unsigned char)(v << 4);
		else
			out[i / 2] |= (unsigned char)v;
		i++;
	}
}

/* store_blob_copy - the content of a large attachment, unless already
 * stored: looked up, then streamed with COPY */
static int store_blob_copy(struct store_ctx *c, const struct mime_attachment *a)
{
	int lens[1] = { SHA256_LEN }, fmts[1] = { 1 };
	const char *p[1] = { (const char *)a->sha256 };
	struct buf f = BUF_INIT;
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res;
	uint64_t size = (uint64_t)a->size;
	uint32_t hi = htonl((uint32_t)(size >> 32)), lo = htonl((uint32_t)size);
	int rc, found;

	res = db_exec_prepared(c->db, "SELECT 1 FROM blobs WHERE sha256 = $1", 1, p, lens, fmts,
			       &cls, &err);
	if (res == NULL)
		return store_fail(c, cls, err);
	found = PQntuples(res) > 0;
	PQclear(res);
	if (found)
		return 0;
	if (a->size > STORE_BYTEA_MAX && (c->too_big = 1))
		return store_fail(c, DB_PERMANENT,
				  xasprintf("attachment of %lld bytes exceeds "
					    "PostgreSQL's 1 GB field limit",
					    a->size));
	store_field(&f, a->sha256, SHA256_LEN);
	buf_append(&f, "\0\0\0\10", 4);
	buf_append(&f, &hi, 4);
	buf_append(&f, &lo, 4);
	rc = store_copy_row(c,
			    "COPY blobs (sha256, size_bytes, content) FROM STDIN (FORMAT binary)",
			    &f, 3, c->m->att_fd, a->offset, a->size);
	buf_free(&f);
	return rc;
}

int store_ctx_uploads(const struct store_ctx *c)
{
	size_t i;

	if (c->rq->blobs == NULL)
		return 0;
	for (i = 0; i < c->m->natts; i++)
		if (c->m->atts[i].size >= c->rq->blob_min_size)
			return 1;
	return 0;
}

/* store_blob_where - where the blob of digest is stored already: 1 in
 * the object store, 0 in PostgreSQL, -1 nowhere, -2 recorded in c */
static int store_blob_where(struct store_ctx *c, const unsigned char *digest)
{
	int lens[1] = { SHA256_LEN }, fmts[1] = { 1 }, where;
	const char *p[1] = { (const char *)digest };
	enum db_err_class cls;
	char *err = NULL;
	PGresult *res;

	res = db_exec_prepared(c->db, "SELECT location = 's3' FROM blobs WHERE sha256 = $1", 1, p,
			       lens, fmts, &cls, &err);
	if (res == NULL)
		return store_fail(c, cls, err) - 1;
	where = PQntuples(res) == 0 ? -1 : PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return where;
}

/* uploads_ctx - a context for the upload steps outside store_message */
static void uploads_ctx(struct store_ctx *c, struct db *db, const struct mime_msg *m,
			const struct store_request *rq, struct store_result *res)
{
	memset(c, 0, sizeof(*c));
	c->db = db;
	c->m = m;
	c->rq = rq;
	c->res = res;
}

/* blobs_lookup - where each attachment bound for the object store is
 * already (c->blob_s3: 0 PostgreSQL, 1 the object store, 3 nowhere: to
 * upload); the same bytes twice in one message are looked up once */
static int blobs_lookup(struct store_ctx *c)
{
	const struct mime_msg *m = c->m;
	size_t i, j;
	int where;

	c->blob_s3 = xcalloc(m->natts ? m->natts : 1, 1);
	for (i = 0; i < m->natts; i++) {
		if (m->atts[i].size < c->rq->blob_min_size)
			continue;
		for (j = 0; j < i && memcmp(m->atts[j].sha256, m->atts[i].sha256, SHA256_LEN); j++)
			;
		if (j < i) { /* the same bytes twice in one message */
			c->blob_s3[i] = c->blob_s3[j];
			continue;
		}
		if ((where = store_blob_where(c, m->atts[i].sha256)) < -1)
			return -1;
		c->blob_s3[i] = where >= 0 ? (unsigned char)where : 3;
	}
	return 0;
}

/* blobs_put - every attachment blobs_lookup found nowhere is PUT (then
 * 2: uploaded by this call, looked for after COMMIT); no database */
static int blobs_put(struct store_ctx *c)
{
	const struct mime_msg *m = c->m;
	struct blob_store *bs = c->rq->blobs;
	struct timespec t;
	char *err = NULL;
	size_t i, j;
	int st;

	clock_gettime(CLOCK_MONOTONIC, &t);
	for (i = 0; i < m->natts; i++) {
		if (c->blob_s3[i] != 3)
			continue;
		for (j = 0; j < i && memcmp(m->atts[j].sha256, m->atts[i].sha256, SHA256_LEN); j++)
			;
		if (j < i) {
			c->blob_s3[i] = 2;
			continue;
		}
		st = bs->ops->put(bs, m->atts[i].sha256, m->att_fd, (off_t)m->atts[i].offset,
				  (size_t)m->atts[i].size, &err);
		if (st != BLOB_OK) {
			c->res->blob_status = st;
			return store_fail(c, DB_TEMPORARY,
					  xasprintf("object store (%s): %s", blob_status_name(st),
						    err ? err : "failed"));
		}
		free(err);
		err = NULL;
		c->blob_s3[i] = 2;
	}
	c->res->us_upload = store_us(&t);
	return 0;
}

/* store_blobs_upload - with an object store, every attachment of at
 * least blobs.min_size bytes is uploaded here, BEFORE the transaction
 * begins: no transaction stays open across network I/O, and a crash in
 * between leaves an object without a row (blobs gc collects it), never
 * a row without its object. A blob already in the object store is not
 * uploaded again; one already in PostgreSQL stays there (its row is
 * kept: ON CONFLICT DO NOTHING). Any other is always PUT, which makes
 * its LastModified now, so blobs gc's grace period protects it. The
 * first failure stops: its BLOB_* status goes to the result. When the
 * caller uploaded already (store_uploads_lookup/_put: rq->blob_s3),
 * its outcome is taken as it is. */
int store_blobs_upload(struct store_ctx *c)
{
	if (!store_ctx_uploads(c))
		return 0;
	if (c->rq->blob_s3) {
		c->blob_s3 = xmalloc(c->m->natts);
		memcpy(c->blob_s3, c->rq->blob_s3, c->m->natts);
		return 0;
	}
	if (blobs_lookup(c) < 0)
		return -1;
	return blobs_put(c);
}

int store_uploads_needed(const struct mime_msg *m, const struct store_request *rq)
{
	struct store_ctx c;
	struct store_result res;

	uploads_ctx(&c, NULL, m, rq, &res);
	return store_ctx_uploads(&c);
}

/* uploads_done - the outcome of one step for the caller */
static int uploads_done(struct store_ctx *c, int rc, unsigned char **blob_s3, char **error_r)
{
	if (rc < 0) {
		*error_r = c->error ? c->error : xstrdup("database error");
		c->error = NULL;
		xfree(&c->blob_s3);
	}
	*blob_s3 = c->blob_s3;
	return rc;
}

int store_uploads_lookup(struct db *db, const struct mime_msg *m, const struct store_request *rq,
			 struct store_result *res, unsigned char **blob_s3_r, char **error_r)
{
	struct store_ctx c;

	uploads_ctx(&c, db, m, rq, res);
	*blob_s3_r = NULL;
	return uploads_done(&c, blobs_lookup(&c), blob_s3_r, error_r);
}

int store_uploads_put(const struct mime_msg *m, const struct store_request *rq,
		      unsigned char *blob_s3, struct store_result *res, char **error_r)
{
	struct store_ctx c;
	int rc;

	uploads_ctx(&c, NULL, m, rq, res);
	c.blob_s3 = blob_s3;
	rc = blobs_put(&c);
	if (rc < 0) {
		*error_r = c.error ? c.error : xstrdup("object store error");
		c.error = NULL;
	}
	return rc;
}

static void blobs_recheck(struct store_ctx *c);

/* store_blobs_recheck - after COMMIT: every object this call uploaded is
 * still there, else it is uploaded again. blobs gc deletes an object
 * with no row under the digest's stripe lock; the transaction takes that
 * lock before its row and holds it to COMMIT, so a gc that saw no row
 * deleted the object before the commit, and this HEAD, after it, sees
 * that. Failures go to the result (the message is stored: the caller
 * logs them loudly), never to the delivery's status. */
static void store_blobs_recheck(struct store_ctx *c)
{
	if (c->rq->blob_s3) /* the caller uploaded: it rechecks (store_uploads_recheck) */
		return;
	blobs_recheck(c);
}

void store_uploads_recheck(const struct mime_msg *m, const struct store_request *rq,
			   unsigned char *blob_s3, struct store_result *res)
{
	struct store_ctx c;

	if (blob_s3 == NULL)
		return;
	uploads_ctx(&c, NULL, m, rq, res);
	c.blob_s3 = blob_s3;
	blobs_recheck(&c);
}

static void blobs_recheck(struct store_ctx *c)
{
	const struct mime_msg *m = c->m;
	struct blob_store *bs = c->rq->blobs;
	char *err = NULL;
	size_t i, j;
	int st;

	for (i = 0; c->blob_s3 && i < m->natts; i++) {
		if (c->blob_s3[i] != 2)
			continue;
		for (j = 0; j < i && memcmp(m->atts[j].sha256, m->atts[i].sha256, SHA256_LEN); j++)
			;
		if (j < i)
			continue;
		if ((st = bs->ops->exists(bs, m->atts[i].sha256, &err)) == 1)
			continue;
		if (st == 0) {
			free(err);
			err = NULL;
			st = bs->ops->put(bs, m->atts[i].sha256, m->att_fd,
					  (off_t)m->atts[i].offset, (size_t)m->atts[i].size, &err);
			if (st == BLOB_OK) {
				c->res->blobs_reuploaded++;
				continue;
			}
		}
		if (c->res->blob_recheck_error == NULL) {
			char hex[2 * SHA256_LEN + 1];

			crypto_hex(m->atts[i].sha256, SHA256_LEN, hex);
			c->res->blob_recheck_error =
				xasprintf("object of blob %s is missing after the commit and could"
					  " not be uploaded again (%s): %s",
					  hex, blob_status_name(st), err ? err : "failed");
		}
		free(err);
		err = NULL;
	}
}

/* store_blob - the content of attachment a, unless already stored (its
 * digest is locked): a small one joins the batch, a large one is
 * streamed after the batch has run; one in the object store
 * (store_blobs_upload) is a row without content */
static int store_blob(struct store_ctx *c, struct store_batch *b, const struct mime_attachment *a)
{
	static const int lens0[3] = { SHA256_LEN, 0, 0 }, fmts[3] = { 1, 0, 1 };
	const char *p[3];
	int lens[3];

	if (c->blob_s3 && c->blob_s3[a - c->m->atts]) {
		memcpy(lens, lens0, sizeof(lens));
		p[0] = (const char *)a->sha256;
		p[1] = store_keep(b, xasprintf("%lld", a->size));
		store_add(b, STMT_OTHER,
			  "INSERT INTO blobs (sha256, size_bytes, location) VALUES ($1,"
			  " $2::bigint, 's3') ON CONFLICT (sha256) DO NOTHING",
			  2, p, lens, fmts);
		return 0;
	}
	if (a->size > STORE_INLINE_MAX)
		return store_batch_run(c, b) < 0 ? -1 : store_blob_copy(c, a);
	memcpy(lens, lens0, sizeof(lens));
	lens[2] = (int)a->size;
	p[0] = (const char *)a->sha256;
	p[1] = store_keep(b, xasprintf("%lld", a->size));
	if ((p[2] = store_read_inline(c, b, c->m->att_fd, a->offset, a->size)) == NULL)
		return -1;
	store_add(b, STMT_OTHER,
		  "INSERT INTO blobs (sha256, size_bytes, content) VALUES ($1,"
		  " $2::bigint, $3) ON CONFLICT (sha256) DO NOTHING",
		  3, p, lens, fmts);
	return 0;
}

/* store_attachments - lock the digests in order, store new blobs, then
 * all attachment rows in one statement */
char *store_att_key(const struct mime_attachment *a)
{
	return xasprintf("%lld",
			 (store_lock_key(a->sha256) & (STORE_ATT_STRIPES - 1)) ^ STORE_ATT_KEY_XOR);
}

static int store_attachments(struct store_ctx *c, struct store_batch *b)
{
	const struct mime_msg *m = c->m;
	size_t n = m->natts, i;
	char **keys, **pos, **sizes, **hex, **inl;
	const char *p[9], **fn, **fo, **ct, **cid;
	int rc = 0, k;

	if (n == 0)
		return 0;
	keys = xcalloc(n, sizeof(char *));
	pos = xcalloc(n, sizeof(char *));
	sizes = xcalloc(n, sizeof(char *));
	hex = xcalloc(n, sizeof(char *));
	inl = xcalloc(n, sizeof(char *));
	fn = xcalloc(n, sizeof(char *));
	fo = xcalloc(n, sizeof(char *));
	ct = xcalloc(n, sizeof(char *));
	cid = xcalloc(n, sizeof(char *));
	for (i = 0; i < n; i++) {
		keys[i] = c->atts_locked ? NULL : store_att_key(&m->atts[i]);
		pos[i] = xasprintf("%zu", i + 1);
		sizes[i] = xasprintf("%lld", m->atts[i].size);
		hex[i] = xmalloc(2 * SHA256_LEN + 1);
		crypto_hex(m->atts[i].sha256, SHA256_LEN, hex[i]);
		inl[i] = xstrdup(m->atts[i].is_inline ? "t" : "f");
		fn[i] = m->atts[i].filename;
		fo[i] = m->atts[i].filename_original;
		ct[i] = m->atts[i].content_type;
		cid[i] = m->atts[i].content_id;
	}
	if (!c->atts_locked) {
		p[0] = store_keep(b, store_pg_array((const char *const *)keys, n));
		store_add(b, STMT_OTHER, STORE_LOCK_KEYS_SQL, 1, p, NULL, NULL);
	}
	for (i = 0; rc == 0 && i < n; i++)
		rc = store_blob(c, b, &m->atts[i]);
	if (rc == 0) {
		p[0] = c->res->email_id;
		p[1] = store_keep(b, store_pg_array((const char *const *)pos, n));
		p[2] = store_keep(b, store_pg_array(fn, n));
		p[3] = store_keep(b, store_pg_array(ct, n));
		p[4] = store_keep(b, store_pg_array((const char *const *)sizes, n));
		p[5] = store_keep(b, store_pg_array(cid, n));
		p[6] = store_keep(b, store_pg_array((const char *const *)inl, n));
		p[7] = store_keep(b, store_pg_array((const char *const *)hex, n));
		p[8] = store_keep(b, store_pg_array(fo, n));
		store_add(
			b, STMT_OTHER,
			"INSERT INTO email_attachments (email_id, position, filename, filename_original,"
			" content_type, size_bytes, content_id, is_inline, sha256) SELECT $1::uuid, a.p,"
			" a.f, a.o, a.t, a.s, a.c, a.i, decode(a.h, 'hex') FROM unnest($2::integer[],"
			" $3::text[], $9::text[], $4::text[], $5::bigint[], $6::text[], $7::boolean[],"
			" $8::text[]) AS a(p, f, o, t, s, c, i, h)",
			9, p, NULL, NULL);
	}
	for (k = 0; k < (int)n; k++) {
		free(keys[k]);
		free(pos[k]);
		free(sizes[k]);
		free(hex[k]);
		free(inl[k]);
	}
	free(keys);
	free(pos);
	free(sizes);
	free(hex);
	free(inl);
	free(fn);
	free(fo);
	free(ct);
	free(cid);
	return rc;
}

/* store_raw_plan - the raw message with the base64 text of its
 * extracted attachments cut out, when every one re-encodes byte for
 * byte (lib/raw_compact); plan->nrefs 0: store it whole */
static int store_raw_plan(struct store_ctx *c, struct raw_plan *plan)
{
	long long len = c->sp->len - c->sp->start;
	char *error = NULL;
	size_t i;

	memset(plan, 0, sizeof(*plan));
	plan->fd = -1;
	for (i = 0; i < c->m->natts && c->m->atts[i].enc_len <= 0; i++)
		;
	if ((i == c->m->natts && c->m->ntexts == 0) || len <= 0)
		return 0;
	if (raw_compact(c->sp->fd, c->sp->start, len, c->m, NULL, plan, &error) < 0)
		return store_fail(c, DB_TEMPORARY, error);
	return 0;
}

/* store_raw_refs - the references of a skeleton, one statement */
static void store_raw_refs(struct store_ctx *c, struct store_batch *b, const struct raw_plan *plan)
{
	char **col[8];
	const char *p[9];
	size_t i, k;

	for (k = 0; k < 8; k++)
		col[k] = xcalloc(plan->nrefs, sizeof(char *));
	for (i = 0; i < plan->nrefs; i++) {
		const struct raw_ref *r = &plan->refs[i];

		col[0][i] = xasprintf("%zu", i + 1);
		col[1][i] = xasprintf("%d", r->position);
		col[2][i] = xasprintf("%lld", r->at);
		col[3][i] = xasprintf("%d", r->line_len);
		col[4][i] = xstrdup(r->crlf ? "t" : "f");
		col[5][i] = xasprintf("%d", r->source);
		col[6][i] = r->source == RAW_SRC_BLOB ? NULL : xasprintf("%lld", r->src_off);
		col[7][i] = r->source == RAW_SRC_BLOB ? NULL : xasprintf("%lld", r->size);
	}
	p[0] = c->res->email_id;
	for (k = 0; k < 8; k++)
		p[k + 1] = store_keep(b, store_pg_array((const char *const *)col[k], plan->nrefs));
	store_add(
		b, STMT_OTHER,
		"INSERT INTO email_raw_refs (email_id, ordinal, position, at, line_len, crlf,"
		" source, src_off, src_len) SELECT $1::uuid, r.o, r.p, r.a, r.l, r.c, r.s, r.so, r.sl"
		" FROM unnest($2::integer[], $3::integer[], $4::bigint[], $5::integer[],"
		" $6::boolean[], $7::smallint[], $8::bigint[], $9::bigint[])"
		" AS r(o, p, a, l, c, s, so, sl)",
		9, p, NULL, NULL);
	for (k = 0; k < 8; k++) {
		for (i = 0; i < plan->nrefs; i++)
			free(col[k][i]);
		free(col[k]);
	}
}

/* store_raw - the original bytes from the spool, or its skeleton and
 * references (store_raw_plan): a small one joins the batch, a large
 * one is streamed with COPY after the batch has run */
static int store_raw(struct store_ctx *c, struct store_batch *b)
{
	static const int fmts[3] = { 0, 1, 0 };
	unsigned char uuid[16];
	struct buf f = BUF_INIT;
	struct raw_plan plan;
	long long len = c->sp->len - c->sp->start, off = c->sp->start;
	const char *p[3];
	int lens[3] = { 0, 0, 0 }, rc, fd = c->sp->fd;

	if (len > STORE_BYTEA_MAX && (c->too_big = 1))
		return store_fail(c, DB_PERMANENT,
				  xasprintf("message of %lld bytes exceeds "
					    "PostgreSQL's 1 GB field limit",
					    len));
	if (store_raw_plan(c, &plan) < 0)
		return -1;
	if (plan.nrefs > 0) {
		fd = plan.fd;
		off = 0;
		len = plan.skel_len;
	}
	if (len <= STORE_INLINE_MAX) {
		p[0] = c->res->email_id;
		p[2] = plan.nrefs > 0 ? "1" : "2";
		if ((p[1] = store_read_inline(c, b, fd, off, len)) == NULL) {
			raw_plan_free(&plan);
			return -1;
		}
		lens[1] = (int)len;
		store_add(
			b, STMT_OTHER,
			"INSERT INTO email_raw_base (email_id, content, layout) VALUES ($1::uuid, $2,"
			" $3::smallint)",
			3, p, lens, fmts);
		rc = 0;
	} else if (store_batch_run(c, b) < 0) {
		rc = -1;
	} else {
		memset(uuid, 0, sizeof(uuid));
		store_uuid_bytes(c->res->email_id, uuid);
		store_field(&f, uuid, 16);
		store_field(&f, plan.nrefs > 0 ? "\0\1" : "\0\2", 2);
		rc = store_copy_row(
			c,
			"COPY email_raw_base (email_id, layout, content) FROM STDIN (FORMAT binary)",
			&f, 3, fd, off, len);
		buf_free(&f);
	}
	if (rc == 0 && plan.nrefs > 0)
		store_raw_refs(c, b, &plan);
	raw_plan_free(&plan);
	return rc;
}

/* store_verp - the first envelope recipient that is a VERP address of
 * this server with a valid MAC (lib/verp.c): its sender's address into
 * p[0] and the Message-Id hash into p[1] (kept by b); none: NULLs */
static void store_verp(struct store_ctx *c, struct store_batch *b, const char *p[2])
{
	char hash[VERP_HASH_HEX + 1], *base;
	size_t i;

	p[0] = p[1] = NULL;
	if (c->rq->env == NULL || c->rq->hmac_secret == NULL)
		return;
	for (i = 0; i < c->rq->env->nrcpts; i++)
		if (verp_check(c->rq->hmac_secret, c->rq->env->rcpts[i], c->rq->subaddress_delims,
			       &base, hash) == 1) {
			p[0] = store_keep(b, base);
			p[1] = store_keep(b, xstrdup(hash));
			return;
		}
}

/* store_report - a bounce, delay notice, auto-reply or complaint
 * (lib/mail_class.c): its row, its link to the sent email it names and
 * the suppressions it causes, one statement (sql/019); the sent email
 * is the one a VERP envelope recipient names when there is one (sql/026),
 * else the one the report names; nothing for ordinary mail and for a
 * sent copy */
static void store_report(struct store_ctx *c, struct store_batch *b)
{
	struct mail_class_report r;
	const char **addr, **kind, **act, **st, **diag, *p[14];
	size_t i;

	if (c->rq->sent)
		return;
	mail_class_classify(c->m, c->rq->env ? c->rq->env->sender : NULL, &r);
	if (r.cls == MAIL_CLASS_ORDINARY) {
		mail_class_report_free(&r);
		return;
	}
	addr = xcalloc(r.nrcpts + 1, sizeof(char *));
	kind = xcalloc(r.nrcpts + 1, sizeof(char *));
	act = xcalloc(r.nrcpts + 1, sizeof(char *));
	st = xcalloc(r.nrcpts + 1, sizeof(char *));
	diag = xcalloc(r.nrcpts + 1, sizeof(char *));
	for (i = 0; i < r.nrcpts; i++) {
		addr[i] = r.rcpts[i].address;
		kind[i] = mail_class_kind_name(r.rcpts[i].kind);
		act[i] = r.rcpts[i].action;
		st[i] = r.rcpts[i].status;
		diag[i] = r.rcpts[i].diagnostic;
	}
	p[0] = c->res->email_id;
	p[1] = mail_class_name(r.cls);
	p[2] = r.rule;
	p[3] = r.original_message_id ? store_keep(b, xstrdup(r.original_message_id)) : NULL;
	p[4] = store_keep(b, store_pg_array(addr, r.nrcpts));
	p[5] = store_keep(b, store_pg_array(kind, r.nrcpts));
	p[6] = store_keep(b, store_pg_array(act, r.nrcpts));
	p[7] = store_keep(b, store_pg_array(st, r.nrcpts));
	p[8] = store_keep(b, store_pg_array(diag, r.nrcpts));
	p[9] = c->rq->suppression_scope ? c->rq->suppression_scope : "user";
	p[10] = store_keep(b, xasprintf("%d", c->rq->soft_bounce_count));
	p[11] = store_keep(b, xasprintf("%d", c->rq->soft_bounce_window));
	store_verp(c, b, p + 12);
	store_add(b, STMT_OTHER,
		  "SELECT postroom_report_store($1::uuid, $2, $3,"
		  " COALESCE(postroom_verp_message_id($13, $14), $4), $5::text[], $6::text[],"
		  " $7::text[], $8::text[], $9::text[], $10, $11::integer, $12::integer)",
		  14, p, NULL, NULL);
	free(addr);
	free(kind);
	free(act);
	free(st);
	free(diag);
	mail_class_report_free(&r);
}

/* store_new - a message not stored before: its statements join the
 * batch (sent with the commit, store_finish) */
int store_new(struct store_ctx *c, struct store_batch *b)
{
	if (store_new_id(c) < 0)
		return -1;
	store_insert_email(c, b);
	/* before the recipients: their trigger writes the 'new' event, whose
	 * data carries the class (sql/022) */
	store_report(c, b);
	store_insert_rcpts(c, b);
	if (store_attachments(c, b) < 0 || store_raw(c, b) < 0)
		return -1;
	return 0;
}

/* store_begin_find - BEGIN, the identity lock and the lookup of the
 * stored email in one round trip: 1 found, 0 not, -1 */
static int store_begin_find(struct store_ctx *c)
{
	static const int lens[1] = { SHA256_LEN }, fmts[1] = { 1 };
	const char *lp[1], *fp[1] = { (const char *)c->sp->id }, *op[3];
	struct db_stmt st[4];
	enum db_err_class cls;
	char key[32], *err = NULL, *arr[2] = { NULL, NULL };
	size_t n = 0, k, find;
	int found = -1;

	snprintf(key, sizeof(key), "%lld", store_lock_key(c->sp->id));
	lp[0] = key;
	memset(st, 0, sizeof(st));
	st[n++].sql = "BEGIN";
	if (c->nrcpts > 0) {
		store_owners_params(c, arr);
		op[0] = arr[0];
		op[1] = arr[1];
		op[2] = c->rq->postmaster_address;
		st[n].sql = STORE_OWNERS_SQL;
		st[n].nparams = 3;
		st[n++].params = op;
	}
	st[n].sql = "SELECT pg_advisory_xact_lock($1::bigint)";
	st[n].nparams = 1;
	st[n++].params = lp;
	find = n;
	st[n].sql = STORE_FIND_SQL;
	st[n].nparams = 1;
	st[n].params = fp;
	st[n].lengths = lens;
	st[n++].formats = fmts;
	if (db_pipeline(c->db, st, n, &cls, &err) < 0) {
		store_fail(c, cls, err);
	} else {
		if (c->nrcpts > 0)
			store_apply_owners(c, st[1].res);
		found = PQntuples(st[find].res) > 0;
		if (found) {
			snprintf(c->res->email_id, sizeof(c->res->email_id), "%s",
				 PQgetvalue(st[find].res, 0, 0));
			snprintf(c->res->received_at, sizeof(c->res->received_at), "%s",
				 PQgetvalue(st[find].res, 0, 1));
		}
	}
	for (k = 0; k < n; k++)
		PQclear(st[k].res);
	free(arr[0]);
	free(arr[1]);
	return found;
}

/* store_finish - threading (a new email), NOTIFY and COMMIT, with
 * whatever the batch holds, in one round trip */
static int store_finish(struct store_ctx *c, int found, struct store_batch *b)
{
	const char *p[1] = { c->res->email_id };

	if (!found)
		store_add(b, STMT_OTHER, "SELECT postroom_thread_email($1::uuid)", 1, p, NULL,
			  NULL);
	if (!found || c->res->newly_delivered > 0)
		store_add(b, STMT_OTHER, "SELECT pg_notify('postroom_new_email', $1)", 1, p, NULL,
			  NULL);
	store_add(b, STMT_OTHER, "COMMIT", 0, NULL, NULL, NULL);
	return store_batch_run(c, b);
}

/* store_us - microseconds since *t; *t becomes now */
long store_us(struct timespec *t)
{
	struct timespec now;
	long us;

	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long)((now.tv_sec - t->tv_sec) * 1000000L + (now.tv_nsec - t->tv_nsec) / 1000);
	*t = now;
	return us;
}

/* store_tx - one attempt: BEGIN ... COMMIT */
static int store_tx(struct store_ctx *c)
{
	struct store_batch b;
	struct timespec t;
	int found;

	memset(&b, 0, sizeof(b));
	b.cur = c;
	clock_gettime(CLOCK_MONOTONIC, &t);
	if ((found = store_begin_find(c)) < 0)
		goto fail;
	if (c->rq->recipient_validation && !c->rq->sent && c->nrcpts == 1 &&
	    c->res->nunknown == 1 && !c->rcpts[0].postmaster) {
		c->unknown_rcpt = 1;
		store_fail(c, DB_PERMANENT,
			   xasprintf("%s: recipient address unknown", c->res->unknown[0]));
		goto fail;
	}
	c->res->duplicate = found;
	if ((found ? store_redeliver(c) : store_new(c, &b)) < 0)
		goto fail;
	c->res->us_sql = store_us(&t);
	if (store_finish(c, found, &b) < 0)
		goto fail;
	c->res->us_commit = store_us(&t);
	store_batch_free(&b);
	return 0;
fail:
	store_batch_free(&b);
	db_rollback(c->db);
	return -1;
}

/* store_result_reset - forget what a failed attempt put in the result */
void store_result_reset_tx(struct store_result *r)
{
	size_t i;

	for (i = 0; i < r->nnotify; i++)
		free(r->notify_users[i]);
	xfree(&r->notify_users);
	r->nnotify = 0;
	r->newly_delivered = 0;
	r->duplicate = 0;
	r->email_id[0] = r->received_at[0] = '\0';
	r->blobs_reuploaded = 0;
	free(r->blob_recheck_error);
	r->blob_recheck_error = NULL;
}

/* store_session_init - the store's statements take array parameters
 * (the recipients, the attachments): PostgreSQL's plan cache then keeps
 * choosing a custom plan, planning them again at every message. The
 * recipients' owner query was planned at each of 2,306 messages, 0.18 ms
 * a message, more than it ran (pg_stat_statements with track_planning,
 * bench/lmtp-bench's messages at one session); its generic plan is the
 * same index lookups. So a connection that stores many messages keeps
 * one generic plan per statement. */
int store_session_init(struct db *db, char **error_r)
{
	enum db_err_class cls;

	return db_cmd(db, "SET plan_cache_mode = force_generic_plan", 0, NULL, &cls, error_r);
}

/* store_retryable - a deadlock or serialization failure */
int store_retryable(struct db *db)
{
	const char *st = db_last_sqlstate(db);

	return st && (strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0);
}

void store_ctx_init(struct store_ctx *c, struct db *db, const struct store_spool *sp,
		    const struct mime_msg *m, const struct store_request *rq,
		    struct store_result *res)
{
	memset(res, 0, sizeof(*res));
	memset(c, 0, sizeof(*c));
	c->db = db;
	c->sp = sp;
	c->m = m;
	c->rq = rq;
	c->res = res;
}

void store_ctx_free(struct store_ctx *c)
{
	size_t i;

	for (i = 0; i < c->nrcpts; i++)
		free(c->rcpts[i].user_id);
	xfree(&c->rcpts);
	c->nrcpts = 0;
	xfree(&c->sent_by);
	xfree(&c->spam_reason);
	xfree(&c->blob_s3);
	free(c->auth_results);
	c->auth_results = NULL;
	xfree(&c->error);
}

int store_ctx_inline(const struct store_ctx *c)
{
	size_t i;

	if (c->sp->len - c->sp->start > STORE_INLINE_MAX)
		return 0;
	for (i = 0; i < c->m->natts; i++)
		if (c->m->atts[i].size > STORE_INLINE_MAX && !(c->blob_s3 && c->blob_s3[i]))
			return 0; /* COPY; one in the object store is a row without content */
	return 1;
}

enum store_status store_message(struct db *db, const struct store_spool *sp,
				const struct mime_msg *m, const struct store_request *rq,
				struct store_result *res, char **error_r)
{
	struct store_ctx c;
	enum store_status st = STORE_OK;

	store_ctx_init(&c, db, sp, m, rq, res);
	/* Every database error defers (MISSION.md: any failure of storage is
	 * temporary, the MTA retries): even a "permanent" one such as a schema
	 * that was not migrated is the operator's to fix, not the sender's. */
	store_resolve_rcpts(&c);
	if (store_resolve_sender(&c) < 0 || store_blobs_upload(&c) < 0) {
		st = STORE_TEMPFAIL;
	} else {
		for (res->attempts = 1; store_tx(&c) < 0; res->attempts++) {
			if (c.unknown_rcpt || res->attempts >= STORE_ATTEMPTS ||
			    !store_retryable(db)) {
				st = c.unknown_rcpt ? STORE_UNKNOWN_RCPT
				     : c.too_big    ? STORE_PERMFAIL
						    : STORE_TEMPFAIL;
				break;
			}
			store_result_reset_tx(res);
			xfree(&c.error);
		}
	}
	if (st == STORE_OK)
		store_blobs_recheck(&c);
	if (st != STORE_OK) {
		*error_r = c.error ? c.error : xstrdup("database error");
		c.error = NULL;
	}
	store_ctx_free(&c);
	return st;
}

void store_result_free(struct store_result *r)
{
	size_t i;

	store_result_reset_tx(r);
	for (i = 0; i < r->nunknown; i++)
		free(r->unknown[i]);
	xfree(&r->unknown);
	r->nunknown = 0;
}
