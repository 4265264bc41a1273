/*
 * NAME
 *	postroom-lmtpd - the LMTP delivery server: stores mail in PostgreSQL
 * SYNOPSIS
 *	postroom-lmtpd [-c FILE] [-f] [-t] [-d]
 * DESCRIPTION
 *	Start-up and the accept loop: load and check the configuration (-t
 *	stops there), open lmtpd.listen and lmtpd.listen_inet, go to the
 *	background unless -f, drop privileges to lmtpd.user, start the
 *	notification thread and the optional /metrics and /healthz
 *	listener, and serve: each connection gets a session thread
 *	(lmtpd_session), the sessions share lmtpd.pool_size PostgreSQL
 *	connections (lmtpd_pool). SIGHUP reloads the settings a transaction
 *	uses (listeners, user, pool and conninfo need a restart); SIGTERM
 *	and SIGINT stop accepting, let transactions in flight finish (new
 *	ones get 421 4.3.2), wait for the sessions up to lmtpd.timeout and
 *	exit 0. At start and reload, a hosted domain whose postmaster has
 *	no mailbox is logged (lib/store_postmaster.c).
 * NEVER
 *	runs as root after start-up (unless lmtpd.user says so); logs the
 *	conninfo or the notification key.
 * CONFIGURATION
 *	lmtpd.* (postroom.conf(5)), database.*, and what lmtpd_conf reads
 */
#include "lmtpd.h"
#include "deliver_params.h"
#include "lmtpd_params.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "mime_parse.h"
#include "store_postmaster.h"
#include "store_spool.h"
#include "xalloc.h"

#include "lmtpd_budget.h"
#include "lmtpd_conf.h"
#include "lmtpd_group.h"
#include "lmtpd_pool.h"
#include "lmtpd_session.h"

struct main_listener {
	int fd;
	int is_unix;
};

static const char *main_conf_path;

/* main_warm_up - parse a tiny message once before any session thread
 * exists: GMime's one-time initialisation (lib/mime_parse) is not safe
 * to race from two sessions */
static void main_warm_up(void)
{
	static const char msg[] = "Subject: warm-up\r\n\r\nx\r\n";
	struct store_spool sp;
	struct mime_msg *m = NULL;
	char *err = NULL;

	if (store_spool_from_mem(msg, sizeof(msg) - 1, &sp, &err) < 0 ||
	    mime_parse(sp.fd, 0, -1, sp.id, NULL, &m, &err) < 0)
		log_fatal(EX_SOFTWARE, "MIME parser start-up: %s", err);
	mime_msg_free(&m);
	store_spool_close(&sp);
}

/* main_metrics - the MISSION.md delivery metrics */
static void main_metrics(struct lmtpd_server *srv)
{
	static const double secs[] = {
		0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
	};

	srv->m_sessions =
		metrics_gauge("postroom_lmtpd_sessions_active", "LMTP sessions open now", NULL);
	srv->m_messages_ok = metrics_counter("postroom_lmtpd_messages_total",
					     "LMTP transactions by result", "result=\"delivered\"");
	srv->m_messages_temp =
		metrics_counter("postroom_lmtpd_messages_total", "LMTP transactions by result",
				"result=\"deferred\"");
	srv->m_messages_perm = metrics_counter("postroom_lmtpd_messages_total",
					       "LMTP transactions by result", "result=\"bounced\"");
	srv->m_bytes = metrics_counter("postroom_lmtpd_bytes_total",
				       "bytes of delivered messages (CRLF size)", NULL);
	srv->m_rcpts = metrics_counter("postroom_lmtpd_recipients_total",
				       "recipients of delivered messages", NULL);
	srv->m_duration = metrics_histogram("postroom_lmtpd_processing_seconds",
					    "time from the end of DATA's 354 to the last reply",
					    NULL, secs, sizeof(secs) / sizeof(secs[0]));
}

/* main_health - /healthz: the database answers */
static int main_health(void *arg, const char **reason_r)
{
	struct lmtpd_server *srv = arg;

	if (!lmtpd_pool_healthy(srv->pool)) {
		*reason_r = "database unreachable: deliveries are deferred";
		return -1;
	}
	return 0;
}

