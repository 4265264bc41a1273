/*
 * NAME
 *	config - load and check postroom.conf
 * DESCRIPTION
 *	Parses the file with libconfig, walks every setting it holds and
 *	matches it against the registered tables: the shared one
 *	(conf_params.c) and the one each program registers with
 *	conf_register. An unknown name, a wrong type or an out-of-bounds value
 *	is an error naming the line; a section of a program that did not
 *	register its table is skipped (postroomctl registers every table and
 *	checks it). A renamed parameter is accepted under its old name with a
 *	warning. A file that sets a secret and is readable by others is
 *	refused.
 * NEVER
 *	prints or logs the value of a secret parameter.
 */
#include "autoconfig.h"

#include "conf.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xalloc.h"
#include "log.h"

struct cfg_value {
	char *text;    /* string form (strings) */
	long long num; /* INT, SIZE, BOOL */
	int set;       /* given by the file or conf_set */
};

struct conf {
	char *path;
	struct cfg_value *values; /* one per parameter registered at load */
	size_t nvalues;
	char **warnings;
	size_t nwarnings;
};

/* the registered tables, the shared one first, and their parameters */
#define CFG_MAX_TABLES 16
static const struct cfg_table *cfg_tables[CFG_MAX_TABLES];
static size_t cfg_ntables;
static const struct cfg_param **cfg_params;
static size_t cfg_nparams;

const char *cfg_type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_STRING: return "string";
	case CFG_INT: return "integer";
	case CFG_BOOL: return "boolean";
	case CFG_SIZE: return "size";
	}
	return "?";
}

static int cfg_index(const char *name)
{
	size_t i;

	for (i = 0; i < cfg_nparams; i++)
		if (strcmp(cfg_params[i]->name, name) == 0)
			return (int)i;
	return -1;
}

/* cfg_section_len - length of the section part of "section.name", 0: none */
static size_t cfg_section_len(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot ? (size_t)(dot - name) : 0;
}

static int cfg_section_listed(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < conf_nsections; i++)
		if (strlen(conf_sections[i]) == len && strncmp(conf_sections[i], name, len) == 0)
			return 1;
	return 0;
}

/* cfg_section_registered - a registered parameter lives in name's section */
static int cfg_section_registered(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < cfg_nparams; i++)
		if (cfg_section_len(cfg_params[i]->name) == len &&
		    strncmp(cfg_params[i]->name, name, len) == 0)
			return 1;
	return 0;
}

/* cfg_add_table - append a table's parameters to the registered list */
static void cfg_add_table(const struct cfg_table *t)
{
	size_t i;

	if (cfg_ntables == CFG_MAX_TABLES)
		log_panic("config: too many parameter tables");
	for (i = 0; i < t->n; i++) {
		const char *name = t->params[i].name;
		size_t len = cfg_section_len(name);

		if (len == 0 || !cfg_section_listed(name, len))
			log_panic("config: %s (%s): section not in conf_sections", name, t->owner);
		if (cfg_index(name) >= 0)
			log_panic("config: %s declared twice", name);
	}
	cfg_params = xrealloc(cfg_params, (cfg_nparams + t->n) * sizeof(*cfg_params));
	for (i = 0; i < t->n; i++)
		cfg_params[cfg_nparams++] = &t->params[i];
	cfg_tables[cfg_ntables++] = t;
}

/* cfg_init_shared - register the shared table first, once */
static void cfg_init_shared(void)
{
	size_t i;

	if (cfg_ntables > 0)
		return;
	cfg_add_table(&conf_table_shared);
	for (i = 0; i < conf_nrenames; i++)
		if (cfg_index(conf_renames[i].new_name) < 0)
			log_panic("config: rename target %s is not shared",
				  conf_renames[i].new_name);
}

void conf_register(const struct cfg_table *table)
{
	size_t i;

	cfg_init_shared();
	for (i = 0; i < cfg_ntables; i++)
		if (cfg_tables[i] == table)
			return;
	cfg_add_table(table);
}

size_t conf_param_count(void)
{
	cfg_init_shared();
	return cfg_nparams;
}

const struct cfg_param *conf_param_at(size_t i)
{
	cfg_init_shared();
	return i < cfg_nparams ? cfg_params[i] : NULL;
}

int conf_declared(const char *name)
{
	cfg_init_shared();
	return cfg_index(name) >= 0;
}

/* cfg_renamed - the new name of a renamed parameter, or NULL */
static const char *cfg_renamed(const char *name)
{
	size_t i;

	for (i = 0; i < conf_nrenames; i++)
		if (strcmp(conf_renames[i].old_name, name) == 0)
			return conf_renames[i].new_name;
	return NULL;
}

static void cfg_warn(struct conf *cfg, char *text)
{
	cfg->warnings = xrealloc(cfg->warnings, (cfg->nwarnings + 1) * sizeof(*cfg->warnings));
	cfg->warnings[cfg->nwarnings++] = text;
}

