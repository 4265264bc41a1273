/* verify.h - the decision of authd once the rate limiter and the cache
 * have let a request through: prefix lookup, exactly one bcrypt, then the
 * user, scope, revocation and expiry checks. Runs on a worker thread. */
#ifndef POSTROOM_AUTHD_VERIFY_H
#define POSTROOM_AUTHD_VERIFY_H

#include <time.h>

#include "apikey.h"
#include "cache.h"

/* One stored key, as a backend returns it. */
struct authd_keyrow {
	char key_id[AUTHD_ID_MAX];
	char user_id[AUTHD_ID_MAX];
	char hash[APIKEY_HASH_MAX];
	char address[256];    /* the user's primary address, canonical */
	int has_scope;        /* the key carries the scope asked for */
	long long expires_at; /* Unix seconds; 0 = never */
	int expired;          /* by the database's clock */
};

/* A key store (PostgreSQL in the daemon, a static table in unit tests). */
struct authd_backend {
	/* lookup - the active (not revoked) key with this prefix whose
	 * owner's primary address is address (canonical). 1 found (row_r
	 * filled), 0 none, -1 temporary failure with *error_r (caller frees). */
	int (*lookup)(void *ctx, const char *prefix, const char *address, const char *scope,
		      struct authd_keyrow *row_r, char **error_r);
	void *ctx;
};

enum authd_verdict {
	AUTHD_OK = 0,
	AUTHD_FAIL_INVALID, /* unknown user, unknown key, wrong key: one answer */
	AUTHD_FAIL_SCOPE,   /* right key, lacks the scope */
	AUTHD_FAIL_EXPIRED, /* right key, expired */
	AUTHD_TEMPFAIL      /* key store unreachable */
};

struct authd_verify_result {
	enum authd_verdict verdict;
	struct authd_cache_val val; /* filled on AUTHD_OK */
	int bcrypts;                /* bcrypt runs done (always 1 unless TEMPFAIL) */
	double seconds;             /* wall time of lookup and bcrypt, when bcrypts */
	char *error;                /* TEMPFAIL: why (caller frees) */
};

/* authd_verify - decide for address (canonical; NULL when what the client
 * sent is not an address) and key. dummy_hash is a bcrypt hash of a random
 * key at the configured cost, verified against when nothing was found so
 * that an unknown user or key costs the same time as a wrong key. */
void authd_verify(const struct authd_backend *be, const char *dummy_hash, const char *address,
		  const char *key, const char *scope, struct authd_verify_result *r);

/* authd_verdict_reason - the text of FAIL reason= for a verdict */
const char *authd_verdict_reason(enum authd_verdict v);

#endif
