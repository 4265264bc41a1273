/* front.h - what postroom-deliver's front end and its storing program
 * (postroom-deliver-store) share: the pipe(8) command line, the
 * environment fallback of local(8) and Exim, the status line, the setgid
 * handling.
 *
 * CONTRACT: deliver_exit and deliver_operator_error never return; an
 * operator mistake always defers (75, 4.3.5), never bounces. */
#ifndef POSTROOM_DELIVER_FRONT_H
#define POSTROOM_DELIVER_FRONT_H

#include <stddef.h>

#define PROG "postroom-deliver"

struct deliver_args {
	const char *conf_path;
	const char *sender; /* NULL: not given */
	const char *sasl_user;
	const char *client;
	const char *queue_id;
	int sent;
	int verbose;
	const char **rcpts;
	size_t nrcpts;
};

/* deliver_exit - print the status line (pipe(8) reads the enhanced code
 * at the start of the output) and exit with status */
void deliver_exit(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* deliver_operator_error - log loudly, defer with 4.3.5 */
void deliver_operator_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* deliver_start - what both programs do first: the log, the command
 * line into *a (an operator error when it is bad), the environment
 * fallback, the queue id as the log context */
void deliver_start(int argc, char **argv, struct deliver_args *a);
/* deliver_parse_args - the command line into *a; 0, or -1 with *error_r
 * (static text). -h prints the usage and exits 0. */
int deliver_parse_args(int argc, char **argv, struct deliver_args *a, const char **error_r);
/* deliver_env_fallback - fill what the command line left out from the
 * environment (SENDER, RECIPIENT, LOCAL_PART@DOMAIN, ...) */
void deliver_env_fallback(struct deliver_args *a);
/* deliver_check_args - complete and usable, else an operator error;
 * MAILER-DAEMON becomes the null sender, an empty -a none */
void deliver_check_args(struct deliver_args *a);
/* deliver_args_cleanup - free what deliver_env_fallback allocated */
void deliver_args_cleanup(void);
/* deliver_env - a non-empty environment variable or NULL */
const char *deliver_env(const char *name);

/* deliver_is_setgid - running with a group (or user) we were not given */
int deliver_is_setgid(void);
/* deliver_check_conf_owner - while setgid, -c may only name a file owned
 * by root and our group, writable by root alone; else an operator error */
void deliver_check_conf_owner(const char *path);
/* deliver_conf_load - the pipe programs' configuration: the owner check
 * while setgid, the deliver section registered, the file loaded. NULL with
 * *error_r set (caller frees) when it cannot be loaded; the caller defers. */
struct conf;
struct conf *deliver_conf_load(const struct deliver_args *a, char **error_r);
/* deliver_drop_group - drop the setgid group for good and every PG*
 * environment variable; an operator error when that fails */
void deliver_drop_group(void);

/* deliver_on_alarm - SIGALRM handler: the whole call took longer than
 * deliver.timeout (the MTA stopped writing the message): print 4.3.0 and
 * exit 75 (async-signal-safe) */
void deliver_on_alarm(int sig);

#endif
