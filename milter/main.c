/*
 * NAME
 *	postroom-milter - per-port envelope rules for Postfix (libmilter)
 * SYNOPSIS
 *	postroom-milter [-c FILE] [-f] [-t] [-d]
 * DESCRIPTION
 *	Start-up: read and check the configuration (a bad port-role map, a
 *	missing or short security.hmac_secret are fatal); in MX mode,
 *	refuse to start when the database is reachable and holds no hosted
 *	domain (no accidental open relay; unreachable: start and tempfail
 *	until it answers) and log a hosted domain whose postmaster has no
 *	mailbox (lib/store_postmaster.c); open the milter socket as root,
 *	give a unix socket to milter.user / milter.socket_group with mode 0660, drop
 *	privileges, start the /metrics endpoint and the LISTEN thread, and
 *	hand over to smfi_main (which owns SIGHUP/SIGTERM/SIGINT), its
 *	worker threads getting 1 MB stacks.
 * NEVER
 *	keeps root while serving, starts in MX mode with no hosted domain.
 * PARAMETERS
 *	rules.postmaster_domain, rules.postmaster_address,
 *	milter.socket, milter.user, milter.group, milter.socket_group,
 *	milter.metrics_listen, rules.sent_recipient, milter.timeout, milter.verp,
 *	security.hmac_secret, rules.*, limits.message_size_max,
 *	limits.attachment_size_max, limits.mime_parts_max, and for
 *	the lookups (lib/rules_pg.c) database.conninfo,
 *	database.connect_timeout, milter.cache_ttl, milter.cache_size,
 *	milter.db_connections, deliver.trusted_authserv_id (incoming
 *	Authentication-Results with it are removed).
 */
#include "milter.h"
#include "milter_params.h"
#include "deliver/deliver_params.h"

#include <grp.h>
#include <pthread.h>
#include <libmilter/mfapi.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "daemon.h"
#include "log.h"
#include "rules_pg.h"
#include "store_postmaster.h"
#include "xalloc.h"

#define MILTER_PROG "postroom-milter"
#define MILTER_SECRET_MIN 32
#define MILTER_DOMAIN_RELOAD 300 /* full domain reload, notifications or not */
/* libmilter's worker pool starts and ends threads all the time (it keeps
 * no more than one idle worker): with glibc's default 8 MB stacks its
 * stack cache (40 MB) holds only five, so most new workers cost an mmap,
 * an mprotect and later a munmap with TLB shoot-downs on the other CPUs.
 * 1 MB is far more than a callback needs (libpq, HMAC, syslog); the
 * sanitizers' larger frames get 4 MB. */
#ifdef __SANITIZE_ADDRESS__
#define MILTER_THREAD_STACK (4 * 1024 * 1024)
#else
#define MILTER_THREAD_STACK (1024 * 1024)
#endif

static struct milter_settings settings;
static struct rules_pg *milter_rules;

/* milter_settings_load - the settings, checked; fatal on a bad value */
static void milter_settings_load(const struct conf *cfg)
{
	char *err = NULL;
	const char *sent = conf_str(cfg, "rules.sent_recipient");

	rules_config_from_conf(cfg, &settings.rules);
	settings.role_map = conf_str(cfg, "rules.port_roles");
	settings.secret = conf_str(cfg, "security.hmac_secret");
	settings.header_max_age = (long)conf_int(cfg, "rules.internal_header_max_age");
	settings.authserv_id = conf_str(cfg, "deliver.trusted_authserv_id");
	if (settings.authserv_id != NULL && *settings.authserv_id == '\0')
		settings.authserv_id = NULL;
	settings.sent_recipient = sent && *sent ? sent : NULL;
	if (conf_bool(cfg, "milter.verp")) {
		if (settings.rules.subaddress_delims == NULL ||
		    *settings.rules.subaddress_delims == '\0')
			log_fatal(EX_CONFIG,
				  "configuration error: milter.verp needs a delimiter in "
				  "rules.subaddress_delimiters");
		settings.verp_delim = settings.rules.subaddress_delims[0];
	}
	settings.mime.attachment_size_max = conf_int(cfg, "limits.attachment_size_max");
	settings.mime.parts_max = (size_t)conf_int(cfg, "limits.mime_parts_max");
	if (rules_role_map_check(settings.role_map, &err) < 0)
		log_fatal(EX_CONFIG, "configuration error: rules.port_roles: %s", err);
	if (settings.secret == NULL || strlen(settings.secret) < MILTER_SECRET_MIN)
		log_fatal(EX_CONFIG,
			  "configuration error: security.hmac_secret must be set "
			  "(at least %d characters) to sign submissions",
			  MILTER_SECRET_MIN);
	if (settings.sent_recipient) {
		const char *aerr = NULL;
		char *canon = addr_canonicalize(settings.sent_recipient, &aerr);
		if (canon == NULL)
			log_fatal(EX_CONFIG, "configuration error: rules.sent_recipient: %s", aerr);
		free(canon);
	}
	if (conf_str(cfg, "milter.socket") == NULL || *conf_str(cfg, "milter.socket") == '\0')
		log_fatal(EX_CONFIG, "configuration error: milter.socket is empty");
}

