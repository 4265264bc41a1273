/* rules.h - the envelope rules engine (MISSION.md "Envelope rules"),
 * shared by postroom-milter and postroom-policyd.
 *
 * CONTRACT (fixed before the implementations; milter owns rules.c and may
 * add to this header, never break it): a pure function of (port role,
 * authenticated user, sender/recipient, size, lookups) -> verdict. No I/O
 * other than through the lookup callbacks; no logging (the caller logs,
 * with its queue id). */
#ifndef POSTROOM_RULES_H
#define POSTROOM_RULES_H

#include <stddef.h>

enum rules_role {
	RULES_ROLE_MX,         /* port 25: inbound from the world */
	RULES_ROLE_SUBMISSION, /* 587 / 465: authenticated clients */
	RULES_ROLE_OTHER       /* anything else: refused unless authenticated */
};

enum rules_verdict_kind {
	RULES_ACCEPT,
	RULES_REJECT,  /* permanent: code 5xx */
	RULES_TEMPFAIL /* temporary: code 4xx (lookup failure) */
};

struct rules_verdict {
	enum rules_verdict_kind kind;
	const char *code;     /* "550" (static) or NULL for accept */
	const char *enhanced; /* "5.1.1" (static) or NULL */
	const char *text;     /* "User unknown" (static) or NULL */
	int relay_attempt;    /* the caller logs it as a warning */
};

enum rules_lookup {
	RULES_FOUND,
	RULES_NOT_FOUND,
	RULES_LOOKUP_ERROR /* database down: never accept, never 5xx */
};

/* Lookups, as a struct of function pointers (a test stands in a static
 * table; the daemons use PostgreSQL with caches: lib/rules_pg.h). Addresses passed are
 * canonical lower-case "local@domain", sub-address already removed;
 * domains are lower-case without trailing dot. */
struct rules_lookups {
	void *ctx;
	enum rules_lookup (*domain_hosted)(void *ctx, const char *domain);
	/* an address some user owns (primary or alias) */
	enum rules_lookup (*address_exists)(void *ctx, const char *address);
	/* address is one of login's own addresses (login = the SASL user) */
	enum rules_lookup (*address_owned_by)(void *ctx, const char *address, const char *login);
	/* the storage quota (issue 18 item 4): FOUND when the user owning
	 * one of addresses[0..n) (the recipient as given, then without its
	 * sub-address) is at or over the storage limit, or would cross it
	 * with a message of size bytes (size > 0: the client's SIZE=);
	 * NOT_FOUND when not (no such user, no limit, room left). Never
	 * cached: usage changes with every delivery. NULL: no check. */
	enum rules_lookup (*storage_full)(void *ctx, const char *const *addresses, int n,
					  long long size);
	/* issue 21: FOUND when address (canonical) is on the suppression
	 * list that applies to login (the SASL user: its user's own, or its
	 * domain's), NOT_FOUND when not. Never cached: a bounce stored a
	 * moment ago must refuse the next RCPT. NULL: no check. */
	enum rules_lookup (*suppressed)(void *ctx, const char *address, const char *login);
};

struct rules_config {
	int mx_enabled;                /* MX mode (port 25) on */
	int recipient_validation;      /* unknown user at a hosted domain -> 550 */
	int sender_login_match;        /* authenticated MAIL FROM must be own address or <> */
	const char *subaddress_delims; /* e.g. "+"; NULL/"" = none */
	long long message_size_max;    /* bytes (limits.message_size_max) */
	/* RFC 5321 4.5.1: the hosted domain whose postmaster receives a bare
	 * <Postmaster> (rules.postmaster_domain); NULL/"" = none set */
	const char *postmaster_domain;
	int storage_quota; /* rules.storage_quota: 452 4.2.2 for a full mailbox */
};

struct rules_session {
	enum rules_role role;
	const char *auth_user; /* SASL user, NULL or "" = not authenticated */
	int smtputf8;          /* client sent SMTPUTF8 */
};

/* rules_check_mail - MAIL FROM: sender is the path as sent ("<a@b>", "<>");
 * size is the SIZE= value or -1. */
void rules_check_mail(const struct rules_config *cfg, const struct rules_lookups *lk,
		      const struct rules_session *s, const char *sender, long long size,
		      struct rules_verdict *out);
