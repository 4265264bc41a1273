/* daemon.h - what every postroom daemon does the same way: options,
 * configuration, listening sockets, privilege drop. */
#ifndef POSTROOM_DAEMON_H
#define POSTROOM_DAEMON_H

#include "conf.h"

struct daemon_args {
	const char *conf_path; /* -c FILE (NULL: the default path) */
	int foreground;        /* -f: stay in the foreground, log to stderr too */
	int check_only;        /* -t: check the configuration and exit */
	int debug;             /* -d: debug logging */
};

/* daemon_parse_args - -c FILE, -f, -t, -d, -h. Prints usage and exits 64
 * on a bad command line. Calls log_init(progname, foreground, 0). */
void daemon_parse_args(int argc, char **argv, const char *progname, struct daemon_args *a);

/* daemon_load_conf - load the configuration; on failure log and exit with
 * fail_status (EX_CONFIG for daemons; deliver passes EX_TEMPFAIL so a
 * typo defers mail instead of bouncing it). */
struct conf *daemon_load_conf(const struct daemon_args *a, int fail_status);

/* daemon_check_exit - for -t: print "PROG: configuration FILE is valid"
 * and exit 0. */
void daemon_check_exit(const char *progname, const struct conf *cfg) __attribute__((noreturn));

/* daemon_listen - open a listening socket from "unix:/path" or
 * "inet:HOST:PORT" (also "HOST:PORT", "[v6]:PORT"). For unix sockets an
 * existing socket file is replaced, then chmod'ed to mode and chown'ed to
 * owner/group when given (NULL or "" = leave). Returns the fd, or -1 with
 * *error_r set (caller frees). */
int daemon_listen(const char *spec, int mode, const char *owner, const char *group, int backlog,
		  char **error_r);

/* daemon_drop_privileges - become user (and group; NULL/"" group = the
 * user's primary group): initgroups, setgid, setuid, each checked, and a
 * final check that root cannot be regained. NULL/"" user = stay (refused
 * as root unless allow_root). 0 ok, -1 with *error_r. */
int daemon_drop_privileges(const char *user, const char *group, int allow_root, char **error_r);

/* daemon_signalfd - ignore SIGPIPE; block SIGHUP, SIGTERM and SIGINT in
 * the calling thread (call it before any thread starts, so every thread
 * inherits the mask) and return a non-blocking signalfd that reads them.
 * Fatal (EX_OSERR) on failure. */
int daemon_signalfd(void);

#endif