/* milter_rules_new - the PostgreSQL lookups from milter.* and database.*:
 * one cache time for both answers, nothing trusted while the database is away */
static void milter_rules_new(const struct conf *cfg)
{
	static const char *name = "postroom_milter_lookups_total", *help = "Lookups by result";
	struct rules_pg_settings s = {
		.conninfo = conf_conninfo(cfg, "milter"),
		.connect_timeout = (int)conf_int(cfg, "database.connect_timeout"),
		.connections = (int)conf_int(cfg, "milter.db_connections"),
		.ttl_found = (int)conf_int(cfg, "milter.cache_ttl"),
		.ttl_not_found = (int)conf_int(cfg, "milter.cache_ttl"),
		.cache_size = (size_t)conf_int(cfg, "milter.cache_size"),
		.domain_reload = MILTER_DOMAIN_RELOAD,
		.offline_answers = 0,
	};

	s.metrics.cache_hit = metrics_counter(name, help, "result=\"cache_hit\"");
	s.metrics.found = metrics_counter(name, help, "result=\"found\"");
	s.metrics.not_found = metrics_counter(name, help, "result=\"not_found\"");
	s.metrics.error = metrics_counter(name, help, "result=\"error\"");
	s.metrics.reloads = metrics_counter("postroom_milter_domain_reloads_total",
					    "Hosted-domain set (re)loads", NULL);
	s.metrics.domains = metrics_gauge("postroom_milter_hosted_domains",
					  "Hosted domains currently loaded", NULL);
	milter_rules = rules_pg_new(&s);
	settings.lookups = rules_pg_lookups(milter_rules);
}

/* milter_healthy - /healthz: the database answers and, in MX mode,
 * domains are loaded */
static int milter_healthy(void *arg, const char **reason_r)
{
	return rules_pg_healthy(milter_rules, settings.rules.mx_enabled, reason_r);
}

/* milter_check_domains - MX mode needs hosted domains */
static void milter_check_domains(void)
{
	char *err = NULL;
	long n;

	if (!settings.rules.mx_enabled)
		return;
	n = rules_pg_domain_count(milter_rules, &err);
	if (n == 0)
		log_fatal(EX_CONFIG,
			  "configuration error: rules.mx_enabled is on but no hosted "
			  "domain exists (postroomctl domain add DOMAIN): refusing to start");
	if (n < 0) {
		log_warn("cannot read hosted domains (%s): starting; every unauthenticated "
			 "recipient is tempfailed until the database answers",
			 err);
		free(err);
	}
}

/* milter_socket_path - the file of a unix socket spec, or NULL */
static const char *milter_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/* milter_open_socket - create the socket as root, give it to the daemon */
static void milter_open_socket(const struct conf *cfg)
{
	const char *spec = conf_str(cfg, "milter.socket"), *path = milter_socket_path(spec);
	const char *user = conf_str(cfg, "milter.user"),
		   *group = conf_str(cfg, "milter.socket_group");
	mode_t old;

	if (smfi_setconn((char *)spec) != MI_SUCCESS)
		log_fatal(EX_CONFIG, "configuration error: milter.socket %s is not a socket spec",
			  spec);
	if (smfi_settimeout((int)conf_int(cfg, "milter.timeout")) != MI_SUCCESS)
		log_fatal(EX_SOFTWARE, "cannot set the milter timeout");
	old = umask(0117); /* unix socket: 0660 */
	if (smfi_opensocket(1) != MI_SUCCESS)
		log_fatal(EX_UNAVAILABLE, "cannot open milter socket %s", spec);
	umask(old);
	if (path && geteuid() == 0) {
		struct passwd *pw = user && *user ? getpwnam(user) : NULL;
		struct group *gr = group && *group ? getgrnam(group) : NULL;

		if (group && *group && gr == NULL)
			log_fatal(EX_CONFIG,
				  "configuration error: milter.socket_group %s does not exist",
				  group);
		if (chown(path, pw ? pw->pw_uid : (uid_t)-1,
			  gr   ? gr->gr_gid
			  : pw ? pw->pw_gid
			       : (gid_t)-1) < 0)
			log_fatal(EX_OSERR, "cannot give %s to %s:%s", path, user ? user : "",
				  group ? group : "");
	}
}