/* rules_check_rcpt - RCPT TO: rcpt is the path as sent ("<a@b>");
 * rules_check_rcpt_size with no size known. */
void rules_check_rcpt(const struct rules_config *cfg, const struct rules_lookups *lk,
		      const struct rules_session *s, const char *rcpt, struct rules_verdict *out);
/* rules_check_rcpt_size - RCPT TO with the SIZE= of MAIL FROM (-1: none).
 * A recipient the rules accept, at a hosted domain, not postmaster, whose
 * user's mailbox is full (lookups->storage_full; cfg->storage_quota on)
 * gets 452 4.2.2 "Mailbox full" (RULES_TEMPFAIL), as does one the
 * announced size would take over the limit; a failed quota lookup gets
 * 451 4.3.0 like every other. A submission whose recipient domain cannot
 * be looked up (the domain set unknown) is not checked. */
void rules_check_rcpt_size(const struct rules_config *cfg, const struct rules_lookups *lk,
			   const struct rules_session *s, const char *rcpt, long long size,
			   struct rules_verdict *out);
/* An authenticated RCPT to an address on the sender's suppression list
 * (issue 21: a hard bounce, a complaint, repeated soft bounces; lookups
 * ->suppressed) gets 550 5.1.1 RULES_SUPPRESSED_TEXT; a failed lookup
 * 451 4.3.0. Checked by rules_check_rcpt for every authenticated
 * session, whatever the port role. */
#define RULES_SUPPRESSED_TEXT                                                    \
	"Recipient address suppressed: on the sender's suppression list after a" \
	" bounce or complaint (postroomctl suppression)"

/* rules_check_size - end of data: size counted per MISSION.md (CRLF). */
void rules_check_size(const struct rules_config *cfg, long long size, struct rules_verdict *out);

/* ---- postmaster (RFC 5321 4.5.1) ---------------------------------------
 * On the MX role, postmaster@ every hosted domain is accepted without a
 * user lookup (never 550 5.1.1), and a bare <Postmaster> (no domain, any
 * case) is accepted at all: both MUST be, whether or not anyone owns the
 * address. A foreign domain's postmaster is still a relay attempt; the
 * submission role is unchanged. Where the mail is stored is the store's
 * rule (lib/store_mail.c: the user or alias postmaster@DOMAIN, else
 * rules.postmaster_address). */

/* rules_postmaster_local - is local (a local part, no '@') "postmaster"
 * in any case? */
int rules_postmaster_local(const char *local);
/* rules_postmaster_bare - is path the bare "<Postmaster>" (angle brackets
 * optional, any case, no domain)? */
int rules_postmaster_bare(const char *path);
/* rules_postmaster_qualify - the address a bare <Postmaster> is delivered
 * to: "postmaster@DOMAIN" with pm_domain = rules.postmaster_domain, lower
 * case, no trailing dot (caller frees); NULL when path is not a bare
 * postmaster or pm_domain is NULL or "" */
char *rules_postmaster_qualify(const char *pm_domain, const char *path);

/* ---- additions (milter issue): port roles and configuration ---------- */

struct conf;

/* rules_role_name - "mx", "submission" or "other" (static) */
const char *rules_role_name(enum rules_role r);

/* rules_role_map_check - validate a port-role map (rules.port_roles):
 * entries "KEY=ROLE" separated by spaces or commas; KEY is a port number
 * (Postfix {daemon_port}, policy server_port) or a service name (Postfix
 * {daemon_name} from milter_macro_daemon_name, policy_context), ROLE is
 * mx, submission or other. 0 ok, -1 with *error_r (caller frees). */
int rules_role_map_check(const char *map, char **error_r);

/* rules_role_resolve - the role of a service: the entry for name wins
 * (case-insensitive), then the entry for port; neither (or NULL/empty
 * arguments) gives RULES_ROLE_OTHER, which refuses the unauthenticated. */
enum rules_role rules_role_resolve(const char *map, const char *name, const char *port);

/* rules_config_from_conf - fill cfg from rules.* and limits.message_size_max;
 * strings point into conf (valid while conf lives). The port-role map is
 * conf_str(conf, "rules.port_roles"). */
void rules_config_from_conf(const struct conf *conf, struct rules_config *cfg);

#endif
