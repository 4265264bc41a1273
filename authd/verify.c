/*
 * NAME
 *	verify - one uncached authentication decision
 * DESCRIPTION
 *	Looks the key up by its 12-character prefix among the active keys of
 *	the user whose primary address was given (aliases do not log in: a
 *	login name is the account's one identity), runs exactly one bcrypt,
 *	and only then tells a missing scope or an expired key apart: whoever
 *	learns those two answers has proven possession of the key. Unknown
 *	user, unknown or revoked key and wrong key all give the same verdict
 *	after the same one bcrypt (against a dummy hash when nothing was
 *	found), so neither the answer nor its timing enumerates accounts.
 *	The wall time of a verification is measured (the queue length of
 *	authd is derived from it).
 * NEVER
 *	runs more than one bcrypt; logs or copies the key.
 */
#include "verify.h"

#include <string.h>
#include <time.h>

#include "xalloc.h"

const char *authd_verdict_reason(enum authd_verdict v)
{
	switch (v) {
	case AUTHD_OK: return "";
	case AUTHD_FAIL_SCOPE: return "API key not valid for SMTP";
	case AUTHD_FAIL_EXPIRED: return "API key expired";
	case AUTHD_TEMPFAIL: return "Temporary authentication failure, try again later";
	case AUTHD_FAIL_INVALID: break;
	}
	return "Invalid address or API key";
}

/* authd_verify_clock - monotonic seconds */
static double authd_verify_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* authd_verify_once - the decision, untimed */
static void authd_verify_once(const struct authd_backend *be, const char *dummy_hash,
			      const char *address, const char *key, const char *scope,
			      struct authd_verify_result *r)
{
	char prefix[APIKEY_PREFIX_LEN + 1];
	struct authd_keyrow row;
	int found = 0;

	memset(r, 0, sizeof(*r));
	memset(&row, 0, sizeof(row));
	if (address != NULL && apikey_prefix(key, prefix) == 0) {
		found = be->lookup(be->ctx, prefix, address, scope, &row, &r->error);
		if (found < 0) {
			r->verdict = AUTHD_TEMPFAIL;
			return;
		}
	}
	r->bcrypts = 1;
	if (!found) {
		(void)apikey_verify(key, dummy_hash);
		r->verdict = AUTHD_FAIL_INVALID;
		return;
	}
	if (!apikey_verify(key, row.hash))
		r->verdict = AUTHD_FAIL_INVALID;
	else if (!row.has_scope)
		r->verdict = AUTHD_FAIL_SCOPE;
	else if (row.expired)
		r->verdict = AUTHD_FAIL_EXPIRED;
	else {
		r->verdict = AUTHD_OK;
		memcpy(r->val.key_id, row.key_id, sizeof(r->val.key_id));
		memcpy(r->val.user_id, row.user_id, sizeof(r->val.user_id));
		memcpy(r->val.address, row.address, sizeof(r->val.address));
		r->val.expires_at = row.expires_at;
	}
}

void authd_verify(const struct authd_backend *be, const char *dummy_hash, const char *address,
		  const char *key, const char *scope, struct authd_verify_result *r)
{
	double start = authd_verify_clock();

	authd_verify_once(be, dummy_hash, address, key, scope, r);
	if (r->bcrypts)
		r->seconds = authd_verify_clock() - start;
}
