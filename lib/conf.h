/* conf.h - postroom.conf: one table of parameters, libconfig syntax. */
#ifndef POSTROOM_CONF_H
#define POSTROOM_CONF_H

#include <stddef.h>

enum cfg_type { CFG_STRING, CFG_INT, CFG_BOOL, CFG_SIZE };

#define CFG_SECRET 0x1    /* a secret: file must not be world-readable */
#define CFG_SECRET_PW 0x2 /* secret when it carries "password=" */

/* One declared parameter. A table (lib/conf_params.c for the shared
 * sections, PROGRAM/PROGRAM_params.c for a program's own) is the only place
 * a parameter is declared; doc/postroom.conf.5 documents exactly them. */
struct cfg_param {
	const char *name; /* "section.name" */
	enum cfg_type type;
	const char *def;    /* default as text; NULL = unset */
	long long min, max; /* bounds for INT and SIZE */
	unsigned flags;
	const char *doc; /* one line */
};

/* One table of parameters. lib/ owns the shared sections (conf_params.c);
 * each program declares its own sections in PROGRAM/PROGRAM_params.c and
 * registers that table before it loads the file. */
struct cfg_table {
	const char *owner; /* who reads it: "shared", "postroom-milter" ... */
	const struct cfg_param *params;
	size_t n;
};

/* The shared sections (database, limits, apikey, security, rules): always
 * registered. */
extern const struct cfg_table conf_table_shared;

/* A parameter that was renamed: the old name is still accepted, with a
 * deprecation warning (conf_warnings). */
struct cfg_rename {
	const char *old_name;
	const char *new_name;
};
extern const struct cfg_rename conf_renames[];
extern const size_t conf_nrenames;

/* The sections postroom.conf may hold, whoever declares them. A program
 * skips the sections of the programs it did not register (postroomctl,
 * which registers every table, checks them all); a section not listed here
 * is an error everywhere. */
extern const char *const conf_sections[];
extern const size_t conf_nsections;

/* conf_register - add a program's table before conf_load. Panics on a
 * table whose section is not in conf_sections, or on a name declared twice.
 * Registering the same table again is a no-op. */
void conf_register(const struct cfg_table *table);

/* conf_param_count, conf_param_at - every registered parameter, shared
 * table first, in registration order (postroomctl config params) */
size_t conf_param_count(void);
const struct cfg_param *conf_param_at(size_t i);

struct conf;

#define POSTROOM_CONFIG_DEFAULT SYSCONFDIR "/postroom/postroom.conf"

/* conf_load - read and check path (NULL: the default path) against the
 * registered tables. With allow_missing, a missing file yields the
 * defaults. Returns NULL and sets *error_r (caller frees) on any problem:
 * unreadable, syntax, unknown parameter or section, wrong type, out of
 * bounds, a parameter given under both its old and its new name, a secret
 * in a world-readable file. */
struct conf *conf_load(const char *path, int allow_missing, char **error_r);

/* conf_warning - the i-th warning of a loaded file (a deprecated name),
 * NULL past the last; owned by cfg. Daemons log them at start. */
const char *conf_warning(const struct conf *cfg, size_t i);
/* conf_log_warnings - log_warn each warning of cfg */
void conf_log_warnings(const struct conf *cfg);
void conf_free(struct conf **cfg);
const char *conf_path(const struct conf *cfg);

/* Getters; the name must be declared in the table (else: panic). A string
 * parameter without value gives NULL. */
const char *conf_str(const struct conf *cfg, const char *name);
long long conf_int(const struct conf *cfg, const char *name);
/* conf_conninfo - the libpq connection string of the program whose
 * section is given ("authd"): SECTION.conninfo when set (its own database
 * role), else database.conninfo; NULL when neither is (libpq's PG*
 * variables apply). Owned by cfg. */
const char *conf_conninfo(const struct conf *cfg, const char *section);
int conf_bool(const struct conf *cfg, const char *name);
/* conf_is_set - the file gave this parameter a value */
int conf_is_set(const struct conf *cfg, const char *name);
/* conf_set - override a value (tests, command-line options) */
int conf_set(struct conf *cfg, const char *name, const char *value, char **error_r);

const char *cfg_type_name(enum cfg_type t);
/* conf_declared - a registered table declares name (a program sees only
 * the tables it registered) */
int conf_declared(const char *name);

#endif
