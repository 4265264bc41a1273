/*
 * NAME
 *	store_group - several messages in one transaction (group commit)
 * DESCRIPTION
 *	When several LMTP sessions finish a message at once, each commit
 *	costs a WAL flush, a round trip and the database-wide NOTIFY lock;
 *	storing the messages that are ready together pays that once. The
 *	transaction is store_mail's, widened: one round trip for BEGIN, the
 *	owners of every message's recipients, the identity locks of all the
 *	messages (one statement, sorted), the lookups of stored copies, the
 *	attachment-digest locks of all of them (sorted) and the Message-Id
 *	locks threading takes (sorted); then one round trip with every new
 *	message's rows, the threading, the NOTIFYs and COMMIT. Locks are taken
 *	in the order store_message takes them (identity, attachments,
 *	Message-Ids, threads), each kind sorted, so groups and single stores
 *	do not deadlock on them. A message that cannot join (a part needing
 *	COPY, a --sent copy, a second copy of a message already in the group,
 *	one with an attachment for the object store that its caller did not
 *	upload already (store_uploads_put: then only rows without content,
 *	which join))
 *	and every message of a group whose transaction failed are stored by
 *	store_message alone, which keeps its retries and its exactly-once.
 * NEVER
 *	logs; leaves part of a group behind; gives a job a status that
 *	store_message would not have given it.
 */
#include "store_group.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "xalloc.h"

#include "store_mail_impl.h"

/* Message-Id locks as postroom_thread_email takes them (sql/008) */
#define GROUP_MID_LOCK_SQL                                                                \
	"SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"                           \
	" hashtextextended('postroom-mid:' || m, 0) AS k FROM unnest($1::text[]) AS u(m)" \
	" WHERE m IS NOT NULL AND m <> '' ORDER BY 1) s"

enum group_state { GROUP_IN, GROUP_ALONE, GROUP_DONE };

struct store_group {
	struct db *db;
	struct store_job *jobs;
	struct store_ctx *ctx; /* one per job */
	enum group_state *state;
	int *found; /* already stored */
	size_t n, nin;
	struct store_ctx shared; /* failures of the shared statements */
};

/* A growing list of strings for an array parameter. */
struct group_list {
	char **v;
	size_t n;
};

static void group_list_add(struct group_list *l, char *s)
{
	l->v = xgrow(l->v, l->n, sizeof(char *));
	l->v[l->n++] = s;
}

/* group_list_array - the list as an array literal; the list is freed */
static char *group_list_array(struct group_list *l)
{
	char *a = store_pg_array((const char *const *)l->v, l->n);
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	xfree(&l->v);
	l->n = 0;
	return a;
}

/* group_lock_params - the keys of the identity locks, of the
 * attachment locks (NULL: none) and the Message-Ids, as arrays */
static void group_lock_params(struct store_group *gr, char *arr[3])
{
	struct group_list ids = { NULL, 0 }, atts = { NULL, 0 }, mids = { NULL, 0 };
	const struct mime_msg *m;
	size_t i, k;

	for (i = 0; i < gr->n; i++) {
		if (gr->state[i] != GROUP_IN)
			continue;
		m = gr->ctx[i].m;
		group_list_add(&ids, xasprintf("%lld", store_lock_key(gr->ctx[i].sp->id)));
		for (k = 0; k < m->natts; k++)
			group_list_add(&atts, store_att_key(&m->atts[k]));
		group_list_add(&mids, xstrdup(m->message_id ? m->message_id : ""));
		if (m->in_reply_to)
			group_list_add(&mids, xstrdup(m->in_reply_to));
		for (k = 0; k < m->nreferences; k++)
			group_list_add(&mids, xstrdup(m->references[k]));
	}
	arr[0] = group_list_array(&ids);
	arr[1] = atts.n > 0 ? group_list_array(&atts) : NULL;
	arr[2] = group_list_array(&mids);
}

/* group_apply_find - the owners and the stored copy of message i */
static void group_apply_find(struct store_group *gr, size_t i, const PGresult *owners,
			     const PGresult *find)
{
	struct store_result *r = gr->ctx[i].res;

	if (owners)
		store_apply_owners(&gr->ctx[i], owners);
	gr->found[i] = PQntuples(find) > 0;
	if (gr->found[i]) {
		snprintf(r->email_id, sizeof(r->email_id), "%s", PQgetvalue(find, 0, 0));
		snprintf(r->received_at, sizeof(r->received_at), "%s", PQgetvalue(find, 0, 1));
	}
}