/* milter_block_signals - libmilter's signal thread takes SIGHUP, SIGTERM
 * and SIGINT with sigwait: every thread started before smfi_main (LISTEN,
 * metrics) must have them blocked, or one of them would be killed by it */
static void milter_block_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		log_fatal(EX_OSERR, "cannot block signals");
}

/* milter_thread_defaults - the stack size of threads started from now on
 * (libmilter's workers); a failure only costs speed */
static void milter_thread_defaults(void)
{
	pthread_attr_t attr;

	if (pthread_attr_init(&attr) != 0)
		return;
	if (pthread_attr_setstacksize(&attr, MILTER_THREAD_STACK) != 0 ||
	    pthread_setattr_default_np(&attr) != 0)
		log_warn("cannot set the worker thread stack size: using the default");
	pthread_attr_destroy(&attr);
}

/* milter_drop - become milter.user when started as root */
static void milter_drop(const struct conf *cfg)
{
	char *err = NULL;

	if (geteuid() != 0)
		return;
	if (daemon_drop_privileges(conf_str(cfg, "milter.user"), conf_str(cfg, "milter.group"), 0,
				   &err) < 0)
		log_fatal(EX_CONFIG, "cannot drop privileges: %s", err);
}

int main(int argc, char **argv)
{
	struct daemon_args a;
	struct conf *cfg;
	const char *metrics_listen;
	char *err = NULL;
	int rc;

	conf_register(&milter_conf_table);
	conf_register(&deliver_conf_table); /* deliver.trusted_authserv_id */
	daemon_parse_args(argc, argv, MILTER_PROG, &a);
	cfg = daemon_load_conf(&a, EX_CONFIG);
	milter_settings_load(cfg);
	if (a.check_only)
		daemon_check_exit(MILTER_PROG, cfg);
	milter_metrics_init();
	milter_rules_new(cfg);
	milter_check_domains();
	if (settings.rules.mx_enabled) /* a hosted domain's postmaster without a mailbox */
		store_postmaster_log(cfg, "milter");
	if (smfi_register(*milter_callbacks(&settings)) != MI_SUCCESS)
		log_fatal(EX_SOFTWARE, "smfi_register failed");
	milter_open_socket(cfg);
	if (!a.foreground && daemon(0, 0) < 0)
		log_fatal(EX_OSERR, "cannot go to the background");
	milter_drop(cfg);
	milter_block_signals();
	metrics_listen = conf_str(cfg, "milter.metrics_listen");
	if (metrics_listen && *metrics_listen &&
	    metrics_http_start(metrics_listen, milter_healthy, NULL, &err) < 0)
		log_fatal(EX_UNAVAILABLE, "metrics: %s", err);
	if (rules_pg_start(milter_rules, &err) < 0)
		log_fatal(EX_OSERR, "%s", err);
	log_info("started on %s: MX mode %s, recipient validation %s, sender login match %s",
		 conf_str(cfg, "milter.socket"), settings.rules.mx_enabled ? "on" : "off",
		 settings.rules.recipient_validation ? "on" : "off",
		 settings.rules.sender_login_match ? "on" : "off");
	milter_thread_defaults();
	rc = smfi_main();
	log_info("stopping");
	rules_pg_free(&milter_rules);
	if (metrics_listen && *metrics_listen)
		metrics_http_stop();
	conf_free(&cfg);
	return rc == MI_SUCCESS ? 0 : EX_SOFTWARE;
}
