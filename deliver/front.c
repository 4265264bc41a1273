/*
 * NAME
 *	postroom-deliver - the delivery agent's small front end
 * SYNOPSIS
 *	postroom-deliver [-c FILE] -f SENDER [-a SASL_USER] [-C CLIENT_ADDR]
 *		[-q QUEUE_ID] [--sent] [-v] -- RECIPIENT...
 * DESCRIPTION
 *	What Postfix pipe(8), mailbox_command and Exim's pipe transport
 *	run for every message, linked with libc and libconfig only, so that
 *	starting it costs a few page faults rather than the ~20 ms of
 *	loading libpq, GMime, libcurl and their dependencies. It reads the
 *	configuration (with the setgid group, when installed so) and then
 *	either
 *	- deliver.lmtpd_socket set: connects to postroom-lmtpd, drops the
 *	  group for good, and hands the message over LMTP (deliver/front_client.c),
 *	  exiting with the status direct mode would give; or
 *	- unset: executes postroom-deliver-store (deliver/dstore_main.c) with the
 *	  same arguments, which stores the message itself
 *	  (deliver/front_exec.c says where it is looked for).
 *	Parameters: deliver.lmtpd_socket, deliver.timeout.
 * NEVER
 *	bounces mail because of an operator mistake or an unreachable
 *	lmtpd; reads the message while it holds the setgid group; links
 *	libpq, GMime or libcurl.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "front.h"
#include "front_client.h"
#include "front_exec.h"
#include "log.h"

static struct conf *front_cfg;

/* front_cleanup - at exit: release the configuration */
static void front_cleanup(void)
{
	conf_free(&front_cfg);
	deliver_args_cleanup();
}

/* front_read_conf - load and check the configuration, or defer */
static struct conf *front_read_conf(const struct deliver_args *a)
{
	char *err = NULL;
	struct conf *cfg;

	if ((cfg = deliver_conf_load(a, &err)) == NULL) {
		log_error("MAIL DEFERRED BY A CONFIGURATION ERROR: %s", err);
		free(err);
		deliver_exit(EX_TEMPFAIL,
			     "4.3.5 %s: configuration error, mail deferred (see the mail log)",
			     PROG);
	}
	conf_log_warnings(cfg);
	return cfg;
}

int main(int argc, char **argv)
{
	struct deliver_args a;
	struct client_session s;
	const char *sock;

	signal(SIGPIPE, SIG_IGN);
	atexit(front_cleanup);
	memset(&s, 0, sizeof(s));
	clock_gettime(CLOCK_MONOTONIC, &s.start);
	deliver_start(argc, argv, &a);
	front_cfg = front_read_conf(&a);
	sock = conf_str(front_cfg, "deliver.lmtpd_socket");
	if (sock == NULL || *sock == '\0') {
		conf_free(&front_cfg);
		front_exec_store(argv);
	}
	s.socket = sock;
	s.timeout = (int)conf_int(front_cfg, "deliver.timeout");
	s.a = &a;
	deliver_check_args(&a);
	signal(SIGALRM, deliver_on_alarm);
	alarm((unsigned)s.timeout + 2); /* the socket's own deadline comes first */
	client_connect(&s);             /* with the group: the socket may need it */
	if (deliver_is_setgid())
		deliver_drop_group();
	client_run(&s);
}
