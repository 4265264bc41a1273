/*
 * NAME
 *	front_args - the command line, environment and setgid rules of
 *	postroom-deliver (shared by the front end and postroom-deliver-store)
 * DESCRIPTION
 *	Parses the pipe(8) command line (-c -f -a -C -q --sent -v --
 *	RECIPIENT...), falls back to the environment local(8) and Exim's
 *	pipe transport set (SENDER, RECIPIENT, LOCAL_PART, DOMAIN,
 *	SASL_USERNAME, CLIENT_ADDRESS, QUEUE_ID, MESSAGE_ID, POSTROOM_SENT),
 *	prints the status line pipe(8) reads, and holds the setgid rules:
 *	the configuration is read with the group only when root owns it and
 *	alone may change it, and the group is dropped for good before the
 *	message is read. Loads the configuration for both programs
 *	(deliver_conf_load: the deliver section registered).
 * NEVER
 *	bounces mail because of an operator mistake; keeps the setgid group
 *	after deliver_drop_group; lets the caller's PG* variables reach libpq.
 */
#include "front.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "conf.h"
#include "deliver_params.h"
#include "log.h"
#include "xalloc.h"

extern char **environ;

static char *deliver_rcpt_storage; /* LOCAL_PART@DOMAIN */

/* __lsan_is_turned_off - the LeakSanitizer hook (sanitizer builds only):
 * a setgid process is not dumpable, and LeakSanitizer, which must attach
 * to it to look for leaks, would turn every exit into a fatal error. */
int __lsan_is_turned_off(void) __attribute__((used, visibility("default")));
int __lsan_is_turned_off(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0; }

void deliver_exit(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(status);
}

void deliver_operator_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("MAIL DEFERRED BY A CONFIGURATION ERROR: %s", msg);
	deliver_exit(EX_TEMPFAIL, "4.3.5 %s: configuration error, mail deferred (see the mail log)",
		     PROG);
}

/* deliver_is_option - one of our own option words (never a value) */
static int deliver_is_option(const char *v)
{
	static const char *const opts[] = {
		"-c", "-f", "-a", "-C", "-q", "-v", "--sent", "--", NULL
	};
	size_t i;

	for (i = 0; opts[i]; i++)
		if (strcmp(v, opts[i]) == 0)
			return 1;
	return 0;
}

int deliver_parse_args(int argc, char **argv, struct deliver_args *a, const char **error_r)
{
	static const struct option longopts[] = { { "sent", no_argument, NULL, 'S' },
						  { "help", no_argument, NULL, 'h' },
						  { NULL, 0, NULL, 0 } };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:f:a:C:q:vh", longopts, NULL)) != -1) {
		if ((c == 'f' || c == 'a' || c == 'C' || c == 'q') && deliver_is_option(optarg) &&
		    optarg == argv[optind - 1]) {
			optind--; /* an MTA left out an empty value: "-f -a ..." */
			optarg = (char *)"";
		}
		switch (c) {
		case 'c': a->conf_path = optarg; break;
		case 'f': a->sender = optarg; break;
		case 'a': a->sasl_user = optarg; break;
		case 'C': a->client = optarg; break;
		case 'q': a->queue_id = optarg; break;
		case 'S': a->sent = 1; break;
		case 'v': a->verbose = 1; break;
		case 'h':
			printf("usage: %s [-c FILE] -f SENDER [-a SASL_USER] [-C CLIENT_ADDR] [-q QUEUE_ID]"
			       " [--sent] [-v] -- RECIPIENT...\n",
			       PROG);
			exit(0);
		default: *error_r = "unknown option or missing option argument"; return -1;
		}
	}
	a->rcpts = (const char **)argv + optind;
	a->nrcpts = (size_t)(argc - optind);
	return 0;
}

void deliver_start(int argc, char **argv, struct deliver_args *a)
{
	const char *perr = NULL;

	memset(a, 0, sizeof(*a));
	log_init(PROG, 0, 0);
	if (deliver_parse_args(argc, argv, a, &perr) < 0)
		deliver_operator_error("bad command line: %s (usage: -f SENDER [-a USER] [-C ADDR]"
				       " [-q ID] [--sent] -- RECIPIENT...)",
				       perr);
	if (a->verbose)
		log_init(PROG, 1, 0);
	deliver_env_fallback(a);
	if (a->queue_id)
		log_set_context(a->queue_id);
}