const char *conf_warning(const struct conf *cfg, size_t i)
{
	return i < cfg->nwarnings ? cfg->warnings[i] : NULL;
}

void conf_log_warnings(const struct conf *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nwarnings; i++)
		log_warn("configuration: %s", cfg->warnings[i]);
}

static int cfg_index_checked(const struct conf *cfg, const char *name)
{
	int i = cfg_index(name);

	if (i < 0)
		log_panic("config: parameter %s is not declared", name);
	if ((size_t)i >= cfg->nvalues)
		log_panic("config: parameter %s was registered after the file was loaded", name);
	return i;
}

/* cfg_parse_text - convert text to the parameter's type, checking bounds */
static int cfg_parse_text(const struct cfg_param *p, const char *text, struct cfg_value *v,
			  char **error_r)
{
	char *end;
	long long n;

	if (p->type == CFG_STRING) {
		free(v->text);
		v->text = xstrdup(text);
		return 0;
	}
	if (p->type == CFG_BOOL) {
		if (strcmp(text, "true") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "1") == 0)
			v->num = 1;
		else if (strcmp(text, "false") == 0 || strcmp(text, "no") == 0 ||
			 strcmp(text, "0") == 0)
			v->num = 0;
		else {
			*error_r = xasprintf("%s: not a boolean: %s", p->name, text);
			return -1;
		}
		return 0;
	}
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0') {
		*error_r = xasprintf("%s: not an integer: %s", p->name, text);
		return -1;
	}
	if (n < p->min || n > p->max) {
		*error_r = xasprintf("%s: %lld is out of range [%lld, %lld]", p->name, n, p->min,
				     p->max);
		return -1;
	}
	v->num = n;
	return 0;
}

static void cfg_set_defaults(struct conf *cfg)
{
	size_t i;
	char *err = NULL;

	for (i = 0; i < cfg_nparams; i++) {
		if (cfg_params[i]->def == NULL)
			continue;
		if (cfg_parse_text(cfg_params[i], cfg_params[i]->def, &cfg->values[i], &err) < 0)
			log_panic("config: bad default: %s", err);
	}
}

/* cfg_find_setting - the index a file's setting stores into: 0 and *i_r,
 * 1 to skip it (another program's section), -1 with *error_r */
static int cfg_find_setting(struct conf *cfg, config_setting_t *s, const char *name, int *i_r,
			    char **error_r)
{
	const char *new_name = cfg_renamed(name);
	size_t len = cfg_section_len(name);
	struct cfg_value *v;

	*i_r = cfg_index(new_name ? new_name : name);
	if (*i_r < 0) {
		if (len > 0 && cfg_section_listed(name, len) && !cfg_section_registered(name, len))
			return 1;
		*error_r = xasprintf("line %d: unknown parameter %s", config_setting_source_line(s),
				     name);
		return -1;
	}
	v = &cfg->values[*i_r];
	if (v->set) {
		*error_r = xasprintf("line %d: %s is set twice (under its old and its new name)",
				     config_setting_source_line(s), cfg_params[*i_r]->name);
		return -1;
	}
	if (new_name)
		cfg_warn(cfg, xasprintf("line %d: %s is deprecated: use %s",
					config_setting_source_line(s), name, new_name));
	return 0;
}

/* cfg_take_setting - store one scalar setting found in the file */
static int cfg_take_setting(struct conf *cfg, config_setting_t *s, const char *name, char **error_r)
{
	int i, rc, type = config_setting_type(s);
	const struct cfg_param *p;
	struct cfg_value *v;
	char num[32];

	if ((rc = cfg_find_setting(cfg, s, name, &i, error_r)) != 0)
		return rc > 0 ? 0 : -1;
	p = cfg_params[i];
	v = &cfg->values[i];
	v->set = 1;
	if (p->type == CFG_STRING && type == CONFIG_TYPE_STRING)
		return cfg_parse_text(p, config_setting_get_string(s), v, error_r);
	if (p->type == CFG_BOOL && type == CONFIG_TYPE_BOOL) {
		v->num = config_setting_get_bool(s);
		return 0;
	}
	if ((p->type == CFG_INT || p->type == CFG_SIZE) &&
	    (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)) {
		snprintf(num, sizeof(num), "%lld", config_setting_get_int64(s));
		if (cfg_parse_text(p, num, v, error_r) < 0) {
			char *inner = *error_r;
			*error_r = xasprintf("line %d: %s", config_setting_source_line(s), inner);
			free(inner);
			return -1;
		}
		return 0;
	}
	*error_r = xasprintf("line %d: %s must be of type %s", config_setting_source_line(s),
			     p->name, cfg_type_name(p->type));
	return -1;
}

