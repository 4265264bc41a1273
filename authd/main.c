/*
 * NAME
 *	postroom-authd - Dovecot-protocol SASL server for postroom API keys
 * DESCRIPTION
 *	Start-up and the event loop: load and check the configuration (-t
 *	stops there), open the listening sockets, go to the background
 *	unless -f, drop privileges, then start the bcrypt workers, the
 *	housekeeping thread (LISTEN/NOTIFY, last-use writes) and the
 *	optional metrics listener, and serve. SIGHUP reloads the settings
 *	that can change at run time and empties the cache; SIGTERM/SIGINT
 *	stop accepting, let running verifications answer (up to 10 s),
 *	write the last-use times and exit 0.
 * NEVER
 *	runs as root after start-up (unless authd.user says so); logs keys.
 * CONFIGURATION
 *	authd.* (see postroom.conf(5)), authd.conninfo or database.conninfo,
 *	security.hmac_secret, apikey.bcrypt_cost
 */
#include "authd.h"
#include "authd_params.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "crypto.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#define AUTHD_PROG "postroom-authd"
#define AUTHD_DRAIN_SECONDS 10.0

static const char *authd_conf_path;

int authd_settings_load(const struct conf *cfg, struct authd_settings *set, char **error_r)
{
	struct authd_limits *l = &set->limits;
	const char *secret = conf_str(cfg, "security.hmac_secret");
	const char *mode = conf_str(cfg, "authd.socket_mode");
	char *end;

	memset(set, 0, sizeof(*set));
	l->backoff_initial = (double)conf_int(cfg, "authd.ip_backoff_initial_ms") / 1000.0;
	l->backoff_max = (double)conf_int(cfg, "authd.ip_backoff_max_ms") / 1000.0;
	l->pair_failures = (unsigned)conf_int(cfg, "authd.ip_account_lockout_failures");
	l->lockout_failures = (unsigned)conf_int(cfg, "authd.ip_lockout_failures");
	l->failure_window = (double)conf_int(cfg, "authd.ip_failure_window");
	l->lockout_time = (double)conf_int(cfg, "authd.ip_lockout_time");
	l->account_failures = (unsigned)conf_int(cfg, "authd.account_failure_limit");
	l->account_window = (double)conf_int(cfg, "authd.account_failure_window");
	l->account_trust = (double)conf_int(cfg, "authd.account_trust_time");
	l->max_entries = (size_t)conf_int(cfg, "authd.limiter_max_entries");
	set->cache_size = (size_t)conf_int(cfg, "authd.cache_size");
	set->cache_ttl = (double)conf_int(cfg, "authd.cache_ttl");
	set->queue_max = (size_t)conf_int(cfg, "authd.queue_max");
	set->queue_time_max = (double)conf_int(cfg, "authd.queue_time_max");
	if (authd_limiter_nets_parse(conf_str(cfg, "authd.trusted_networks"), l, error_r) < 0)
		return -1;
	set->max_connections = (size_t)conf_int(cfg, "authd.max_connections");
	if (l->backoff_max < l->backoff_initial) {
		*error_r =
			xasprintf("authd.ip_backoff_max_ms is below authd.ip_backoff_initial_ms");
		return -1;
	}
	if (mode == NULL || strtol(mode, &end, 8) < 0 || *end != '\0' ||
	    strtol(mode, NULL, 8) > 07777) {
		*error_r =
			xasprintf("authd.socket_mode '%s' is not an octal mode", mode ? mode : "");
		return -1;
	}
	if (secret && strlen(secret) < 32) {
		*error_r = xasprintf("security.hmac_secret is shorter than 32 characters");
		return -1;
	}
	return 0;
}

/* authd_listen_all - open authd.listen and authd.listen_inet */
static void authd_listen_all(struct authd_server *s)
{
	const char *specs[2] = { conf_str(s->cfg, "authd.listen"),
				 conf_str(s->cfg, "authd.listen_inet") };
	int mode = (int)strtol(conf_str(s->cfg, "authd.socket_mode"), NULL, 8);
	size_t i;

	for (i = 0; i < 2; i++) {
		char *err = NULL;
		int fd;

		if (specs[i] == NULL || *specs[i] == '\0')
			continue;
		fd = daemon_listen(specs[i], mode, conf_str(s->cfg, "authd.socket_owner"),
				   conf_str(s->cfg, "authd.socket_group"), 256, &err);
		if (fd < 0)
			log_fatal(EX_OSERR, "%s", err);
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			log_fatal(EX_OSERR, "fcntl: %s", strerror(errno));
		s->listeners[s->nlisteners].kind = AUTHD_EV_LISTEN;
		s->listeners[s->nlisteners++].fd = fd;
		log_info("authd: listening on %s", specs[i]);
	}
	if (s->nlisteners == 0)
		log_fatal(EX_CONFIG, "configuration error: authd.listen is empty");
}

