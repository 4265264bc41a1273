/*
 * NAME
 *	daemon - shared start-up of postroom daemons
 * DESCRIPTION
 *	Command-line options (-c -f -t -d), loading the configuration with
 *	the right failure status, listening sockets (unix or TCP), and the
 *	privilege drop (groups, gid, uid; each step fatal on failure) after
 *	the privileged sockets are open.
 * NEVER
 *	keeps root after daemon_drop_privileges succeeded.
 */
#include "daemon.h"

#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

static void daemon_usage(const char *progname, int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [-c FILE] [-f] [-t] [-d]\n"
		"  -c FILE  configuration file (default %s)\n"
		"  -f       stay in the foreground, log to stderr as well\n"
		"  -t       check the configuration and exit\n"
		"  -d       debug logging\n",
		progname, POSTROOM_CONFIG_DEFAULT);
	exit(status);
}

void daemon_parse_args(int argc, char **argv, const char *progname, struct daemon_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	while ((c = getopt(argc, argv, "c:ftdh")) != -1) {
		switch (c) {
		case 'c': a->conf_path = optarg; break;
		case 'f': a->foreground = 1; break;
		case 't': a->check_only = 1; break;
		case 'd': a->debug = 1; break;
		case 'h': daemon_usage(progname, 0); break;
		default: daemon_usage(progname, EX_USAGE);
		}
	}
	if (optind != argc)
		daemon_usage(progname, EX_USAGE);
	log_init(progname, a->foreground || a->check_only, 0);
	log_set_debug(a->debug);
}

struct conf *daemon_load_conf(const struct daemon_args *a, int fail_status)
{
	char *err = NULL;
	struct conf *cfg = conf_load(a->conf_path, 0, &err);

	if (cfg == NULL)
		log_fatal(fail_status, "configuration error: %s", err);
	conf_log_warnings(cfg);
	return cfg;
}

void daemon_check_exit(const char *progname, const struct conf *cfg)
{
	printf("%s: configuration %s is valid\n", progname, conf_path(cfg));
	exit(0);
}

/* daemon_listen_unix - bind a unix socket, replacing a stale one */
static int daemon_listen_unix(const char *path, int mode, const char *owner, const char *group,
			      int backlog, char **error_r)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = xasprintf("socket path too long: %s", path);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = xasprintf("%s exists and is not a socket", path);
			return -1;
		}
		unlink(path);
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, backlog) < 0) {
		*error_r = xasprintf("cannot listen on unix:%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if ((mode > 0 && chmod(path, (mode_t)mode) < 0)) {
		*error_r = xasprintf("chmod %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((owner && *owner) || (group && *group)) {
		struct passwd *pw = owner && *owner ? getpwnam(owner) : NULL;
		struct group *gr = group && *group ? getgrnam(group) : NULL;

		if ((owner && *owner && !pw) || (group && *group && !gr) ||
		    chown(path, pw ? pw->pw_uid : (uid_t)-1, gr ? gr->gr_gid : (gid_t)-1) < 0) {
			*error_r = xasprintf("cannot give %s to %s:%s", path, owner ? owner : "",
					     group ? group : "");
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* daemon_split_hostport - "HOST:PORT" / "[V6]:PORT" into parts (caller frees host) */
static int daemon_split_hostport(const char *spec, char **host, const char **port)
{
	const char *colon;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		*host = xstrndup(spec + 1, (size_t)(end - spec - 1));
		*port = end + 2;
		return 0;
	}
	if ((colon = strrchr(spec, ':')) == NULL)
		return -1;
	*host = xstrndup(spec, (size_t)(colon - spec));
	*port = colon + 1;
	return 0;
}

static int daemon_listen_tcp(const char *spec, int backlog, char **error_r)
{
	struct addrinfo hints, *ai = NULL;
	const char *port;
	char *host = NULL;
	int fd = -1, one = 1, rc;

	if (daemon_split_hostport(spec, &host, &port) < 0) {
		*error_r = xasprintf("bad listen address %s (HOST:PORT)", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		*error_r = xasprintf("bad listen address %s: %s", spec, gai_strerror(rc));
		free(host);
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		*error_r = xasprintf("cannot listen on %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	free(host);
	return fd;
}

int daemon_listen(const char *spec, int mode, const char *owner, const char *group, int backlog,
		  char **error_r)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return daemon_listen_unix(spec + 5, mode, owner, group, backlog, error_r);
	if (spec[0] == '/')
		return daemon_listen_unix(spec, mode, owner, group, backlog, error_r);
	if (strncmp(spec, "inet:", 5) == 0)
		spec += 5;
	return daemon_listen_tcp(spec, backlog, error_r);
}

int daemon_drop_privileges(const char *user, const char *group, int allow_root, char **error_r)
{
	struct passwd *pw;
	struct group *gr = NULL;
	gid_t gid;

	if (user == NULL || *user == '\0') {
		if (geteuid() == 0 && !allow_root) {
			*error_r = xasprintf("refusing to run as root: set a user to run as");
			return -1;
		}
		return 0;
	}
	if ((pw = getpwnam(user)) == NULL) {
		*error_r = xasprintf("unknown user %s", user);
		return -1;
	}
	if (group && *group && (gr = getgrnam(group)) == NULL) {
		*error_r = xasprintf("unknown group %s", group);
		return -1;
	}
	gid = gr ? gr->gr_gid : pw->pw_gid;
	if (geteuid() != 0 && geteuid() == pw->pw_uid)
		return 0; /* already that user (tests run unprivileged) */
	if (initgroups(pw->pw_name, gid) < 0 || setgid(gid) < 0 || setuid(pw->pw_uid) < 0) {
		*error_r = xasprintf("cannot become %s: %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		*error_r = xasprintf("privilege drop to %s did not stick", user);
		return -1;
	}
	return 0;
}

int daemon_signalfd(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		log_fatal(EX_OSERR, "signalfd: %s", strerror(errno));
	return fd;
}
