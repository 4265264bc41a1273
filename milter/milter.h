/* milter.h - postroom-milter's modules: the libmilter callbacks, the
 * internal-header handling and the message size count (the lookups are
 * lib/rules_pg.c's). */
#ifndef POSTROOM_MILTER_H
#define POSTROOM_MILTER_H

#include <stddef.h>

#include "conf.h"
#include "mime_parse.h"
#include "metrics.h"
#include "rules.h"

/* ---- msgsize.c: message size per MISSION.md (CRLF line endings) ------ */

struct msgsize {
	long long bytes;
	int last_cr; /* the previous byte counted was CR */
};

/* msgsize_add - count len bytes, a bare LF counting as CRLF */
void msgsize_add(struct msgsize *m, const void *data, size_t len);
/* msgsize_header - count "name:value" CRLF; value as libmilter passes it
 * (with the leading space when leadspc, else one space is assumed) */
void msgsize_header(struct msgsize *m, const char *name, const char *value, int leadspc);

/* ---- callbacks.c: libmilter --------------------------------------------- */

struct smfiDesc;

struct milter_settings {
	struct rules_config rules;
	const char *role_map;       /* rules.port_roles */
	const char *secret;         /* security.hmac_secret */
	long header_max_age;        /* rules.internal_header_max_age */
	const char *sent_recipient; /* milter.sent_recipient or NULL */
	char verp_delim;            /* milter.verp: rules.subaddress_delimiters[0]; '\0' = off */
	/* deliver.trusted_authserv_id or NULL: every incoming
	 * Authentication-Results with it is removed (the milter runs before
	 * OpenDKIM and OpenDMARC, which add this hop's) */
	const char *authserv_id;
	const struct rules_lookups *lookups; /* rules_pg_lookups() */
	struct mime_limits mime;             /* limits.attachment_size_max, mime_parts_max */
};

/* milter_callbacks - the registration description; settings must outlive it */
struct smfiDesc *milter_callbacks(const struct milter_settings *settings);
/* milter_metrics_init - register the counters (before any connection) */
void milter_metrics_init(void);

#endif
