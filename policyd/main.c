/*
 * NAME
 *	postroom-policyd - Postfix policy delegation and Exim readsocket
 *	server: envelope rules, sending quotas, SPF and DNSBL verdicts
 * SYNOPSIS
 *	postroom-policyd [-c FILE] [-f] [-t] [-d]
 * DESCRIPTION
 *	Start-up: load and check the configuration (fatal on a bad or
 *	dangerous one: MX mode without hosted domains; a hosted domain whose
 *	postmaster has no mailbox is logged, at reload too), open the listening
 *	sockets and the metrics endpoint, drop privileges, then accept
 *	connections (server.c) while a housekeeping thread flushes quota
 *	counters and expires old rows; the rules lookups (lib/rules_pg.c)
 *	follow domain and address changes (LISTEN) on a thread of their own.
 *	SIGHUP reloads the configuration (listening sockets and the database
 *	need a restart); SIGTERM/SIGINT stop accepting, close connections,
 *	flush the quota counters and exit. See postroom-policyd(8).
 * NEVER
 *	runs as root after start-up; starts in MX mode without a hosted
 *	domain.
 * PARAMETERS
 *	policyd.*, rules.*, database.*, security.hmac_secret.
 */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "policyd.h"
#include "rules_pg.h"
#include "policyd_params.h"
#include "server.h"
#include "store_postmaster.h"
#include "xalloc.h"

#define POLICYD_MAX_LISTEN 8
#define POLICYD_ADDRESS_CACHE 100000 /* cached address answers at most */

static struct quota *policyd_quota;
static struct rules_pg *policyd_rules;
static volatile int policyd_stop;

/* policyd_housekeeping - quota flushes and expiry */
static void *policyd_housekeeping(void *arg)
{
	time_t last_expire = 0;
	int failing = 0;

	while (!policyd_stop) {
		struct policyd_config *cfg = policyd_config_get();
		int ms = cfg->quota_flush_ms;
		char *err = NULL;

		policyd_config_put(cfg);
		poll(NULL, 0, ms);
		if (quota_flush(policyd_quota, time(NULL), &err) < 0) {
			if (!failing)
				log_warn("quota counters not flushed (kept for the next try): %s",
					 err);
			failing = 1;
			free(err);
		} else
			failing = 0;
		if (time(NULL) - last_expire >= 60) {
			policyd_quota_pg_expire(policyd_rules);
			last_expire = time(NULL);
		}
	}
	return NULL;
}

/* policyd_health - /healthz: 200 while the database answers */
static int policyd_health(void *arg, const char **reason_r)
{
	return rules_pg_healthy(policyd_rules, 0, reason_r);
}

/* policyd_rules_new - the rules lookups from policyd.* and database.*: the
 * domain set reloaded every policyd.cache_ttl, cached answers still served
 * while the database is away */
static void policyd_rules_new(const struct policyd_config *cfg)
{
	struct rules_pg_settings s = {
		.conninfo = conf_conninfo(cfg->conf, "policyd"),
		.connect_timeout = (int)conf_int(cfg->conf, "database.connect_timeout"),
		.connections = (int)conf_int(cfg->conf, "policyd.db_connections"),
		.ttl_found = cfg->cache_ttl,
		.ttl_not_found = cfg->cache_negative_ttl,
		.cache_size = POLICYD_ADDRESS_CACHE,
		.domain_reload = cfg->cache_ttl,
		.offline_answers = 1,
	};

	policyd_rules = rules_pg_new(&s);
}

/* policyd_listen_all - open every socket of policyd.listen */
static int policyd_listen_all(const struct conf *conf, int *fds)
{
	char *copy = xstrdup(conf_str(conf, "policyd.listen")), *save = NULL, *tok, *err = NULL;
	int n = 0;
	int mode = (int)strtol(conf_str(conf, "policyd.socket_mode"), NULL, 8);

	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (n >= POLICYD_MAX_LISTEN)
			log_fatal(EX_CONFIG,
				  "configuration error: policyd.listen: at most %d sockets",
				  POLICYD_MAX_LISTEN);
		fds[n] = daemon_listen(tok, mode, NULL, conf_str(conf, "policyd.socket_group"), 256,
				       &err);
		if (fds[n] < 0)
			log_fatal(EX_UNAVAILABLE, "%s", err);
		log_info("listening on %s", tok);
		n++;
	}
	free(copy);
	if (n == 0)
		log_fatal(EX_CONFIG, "configuration error: policyd.listen is empty");
	return n;
}

/* policyd_check_mx - MX mode needs hosted domains (no accidental open relay) */
static void policyd_check_mx(const struct policyd_config *cfg)
{
	char *err = NULL;
	long n;

	if (!cfg->rules.mx_enabled)
		return;
	n = rules_pg_domain_count(policyd_rules, &err);
	if (n == 0)
		log_fatal(EX_CONFIG, "configuration error: rules.mx_enabled is on but no hosted "
				     "domain exists (postroomctl domain add NAME)");
	if (n < 0) {
		log_warn("cannot count hosted domains (%s): starting; lookups fail until the "
			 "database answers",
			 err);
		free(err);
	}
}

/* policyd_check_postmaster - at start and reload, in MX mode: log a hosted
 * domain whose postmaster has no mailbox (RFC 5321 4.5.1; still accepted) */
static void policyd_check_postmaster(const struct policyd_config *cfg)
{
	if (cfg->rules.mx_enabled)
		store_postmaster_log(cfg->conf, "policyd");
}

