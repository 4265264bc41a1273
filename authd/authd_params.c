/*
 * NAME
 *	authd_params - the authd section of postroom.conf
 * DESCRIPTION
 *	Every authd.* parameter, declared once: name, type, default, bounds,
 *	flags, one line of documentation. postroom-authd registers this table
 *	before it loads the file; postroomctl registers it to list and check
 *	every parameter. doc/postroom.conf.5 documents each row
 *	(tests/unit/test-config-doc.sh).
 * NEVER
 *	declares a parameter of another section.
 */
#include "conf.h"
#include "authd_params.h"

static const struct cfg_param authd_params[] = {
	{ "authd.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "postroom-authd's libpq connection string: a login role in group PREFIXauthd; unset = database.conninfo" },
	{ "authd.listen", CFG_STRING, "unix:/var/spool/postfix/private/auth", 0, 0, 0,
	  "where MTAs connect: unix:/path (Postfix smtpd_sasl_path, Exim server_socket) or inet:HOST:PORT" },
	{ "authd.listen_inet", CFG_STRING, NULL, 0, 0, 0,
	  "an optional second listener, normally TCP (inet:127.0.0.1:12345); unset = none" },
	{ "authd.socket_mode", CFG_STRING, "0660", 0, 0, 0,
	  "permissions (octal) of the unix socket" },
	{ "authd.socket_owner", CFG_STRING, "postfix", 0, 0, 0,
	  "owner of the unix socket (the MTA's user); empty = leave" },
	{ "authd.socket_group", CFG_STRING, "postfix", 0, 0, 0,
	  "group of the unix socket; empty = leave" },
	{ "authd.user", CFG_STRING, "postroom", 0, 0, 0,
	  "user to run as once the sockets are open; empty = stay (refused as root)" },
	{ "authd.group", CFG_STRING, NULL, 0, 0, 0,
	  "group to run as; unset = the user's primary group" },
	{ "authd.workers", CFG_INT, "0", 0, 256, 0,
	  "bcrypt worker threads; 0 = one per online CPU" },
	{ "authd.max_connections", CFG_INT, "1024", 1, 100000, 0,
	  "client connections served at once; more are closed at accept" },
	{ "authd.queue_max", CFG_INT, "256", 1, 100000, 0,
	  "uncached verifications waiting or running at most, whatever authd.queue_time_max allows" },
	{ "authd.queue_time_max", CFG_INT, "5", 1, 60, 0,
	  "seconds within which every queued verification is answered: the queue is as long as the workers get through in it at the measured bcrypt time; beyond, FAIL code=temp_fail at once" },
	{ "authd.cache_size", CFG_INT, "10000", 0, 10000000, 0,
	  "entries of the verified-result cache (LRU); 0 disables the cache" },
	{ "authd.cache_ttl", CFG_INT, "300", 0, 86400, 0,
	  "seconds a verified result is reused; 0 disables the cache" },
	{ "authd.ip_backoff_initial_ms", CFG_INT, "1000", 0, 3600000, 0,
	  "after a failure a client IP is refused this long for that account, doubling with each failure" },
	{ "authd.ip_backoff_max_ms", CFG_INT, "30000", 0, 3600000, 0,
	  "the doubling of the per-(IP, account) refusal window stops here" },
	{ "authd.ip_account_lockout_failures", CFG_INT, "5", 0, 1000, 0,
	  "failures for one account from one IP within ip_failure_window that lock that IP out for that account; 0 = never" },
	{ "authd.ip_lockout_failures", CFG_INT, "30", 0, 100000, 0,
	  "failures from one IP, all accounts together, within ip_failure_window that lock it out; 0 = never" },
	{ "authd.ip_failure_window", CFG_INT, "900", 1, 604800, 0,
	  "seconds over which failures from one IP (per account and in all) are counted" },
	{ "authd.ip_lockout_time", CFG_INT, "900", 0, 604800, 0,
	  "seconds a locked-out IP (or IP and account) is refused" },
	{ "authd.trusted_networks", CFG_STRING, NULL, 0, 0, 0,
	  "networks (ADDRESS/BITS, comma-separated) exempt from the per-IP limit, such as the application's own servers; unset = none" },
	{ "authd.account_failure_limit", CFG_INT, "20", 1, 100000, 0,
	  "failures for one account (all IPs) that arm the guard against distributed guessing" },
	{ "authd.account_failure_window", CFG_INT, "900", 1, 604800, 0,
	  "seconds over which failures for one account are counted" },
	{ "authd.account_trust_time", CFG_INT, "86400", 0, 2592000, 0,
	  "seconds an IP stays known for an account after a success (it may try while the guard is armed)" },
	{ "authd.limiter_max_entries", CFG_INT, "100000", 16, 10000000, 0,
	  "entries of each rate-limiter table (IPs, accounts, known IPs); least recent dropped" },
	{ "authd.last_used_interval", CFG_INT, "5", 1, 3600, 0,
	  "seconds between batched writes of api_keys.last_used_at" },
	{ "authd.db_timeout", CFG_INT, "3", 1, 60, 0,
	  "seconds for a database connection attempt and for each statement" },
	{ "authd.revoke_wait", CFG_INT, "5", 0, 300, 0,
	  "seconds postroomctl key revoke waits for every running authd to confirm it dropped the key; 0 = no wait" },
	{ "authd.metrics_listen", CFG_STRING, NULL, 0, 0, 0,
	  "HOST:PORT serving /metrics and /healthz over HTTP; unset = none" },
};

const struct cfg_table authd_conf_table = { "postroom-authd", authd_params,
					    sizeof(authd_params) / sizeof(authd_params[0]) };