/* cfg_walk - visit every setting under group g */
static int cfg_walk(struct conf *cfg, config_setting_t *g, const char *prefix, char **error_r)
{
	int i, n = config_setting_length(g), rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *sname = config_setting_name(s);
		char *name = prefix[0] ? xasprintf("%s.%s", prefix, sname) : xstrdup(sname);

		if (config_setting_type(s) == CONFIG_TYPE_GROUP)
			rc = cfg_walk(cfg, s, name, error_r);
		else
			rc = cfg_take_setting(cfg, s, name, error_r);
		free(name);
	}
	return rc;
}

/* cfg_check_secrets - refuse secrets in a file others can read */
static int cfg_check_secrets(struct conf *cfg, const struct stat *st, char **error_r)
{
	size_t i;

	if ((st->st_mode & S_IROTH) == 0)
		return 0;
	for (i = 0; i < cfg_nparams; i++) {
		const struct cfg_param *p = cfg_params[i];
		const struct cfg_value *v = &cfg->values[i];
		int secret = (p->flags & CFG_SECRET) ||
			     ((p->flags & CFG_SECRET_PW) && v->text && strstr(v->text, "password"));

		if (v->set && secret) {
			*error_r = xasprintf("%s is world-readable and holds the secret %s: "
					     "chmod o-rwx it",
					     cfg->path, p->name);
			return -1;
		}
	}
	return 0;
}

static int cfg_read_file(struct conf *cfg, FILE *fp, char **error_r)
{
	config_t lc;
	struct stat st;
	int rc;

	if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", cfg->path);
		return -1;
	}
	config_init(&lc);
	if (config_read(&lc, fp) != CONFIG_TRUE) {
		*error_r = xasprintf("%s:%d: %s", cfg->path, config_error_line(&lc),
				     config_error_text(&lc));
		config_destroy(&lc);
		return -1;
	}
	rc = cfg_walk(cfg, config_root_setting(&lc), "", error_r);
	if (rc < 0) {
		char *inner = *error_r;
		*error_r = xasprintf("%s: %s", cfg->path, inner);
		free(inner);
	}
	config_destroy(&lc);
	if (rc == 0)
		rc = cfg_check_secrets(cfg, &st, error_r);
	return rc;
}

struct conf *conf_load(const char *path, int allow_missing, char **error_r)
{
	struct conf *cfg = xcalloc(1, sizeof(*cfg));
	FILE *fp;

	cfg_init_shared();
	cfg->path = xstrdup(path ? path : POSTROOM_CONFIG_DEFAULT);
	cfg->values = xcalloc(cfg_nparams, sizeof(*cfg->values));
	cfg->nvalues = cfg_nparams;
	cfg_set_defaults(cfg);
	fp = fopen(cfg->path, "r");
	if (fp == NULL) {
		if (errno == ENOENT && allow_missing)
			return cfg;
		*error_r = xasprintf("cannot open %s: %s", cfg->path, strerror(errno));
		conf_free(&cfg);
		return NULL;
	}
	if (cfg_read_file(cfg, fp, error_r) < 0) {
		fclose(fp);
		conf_free(&cfg);
		return NULL;
	}
	fclose(fp);
	return cfg;
}

void conf_free(struct conf **cfgp)
{
	struct conf *cfg = *cfgp;
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nvalues; i++)
		free(cfg->values[i].text);
	for (i = 0; i < cfg->nwarnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg->values);
	free(cfg->path);
	xfree(cfgp);
}

const char *conf_path(const struct conf *cfg) { return cfg->path; }

const char *conf_str(const struct conf *cfg, const char *name)
{
	int i = cfg_index_checked(cfg, name);

	if (cfg_params[i]->type != CFG_STRING)
		log_panic("config: %s is not a string", name);
	return cfg->values[i].text;
}

const char *conf_conninfo(const struct conf *cfg, const char *section)
{
	char name[64];
	const char *v;

	snprintf(name, sizeof(name), "%s.conninfo", section);
	v = conf_declared(name) ? conf_str(cfg, name) : NULL;
	return v ? v : conf_str(cfg, "database.conninfo");
}

long long conf_int(const struct conf *cfg, const char *name)
{
	int i = cfg_index_checked(cfg, name);

	if (cfg_params[i]->type == CFG_STRING)
		log_panic("config: %s is a string", name);
	return cfg->values[i].num;
}

int conf_bool(const struct conf *cfg, const char *name) { return conf_int(cfg, name) != 0; }

int conf_is_set(const struct conf *cfg, const char *name)
{
	return cfg->values[cfg_index_checked(cfg, name)].set;
}

int conf_set(struct conf *cfg, const char *name, const char *value, char **error_r)
{
	int i = cfg_index(name);

	if (i < 0 || (size_t)i >= cfg->nvalues) {
		*error_r = xasprintf("unknown parameter %s", name);
		return -1;
	}
	if (cfg_parse_text(cfg_params[i], value, &cfg->values[i], error_r) < 0)
		return -1;
	cfg->values[i].set = 1;
	return 0;
}
