/*
 * NAME
 *	lmtpd_pool - a fixed-size pool of PostgreSQL connections
 * DESCRIPTION
 *	Sessions borrow a connection for one recipient lookup or one store
 *	and give it back. Connections are made lazily, up to lmtpd.pool_size,
 *	and each keeps its prepared statements (lib/db.c) for its lifetime,
 *	with generic plans (store_session_init: planned once, not at every
 *	message).
 *	An idle connection is checked before it is handed out, so a database
 *	restart between two transactions costs no failed delivery when the
 *	server said goodbye; one that broke while in use is closed on return,
 *	so only the transaction in flight fails (4xx) and the next one gets a
 *	fresh connection.
 * NEVER
 *	logs the conninfo; holds its lock while connecting.
 * CONFIGURATION
 *	database.conninfo, database.connect_timeout, lmtpd.pool_size
 */
#include "lmtpd_pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "schema_check.h"
#include "store_mail.h"
#include "xalloc.h"

struct lmtpd_pool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	char *conninfo;
	int connect_timeout;
	size_t size;
	size_t out; /* connections lent or being made */
	struct db **idle;
	size_t nidle;
	int healthy;
};

struct lmtpd_pool *lmtpd_pool_new(const char *conninfo, int connect_timeout, size_t size)
{
	struct lmtpd_pool *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	p->conninfo = xstrdup(conninfo ? conninfo : "");
	p->connect_timeout = connect_timeout;
	p->size = size > 0 ? size : 1;
	p->idle = xcalloc(p->size, sizeof(*p->idle));
	p->healthy = 1;
	return p;
}

void lmtpd_pool_free(struct lmtpd_pool **pp)
{
	struct lmtpd_pool *p = *pp;
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nidle; i++)
		db_close(&p->idle[i]);
	free(p->idle);
	free(p->conninfo);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	xfree(pp);
}

struct db *lmtpd_pool_get(struct lmtpd_pool *p, char **error_r)
{
	struct db *db = NULL;

	pthread_mutex_lock(&p->lock);
	while (p->nidle == 0 && p->out >= p->size)
		pthread_cond_wait(&p->freed, &p->lock);
	if (p->nidle > 0)
		db = p->idle[--p->nidle];
	p->out++;
	pthread_mutex_unlock(&p->lock);
	if (db && db_check(db) < 0)
		db_close(&db); /* the server went away while it was idle */
	if (db == NULL &&
	    (db = schema_check_connect(p->conninfo, p->connect_timeout, error_r)) != NULL &&
	    store_session_init(db, error_r) < 0)
		db_close(&db);
	pthread_mutex_lock(&p->lock);
	p->healthy = db != NULL;
	if (db == NULL) {
		p->out--;
		pthread_cond_signal(&p->freed);
	}
	pthread_mutex_unlock(&p->lock);
	return db;
}

void lmtpd_pool_put(struct lmtpd_pool *p, struct db **dbp)
{
	struct db *db = *dbp;

	*dbp = NULL;
	if (db == NULL)
		return;
	if (PQstatus(db_conn(db)) != CONNECTION_OK)
		db_close(&db);
	else if (PQtransactionStatus(db_conn(db)) != PQTRANS_IDLE)
		db_rollback(db);
	pthread_mutex_lock(&p->lock);
	p->out--;
	if (db)
		p->idle[p->nidle++] = db;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

int lmtpd_pool_healthy(struct lmtpd_pool *p)
{
	int h;

	pthread_mutex_lock(&p->lock);
	h = p->healthy;
	pthread_mutex_unlock(&p->lock);
	return h;
}
