/* conf.h - postroom.conf: one table of parameters, libconfig syntax. */
#ifndef POSTROOM_CONF_H
#define POSTROOM_CONF_H

#include <stddef.h>

enum cfg_type { CFG_STRING, CFG_INT, CFG_BOOL, CFG_SIZE };

#define CFG_SECRET	0x1	/* a secret: file must not be world-readable */
#define CFG_SECRET_PW	0x2	/* secret when it carries "password=" */

/* One declared parameter. The table (conf_params.c) is the only place a
 * parameter is declared; doc/postroom.conf.5 documents exactly it. */
struct cfg_param {
	const char *name;	/* "section.name" */
	enum cfg_type type;
	const char *def;	/* default as text; NULL = unset */
	long long min, max;	/* bounds for INT and SIZE */
	unsigned flags;
	const char *doc;	/* one line */
};

extern const struct cfg_param cfg_params[];
extern const size_t cfg_nparams;

struct conf;

#define POSTROOM_CONFIG_DEFAULT SYSCONFDIR "/postroom/postroom.conf"

/* conf_load - read and check path (NULL: the default path). With
 * allow_missing, a missing file yields the defaults. Returns NULL and sets
 * *error_r (caller frees) on any problem: unreadable, syntax, unknown
 * parameter, wrong type, out of bounds, secret in a world-readable file. */
struct conf *conf_load(const char *path, int allow_missing, char **error_r);
void conf_free(struct conf **cfg);
const char *conf_path(const struct conf *cfg);

/* Getters; the name must be declared in the table (else: panic). A string
 * parameter without value gives NULL. */
const char *conf_str(const struct conf *cfg, const char *name);
long long conf_int(const struct conf *cfg, const char *name);
int conf_bool(const struct conf *cfg, const char *name);
/* conf_is_set - the file gave this parameter a value */
int conf_is_set(const struct conf *cfg, const char *name);
/* conf_set - override a value (tests, command-line options) */
int conf_set(struct conf *cfg, const char *name, const char *value, char **error_r);

const char *cfg_type_name(enum cfg_type t);
/* conf_declared - the parameter table has name (a build may leave out a
 * program's section) */
int conf_declared(const char *name);

#endif
