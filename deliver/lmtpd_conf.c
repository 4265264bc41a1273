/*
 * NAME
 *	lmtpd_conf - postroom-lmtpd's settings, swapped on SIGHUP
 * DESCRIPTION
 *	Reads once what a transaction needs from the configuration: what
 *	both storing programs read (delivery_conf_read, deliver/delivery.c)
 *	and lmtpd's own. The
 *	current settings are reference-counted: a reload installs new ones,
 *	a transaction in flight keeps the ones it started with, the old ones
 *	are freed with their last user.
 * NEVER
 *	lets a session see half-replaced settings.
 * CONFIGURATION
 *	limits.message_size_max, limits.attachment_size_max,
 *	rules.recipient_validation, rules.subaddress_delimiters,
 *	rules.internal_header_max_age, security.hmac_secret,
 *	deliver.trusted_authserv_id, rules.sent_recipient,
 *	lmtpd.timeout, lmtpd.trusted_clients, lmtpd.group_commit,
 *	blobs.* (the object store, opened with the settings: a reload opens
 *	it again, reading the credentials file as lmtpd.user)
 */
#include "lmtpd_conf.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

static pthread_mutex_t settings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmtpd_settings *settings_current;

struct lmtpd_settings *lmtpd_settings_load(struct conf *cfg, char **error_r)
{
	struct lmtpd_settings *s = xcalloc(1, sizeof(*s));
	const char *mode = conf_str(cfg, "lmtpd.socket_mode");
	char *end;

	s->cfg = cfg;
	s->refs = 1;
	delivery_conf_read(cfg, &s->dc);
	if (delivery_blobs_open(cfg, &s->dc, error_r) != 0) {
		s->cfg = NULL;
		free(s);
		return NULL;
	}
	s->sent_recipient = delivery_conf_str(cfg, "rules.sent_recipient");
	s->trusted_clients = conf_str(cfg, "lmtpd.trusted_clients");
	s->timeout = (int)conf_int(cfg, "lmtpd.timeout");
	s->group_commit = (size_t)conf_int(cfg, "lmtpd.group_commit");
	if (mode == NULL || strtol(mode, &end, 8) < 0 || *end != '\0' ||
	    strtol(mode, NULL, 8) > 07777) {
		*error_r =
			xasprintf("lmtpd.socket_mode '%s' is not an octal mode", mode ? mode : "");
		delivery_blobs_close(&s->dc);
		s->cfg = NULL;
		free(s);
		return NULL;
	}
	return s;
}

struct lmtpd_settings *lmtpd_settings_get(void)
{
	struct lmtpd_settings *s;

	pthread_mutex_lock(&settings_lock);
	s = settings_current;
	s->refs++;
	pthread_mutex_unlock(&settings_lock);
	return s;
}

void lmtpd_settings_put(struct lmtpd_settings **sp)
{
	struct lmtpd_settings *s = *sp;
	int last;

	if (s == NULL)
		return;
	*sp = NULL;
	pthread_mutex_lock(&settings_lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&settings_lock);
	if (last) {
		delivery_blobs_close(&s->dc);
		conf_free(&s->cfg);
		free(s);
	}
}

void lmtpd_settings_install(struct lmtpd_settings *s)
{
	struct lmtpd_settings *old;

	pthread_mutex_lock(&settings_lock);
	old = settings_current;
	settings_current = s;
	pthread_mutex_unlock(&settings_lock);
	lmtpd_settings_put(&old);
}

/* conf_same_addr - two textual IP addresses are the same address */
static int conf_same_addr(const char *a, const char *b)
{
	unsigned char x[16], y[16];

	if (inet_pton(AF_INET, a, x) == 1 && inet_pton(AF_INET, b, y) == 1)
		return memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1 && inet_pton(AF_INET6, b, y) == 1)
		return memcmp(x, y, 16) == 0;
	return strcasecmp(a, b) == 0;
}

int lmtpd_trusted_addr(const struct lmtpd_settings *s, const char *addr)
{
	const char *p = s->trusted_clients ? s->trusted_clients : "";
	char item[64];
	size_t n;

	if (strncasecmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.'))
		addr += 7; /* an IPv4 client on an IPv6 socket */
	while (*p) {
		p += strspn(p, " ,\t");
		n = strcspn(p, " ,\t");
		if (n > 0 && n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			if (conf_same_addr(item, addr))
				return 1;
		}
		p += n;
	}
	return 0;
}