/* authd_dummy_hash - a bcrypt hash of a random key at the configured cost */
static void authd_dummy_hash(struct authd_server *s)
{
	char key[APIKEY_LEN + 1];

	if (apikey_generate(key) < 0 ||
	    apikey_hash(key, (int)conf_int(s->cfg, "apikey.bcrypt_cost"), s->dummy_hash) < 0)
		log_fatal(EX_SOFTWARE, "cannot make the dummy bcrypt hash");
	crypto_wipe(key, sizeof(key));
}

/* ---- worker pool glue ---------------------------------------------------- */

static char *authd_conninfo; /* a copy: SIGHUP replaces the configuration */
static int authd_db_timeout;
static const char *authd_dummy;

static void *authd_worker_init(void *arg)
{
	(void)arg;
	return authd_pg_new(authd_conninfo, authd_db_timeout);
}

static void authd_worker_done(void *ctx)
{
	struct authd_pg *pg = ctx;

	authd_pg_free(&pg);
}

static void authd_worker(struct authd_job *j, void *ctx)
{
	struct authd_backend be = { authd_pg_lookup, ctx };

	authd_verify(&be, authd_dummy, j->address, j->key, AUTHD_SCOPE, &j->result);
	crypto_wipe(j->key, strlen(j->key));
	xfree(&j->key);
}

static struct authd_job **authd_job_next(struct authd_job *j) { return &j->next; }

static int authd_health(void *arg, const char **reason_r)
{
	(void)arg;
	if (!authd_pg_up()) {
		*reason_r = "database unreachable: only cached results are answered";
		return -1;
	}
	return 0;
}

/* ---- signals and the loop ------------------------------------------------ */

static int authd_signals(void)
{
	/* blocked before any thread starts, so every thread inherits it */
	return daemon_signalfd();
}

/* authd_reload - SIGHUP: new run-time settings, empty cache */
static void authd_reload(struct authd_server *s)
{
	struct authd_settings set;
	char *err = NULL;
	struct conf *cfg = conf_load(authd_conf_path, 0, &err);
	static const char *const restart[] = { "authd.listen",         "authd.listen_inet",
					       "authd.user",           "authd.group",
					       "authd.metrics_listen", "database.conninfo",
					       "authd.conninfo",       NULL };
	size_t i;

	if (cfg == NULL || authd_settings_load(cfg, &set, &err) < 0) {
		log_error("authd: reload failed, keeping the running configuration: %s", err);
		free(err);
		conf_free(&cfg);
		return;
	}
	for (i = 0; restart[i]; i++) {
		const char *a = conf_str(cfg, restart[i]), *b = conf_str(s->cfg, restart[i]);

		if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
			log_warn("authd: %s changed: takes effect at the next restart", restart[i]);
	}
	if (conf_int(cfg, "authd.workers") != conf_int(s->cfg, "authd.workers"))
		log_warn("authd: authd.workers changed: takes effect at the next restart");
	s->set = set;
	authd_limiter_configure(s->limiter, &set.limits);
	authd_cache_reconfigure(s->cache, set.cache_size, set.cache_ttl);
	conf_free(&s->cfg);
	s->cfg = cfg;
	log_info("authd: configuration reloaded, cache emptied");
}

static void authd_epoll_add(struct authd_server *s, int fd, void *ptr)
{
	struct epoll_event e;

	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN;
	e.data.ptr = ptr;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0)
		log_fatal(EX_OSERR, "epoll_ctl: %s", strerror(errno));
}

/* authd_stop_listening - SIGTERM: no new connections */
static void authd_stop_listening(struct authd_server *s)
{
	size_t i;

	for (i = 0; i < s->nlisteners; i++) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listeners[i].fd, NULL);
		close(s->listeners[i].fd);
	}
	s->nlisteners = 0;
	s->stopping = 1;
}

/* authd_signal - handle what signalfd delivered */
static void authd_signal(struct authd_server *s, double *drain_until)
{
	struct signalfd_siginfo si;

	while (read(s->signal_ev.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			authd_reload(s);
		} else if (!s->stopping) {
			log_info("authd: signal %u: draining and stopping", si.ssi_signo);
			authd_stop_listening(s);
			*drain_until = authd_now() + AUTHD_DRAIN_SECONDS;
		}
	}
}

static void authd_loop(struct authd_server *s)
{
	struct epoll_event ev[64];
	double drain_until = 0, next_tick = authd_now() + 1;

	for (;;) {
		int n = epoll_wait(s->epfd, ev, 64, s->stopping ? 100 : 1000), i;

		if (n < 0 && errno != EINTR)
			log_fatal(EX_OSERR, "epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			int kind = *(int *)ev[i].data.ptr;

			if (kind == AUTHD_EV_LISTEN)
				authd_server_accept(s, ((struct authd_ev *)ev[i].data.ptr)->fd);
			else if (kind == AUTHD_EV_POOL)
				authd_server_jobs_done(s);
			else if (kind == AUTHD_EV_SIGNAL)
				authd_signal(s, &drain_until);
			else
				authd_server_conn_event(s, ev[i].data.ptr, ev[i].events);
		}
		if (authd_now() >= next_tick) {
			authd_server_tick(s);
			next_tick = authd_now() + 1;
		}
		if (s->stopping && (authd_server_idle(s) || authd_now() >= drain_until))
			break;
	}
}

