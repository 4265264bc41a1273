/* store_postmaster.h - whether every hosted domain's postmaster (RFC 5321
 * 4.5.1) has a mailbox: the check behind "postroomctl config check",
 * "domain add" and the daemons' start-up and reload warnings. The rule
 * itself (whose mailbox postmaster@DOMAIN goes to) is the store's:
 * STORE_OWNERS_SQL in store_mail_impl.h. */
#ifndef POSTROOM_STORE_POSTMASTER_H
#define POSTROOM_STORE_POSTMASTER_H

#include "conf.h"
#include "db.h"

/* store_postmaster_check - the postmaster configuration problems, as one
 * sentence (*problem_r, caller frees; NULL when there is none): the
 * hosted domains with neither a user or alias postmaster@DOMAIN nor an
 * owned pm_address (rules.postmaster_address), and a pm_domain
 * (rules.postmaster_domain) that is not hosted; with only set, the
 * hosted domain only (the "domain add" warning). NULL or "" = unset.
 * 0, or -1 with *error_r (caller frees) on a database error. */
int store_postmaster_check(struct db *db, const char *pm_domain, const char *pm_address,
			   const char *only, char **problem_r, char **error_r);

/* store_postmaster_log - a daemon at start or reload: run the check on a
 * connection of its own (closed again), as the daemon's own login
 * (SECTION.conninfo when declared and set, else database.conninfo), with
 * the rules.* parameters of cfg, and log a problem as a configuration
 * error (mail is still accepted), a database that does not answer as a
 * warning. */
void store_postmaster_log(const struct conf *cfg, const char *section);

#endif
