/* rules-pg-tool - drive lib/rules_pg.c from tests/integration/rules-pg.sh.
 *   rules-pg-tool CONNINFO OFFLINE TTL_FOUND TTL_NOT_FOUND
 * starts the backend (offline_answers = OFFLINE), then answers one command
 * a line from stdin with one line on stdout:
 *   domain D | exists A | owned A LOGIN   FOUND, NOT_FOUND or ERROR
 *   suppressed A LOGIN                   FOUND, NOT_FOUND or ERROR (issue 21)
 *   healthy MX                           "ok" or the reason (MX 0 or 1)
 *   count                                the hosted domains, or ERROR
 *   exec SQL                             the first value, or ERROR
 * Logs go to stderr. A test helper, never installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules_pg.h"

static const char *tool_result(enum rules_lookup r)
{
	return r == RULES_FOUND ? "FOUND" : r == RULES_NOT_FOUND ? "NOT_FOUND" : "ERROR";
}

/* tool_exec - the first value of sql's result, or ERROR */
static void tool_exec(struct rules_pg *rp, const char *sql)
{
	char *err = NULL;
	PGresult *res = rules_pg_exec(rp, sql, 0, NULL, &err);

	if (res == NULL) {
		printf("ERROR %s\n", err);
		free(err);
		return;
	}
	printf("%s\n", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
}

/* tool_command - answer one line */
static void tool_command(struct rules_pg *rp, char *line)
{
	const struct rules_lookups *lk = rules_pg_lookups(rp);
	const char *reason = "ok";
	char *cmd, *a, *b, *err = NULL;
	long n;

	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, "exec ", 5) == 0) {
		tool_exec(rp, line + 5);
		return;
	}
	cmd = strtok(line, " ");
	a = strtok(NULL, " ");
	b = strtok(NULL, " ");
	if (cmd == NULL)
		printf("?\n");
	else if (strcmp(cmd, "domain") == 0 && a)
		printf("%s\n", tool_result(lk->domain_hosted(lk->ctx, a)));
	else if (strcmp(cmd, "exists") == 0 && a)
		printf("%s\n", tool_result(lk->address_exists(lk->ctx, a)));
	else if (strcmp(cmd, "owned") == 0 && a && b)
		printf("%s\n", tool_result(lk->address_owned_by(lk->ctx, a, b)));
	else if (strcmp(cmd, "suppressed") == 0 && a && b)
		printf("%s\n", tool_result(lk->suppressed(lk->ctx, a, b)));
	else if (strcmp(cmd, "healthy") == 0 && a) {
		(void)rules_pg_healthy(rp, atoi(a), &reason);
		printf("%s\n", reason);
	} else if (strcmp(cmd, "count") == 0) {
		if ((n = rules_pg_domain_count(rp, &err)) < 0)
			printf("ERROR %s\n", err);
		else
			printf("%ld\n", n);
		free(err);
	} else
		printf("?\n");
}

int main(int argc, char **argv)
{
	struct rules_pg_settings s = { 0 };
	struct rules_pg *rp;
	char line[1024], *err = NULL;

	if (argc != 5) {
		fprintf(stderr, "usage: rules-pg-tool CONNINFO OFFLINE TTL_FOUND TTL_NOT_FOUND\n");
		return 2;
	}
	log_init("rules-pg-tool", 1, 1);
	s.conninfo = argv[1];
	s.connect_timeout = 5;
	s.connections = 2;
	s.offline_answers = atoi(argv[2]);
	s.ttl_found = atoi(argv[3]);
	s.ttl_not_found = atoi(argv[4]);
	s.cache_size = 1000;
	s.domain_reload = 300;
	rp = rules_pg_new(&s);
	if (rules_pg_start(rp, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin) != NULL)
		tool_command(rp, line);
	rules_pg_free(&rp);
	return rp == NULL ? 0 : 1;
}