const char *deliver_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

void deliver_env_fallback(struct deliver_args *a)
{
	static const char *one[1];
	const char *v;

	if (a->sender == NULL)
		a->sender = getenv("SENDER"); /* may be empty: the null sender */
	if (a->sasl_user == NULL)
		a->sasl_user = deliver_env("SASL_USERNAME");
	if (a->client == NULL)
		a->client = deliver_env("CLIENT_ADDRESS");
	if (a->queue_id == NULL)
		a->queue_id = deliver_env("QUEUE_ID") ? deliver_env("QUEUE_ID")
						      : deliver_env("MESSAGE_ID");
	if (!a->sent && (v = deliver_env("POSTROOM_SENT")) && strcmp(v, "1") == 0)
		a->sent = 1;
	if (a->nrcpts > 0)
		return;
	if ((v = deliver_env("RECIPIENT")) != NULL) {
		one[0] = v;
	} else if (deliver_env("LOCAL_PART") && deliver_env("DOMAIN")) {
		deliver_rcpt_storage = xasprintf("%s@%s", getenv("LOCAL_PART"), getenv("DOMAIN"));
		one[0] = deliver_rcpt_storage;
	} else {
		return;
	}
	a->rcpts = one;
	a->nrcpts = 1;
}

void deliver_args_cleanup(void) { xfree(&deliver_rcpt_storage); }

void deliver_check_args(struct deliver_args *a)
{
	struct mailbox mb;
	const char *err;
	size_t i;

	if (a->sender == NULL)
		deliver_operator_error(
			"no sender: give -f SENDER (pipe(8): -f ${sender}) or set SENDER");
	if (strcmp(a->sender, "MAILER-DAEMON") == 0)
		a->sender = "";
	if (a->nrcpts == 0)
		deliver_operator_error("no recipient: give -- ${recipient} or set RECIPIENT");
	for (i = 0; i < a->nrcpts; i++) {
		if (addr_parse(a->rcpts[i], strlen(a->rcpts[i]), ADDR_OPT_BARE | ADDR_OPT_UTF8, &mb,
			       &err) < 0)
			deliver_operator_error("recipient argument '%.200s' is not an address: %s",
					       a->rcpts[i], err);
		addr_free(&mb);
	}
	if (a->sasl_user && *a->sasl_user == '\0')
		a->sasl_user = NULL;
}

int deliver_is_setgid(void) { return getegid() != getgid() || geteuid() != getuid(); }

void deliver_check_conf_owner(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		deliver_operator_error("configuration %s: %s", path, strerror(errno));
	if (st.st_uid != 0 || st.st_gid != getegid() || (st.st_mode & 022) != 0)
		deliver_operator_error("refusing configuration %s while setgid: it must be owned by"
				       " root and the program's group and writable by root alone",
				       path);
}

struct conf *deliver_conf_load(const struct deliver_args *a, char **error_r)
{
	if (a->conf_path && deliver_is_setgid())
		deliver_check_conf_owner(a->conf_path);
	conf_register(&deliver_conf_table);
	return conf_load(a->conf_path, 0, error_r);
}

void deliver_drop_group(void)
{
	gid_t rg = getgid(), g1, g2, g3;
	uid_t ru = getuid(), u1, u2, u3;
	char **e;

	if (setresgid(rg, rg, rg) < 0 || setresuid(ru, ru, ru) < 0 ||
	    getresgid(&g1, &g2, &g3) < 0 || getresuid(&u1, &u2, &u3) < 0 || g1 != rg || g2 != rg ||
	    g3 != rg || u1 != ru || u2 != ru || u3 != ru)
		deliver_operator_error("cannot drop the setgid group: %s", strerror(errno));
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	/* the caller must not steer libpq (PGHOST, PGSSLKEY, ...) to learn the password */
	for (e = environ; *e;) {
		if (strncmp(*e, "PG", 2) == 0) {
			char *name = xstrndup(*e, strcspn(*e, "="));

			unsetenv(name);
			free(name);
		} else {
			e++;
		}
	}
}

void deliver_on_alarm(int sig)
{
	static const char msg[] = "4.3.0 " PROG ": delivery timed out, try again later\n";
	ssize_t w;

	(void)sig;
	w = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(EX_TEMPFAIL);
}