/* main_listen - open lmtpd.listen and lmtpd.listen_inet */
static size_t main_listen(const struct conf *cfg, struct main_listener *l)
{
	const char *specs[2] = { conf_str(cfg, "lmtpd.listen"),
				 conf_str(cfg, "lmtpd.listen_inet") };
	int mode = (int)strtol(conf_str(cfg, "lmtpd.socket_mode"), NULL, 8);
	size_t i, n = 0;
	char *err = NULL;

	for (i = 0; i < 2; i++) {
		if (specs[i] == NULL || *specs[i] == '\0')
			continue;
		l[n].fd = daemon_listen(specs[i], mode, conf_str(cfg, "lmtpd.socket_owner"),
					conf_str(cfg, "lmtpd.socket_group"), 256, &err);
		if (l[n].fd < 0)
			log_fatal(EX_OSERR, "%s", err);
		l[n].is_unix = strncmp(specs[i], "unix:", 5) == 0;
		log_info("lmtpd: listening on %s", specs[i]);
		n++;
	}
	if (n == 0)
		log_fatal(EX_CONFIG, "configuration error: lmtpd.listen is empty");
	return n;
}

/* main_signals - SIGHUP, SIGTERM, SIGINT through a signalfd; blocked
 * before any thread starts so that every thread inherits the mask */
static int main_signals(void) { return daemon_signalfd(); }

/* main_reload - SIGHUP: new settings for new transactions */
static void main_reload(void)
{
	char *err = NULL;
	struct conf *cfg = conf_load(main_conf_path, 0, &err);
	struct lmtpd_settings *set = cfg ? lmtpd_settings_load(cfg, &err) : NULL;

	if (set == NULL) {
		log_error("lmtpd: reload failed, keeping the running configuration: %s", err);
		free(err);
		conf_free(&cfg);
		return;
	}
	store_postmaster_log(cfg, "lmtpd");
	lmtpd_settings_install(set);
	log_info(
		"lmtpd: configuration reloaded (listeners, user, pool and database need a restart)");
}

/* main_peer - the client's address for the log and the trust check */
static void main_peer(int fd, int is_unix, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	snprintf(out, n, "unix");
	if (is_unix || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)n);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)n);
}

/* main_accept - one new connection */
static void main_accept(struct lmtpd_server *srv, const struct main_listener *l)
{
	struct lmtpd_settings *set;
	char peer[64];
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC), trusted;

	if (fd < 0) {
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			log_warn("lmtpd: accept: %s", strerror(errno));
		return;
	}
	main_peer(fd, l->is_unix, peer, sizeof(peer));
	set = lmtpd_settings_get();
	trusted = l->is_unix || lmtpd_trusted_addr(set, peer);
	lmtpd_settings_put(&set);
	lmtpd_session_spawn(srv, fd, trusted, peer);
}

/* main_loop - accept until SIGTERM */
static void main_loop(struct lmtpd_server *srv, struct main_listener *l, size_t nl, int sigfd)
{
	struct pollfd p[3];
	struct signalfd_siginfo si;
	size_t i;

	for (;;) {
		for (i = 0; i < nl; i++)
			p[i] = (struct pollfd){ l[i].fd, POLLIN, 0 };
		p[nl] = (struct pollfd){ sigfd, POLLIN, 0 };
		/* a second at most: an idle server gives its freed heap back */
		if (poll(p, nl + 1, 1000) < 0) {
			if (errno == EINTR)
				continue;
			log_fatal(EX_OSERR, "poll: %s", strerror(errno));
		}
		lmtpd_budget_idle();
		for (i = 0; i < nl; i++)
			if (p[i].revents & POLLIN)
				main_accept(srv, &l[i]);
		while (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				main_reload();
				continue;
			}
			log_info(
				"lmtpd: signal %u: finishing transactions in flight, then stopping",
				si.ssi_signo);
			return;
		}
	}
}