/* policyd_load - configuration from path; NULL (logged) when invalid */
static struct policyd_config *policyd_load(const struct daemon_args *a, int fatal)
{
	char *err = NULL;
	struct conf *conf = conf_load(a->conf_path, 0, &err);
	struct policyd_config *c;

	if (conf)
		conf_log_warnings(conf);
	c = conf ? policyd_config_new(conf, &err) : NULL;
	int mode_ok = conf ? strspn(conf_str(conf, "policyd.socket_mode"), "01234567") ==
				      strlen(conf_str(conf, "policyd.socket_mode"))
			   : 1;

	if (c != NULL && !mode_ok) {
		err = xstrdup("policyd.socket_mode: expected octal digits, e.g. 0660");
		policyd_config_put(c);
		c = NULL;
		conf = NULL;
	}
	if (c == NULL) {
		conf_free(&conf);
		if (fatal)
			log_fatal(EX_CONFIG, "configuration error: %s", err);
		log_error("configuration error (keeping the running one): %s", err);
		free(err);
	}
	return c;
}

/* policyd_start - everything before the accept loop */
static void policyd_start(const struct daemon_args *a, struct policyd_config *cfg, int *lfds,
			  int *nl, pthread_t *hk)
{
	struct quota_backend be;
	const char *metrics = conf_str(cfg->conf, "policyd.metrics_listen");
	char *err = NULL;

	policyd_rules_new(cfg);
	policyd_check_mx(cfg);
	policyd_check_postmaster(cfg);
	*nl = policyd_listen_all(cfg->conf, lfds);
	policyd_metrics_init(cfg);
	if (metrics != NULL && *metrics != '\0' &&
	    metrics_http_start(metrics, policyd_health, NULL, &err) < 0)
		log_fatal(EX_UNAVAILABLE, "metrics: %s", err);
	if (daemon_drop_privileges(conf_str(cfg->conf, "policyd.user"),
				   conf_str(cfg->conf, "policyd.group"), 0, &err) < 0)
		log_fatal(EX_NOPERM, "%s", err);
	if (rules_pg_start(policyd_rules, &err) < 0)
		log_fatal(EX_OSERR, "%s", err);
	spam_init(20000); /* verdicts of messages in progress */
	policyd_quota_pg_backend(&be, policyd_rules);
	policyd_quota = quota_new(&cfg->quota, &be);
	policyd_decide_init(policyd_quota, rules_pg_lookups(policyd_rules));
	if (pthread_create(hk, NULL, policyd_housekeeping, NULL) != 0)
		log_fatal(EX_OSERR, "cannot start the housekeeping thread");
}

/* policyd_signals - block the signals in every thread; read them here */
static int policyd_signals(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0)
		log_fatal(EX_OSERR, "signalfd: %s", strerror(errno));
	return fd;
}

/* policyd_loop - accept until SIGTERM/SIGINT; SIGHUP reloads */
static void policyd_loop(const struct daemon_args *a, int sfd, const int *lfds, int nl)
{
	struct pollfd pfd[POLICYD_MAX_LISTEN + 1];
	int i;

	for (i = 0; i < nl; i++)
		pfd[i] = (struct pollfd){ lfds[i], POLLIN, 0 };
	pfd[nl] = (struct pollfd){ sfd, POLLIN, 0 };
	while (!policyd_stop) {
		if (poll(pfd, (nfds_t)nl + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_fatal(EX_OSERR, "poll: %s", strerror(errno));
		}
		if (pfd[nl].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					struct policyd_config *c = policyd_load(a, 0);

					if (c != NULL) {
						quota_set_config(policyd_quota, &c->quota);
						rules_pg_set_ttl(policyd_rules, c->cache_ttl,
								 c->cache_negative_ttl);
						policyd_config_install(c);
						policyd_check_postmaster(c);
						log_info("configuration reloaded");
					}
				} else
					policyd_stop = 1;
			}
		}
		for (i = 0; i < nl && !policyd_stop; i++) {
			struct policyd_config *c;

			if (!(pfd[i].revents & POLLIN))
				continue;
			c = policyd_config_get();
			if (server_accept(lfds[i], c->max_connections) < 0)
				log_error("accept: %s", strerror(errno));
			policyd_config_put(c);
		}
	}
}

int main(int argc, char **argv)
{
	struct daemon_args a;
	struct policyd_config *cfg;
	int lfds[POLICYD_MAX_LISTEN], nl = 0, sfd, i;
	pthread_t hk;
	char *err = NULL;

	conf_register(&policyd_conf_table);
	daemon_parse_args(argc, argv, "postroom-policyd", &a);
	cfg = policyd_load(&a, 1);
	if (a.check_only)
		daemon_check_exit("postroom-policyd", cfg->conf);
	policyd_config_install(cfg);
	sfd = policyd_signals();
	policyd_start(&a, cfg, lfds, &nl, &hk);
	log_info("started");
	policyd_loop(&a, sfd, lfds, nl);
	log_info("stopping");
	for (i = 0; i < nl; i++)
		close(lfds[i]);
	server_stop_all();
	pthread_join(hk, NULL);
	if (quota_flush(policyd_quota, time(NULL), &err) < 0) {
		log_warn("quota counters lost at exit: %s", err);
		free(err);
	}
	metrics_http_stop();
	quota_free(&policyd_quota);
	spam_shutdown();
	rules_pg_free(&policyd_rules);
	policyd_config_install(NULL);
	close(sfd);
	return 0;
}
