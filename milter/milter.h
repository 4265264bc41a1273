/* milter.h - postroom-milter's modules: the libmilter callbacks, the
 * PostgreSQL lookups with their caches, the internal-header handling and
 * the message size count. */
#ifndef POSTROOM_MILTER_H
#define POSTROOM_MILTER_H

#include <stddef.h>

#include "conf.h"
#include "metrics.h"
#include "rules.h"

/* ---- lookup.c: rules_lookups over PostgreSQL ------------------------- */

/* milter_lookup_init - connection pool, caches and the LISTEN thread are
 * prepared (nothing connects yet). */
void milter_lookup_init(const struct conf *cfg);
/* milter_lookup_load_domains - connect and load the hosted domains now.
 * Returns the number loaded (0 = none), or -1 with *error_r (caller frees)
 * when the database cannot be read. */
int milter_lookup_load_domains(char **error_r);
/* milter_lookup_start - start the LISTEN/NOTIFY thread (after the
 * privilege drop). 0 ok, -1 with *error_r. */
int milter_lookup_start(char **error_r);
void milter_lookup_stop(void);
/* milter_lookups - the struct handed to the rules engine */
const struct rules_lookups *milter_lookups(void);
/* milter_lookup_healthy - 0 when the database answers and (in MX mode)
 * domains are loaded; else -1 with a static *reason_r (for /healthz) */
int milter_lookup_healthy(void *arg, const char **reason_r);

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
};

/* milter_callbacks - the registration description; settings must outlive it */
struct smfiDesc *milter_callbacks(const struct milter_settings *settings);
/* milter_metrics_init - register the counters (before any connection) */
void milter_metrics_init(void);

#endif