int main(int argc, char **argv)
{
	struct authd_server s;
	struct daemon_args args;
	struct authd_pool_ops ops;
	char *err = NULL;
	const char *secret, *mlisten;
	unsigned char rnd[32], cookie[16];
	long ncpu;
	unsigned workers;
	int metrics_on;

	memset(&s, 0, sizeof(s));
	conf_register(&authd_conf_table);
	daemon_parse_args(argc, argv, AUTHD_PROG, &args);
	authd_conf_path = args.conf_path;
	s.cfg = daemon_load_conf(&args, EX_CONFIG);
	if (authd_settings_load(s.cfg, &s.set, &err) < 0)
		log_fatal(EX_CONFIG, "configuration error: %s", err);
	if (args.check_only)
		daemon_check_exit(AUTHD_PROG, s.cfg);

	authd_dummy_hash(&s);
	authd_dummy = s.dummy_hash;
	if (crypto_random(cookie, sizeof(cookie)) < 0 || crypto_random(rnd, sizeof(rnd)) < 0)
		log_fatal(EX_OSERR, "no randomness");
	crypto_hex(cookie, sizeof(cookie), s.cookie);
	authd_listen_all(&s);
	if (!args.foreground && daemon(0, 0) < 0)
		log_fatal(EX_OSERR, "cannot go to the background: %s", strerror(errno));
	if (daemon_drop_privileges(conf_str(s.cfg, "authd.user"), conf_str(s.cfg, "authd.group"), 0,
				   &err) < 0)
		log_fatal(EX_NOPERM, "%s", err);

	s.signal_ev.kind = AUTHD_EV_SIGNAL;
	s.signal_ev.fd = authd_signals();
	if ((s.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		log_fatal(EX_OSERR, "epoll_create1: %s", strerror(errno));
	authd_server_metrics_init(&s);
	authd_server_init(&s);
	/* the cache key secret: the configured one, else per process */
	secret = conf_str(s.cfg, "security.hmac_secret");
	s.cache =
		secret ? authd_cache_new(s.set.cache_size, s.set.cache_ttl, secret, strlen(secret))
		       : authd_cache_new(s.set.cache_size, s.set.cache_ttl, rnd, sizeof(rnd));
	crypto_wipe(rnd, sizeof(rnd));
	s.limiter = authd_limiter_new(&s.set.limits);

	authd_conninfo =
		xstrdup(conf_conninfo(s.cfg, "authd") ? conf_conninfo(s.cfg, "authd") : "");
	authd_db_timeout = (int)conf_int(s.cfg, "authd.db_timeout");
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	workers = (unsigned)conf_int(s.cfg, "authd.workers");
	if (workers == 0)
		workers = ncpu > 0 ? (unsigned)ncpu : 1;
	memset(&ops, 0, sizeof(ops));
	ops.thread_init = authd_worker_init;
	ops.thread_done = authd_worker_done;
	ops.work = authd_worker;
	ops.next = authd_job_next;
	s.pool = authd_pool_new(workers, &ops);
	s.house = authd_pg_house_start(authd_conninfo, authd_db_timeout, s.cache,
				       (int)conf_int(s.cfg, "authd.last_used_interval"));
	mlisten = conf_str(s.cfg, "authd.metrics_listen");
	metrics_on = mlisten && *mlisten;
	if (metrics_on && metrics_http_start(mlisten, authd_health, NULL, &err) < 0)
		log_fatal(EX_OSERR, "metrics: %s", err);

	for (size_t i = 0; i < s.nlisteners; i++)
		authd_epoll_add(&s, s.listeners[i].fd, &s.listeners[i]);
	s.pool_ev.kind = AUTHD_EV_POOL;
	s.pool_ev.fd = authd_pool_fd(s.pool);
	authd_epoll_add(&s, s.pool_ev.fd, &s.pool_ev);
	authd_epoll_add(&s, s.signal_ev.fd, &s.signal_ev);
	log_info("authd: ready (%u workers, pid %ld)", workers, (long)getpid());

	authd_loop(&s);

	authd_server_close_all(&s);
	if (metrics_on)
		metrics_http_stop();
	authd_server_jobs_answer(&s, authd_pool_free(&s.pool));
	authd_pg_house_stop(&s.house);
	authd_server_deinit(&s);
	authd_cache_free(&s.cache);
	authd_limiter_free(&s.limiter);
	close(s.epfd);
	close(s.signal_ev.fd);
	log_info("authd: stopped");
	conf_free(&s.cfg);
	xfree(&authd_conninfo);
	return 0;
}
