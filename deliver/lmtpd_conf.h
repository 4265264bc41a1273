/* lmtpd_conf.h - postroom-lmtpd's settings: what a transaction reads
 * from the configuration, swapped on SIGHUP and reference-counted.
 *
 * CONTRACT: a transaction takes the current settings with
 * lmtpd_settings_get and keeps them to its end (lmtpd_settings_put);
 * a reload never changes settings someone holds. Thread-safe. */
#ifndef POSTROOM_LMTPD_CONF_H
#define POSTROOM_LMTPD_CONF_H

#include <stddef.h>

#include "conf.h"
#include "delivery.h"

/* The settings a transaction uses; a SIGHUP makes new ones, and a
 * transaction keeps the ones it started with. */
struct lmtpd_settings {
	struct conf *cfg;
	int refs;
	struct delivery_conf dc;    /* what postroom-deliver-store reads too */
	const char *sent_recipient; /* milter.sent_recipient, or NULL */
	const char *trusted_clients;
	int timeout;
	size_t group_commit; /* messages in one transaction at most */
};

/* lmtpd_settings_load - settings from cfg (taken over); NULL with
 * *error_r (caller frees) on a bad value */
struct lmtpd_settings *lmtpd_settings_load(struct conf *cfg, char **error_r);
/* lmtpd_settings_get - the current settings, one more reference */
struct lmtpd_settings *lmtpd_settings_get(void);
/* lmtpd_settings_put - drop a reference (frees the last) */
void lmtpd_settings_put(struct lmtpd_settings **s);
/* lmtpd_settings_install - make s current (the server holds a reference) */
void lmtpd_settings_install(struct lmtpd_settings *s);
/* lmtpd_trusted_addr - is the TCP client address in lmtpd.trusted_clients? */
int lmtpd_trusted_addr(const struct lmtpd_settings *s, const char *addr);

#endif
