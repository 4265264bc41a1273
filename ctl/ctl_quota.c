/*
 * NAME
 *	ctl_quota - postroomctl quota set|show
 * DESCRIPTION
 *	Per-user overrides of postroom-policyd's sending quotas (table
 *	quota_limits, sql/005_policyd.sql) and the current usage as the
 *	database has it (policyd flushes its counters every
 *	policyd.quota_flush_interval, so it may be that far behind).
 *	"default" removes an override; 0 means unlimited. policyd picks a
 *	change up within policyd.cache_ttl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "xalloc.h"

/* ctl_quota_value - "default" -> NULL, a number >= 0 -> itself; -1 bad */
static int ctl_quota_value(const char *in, const char **out)
{
	char *end;
	long v;

	if (in == NULL || strcmp(in, "default") == 0) {
		*out = NULL;
		return 0;
	}
	v = strtol(in, &end, 10);
	if (*in == '\0' || *end != '\0' || v < 0 || v > 100000000)
		return -1;
	*out = in;
	return 0;
}

static int ctl_quota_set(struct ctl *ctl, int argc, char **argv)
{
	const char *usage =
		"quota set USER-ADDRESS [--messages N|default] [--recipients N|default]";
	char *msgs = NULL, *rcpts = NULL, *pos[1], *addr, *uid;
	struct ctl_opt opts[] = { { "--messages", &msgs, 0 },
				  { "--recipients", &rcpts, 0 },
				  { NULL, NULL, 0 } };
	const char *params[5], *mv = NULL, *rv = NULL;
	PGresult *res;
	int rc = CTL_OK;

	if (ctl_parse_args(argc, argv, opts, pos, 1, 1) < 0 || (msgs == NULL && rcpts == NULL) ||
	    ctl_quota_value(msgs, &mv) < 0 || ctl_quota_value(rcpts, &rv) < 0) {
		free(msgs);
		free(rcpts);
		return ctl_usage(usage);
	}
	addr = ctl_canonical_address(pos[0]);
	uid = ctl_user_id(ctl, addr);
	if (uid == NULL) {
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
		goto out;
	}
	params[0] = uid;
	params[1] = mv;
	params[2] = rv;
	params[3] = msgs ? "t" : "f";
	params[4] = rcpts ? "t" : "f";
	/* an option not given keeps its current value */
	res = ctl_query(
		ctl,
		"INSERT INTO quota_limits AS q (user_id, messages_per_hour, recipients_per_hour)"
		" VALUES ($1, $2::int, $3::int)"
		" ON CONFLICT (user_id) DO UPDATE SET"
		"   messages_per_hour = CASE WHEN $4::bool THEN EXCLUDED.messages_per_hour ELSE q.messages_per_hour END,"
		"   recipients_per_hour = CASE WHEN $5::bool THEN EXCLUDED.recipients_per_hour ELSE q.recipients_per_hour END,"
		"   updated_at = now()"
		" RETURNING messages_per_hour, recipients_per_hour",
		5, params);
	if (ctl->json)
		ctl_print_json(json_pack("{s:s, s:o, s:o}", "user", addr, "messages_per_hour",
					 ctl_json_int(res, 0, 0), "recipients_per_hour",
					 ctl_json_int(res, 0, 1)));
	else
		printf("quota of %s: messages per hour %s, recipients per hour %s\n", addr,
		       PQgetisnull(res, 0, 0) ? "default" : PQgetvalue(res, 0, 0),
		       PQgetisnull(res, 0, 1) ? "default" : PQgetvalue(res, 0, 1));
	PQclear(res);
out:
	free(uid);
	free(addr);
	free(msgs);
	free(rcpts);
	return rc;
}

static int ctl_quota_show(struct ctl *ctl, const char *who)
{
	char *addr = ctl_canonical_address(who), *uid = ctl_user_id(ctl, addr);
	const char *params[2];
	long long dm = conf_int(ctl->conf, "policyd.quota_messages");
	long long dr = conf_int(ctl->conf, "policyd.quota_recipients");
	PGresult *lim, *use;
	int rc = CTL_OK;

	if (uid == NULL) {
		rc = ctl_fail(CTL_REFUSED, "no such user: %s", addr);
		free(addr);
		return rc;
	}
	params[0] = uid;
	params[1] = addr;
	lim = ctl_query(ctl,
			"SELECT messages_per_hour, recipients_per_hour FROM quota_limits"
			" WHERE user_id = $1",
			1, params);
	use = ctl_query(ctl,
			"SELECT COALESCE(sum(messages), 0), COALESCE(sum(recipients), 0)"
			"  FROM quota_usage WHERE login = $1"
			"   AND window_start = date_trunc('hour', now())",
			1, params + 1);
	{
		int has = PQntuples(lim) > 0;
		const char *m = has && !PQgetisnull(lim, 0, 0) ? PQgetvalue(lim, 0, 0) : NULL;
		const char *r = has && !PQgetisnull(lim, 0, 1) ? PQgetvalue(lim, 0, 1) : NULL;
		long long em = m ? atoll(m) : dm, er = r ? atoll(r) : dr;

		if (ctl->json)
			ctl_print_json(json_pack("{s:s, s:I, s:b, s:I, s:b, s:o, s:o}", "user",
						 addr, "messages_per_hour", em, "messages_default",
						 m == NULL, "recipients_per_hour", er,
						 "recipients_default", r == NULL,
						 "messages_this_hour", ctl_json_int(use, 0, 0),
						 "recipients_this_hour", ctl_json_int(use, 0, 1)));
		else
			printf("user %s\nmessages per hour: %lld%s (this hour: %s)\n"
			       "recipients per hour: %lld%s (this hour: %s)\n",
			       addr, em, m ? "" : " (default)", PQgetvalue(use, 0, 0), er,
			       r ? "" : " (default)", PQgetvalue(use, 0, 1));
	}
	PQclear(lim);
	PQclear(use);
	free(uid);
	free(addr);
	return rc;
}

int ctl_cmd_quota(struct ctl *ctl, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "set") == 0)
		return ctl_quota_set(ctl, argc - 1, argv + 1);
	if (argc == 2 && strcmp(argv[0], "show") == 0)
		return ctl_quota_show(ctl, argv[1]);
	return ctl_usage("quota set USER-ADDRESS [--messages N|default] [--recipients N|default]"
			 " | quota show USER-ADDRESS");
}