/* group_begin_find - BEGIN, owners, locks and lookups in one round trip */
static int group_begin_find(struct store_group *gr)
{
	static const int lens[1] = { SHA256_LEN }, fmts[1] = { 1 };
	struct db_stmt *st = xcalloc(2 * gr->n + 4, sizeof(*st));
	size_t *owners_at = xcalloc(gr->n, sizeof(size_t)),
	       *find_at = xcalloc(gr->n, sizeof(size_t));
	char *(*arr)[2] = xcalloc(gr->n, sizeof(*arr)), *locks[3];
	const char *(*op)[3] = xcalloc(gr->n, sizeof(*op)), **fp = xcalloc(gr->n, sizeof(char *));
	const char *lp[3];
	enum db_err_class cls;
	char *err = NULL;
	size_t n = 0, i;
	int rc;

	st[n++].sql = "BEGIN";
	for (i = 0; i < gr->n; i++) {
		if (gr->state[i] != GROUP_IN || gr->ctx[i].nrcpts == 0)
			continue;
		store_owners_params(&gr->ctx[i], arr[i]);
		op[i][0] = arr[i][0];
		op[i][1] = arr[i][1];
		op[i][2] = gr->ctx[i].rq->postmaster_address;
		owners_at[i] = n;
		st[n].sql = STORE_OWNERS_SQL;
		st[n].nparams = 3;
		st[n++].params = op[i];
	}
	group_lock_params(gr, locks);
	lp[0] = locks[0];
	lp[1] = locks[1];
	lp[2] = locks[2];
	st[n].sql = STORE_LOCK_KEYS_SQL;
	st[n].nparams = 1;
	st[n++].params = &lp[0];
	for (i = 0; i < gr->n; i++) {
		if (gr->state[i] != GROUP_IN)
			continue;
		fp[i] = (const char *)gr->ctx[i].sp->id;
		find_at[i] = n;
		st[n].sql = STORE_FIND_SQL;
		st[n].nparams = 1;
		st[n].params = &fp[i];
		st[n].lengths = lens;
		st[n++].formats = fmts;
	}
	if (locks[1]) {
		st[n].sql = STORE_LOCK_KEYS_SQL;
		st[n].nparams = 1;
		st[n++].params = &lp[1];
	}
	st[n].sql = GROUP_MID_LOCK_SQL;
	st[n].nparams = 1;
	st[n++].params = &lp[2];
	rc = db_pipeline(gr->db, st, n, &cls, &err);
	if (rc < 0)
		store_fail(&gr->shared, cls, err);
	for (i = 0; rc == 0 && i < gr->n; i++)
		if (gr->state[i] == GROUP_IN)
			group_apply_find(gr, i, gr->ctx[i].nrcpts ? st[owners_at[i]].res : NULL,
					 st[find_at[i]].res);
	for (i = 0; i < n; i++)
		PQclear(st[i].res);
	for (i = 0; i < gr->n; i++) {
		free(arr[i][0]);
		free(arr[i][1]);
	}
	free(locks[0]);
	free(locks[1]);
	free(locks[2]);
	free(arr);
	free(op);
	free(fp);
	free(st);
	free(owners_at);
	free(find_at);
	return rc;
}

/* group_unknown - the one recipient of message i is unknown (validation
 * on): it is refused, as store_message refuses it, and not stored */
static int group_unknown(struct store_group *gr, size_t i)
{
	struct store_ctx *c = &gr->ctx[i];

	if (!c->rq->recipient_validation || c->rq->sent || c->nrcpts != 1 ||
	    c->res->nunknown != 1 || c->rcpts[0].postmaster)
		return 0;
	c->unknown_rcpt = 1;
	store_fail(c, DB_PERMANENT, xasprintf("%s: recipient address unknown", c->res->unknown[0]));
	return 1;
}

/* group_finish - threading and NOTIFY of every message, then COMMIT */
static int group_finish(struct store_group *gr, struct store_batch *b)
{
	struct store_ctx *c;
	const char *p[1];
	size_t i;

	for (i = 0; i < gr->n; i++) {
		c = &gr->ctx[i];
		if (gr->state[i] != GROUP_IN || c->unknown_rcpt)
			continue;
		b->cur = c;
		p[0] = c->res->email_id;
		if (!gr->found[i])
			store_add(b, STMT_OTHER, "SELECT postroom_thread_email($1::uuid)", 1, p,
				  NULL, NULL);
		if (!gr->found[i] || c->res->newly_delivered > 0)
			store_add(b, STMT_OTHER, "SELECT pg_notify('postroom_new_email', $1)", 1, p,
				  NULL, NULL);
	}
	b->cur = NULL;
	store_add(b, STMT_OTHER, "COMMIT", 0, NULL, NULL, NULL);
	return store_batch_run(&gr->shared, b);
}

