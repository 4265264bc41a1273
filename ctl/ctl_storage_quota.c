/*
 * NAME
 *	ctl_storage_quota - postroomctl storage-quota set|show|recount
 * DESCRIPTION
 *	The storage quota per user (issue 18 item 4; sql/016): a limit per
 *	user (table storage_quota_limits; "default" removes it) and a default
 *	per domain (domains.storage_quota_bytes; "none" removes it), sizes in
 *	bytes or with a binary suffix (500M = 500 MiB, 2G, 10K, 1T). show
 *	reports the usage (postroom_storage_usage: the folded base and the
 *	deltas), the limit and where it comes from (user, domain, none);
 *	recount repairs the usage of one user or of all from mailbox_entries
 *	(postroom_storage_recount). The milter and policyd read a change at
 *	the next RCPT (nothing is cached). Separate from the sending quota
 *	of ctl_quota.c.
 * NEVER
 *	builds SQL from arguments (parameters only); changes mail.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "ctl.h"
#include "xalloc.h"

#define SQ_USAGE                                                                            \
	"storage-quota set USER-ADDRESS BYTES|default | storage-quota set --domain DOMAIN " \
	"BYTES|none | storage-quota show [USER-ADDRESS] | storage-quota recount [USER-ADDRESS]"

/* largest limit accepted: 2^60 bytes (an exbibyte), far below bigint */
#define SQ_BYTES_MAX (1LL << 60)

/* ctl_sq_bytes - "123", "500M", "2G", "10k", "1T" (binary units, an
 * optional B or iB after the letter) into bytes; -1 when malformed */
static long long ctl_sq_bytes(const char *in)
{
	unsigned long long v = 0, mul = 1;
	const char *p = in;

	if (in == NULL || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > (unsigned long long)SQ_BYTES_MAX)
			return -1;
	}
	switch (toupper((unsigned char)*p)) {
	case '\0': break;
	case 'K': mul = 1ULL << 10; break;
	case 'M': mul = 1ULL << 20; break;
	case 'G': mul = 1ULL << 30; break;
	case 'T': mul = 1ULL << 40; break;
	default: return -1;
	}
	if (*p) {
		p++;
		if (strcasecmp(p, "iB") == 0 || strcasecmp(p, "B") == 0)
			p += strlen(p);
		if (*p != '\0')
			return -1;
	}
	if (v > (unsigned long long)SQ_BYTES_MAX / mul)
		return -1;
	return (long long)(v * mul);
}

/* ctl_sq_domain - a validated lower-case domain without a trailing dot
 * (caller frees), or exit 64 */
static char *ctl_sq_domain(const char *name)
{
	char *probe = xasprintf("postmaster@%s", name), *canon;
	const char *err = NULL;

	canon = addr_canonicalize(probe, &err);
	free(probe);
	if (canon == NULL || strchr(canon, '[') != NULL) {
		free(canon);
		exit(ctl_fail(CTL_USAGE, "invalid domain '%s': %s", name,
			      err ? err : "address literals are not domains"));
	}
	probe = xstrdup(strchr(canon, '@') + 1);
	free(canon);
	return probe;
}

/* ctl_sq_set_domain - the default of a domain: BYTES or none */
static int ctl_sq_set_domain(struct ctl *ctl, const char *name, const char *value)
{
	char *dom = ctl_sq_domain(name), num[24];
	long long b = strcmp(value, "none") == 0 ? -2 : ctl_sq_bytes(value);
	const char *params[2];
	PGresult *res;
	int rc = CTL_OK;

	if (b == -1) {
		free(dom);
		return ctl_fail(CTL_USAGE, "invalid size '%s' (BYTES, e.g. 500M or 2G, or none)",
				value);
	}
	snprintf(num, sizeof(num), "%lld", b);
	params[0] = dom;
	params[1] = b >= 0 ? num : NULL;
	res = ctl_query(ctl,
			"UPDATE domains SET storage_quota_bytes = $2::bigint"
			" WHERE lower(name) = lower($1) RETURNING storage_quota_bytes",
			2, params);
	if (PQntuples(res) == 0)
		rc = ctl_fail(CTL_REFUSED, "no such domain: %s", dom);
	else if (ctl->json)
		ctl_print_json(
			json_pack("{s:s, s:o}", "domain", dom, "bytes", ctl_json_int(res, 0, 0)));
	else
		printf("storage quota default of %s: %s\n", dom, b >= 0 ? num : "none");
	PQclear(res);
	free(dom);
	return rc;
}

/* ctl_sq_set_user - the limit of a user: BYTES or default */
static int ctl_sq_set_user(struct ctl *ctl, const char *who, const char *value)
{
	char *addr = ctl_canonical_address(who), *uid, num[24];
	long long b = strcmp(value, "default") == 0 ? -2 : ctl_sq_bytes(value);
	const char *params[2];
	PGresult *res;
	int rc = CTL_OK;

	if (b == -1) {
		free(addr);
		return ctl_fail(CTL_USAGE, "invalid size '%s' (BYTES, e.g. 500M or 2G, or default)",
				value);
	}
	if ((uid = ctl_user_id(ctl, addr)) == NULL) {
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
		free(addr);
		return rc;
	}
	snprintf(num, sizeof(num), "%lld", b);
	params[0] = uid;
	params[1] = num;
	if (b >= 0)
		res = ctl_query(ctl,
				"INSERT INTO storage_quota_limits (user_id, bytes) VALUES ($1, $2)"
				" ON CONFLICT (user_id) DO UPDATE SET bytes = EXCLUDED.bytes,"
				" updated_at = now()",
				2, params);
	else
		res = ctl_query(ctl, "DELETE FROM storage_quota_limits WHERE user_id = $1", 1,
				params);
	PQclear(res);
	if (ctl->json)
		ctl_print_json(b >= 0 ? json_pack("{s:s, s:I}", "user", addr, "bytes", b)
				      : json_pack("{s:s, s:n}", "user", addr, "bytes"));
	else
		printf("storage quota of %s: %s\n", addr, b >= 0 ? num : "default");
	free(uid);
	free(addr);
	return rc;
}

