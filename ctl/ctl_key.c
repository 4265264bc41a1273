/*
 * NAME
 *	ctl_key - postroomctl key create|list|revoke|check
 * DESCRIPTION
 *	Creates API keys (lib/apikey.c), shows the key exactly once, stores
 *	only its 12-character prefix and bcrypt hash. "key check" reads a key
 *	from standard input and tells whether it would authenticate the user
 *	for a scope (one bcrypt, as authd does). "key revoke" commits the
 *	revocation, then asks every running postroom-authd to confirm that
 *	it has dropped the key (NOTIFY postroom_authd_sync with a number of
 *	authd_sync_seq, sql/011_authd_instances.sql) and waits for the
 *	confirmations, at most authd.revoke_wait seconds; an authd that did
 *	not confirm is named in a warning and the exit status is 75.
 * NEVER
 *	takes a key on the command line (other users could read it in ps);
 *	prints a key except once, at creation.
 * CONFIGURATION
 *	authd.revoke_wait
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "apikey.h"
#include "crypto.h"
#include "xalloc.h"

#define CTL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* EX_TEMPFAIL: the key is revoked, but a running authd did not confirm it */
#define CTL_KEY_UNCONFIRMED 75
/* an authd refreshes authd_instances.last_seen every 5 s (authd/pgsql.c):
 * it counts as running while seen within 3 of those */
#define CTL_KEY_AUTHD_LIVE "15"
#define CTL_KEY_POLL_NS 10000000L /* 10 ms between looks at the confirmations */

static const char *const ctl_key_scopes[] = { "smtp",      "pop3", "imap", "api:read",
					      "api:write", "app",  NULL };

/* ctl_key_check_scopes - every comma-separated scope is known */
static int ctl_key_check_scopes(const char *list)
{
	char *copy = xstrdup(list), *save = NULL, *s;
	int i, known, rc = 0;

	for (s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		for (known = 0, i = 0; ctl_key_scopes[i]; i++)
			known |= strcmp(s, ctl_key_scopes[i]) == 0;
		if (!known) {
			ctl_fail(
				CTL_USAGE,
				"bad scope '%s' (known: smtp, pop3, imap, api:read, api:write, app)",
				s);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && (list[0] == '\0' || strstr(list, ",,") || list[strlen(list) - 1] == ',')) {
		ctl_fail(CTL_USAGE, "bad scope list '%s'", list);
		rc = -1;
	}
	free(copy);
	return rc;
}

/* ctl_key_scope_array - the comma-separated list as a JSON array */
static json_t *ctl_key_scope_array(const char *list)
{
	char *copy = xstrdup(list), *save = NULL, *s;
	json_t *arr = json_array();

	for (s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save))
		json_array_append_new(arr, json_string(s));
	free(copy);
	return arr;
}

/* ctl_key_expiry - resolve --expires (timestamp or interval) to an ISO
 * timestamp in the future (caller frees), or exit 64 */