/* group_tx - the shared transaction: 0 committed, -1 rolled back */
static int group_tx(struct store_group *gr)
{
	struct store_batch b;
	struct store_ctx *c;
	struct timespec t;
	long us_sql, us_commit;
	size_t i;

	memset(&b, 0, sizeof(b));
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (group_begin_find(gr) < 0)
		goto fail;
	for (i = 0; i < gr->n; i++) {
		c = &gr->ctx[i];
		if (gr->state[i] != GROUP_IN || group_unknown(gr, i))
			continue;
		c->res->duplicate = gr->found[i];
		c->atts_locked = 1;
		b.cur = c;
		if ((gr->found[i] ? store_redeliver(c) : store_new(c, &b)) < 0)
			goto fail;
	}
	us_sql = store_us(&t);
	if (group_finish(gr, &b) < 0)
		goto fail;
	us_commit = store_us(&t);
	for (i = 0; i < gr->n; i++) {
		if (gr->state[i] != GROUP_IN)
			continue;
		gr->ctx[i].res->attempts = 1;
		gr->ctx[i].res->us_sql = us_sql;
		gr->ctx[i].res->us_commit = us_commit;
	}
	store_batch_free(&b);
	return 0;
fail:
	store_batch_free(&b);
	db_rollback(gr->db);
	return -1;
}

/* group_sort - which jobs join the shared transaction (none when
 * fewer than two can) */
static void group_sort(struct store_group *gr)
{
	struct store_job *jb = gr->jobs;
	size_t i, j, can = 0;

	for (i = 0; i < gr->n; i++) {
		jb[i].status = STORE_OK;
		jb[i].error = NULL;
		jb[i].grouped = 0;
		store_ctx_init(&gr->ctx[i], gr->db, jb[i].sp, jb[i].m, jb[i].rq, jb[i].res);
		/* uploaded by the caller already: only rows without content */
		if (jb[i].rq->blob_s3)
			store_blobs_upload(&gr->ctx[i]);
		gr->state[i] =
			jb[i].rq->sent || !store_ctx_inline(&gr->ctx[i]) ||
					(store_ctx_uploads(&gr->ctx[i]) && !jb[i].rq->blob_s3)
				? GROUP_ALONE
				: GROUP_IN;
		for (j = 0; gr->state[i] == GROUP_IN && j < i; j++)
			if (gr->state[j] == GROUP_IN &&
			    memcmp(jb[j].sp->id, jb[i].sp->id, SHA256_LEN) == 0)
				gr->state[i] = GROUP_ALONE; /* after the first copy commits */
		can += gr->state[i] == GROUP_IN;
	}
	for (i = 0; i < gr->n; i++) {
		if (gr->state[i] != GROUP_IN)
			continue;
		if (can < 2) {
			gr->state[i] = GROUP_ALONE;
			continue;
		}
		store_resolve_rcpts(&gr->ctx[i]);
		if (store_resolve_sender(&gr->ctx[i]) < 0) {
			jb[i].status = STORE_TEMPFAIL;
			jb[i].error =
				gr->ctx[i].error ? gr->ctx[i].error : xstrdup("database error");
			gr->ctx[i].error = NULL;
			gr->state[i] = GROUP_DONE;
			continue;
		}
		gr->nin++;
	}
}

/* group_settle - the outcome of the shared transaction for its jobs */
static void group_settle(struct store_group *gr, int committed)
{
	struct store_job *jb;
	size_t i;

	for (i = 0; i < gr->n; i++) {
		if (gr->state[i] != GROUP_IN)
			continue;
		jb = &gr->jobs[i];
		if (!committed) {
			gr->state[i] = GROUP_ALONE;
			continue;
		}
		gr->state[i] = GROUP_DONE;
		if (gr->ctx[i].unknown_rcpt) {
			jb->status = STORE_UNKNOWN_RCPT;
			jb->error = gr->ctx[i].error;
			gr->ctx[i].error = NULL;
		} else {
			jb->grouped = (int)gr->nin;
		}
	}
}

void store_messages(struct db *db, struct store_job *jobs, size_t n)
{
	struct store_group gr;
	size_t i;

	memset(&gr, 0, sizeof(gr));
	gr.db = db;
	gr.jobs = jobs;
	gr.n = n;
	gr.ctx = xcalloc(n ? n : 1, sizeof(*gr.ctx));
	gr.state = xcalloc(n ? n : 1, sizeof(*gr.state));
	gr.found = xcalloc(n ? n : 1, sizeof(*gr.found));
	gr.shared.db = db;
	group_sort(&gr);
	group_settle(&gr, gr.nin >= 2 && group_tx(&gr) == 0);
	for (i = 0; i < n; i++) {
		store_ctx_free(&gr.ctx[i]);
		if (gr.state[i] != GROUP_ALONE)
			continue;
		/* alone, or again alone after the shared transaction failed */
		store_result_free(jobs[i].res);
		jobs[i].status = store_message(db, jobs[i].sp, jobs[i].m, jobs[i].rq, jobs[i].res,
					       &jobs[i].error);
	}
	free(gr.shared.error);
	free(gr.ctx);
	free(gr.state);
	free(gr.found);
}