static int ctl_sq_set(struct ctl *ctl, int argc, char **argv)
{
	char *domain = NULL, *pos[2];
	struct ctl_opt opts[] = { { "--domain", &domain, 0 }, { NULL, NULL, 0 } };
	int rc;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 2) < 0) {
		free(domain);
		return ctl_usage(SQ_USAGE);
	}
	if (domain != NULL && pos[1] == NULL)
		rc = ctl_sq_set_domain(ctl, domain, pos[0]);
	else if (domain == NULL && pos[1] != NULL)
		rc = ctl_sq_set_user(ctl, pos[0], pos[1]);
	else
		rc = ctl_usage(SQ_USAGE);
	free(domain);
	return rc;
}

/* the usage, limit and its source of users: one ($1) or all ($1 NULL) */
static const char ctl_sq_show_sql[] =
	"SELECT u.address, postroom_storage_usage(u.id), l.bytes, l.source"
	"  FROM users u CROSS JOIN LATERAL postroom_storage_quota_limit(u.id) l"
	" WHERE $1::uuid IS NULL OR u.id = $1::uuid ORDER BY u.address";

/* ctl_sq_show - one user (who) or every user */
static int ctl_sq_show(struct ctl *ctl, const char *who)
{
	char *addr = NULL, *uid = NULL;
	const char *params[1] = { NULL };
	PGresult *res;
	json_t *arr;
	int i, rc = CTL_OK;

	if (who != NULL) {
		addr = ctl_canonical_address(who);
		if ((uid = ctl_user_id(ctl, addr)) == NULL) {
			rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
			free(addr);
			return rc;
		}
		params[0] = uid;
	}
	res = ctl_query(ctl, ctl_sq_show_sql, 1, params);
	arr = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		if (ctl->json) {
			json_array_append_new(arr, json_pack("{s:o, s:o, s:o, s:o}", "user",
							     ctl_json_text(res, i, 0), "usage",
							     ctl_json_int(res, i, 1), "limit",
							     ctl_json_int(res, i, 2), "source",
							     ctl_json_text(res, i, 3)));
		} else if (who != NULL) {
			printf("user %s\nusage: %s bytes\nlimit: %s%s (%s)\n",
			       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			       PQgetisnull(res, i, 2) ? "none" : PQgetvalue(res, i, 2),
			       PQgetisnull(res, i, 2) ? "" : " bytes", PQgetvalue(res, i, 3));
		} else {
			printf("%-40s %15s %15s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			       ctl_val(res, i, 2), PQgetvalue(res, i, 3));
		}
	}
	if (ctl->json && who != NULL && json_array_size(arr) == 1)
		ctl_print_json(json_incref(json_array_get(arr, 0)));
	else if (ctl->json)
		ctl_print_json(json_incref(arr));
	json_decref(arr);
	PQclear(res);
	free(uid);
	free(addr);
	return rc;
}

/* ctl_sq_recount - repair the usage of one user (who) or of all */
static int ctl_sq_recount(struct ctl *ctl, const char *who)
{
	char *addr = NULL, *uid = NULL;
	const char *params[1] = { NULL };
	PGresult *res;
	int i, fixed = 0, rc = CTL_OK;

	if (who != NULL) {
		addr = ctl_canonical_address(who);
		if ((uid = ctl_user_id(ctl, addr)) == NULL) {
			rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
			free(addr);
			return rc;
		}
		params[0] = uid;
	}
	res = ctl_query(
		ctl,
		"SELECT u.address, r.recorded, r.counted"
		"  FROM postroom_storage_recount($1::uuid) r JOIN users u ON u.id = r.user_id"
		" ORDER BY u.address",
		1, params);
	for (i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 1), PQgetvalue(res, i, 2)) == 0)
			continue;
		fixed++;
		if (!ctl->json)
			printf("%s: usage %s bytes recorded, %s counted: repaired\n",
			       PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
	}
	if (ctl->json)
		ctl_print_json(json_pack("{s:i, s:i}", "users", PQntuples(res), "repaired", fixed));
	else
		printf("recounted %d user(s), %d repaired\n", PQntuples(res), fixed);
	PQclear(res);
	free(uid);
	free(addr);
	return rc;
}

int ctl_cmd_storage_quota(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "set") == 0)
		return ctl_sq_set(ctl, argc - 1, argv + 1);
	if ((argc == 1 || argc == 2) && strcmp(argv[0], "show") == 0)
		return ctl_sq_show(ctl, argc == 2 ? argv[1] : NULL);
	if ((argc == 1 || argc == 2) && strcmp(argv[0], "recount") == 0)
		return ctl_sq_recount(ctl, argc == 2 ? argv[1] : NULL);
	return ctl_usage(SQ_USAGE);
}