static char *ctl_key_expiry(struct ctl *ctl, const char *when)
{
	const char *params[1] = { when }, *state = NULL;
	PGresult *res = ctl_query_try(ctl,
				      "SELECT t, t > now() FROM (SELECT CASE WHEN $1 ~ '^[0-9]{4}-'"
				      " THEN $1::timestamptz ELSE now() + $1::interval END AS t) s",
				      1, params, &state);
	char *out;

	if (res == NULL)
		exit(ctl_fail(CTL_USAGE,
			      "invalid --expires '%s': use a timestamp (2027-01-31) "
			      "or an interval ('90 days')",
			      when));
	if (PQgetvalue(res, 0, 1)[0] != 't') {
		PQclear(res);
		exit(ctl_fail(CTL_USAGE, "--expires '%s' is in the past", when));
	}
	out = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

/* ctl_key_insert - store a fresh key; retries on a prefix collision */
static PGresult *ctl_key_insert(struct ctl *ctl, const char *user_id, const char *name,
				const char *scopes, const char *expires, char key[APIKEY_LEN + 1])
{
	char prefix[APIKEY_PREFIX_LEN + 1], hash[APIKEY_HASH_MAX];
	const char *params[6] = { user_id, name, prefix, hash, scopes, expires }, *state = NULL;
	PGresult *res = NULL;
	int attempt;

	for (attempt = 0; attempt < 3 && res == NULL; attempt++) {
		if (apikey_generate(key) < 0 || apikey_prefix(key, prefix) < 0 ||
		    apikey_hash(key, (int)conf_int(ctl->conf, "apikey.bcrypt_cost"), hash) < 0)
			exit(ctl_fail(CTL_SOFTWARE, "cannot generate a key (no randomness?)"));
		res = ctl_query_try(
			ctl,
			"INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes, expires_at)"
			" VALUES ($1, $2, $3, $4, string_to_array($5, ','), $6::timestamptz)"
			" RETURNING id, " CTL_TS("expires_at"),
			6, params, &state);
		if (res == NULL && strcmp(state, "23505") != 0)
			exit(ctl_fail(CTL_SOFTWARE, "cannot store the key (SQLSTATE %s)", state));
	}
	if (res == NULL)
		exit(ctl_fail(CTL_SOFTWARE, "cannot store the key: prefix collisions"));
	return res;
}

static int ctl_key_create(struct ctl *ctl, int argc, char **argv)
{
	char *name = NULL, *scopes = NULL, *expires_in = NULL, *pos[1];
	struct ctl_opt opts[] = { { "--name", &name, 0 },
				  { "--scope", &scopes, 1 },
				  { "--expires", &expires_in, 0 },
				  { NULL, NULL, 0 } };
	char key[APIKEY_LEN + 1], *user = NULL, *user_id = NULL, *expires = NULL;
	PGresult *res = NULL;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0 || scopes == NULL)
		rc = ctl_usage(
			"key create USER-ADDRESS --scope SCOPE[,SCOPE...] [--name N] [--expires WHEN]");
	else if (ctl_key_check_scopes(scopes) < 0)
		rc = CTL_USAGE;
	else if ((user_id = ctl_user_id(ctl, user = ctl_canonical_address(pos[0]))) == NULL)
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", user);
	if (rc != CTL_OK)
		goto out;
	if (expires_in)
		expires = ctl_key_expiry(ctl, expires_in);
	res = ctl_key_insert(ctl, user_id, name, scopes, expires, key);
	if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:s, s:o, s:s#, s:o, s:o, s:s}", "id",
					 PQgetvalue(res, 0, 0), "user", user, "name",
					 name ? json_string(name) : json_null(), "prefix",
					 key + APIKEY_TAG_LEN, (int)APIKEY_PREFIX_LEN, "scopes",
					 ctl_key_scope_array(scopes), "expires_at",
					 ctl_json_text(res, 0, 1), "key", key));
	else
		printf("id:      %s\nuser:    %s\nscopes:  %s\nexpires: %s\nkey:     %s\n"
		       "(the key is shown only this once: store it now)\n",
		       PQgetvalue(res, 0, 0), user, scopes, ctl_val(res, 0, 1), key);
	crypto_wipe(key, sizeof(key));
out:
	PQclear(res);
	free(user);
	free(user_id);
	free(expires);
	free(name);
	free(scopes);
	free(expires_in);
	return rc;
}

static int ctl_key_list(struct ctl *ctl, const char *user_in)
{
	char *user = ctl_canonical_address(user_in), *user_id = ctl_user_id(ctl, user);
	const char *params[1] = { user_id };
	json_t *arr;
	PGresult *res;
	int i;

	if (user_id == NULL) {
		ctl_fail(CTL_REFUSED, "no such user: %s", user);
		free(user);
		return CTL_REFUSED;
	}
	res = ctl_query(
		ctl,
		"SELECT id, name, prefix, array_to_json(scopes), " CTL_TS("created_at") ", " CTL_TS("last_used_at") ", " CTL_TS(
			"expires_at") ", " CTL_TS("revoked_at") ","
								" CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
								"      WHEN expires_at <= now() THEN 'expired' ELSE 'active' END"
								" FROM api_keys WHERE user_id = $1 ORDER BY created_at, id",
		1, params);
	arr = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json)
			json_array_append_new(
				arr, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
					       "id", ctl_json_text(res, i, 0), "name",
					       ctl_json_text(res, i, 1), "prefix",
					       ctl_json_text(res, i, 2), "scopes",
					       ctl_json_parsed(res, i, 3), "created_at",
					       ctl_json_text(res, i, 4), "last_used_at",
					       ctl_json_text(res, i, 5), "expires_at",
					       ctl_json_text(res, i, 6), "revoked_at",
					       ctl_json_text(res, i, 7), "status",
					       ctl_json_text(res, i, 8)));
		else
			printf("%s\tpr_%s...\t%s\t%s\t%s\n", PQgetvalue(res, i, 0),
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 8), PQgetvalue(res, i, 3),
			       ctl_val(res, i, 1));
	}
	ctl_print_list(ctl, arr);
	PQclear(res);
	free(user);
	free(user_id);
	return CTL_OK;
}