/* main_drain - wait for the sessions (at most seconds) */
static void main_drain(struct lmtpd_server *srv, int seconds)
{
	struct timespec until;

	srv->stopping = 1;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&srv->lock);
	while (srv->nsessions > 0)
		if (pthread_cond_timedwait(&srv->idle, &srv->lock, &until) == ETIMEDOUT)
			break;
	if (srv->nsessions > 0)
		log_warn("lmtpd: %d sessions still open at exit", srv->nsessions);
	pthread_mutex_unlock(&srv->lock);
	lmtpd_session_stop(srv);
}

int main(int argc, char **argv)
{
	static struct lmtpd_server srv;
	struct main_listener l[2];
	struct daemon_args args;
	struct lmtpd_settings *set;
	struct conf *cfg;
	char *err = NULL;
	const char *mlisten;
	size_t nl, i;
	int sigfd, metrics_on, timeout;

	lmtpd_budget_allocator(argv);
	conf_register(&deliver_conf_table);
	conf_register(&lmtpd_conf_table);
	daemon_parse_args(argc, argv, LMTPD_PROG, &args);
	main_conf_path = args.conf_path;
	cfg = daemon_load_conf(&args, EX_CONFIG);
	if ((set = lmtpd_settings_load(cfg, &err)) == NULL)
		log_fatal(EX_CONFIG, "configuration error: %s", err);
	lmtpd_settings_install(set); /* reachable from here on, -t included */
	if (args.check_only)
		daemon_check_exit(LMTPD_PROG, cfg);
	nl = main_listen(cfg, l);
	if (!args.foreground && daemon(0, 0) < 0)
		log_fatal(EX_OSERR, "cannot go to the background: %s", strerror(errno));
	if (daemon_drop_privileges(conf_str(cfg, "lmtpd.user"), conf_str(cfg, "lmtpd.group"), 0,
				   &err) < 0)
		log_fatal(EX_NOPERM, "%s", err);
	sigfd = main_signals();
	pthread_mutex_init(&srv.lock, NULL);
	pthread_cond_init(&srv.idle, NULL);
	pthread_cond_init(&srv.work, NULL);
	if (gethostname(srv.hostname, sizeof(srv.hostname) - 1) < 0 || srv.hostname[0] == '\0')
		snprintf(srv.hostname, sizeof(srv.hostname), "localhost");
	srv.max_sessions = (int)conf_int(cfg, "lmtpd.max_sessions");
	srv.pool = lmtpd_pool_new(conf_conninfo(cfg, "lmtpd"),
				  (int)conf_int(cfg, "database.connect_timeout"),
				  (size_t)conf_int(cfg, "lmtpd.pool_size"));
	/* half the pool stores (group commit makes more transactions at
	 * once no faster), the other half answers RCPT-time lookups */
	srv.group = lmtpd_group_new(srv.pool, (size_t)conf_int(cfg, "lmtpd.pool_size") / 2);
	timeout = (int)conf_int(cfg, "lmtpd.timeout");
	main_warm_up();
	main_metrics(&srv);
	lmtpd_budget_init();
	mlisten = conf_str(cfg, "lmtpd.metrics_listen");
	metrics_on = mlisten && *mlisten;
	if (metrics_on && metrics_http_start(mlisten, main_health, &srv, &err) < 0)
		log_fatal(EX_OSERR, "metrics: %s", err);
	store_postmaster_log(cfg, "lmtpd");
	log_info("lmtpd: ready (pool of %lld connections, pid %ld)",
		 conf_int(cfg, "lmtpd.pool_size"), (long)getpid());

	main_loop(&srv, l, nl, sigfd);

	for (i = 0; i < nl; i++)
		close(l[i].fd);
	main_drain(&srv, timeout);
	if (metrics_on)
		metrics_http_stop();
	if (srv.nsessions == 0) {
		lmtpd_group_free(&srv.group);
		lmtpd_pool_free(&srv.pool);
	}
	lmtpd_settings_install(NULL);
	close(sigfd);
	log_info("lmtpd: stopped");
	return 0;
}
