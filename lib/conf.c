/*
 * NAME
 *	config - load and check postroom.conf
 * DESCRIPTION
 *	Parses the file with libconfig, walks every setting it holds and
 *	matches it against the table in conf_params.c: an unknown name, a
 *	wrong type or an out-of-bounds value is an error naming the line. A
 *	file that sets a secret and is readable by others is refused.
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
	char *text;	/* string form (strings) */
	long long num;	/* INT, SIZE, BOOL */
	int set;	/* given by the file or conf_set */
};

struct conf {
	char *path;
	struct cfg_value *values;
};

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
		if (strcmp(cfg_params[i].name, name) == 0)
			return (int)i;
	return -1;
}

int conf_declared(const char *name)
{
	return cfg_index(name) >= 0;
}

static int cfg_index_checked(const char *name)
{
	int i = cfg_index(name);

	if (i < 0)
		log_panic("config: parameter %s is not declared", name);
	return i;
}

/* cfg_parse_text - convert text to the parameter's type, checking bounds */
static int cfg_parse_text(const struct cfg_param *p, const char *text,
			  struct cfg_value *v, char **error_r)
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
		else if (strcmp(text, "false") == 0 || strcmp(text, "no") == 0 || strcmp(text, "0") == 0)
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
		*error_r = xasprintf("%s: %lld is out of range [%lld, %lld]",
				     p->name, n, p->min, p->max);
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
		if (cfg_params[i].def == NULL)
			continue;
		if (cfg_parse_text(&cfg_params[i], cfg_params[i].def, &cfg->values[i], &err) < 0)
			log_panic("config: bad default: %s", err);
	}
}

/* cfg_take_setting - store one scalar setting found in the file */
static int cfg_take_setting(struct conf *cfg, config_setting_t *s,
			    const char *name, char **error_r)
{
	int i = cfg_index(name), type = config_setting_type(s);
	const struct cfg_param *p;
	struct cfg_value *v;
	char num[32];

	if (i < 0) {
		*error_r = xasprintf("line %d: unknown parameter %s",
				     config_setting_source_line(s), name);
		return -1;
	}
	p = &cfg_params[i];
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
			     name, cfg_type_name(p->type));
	return -1;
}

/* cfg_walk - visit every setting under group g */
static int cfg_walk(struct conf *cfg, config_setting_t *g, const char *prefix,
		    char **error_r)
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
		const struct cfg_param *p = &cfg_params[i];
		const struct cfg_value *v = &cfg->values[i];
		int secret = (p->flags & CFG_SECRET) ||
			     ((p->flags & CFG_SECRET_PW) && v->text && strstr(v->text, "password"));

		if (v->set && secret) {
			*error_r = xasprintf("%s is world-readable and holds the secret %s: "
					     "chmod o-rwx it", cfg->path, p->name);
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

	cfg->path = xstrdup(path ? path : POSTROOM_CONFIG_DEFAULT);
	cfg->values = xcalloc(cfg_nparams, sizeof(*cfg->values));
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
	for (i = 0; i < cfg_nparams; i++)
		free(cfg->values[i].text);
	free(cfg->values);
	free(cfg->path);
	xfree(cfgp);
}

const char *conf_path(const struct conf *cfg) { return cfg->path; }

const char *conf_str(const struct conf *cfg, const char *name)
{
	int i = cfg_index_checked(name);

	if (cfg_params[i].type != CFG_STRING)
		log_panic("config: %s is not a string", name);
	return cfg->values[i].text;
}

long long conf_int(const struct conf *cfg, const char *name)
{
	int i = cfg_index_checked(name);

	if (cfg_params[i].type == CFG_STRING)
		log_panic("config: %s is a string", name);
	return cfg->values[i].num;
}

int conf_bool(const struct conf *cfg, const char *name)
{
	return conf_int(cfg, name) != 0;
}

int conf_is_set(const struct conf *cfg, const char *name)
{
	return cfg->values[cfg_index_checked(name)].set;
}

int conf_set(struct conf *cfg, const char *name, const char *value, char **error_r)
{
	int i = cfg_index(name);

	if (i < 0) {
		*error_r = xasprintf("unknown parameter %s", name);
		return -1;
	}
	if (cfg_parse_text(&cfg_params[i], value, &cfg->values[i], error_r) < 0)
		return -1;
	cfg->values[i].set = 1;
	return 0;
}