/* ctl_key_sync_send - ask every authd to confirm all it has heard so far;
 * the number each must reach (caller frees) */
static char *ctl_key_sync_send(struct ctl *ctl)
{
	PGresult *res = ctl_query(ctl,
				  "SELECT n, pg_notify('postroom_authd_sync', n::text)"
				  " FROM (SELECT nextval('authd_sync_seq') AS n) s",
				  0, NULL);
	char *n = xstrdup(PQgetvalue(res, 0, 0));

	PQclear(res);
	return n;
}

/* ctl_key_sync_pending - the authd processes that have not confirmed sync
 * number n yet: those running (column 3 't') and those not seen lately
 * whose cache may still hold entries (seen within their cache TTL) */
static PGresult *ctl_key_sync_pending(struct ctl *ctl, const char *n)
{
	const char *params[1] = { n };

	return ctl_query(
		ctl,
		"SELECT host, pid, extract(epoch FROM now() - last_seen)::bigint,"
		" last_seen > now() - interval '" CTL_KEY_AUTHD_LIVE " seconds', cache_ttl"
		" FROM authd_instances WHERE synced < $1::bigint"
		" AND last_seen > now() - make_interval(secs => GREATEST(cache_ttl, " CTL_KEY_AUTHD_LIVE
		"))"
		" ORDER BY host, pid",
		1, params);
}

/* ctl_key_sync_live - rows of res that are running authd processes */
static int ctl_key_sync_live(PGresult *res)
{
	int i, n = 0;

	for (i = 0; i < PQntuples(res); i++)
		n += PQgetvalue(res, i, 3)[0] == 't';
	return n;
}

static double ctl_key_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ctl_key_sync_warn - one warning per authd in res; their JSON list */
static json_t *ctl_key_sync_warn(PGresult *res, long wait)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++) {
		const char *host = PQgetvalue(res, i, 0), *pid = PQgetvalue(res, i, 1);
		const char *ago = PQgetvalue(res, i, 2), *ttl = PQgetvalue(res, i, 4);

		if (PQgetvalue(res, i, 3)[0] == 't')
			fprintf(stderr,
				"postroomctl: warning: postroom-authd on %s (pid %s) did not confirm "
				"within %ld s that it dropped the key; it may accept the key from its "
				"cache for up to %s s more\n",
				host, pid, wait, ttl);
		else
			fprintf(stderr,
				"postroomctl: warning: postroom-authd on %s (pid %s) was last seen %s s "
				"ago (database connection lost?); if it still runs, it drops its whole "
				"cache when it reconnects, and until then it may accept the key from "
				"its cache for up to %s s\n",
				host, pid, ago, ttl);
		json_array_append_new(arr,
				      json_pack("{s:s, s:i, s:i}", "host", host, "pid", atoi(pid),
						"last_seen_seconds_ago", atoi(ago)));
	}
	return arr;
}

/* ctl_key_sync - wait until every running authd confirmed, at most wait
 * seconds; the authd processes that did not (JSON array) */
static json_t *ctl_key_sync(struct ctl *ctl, long wait)
{
	struct timespec pause = { 0, CTL_KEY_POLL_NS };
	double deadline = ctl_key_now() + (double)wait;
	char *n = ctl_key_sync_send(ctl);
	PGresult *res;
	json_t *arr;

	while (ctl_key_sync_live(res = ctl_key_sync_pending(ctl, n)) > 0 &&
	       ctl_key_now() < deadline) {
		PQclear(res);
		nanosleep(&pause, NULL);
	}
	arr = ctl_key_sync_warn(res, wait);
	PQclear(res);
	free(n);
	return arr;
}

