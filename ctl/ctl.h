/* ctl.h - postroomctl internals: context, sub-commands, output helpers. */
#ifndef POSTROOM_CTL_H
#define POSTROOM_CTL_H

#include <jansson.h>
#include <libpq-fe.h>

#include "conf.h"
#include "db.h"
#include "dns_resolver.h"

/* exit statuses (documented in postroomctl(1)) */
#define CTL_OK 0
#define CTL_REFUSED 1      /* not found, duplicate, already done */
#define CTL_USAGE 64       /* EX_USAGE: bad command line or argument */
#define CTL_UNAVAILABLE 69 /* EX_UNAVAILABLE: database unreachable */
#define CTL_SOFTWARE 70    /* EX_SOFTWARE: unexpected database error */
#define CTL_CONFIG 78      /* EX_CONFIG: configuration invalid */

struct ctl {
	const char *conf_path;
	struct conf *conf;
	struct db *db;
	int json;
};

typedef int ctl_cmd_fn(struct ctl *ctl, int argc, char **argv);

int ctl_cmd_db(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_domain(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_user(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_alias(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_key(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_mail(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_thread(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_config(struct ctl *ctl, int argc, char **argv);
/* ctl_cmd_events - events [--since POS] [--follow] [--user A] | events prune (ctl/ctl_events.c) */
int ctl_cmd_events(struct ctl *ctl, int argc, char **argv);
/* ctl_config_roles - warn on stderr for each daemon that connects as a
 * superuser or as the owner of the schema (ctl/ctl_roles.c) */
void ctl_config_roles(struct ctl *ctl);
/* ctl_config_register - register every program's parameter table (before conf_load) */
void ctl_config_register(void);
int ctl_cmd_quota(struct ctl *ctl, int argc, char **argv);
/* ctl_cmd_storage_quota - storage-quota set|show|recount (ctl/ctl_storage_quota.c) */
int ctl_cmd_storage_quota(struct ctl *ctl, int argc, char **argv);
/* ctl_domain_dkim - domain dkim DOMAIN [options] (ctl/ctl_dkim.c); dom canonical */
int ctl_domain_dkim(struct ctl *ctl, const char *dom, int argc, char **argv);
/* ctl_dkim_config_check - with dkim.enabled, every hosted domain has its
 * active DKIM key on this host: CTL_OK, else CTL_CONFIG (domains printed) */
int ctl_dkim_config_check(struct ctl *ctl);
/* ctl_domain_check - domain check NAME [--ip ADDR] (ctl/ctl_domain_check.c) */
int ctl_domain_check(struct ctl *ctl, const char *dom, int argc, char **argv);
/* ctl_dns_txt - the first TXT record at name starting with prefix
 * (case-insensitive, "" any) into out (ctl/ctl_dkim.c) */
enum dns_status ctl_dns_txt(struct dns_resolver *r, const char *name, const char *prefix, char *out,
			    size_t outlen);
/* ctl_dkim_dns_matches - 1 when SEL._domainkey.DOM publishes rec's key */
int ctl_dkim_dns_matches(struct ctl *ctl, const char *dom, const char *sel, const char *rec,
			 const char **why);
struct ctl_dkim_sel {
	char name[64];
	char state[16];
	char *record; /* "v=DKIM1; k=rsa; p=...", or NULL */
};
/* ctl_dkim_selectors - active and pending selectors of dom (records:
 * caller frees); count, or -1 (printed) */
int ctl_dkim_selectors(struct ctl *ctl, const char *dom, struct ctl_dkim_sel *out, int max);

/* ctl_db - the database connection, opened on first use (exits 69 when
 * unreachable) */
struct db *ctl_db(struct ctl *ctl);
/* ctl_query - run a statement; on failure print the error and exit with a
 * status chosen from the SQLSTATE (the caller may catch expected states
 * first with ctl_query_try). */
PGresult *ctl_query(struct ctl *ctl, const char *sql, int n, const char *const *params);
/* ctl_query_try - as ctl_query but returns NULL and the SQLSTATE in
 * *state_r (static) for the caller to explain. */
PGresult *ctl_query_try(struct ctl *ctl, const char *sql, int n, const char *const *params,
			const char **state_r);

/* ctl_fail - print "postroomctl: msg" to stderr, return status */
int ctl_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* ctl_usage - print the usage of a sub-command, return CTL_USAGE */
int ctl_usage(const char *text);

/* ctl_print_json - print a JSON value (stolen reference) */
void ctl_print_json(json_t *v);
/* ctl_print_list - print arr when --json, else just release it */
void ctl_print_list(struct ctl *ctl, json_t *arr);
/* ctl_remove_one - run a "DELETE ... WHERE ... = $1 RETURNING" statement;
 * report "removed WHAT KEY", or "no such WHAT: KEY" with CTL_REFUSED */
int ctl_remove_one(struct ctl *ctl, const char *sql, const char *key, const char *what);
/* ctl_json_text - a JSON string, or null for a SQL NULL column */
json_t *ctl_json_text(const PGresult *res, int row, int col);
json_t *ctl_json_bool(const PGresult *res, int row, int col);
json_t *ctl_json_int(const PGresult *res, int row, int col);
/* ctl_json_parsed - a column holding JSON text, parsed */
json_t *ctl_json_parsed(const PGresult *res, int row, int col);
/* ctl_val - column text, or "-" for NULL (human output) */
const char *ctl_val(const PGresult *res, int row, int col);

/* ctl_canonical_address - canonical form of a user-given address, or
 * exit 64 with a clear message (caller frees) */
char *ctl_canonical_address(const char *in);
/* ctl_is_uuid - looks like a UUID (so SQL never sees a malformed one) */
int ctl_is_uuid(const char *s);
/* ctl_user_id - id of the user owning address (primary or alias), or
 * NULL (caller frees) */
char *ctl_user_id(struct ctl *ctl, const char *canon_address);

/* Sub-command arguments: options taking a value, and positionals. A
 * repeated multi option joins its values with commas. */
struct ctl_opt {
	const char *name; /* "--name" */
	char **value;     /* set to the value (caller frees) */
	int multi;
};
/* ctl_parse_args - 0 ok; -1 on an unknown option, a missing value, or a
 * positional count outside [minpos, maxpos] */
int ctl_parse_args(int argc, char **argv, const struct ctl_opt *opts, char **pos, int minpos,
		   int maxpos);

/* The mailbox lifecycle (ctl/ctl_mailbox.c, issue 18). */
/* ctl_mail_lifecycle - mail mark|trash|restore|delete|empty-trash|purge;
 * -1 when argv[0] is none of them */
int ctl_mail_lifecycle(struct ctl *ctl, int argc, char **argv);
/* ctl_mailbox_add_state - set "state" (the user's membership: is_read,
 * flagged, trashed, modseq ...; null when none) on every email object of
 * the array emails (objects with "id") */
void ctl_mailbox_add_state(struct ctl *ctl, const char *uid, json_t *emails);
int ctl_cmd_hold(struct ctl *ctl, int argc, char **argv);
/* ctl_cmd_blobs - blobs gc | blobs migrate (ctl/ctl_blobs.c, issue 20) */
int ctl_cmd_blobs(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_retention(struct ctl *ctl, int argc, char **argv);
/* ctl_user_remove_mailbox - user remove ADDRESS [--keep-mail DAYS] */
int ctl_user_remove_mailbox(struct ctl *ctl, int argc, char **argv);

#endif
