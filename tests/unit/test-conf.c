/* test-conf - postroom.conf parsing: defaults, types, bounds, unknown
 * names, refusal of secrets in world-readable files, registered tables
 * (a program checks its own sections and skips the others'), renamed
 * parameters. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "conf.h"
#include "unit.h"

static char dir[] = "/tmp/postroom-test-conf.XXXXXX";

/* a program's table, as milter/milter_params.c declares one */
static const struct cfg_param test_params[] = {
	{ "milter.socket", CFG_STRING, "unix:/x", 0, 0, 0, "socket" },
	{ "milter.timeout", CFG_INT, "300", 10, 7200, 0, "timeout" },
};
static const struct cfg_table test_table = { "test", test_params, 2 };

static char *write_conf(const char *name, const char *text, mode_t mode)
{
	char *path;
	FILE *fp;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		abort();
	fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	chmod(path, mode);
	return path;
}

static struct conf *load(const char *name, const char *text, mode_t mode, char **err)
{
	char *path = write_conf(name, text, mode);
	struct conf *c;

	*err = NULL;
	c = conf_load(path, 0, err);
	free(path);
	return c;
}

int main(void)
{
	struct conf *c;
	char *err = NULL;

	if (mkdtemp(dir) == NULL)
		return 2;
	c = load("empty.conf", "", 0644, &err);
	UNIT_OK(c != NULL, "empty file loads");
	UNIT_OK(c && conf_int(c, "limits.message_size_max") == 52428800,
		"default message size 50 MB");
	UNIT_OK(c && conf_int(c, "limits.attachment_size_max") == 26214400,
		"default attachment size 25 MB");
	UNIT_OK(c && conf_int(c, "apikey.bcrypt_cost") == 11, "default bcrypt cost 11");
	UNIT_OK(c && conf_str(c, "database.conninfo") == NULL, "conninfo unset by default");
	conf_free(&c);

	c = load("ok.conf",
		 "database = { conninfo = \"host=/tmp dbname=x\"; };\n"
		 "limits = { message_size_max = 1048576; };\n",
		 0644, &err);
	UNIT_OK(c != NULL, "sections load (%s)", err ? err : "");
	UNIT_STR_EQ(c ? conf_str(c, "database.conninfo") : NULL, "host=/tmp dbname=x",
		    "conninfo read");
	UNIT_OK(c && conf_int(c, "limits.message_size_max") == 1048576, "size read");
	UNIT_OK(c && conf_is_set(c, "limits.message_size_max") &&
			!conf_is_set(c, "apikey.bcrypt_cost"),
		"conf_is_set tells given from default");
	conf_free(&c);

	c = load("typo.conf", "database = { connifo = \"x\"; };\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "unknown parameter database.connifo"),
		"unknown parameter refused: %s", err ? err : "");
	free(err);
	c = load("type.conf", "apikey = { bcrypt_cost = \"eleven\"; };\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "must be of type integer") &&
			strstr(err, "apikey.bcrypt_cost"),
		"wrong type refused naming the parameter: %s", err ? err : "");
	free(err);
	c = load("bounds.conf", "apikey = { bcrypt_cost = 3; };\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "out of range"), "out of bounds refused: %s",
		err ? err : "");
	free(err);
	c = load("syntax.conf", "database = { conninfo = ; };\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "syntax.conf:1"),
		"syntax error names file and line: %s", err ? err : "");
	free(err);

	c = load("secret-world.conf",
		 "security = { hmac_secret = \"0123456789abcdef0123456789abcdef\"; };\n", 0644,
		 &err);
	UNIT_OK(c == NULL && err && strstr(err, "world-readable") &&
			strstr(err, "security.hmac_secret") &&
			strstr(err, "0123456789abcdef") == NULL,
		"world-readable secret refused without showing it: %s", err ? err : "");
	free(err);
	c = load("secret-ok.conf",
		 "security = { hmac_secret = \"0123456789abcdef0123456789abcdef\"; };\n", 0640,
		 &err);
	UNIT_OK(c != NULL, "secret in a 0640 file accepted");
	conf_free(&c);
	c = load("pw-world.conf", "database = { conninfo = \"dbname=x password=hunter2\"; };\n",
		 0644, &err);
	UNIT_OK(c == NULL && err && strstr(err, "database.conninfo") && !strstr(err, "hunter2"),
		"world-readable conninfo with a password refused: %s", err ? err : "");
	free(err);

	/* before the program registers its table, its section is skipped;
	 * an unknown section is not */
	c = load("other.conf", "milter = { sockett = \"x\"; };\n", 0600, &err);
	UNIT_OK(c != NULL, "an unregistered program's section is left to it (%s)", err ? err : "");
	conf_free(&c);
	c = load("nosection.conf", "miltr = { socket = \"x\"; };\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "unknown parameter miltr.socket"),
		"an unknown section is refused: %s", err ? err : "");
	free(err);
	c = load("nodot.conf", "conninfo = \"x\";\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "unknown parameter conninfo"),
		"a parameter outside any section is refused: %s", err ? err : "");
	free(err);
	UNIT_OK(!conf_declared("milter.timeout"), "not declared before registration");
	conf_register(&test_table);
	conf_register(&test_table);
	UNIT_OK(conf_declared("milter.timeout"), "declared once registered");
	UNIT_OK(conf_param_count() > 2 && conf_param_at(conf_param_count()) == NULL,
		"conf_param_at ends at conf_param_count");
	UNIT_STR_EQ(conf_param_at(0)->name, "database.conninfo", "the shared table comes first");
	UNIT_STR_EQ(conf_param_at(conf_param_count() - 1)->name, "milter.timeout",
		    "a registered table follows, once however often registered");
	c = load("own.conf", "milter = { sockett = \"x\"; };\n", 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "line 1: unknown parameter milter.sockett"),
		"a typo in a registered section is refused: %s", err ? err : "");
	free(err);
	c = load("own-ok.conf", "milter = { timeout = 20; };\n", 0600, &err);
	UNIT_OK(c && conf_int(c, "milter.timeout") == 20 && conf_warning(c, 0) == NULL,
		"a registered parameter is read, no warning");
	conf_free(&c);

	/* a renamed parameter: the old name works, with a warning */
	c = load("old.conf", "milter = { sent_recipient = \"sent@x.invalid\"; };\n", 0600, &err);
	UNIT_STR_EQ(c ? conf_str(c, "rules.sent_recipient") : NULL, "sent@x.invalid",
		    "the old name sets the new parameter (%s)", err ? err : "");
	UNIT_OK(c && conf_warning(c, 0) &&
			strstr(conf_warning(c, 0),
			       "line 1: milter.sent_recipient is deprecated: use "
			       "rules.sent_recipient") &&
			conf_warning(c, 1) == NULL,
		"one deprecation warning naming both: %s",
		c && conf_warning(c, 0) ? conf_warning(c, 0) : "");
	conf_free(&c);
	c = load("both.conf",
		 "rules = { sent_recipient = \"a@x.invalid\"; };\n"
		 "milter = { sent_recipient = \"b@x.invalid\"; };\n",
		 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "line 2: rules.sent_recipient is set twice"),
		"the old and the new name together are refused: %s", err ? err : "");
	free(err);
	c = load("both2.conf",
		 "milter = { sent_recipient = \"b@x.invalid\"; };\n"
		 "rules = { sent_recipient = \"a@x.invalid\"; };\n",
		 0600, &err);
	UNIT_OK(c == NULL && err && strstr(err, "line 2: rules.sent_recipient is set twice"),
		"... in either order: %s", err ? err : "");
	free(err);

	err = NULL;
	c = conf_load("/nonexistent/postroom.conf", 0, &err);
	UNIT_OK(c == NULL && err && strstr(err, "/nonexistent/postroom.conf"),
		"missing file is an error");
	free(err);
	c = conf_load("/nonexistent/postroom.conf", 1, &err);
	UNIT_OK(c != NULL, "missing file allowed when asked");
	conf_free(&c);
	return unit_done();
}