static int ctl_key_revoke(struct ctl *ctl, const char *id)
{
	const char *params[1] = { id };
	long wait = (long)conf_int(ctl->conf, "authd.revoke_wait");
	json_t *unconfirmed;
	PGresult *res;
	int rc = CTL_OK;

	if (!ctl_is_uuid(id))
		return ctl_fail(CTL_USAGE, "invalid key id '%s' (a UUID, see key list)", id);
	res = ctl_query(ctl,
			"UPDATE api_keys SET revoked_at = now() WHERE id = $1"
			" AND revoked_at IS NULL RETURNING id",
			1, params);
	if (PQntuples(res) == 0) {
		PQclear(res);
		res = ctl_query(ctl, "SELECT 1 FROM api_keys WHERE id = $1", 1, params);
		rc = ctl_fail(CTL_REFUSED,
			      PQntuples(res) ? "key %s is already revoked" : "no such key: %s", id);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	if (!ctl->json) {
		printf("revoked key %s\n", id);
		fflush(stdout);
	}
	/* committed: now every running authd confirms that its cache dropped it */
	unconfirmed = wait > 0 ? ctl_key_sync(ctl, wait) : json_array();
	if (json_array_size(unconfirmed) > 0)
		rc = CTL_KEY_UNCONFIRMED;
	if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:o}", "revoked", id, "unconfirmed", unconfirmed));
	else
		json_decref(unconfirmed);
	return rc;
}

/* ctl_key_read_stdin - one line from stdin, newline removed */
static int ctl_key_read_stdin(char *key, size_t size)
{
	if (fgets(key, (int)size, stdin) == NULL)
		return -1;
	key[strcspn(key, "\r\n")] = '\0';
	return 0;
}

/* ctl_key_verdict - why a stored key does not authenticate, or NULL */
static const char *ctl_key_verdict(PGresult *res, const char *key, const char *scope)
{
	if (PQntuples(res) == 0)
		return "no active key with that prefix for this user";
	if (!apikey_verify(key, PQgetvalue(res, 0, 1)))
		return "key does not match";
	if (PQgetvalue(res, 0, 2)[0] == 't')
		return "key has expired";
	if (PQgetvalue(res, 0, 3)[0] != 't')
		return "key lacks the scope";
	return NULL;
}

static int ctl_key_check(struct ctl *ctl, int argc, char **argv)
{
	char *scope = NULL, *pos[1], key[256], prefix[APIKEY_PREFIX_LEN + 1];
	struct ctl_opt opts[] = { { "--scope", &scope, 0 }, { NULL, NULL, 0 } };
	const char *params[3], *why;
	char *user;
	PGresult *res;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0) {
		free(scope);
		return ctl_usage("key check USER-ADDRESS [--scope SCOPE] < KEY");
	}
	user = ctl_canonical_address(pos[0]);
	if (ctl_key_read_stdin(key, sizeof(key)) < 0 || apikey_prefix(key, prefix) < 0) {
		crypto_wipe(key, sizeof(key));
		free(user);
		free(scope);
		return ctl_fail(CTL_REFUSED, "invalid: not a well-formed key on standard input");
	}
	params[0] = prefix;
	params[1] = user;
	params[2] = scope ? scope : "smtp";
	res = ctl_query(
		ctl,
		"SELECT k.id, k.key_hash, COALESCE(k.expires_at <= now(), false), $3 = ANY (k.scopes)"
		" FROM api_keys k JOIN users u ON u.id = k.user_id"
		" WHERE k.prefix = $1 AND k.revoked_at IS NULL AND lower(u.address) = $2",
		3, params);
	why = ctl_key_verdict(res, key, params[2]);
	crypto_wipe(key, sizeof(key));
	if (why == NULL)
		printf("valid: key %s authenticates %s for %s\n", PQgetvalue(res, 0, 0), user,
		       params[2]);
	PQclear(res);
	free(user);
	free(scope);
	return why ? ctl_fail(CTL_REFUSED, "invalid: %s", why) : CTL_OK;
}

int ctl_cmd_key(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "create") == 0)
		return ctl_key_create(ctl, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[0], "list") == 0)
		return ctl_key_list(ctl, argv[1]);
	if (argc == 2 && strcmp(argv[0], "revoke") == 0)
		return ctl_key_revoke(ctl, argv[1]);
	if (argc >= 1 && strcmp(argv[0], "check") == 0)
		return ctl_key_check(ctl, argc - 1, argv + 1);
	return ctl_usage("key create|list|revoke|check ...");
}
