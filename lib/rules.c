/*
 * NAME
 *	rules - the envelope rules engine (MISSION.md "Envelope rules")
 * DESCRIPTION
 *	A pure function of (port role, authenticated user, path, size,
 *	lookups) to a verdict, shared by postroom-milter and
 *	postroom-policyd. The relay decision: an unauthenticated recipient
 *	is accepted only on the MX port, with MX mode on, when the path
 *	parses strictly (RFC 5321; RFC 6531 when the client said SMTPUTF8),
 *	has no source route, an ordinary local part and a domain that is
 *	exactly a hosted domain (lower case, one trailing dot dropped).
 *	Every other unauthenticated recipient is refused. Authenticated
 *	sessions are submissions on any port. Postmaster (RFC 5321 4.5.1):
 *	on the MX role postmaster@ a hosted domain is accepted without a
 *	user lookup, and a bare <Postmaster> is accepted; the milter sends
 *	the latter to postmaster@rules.postmaster_domain
 *	(rules_postmaster_qualify).
 *	Storage quota (issue 18 item 4): a recipient accepted at a hosted
 *	domain whose user's mailbox is full, or would be with the SIZE=
 *	announced at MAIL FROM, gets 452 4.2.2 Mailbox full (not
 *	postmaster; rules.storage_quota turns it off).
 *	Suppression (issue 21): an authenticated recipient on the sender's
 *	suppression list gets 550 5.1.1 (lookups->suppressed).
 *	Also: the port-role map ("25=mx 587=submission ORIGINATING=...")
 *	and filling struct rules_config from postroom.conf.
 * NEVER
 *	accepts when a lookup failed (tempfail instead), answers a lookup
 *	failure with a permanent reject, does I/O or logs.
 * PARAMETERS
 *	rules.mx_enabled, rules.recipient_validation,
 *	rules.sender_login_match, rules.subaddress_delimiters,
 *	rules.port_roles, rules.postmaster_domain, rules.storage_quota
 *	(rules_config_from_conf), limits.message_size_max.
 */
#include "rules.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "conf.h"
#include "xalloc.h"

/* a mailbox (local@domain, no brackets) is at most 254 octets: a path
 * is at most 256 with its brackets (RFC 5321 4.5.3.1.3) */
#define RULES_MAILBOX_MAX (ADDR_PATH_MAX - 2)

/* rules_set - fill a verdict */
static void rules_set(struct rules_verdict *out, enum rules_verdict_kind kind, const char *code,
		      const char *enhanced, const char *text)
{
	out->kind = kind;
	out->code = code;
	out->enhanced = enhanced;
	out->text = text;
	out->relay_attempt = 0;
}

static void rules_accept(struct rules_verdict *out)
{
	rules_set(out, RULES_ACCEPT, NULL, NULL, NULL);
}

static void rules_tempfail(struct rules_verdict *out)
{
	rules_set(out, RULES_TEMPFAIL, "451", "4.3.0", "Temporary lookup failure, try again later");
}

static void rules_auth_required(struct rules_verdict *out)
{
	rules_set(out, RULES_REJECT, "530", "5.7.0", "Authentication required");
}

static void rules_relay_denied(struct rules_verdict *out)
{
	rules_set(out, RULES_REJECT, "554", "5.7.1", "Relay access denied");
	out->relay_attempt = 1;
}

static int rules_authenticated(const struct rules_session *s)
{
	return s->auth_user != NULL && s->auth_user[0] != '\0';
}

/* rules_unauth_allowed - may an unauthenticated client use this service? */
static int rules_unauth_allowed(const struct rules_config *cfg, const struct rules_session *s)
{
	return cfg->mx_enabled && s->role == RULES_ROLE_MX;
}

/* rules_parse_path - parse a path strictly (UTF-8 only with SMTPUTF8).
 * 0 ok; -1 syntax error; -2 well-formed UTF-8 without SMTPUTF8. */
static int rules_parse_path(const struct rules_session *s, const char *path, unsigned opts,
			    struct mailbox *mb)
{
	const char *err;
	size_t len = path ? strlen(path) : 0;

	if (path == NULL)
		return -1;
	if (addr_parse(path, len, opts | ADDR_OPT_UTF8, mb, &err) < 0)
		return -1;
	if (!(mb->flags & ADDR_F_NULL) &&
	    strlen(mb->local) + 1 + strlen(mb->domain) > RULES_MAILBOX_MAX) {
		addr_free(mb);
		return -1;
	}
	if ((mb->flags & ADDR_F_UTF8) && !s->smtputf8) {
		addr_free(mb);
		return -2;
	}
	return 0;
}

/* rules_lookup_either - look up the address as given, then without its
 * sub-address: found if either is; an error in any lookup made is an error */
static enum rules_lookup
rules_lookup_either(const struct rules_config *cfg, const struct mailbox *mb,
		    enum rules_lookup (*fn)(void *, const char *, const char *), void *ctx,
		    const char *arg)
{
	char *exact = addr_canonical(mb), *base = addr_strip_subaddress(mb, cfg->subaddress_delims);
	enum rules_lookup r = fn(ctx, exact, arg);

	if (r == RULES_NOT_FOUND && strcmp(exact, base) != 0)
		r = fn(ctx, base, arg);
	free(exact);
	free(base);
	return r;
}

/* adapters giving both lookups the same shape */
struct rules_adapter {
	const struct rules_lookups *lk;
};

static enum rules_lookup rules_exists_adapter(void *ctx, const char *addr, const char *unused)
{
	const struct rules_lookups *lk = ((struct rules_adapter *)ctx)->lk;

	return lk->address_exists(lk->ctx, addr);
}

static enum rules_lookup rules_owned_adapter(void *ctx, const char *addr, const char *login)
{
	const struct rules_lookups *lk = ((struct rules_adapter *)ctx)->lk;

	return lk->address_owned_by(lk->ctx, addr, login);
}

/* rules_check_sender_owner - an authenticated MAIL FROM must be <> or
 * one of the login's own addresses */
static void rules_check_sender_owner(const struct rules_config *cfg, const struct rules_lookups *lk,
				     const struct rules_session *s, const struct mailbox *mb,
				     struct rules_verdict *out)
{
	struct rules_adapter ad = { lk };
	enum rules_lookup r;

	if (!cfg->sender_login_match || (mb->flags & ADDR_F_NULL)) {
		rules_accept(out);
		return;
	}
	if (!addr_local_is_ordinary(mb) || (mb->flags & ADDR_F_LITERAL)) {
		r = RULES_NOT_FOUND; /* nobody owns such an address */
	} else {
		r = rules_lookup_either(cfg, mb, rules_owned_adapter, &ad, s->auth_user);
	}
	if (r == RULES_FOUND)
		rules_accept(out);
	else if (r == RULES_NOT_FOUND)
		rules_set(out, RULES_REJECT, "553", "5.7.1", "Sender address not owned by user");
	else
		rules_tempfail(out);
}

void rules_check_mail(const struct rules_config *cfg, const struct rules_lookups *lk,
		      const struct rules_session *s, const char *sender, long long size,
		      struct rules_verdict *out)
{
	struct mailbox mb;
	int rc;

	if (!rules_authenticated(s) && !rules_unauth_allowed(cfg, s)) {
		rules_auth_required(out);
		return;
	}
	rc = rules_parse_path(s, sender, ADDR_OPT_NULL | ADDR_OPT_ROUTE, &mb);
	if (rc == -2) {
		rules_set(out, RULES_REJECT, "553", "5.6.7",
			  "Non-ASCII sender address requires SMTPUTF8");
		return;
	}
	if (rc < 0) {
		rules_set(out, RULES_REJECT, "501", "5.1.7", "Bad sender address syntax");
		return;
	}
	if (size >= 0 && size > cfg->message_size_max) {
		rules_set(out, RULES_REJECT, "552", "5.3.4", "Message size exceeds fixed limit");
	} else if (rules_authenticated(s)) {
		rules_check_sender_owner(cfg, lk, s, &mb, out);
	} else {
		rules_accept(out);
	}
	addr_free(&mb);
}

/* rules_check_inbound - an unauthenticated recipient on the MX port */
static void rules_check_inbound(const struct rules_config *cfg, const struct rules_lookups *lk,
				const struct mailbox *mb, struct rules_verdict *out)
{
	struct rules_adapter ad = { lk };
	enum rules_lookup r;

	/* a source route, or '%', '!', '@' in the local part, names another
	 * destination behind ours: a relay attempt whatever the domain */
	if ((mb->flags & (ADDR_F_ROUTE | ADDR_F_LITERAL)) || strpbrk(mb->local, "%!@") != NULL) {
		rules_relay_denied(out);
		return;
	}
	r = lk->domain_hosted(lk->ctx, mb->domain);
	if (r == RULES_LOOKUP_ERROR) {
		rules_tempfail(out);
		return;
	}
	if (r != RULES_FOUND) {
		rules_relay_denied(out);
		return;
	}
	if (!addr_local_is_ordinary(mb)) { /* a quoted local part at a hosted domain */
		rules_set(out, RULES_REJECT, "553", "5.1.3", "Quoted local parts are not accepted");
		return;
	}
	/* RFC 5321 4.5.1: every hosted domain has a postmaster, owned or not */
	if (!cfg->recipient_validation || rules_postmaster_local(mb->local)) {
		rules_accept(out);
		return;
	}
	r = rules_lookup_either(cfg, mb, rules_exists_adapter, &ad, NULL);
	if (r == RULES_FOUND)
		rules_accept(out);
	else if (r == RULES_NOT_FOUND)
		rules_set(out, RULES_REJECT, "550", "5.1.1", "User unknown");
	else
		rules_tempfail(out);
}

/* rules_check_storage - the storage quota of a recipient the rules
 * accepted: 452 4.2.2 when its user's mailbox is full (or SIZE= would
 * make it so); only at a hosted domain, never for postmaster (RFC 5321
 * 4.5.1: accepted whatever happens) */
static void rules_check_storage(const struct rules_config *cfg, const struct rules_lookups *lk,
				const struct mailbox *mb, long long size, struct rules_verdict *out)
{
	char *addrs[2];
	int n = 1;
	enum rules_lookup r;

	if (!cfg->storage_quota || lk->storage_full == NULL ||
	    (mb->flags & (ADDR_F_NULL | ADDR_F_ROUTE | ADDR_F_LITERAL)) ||
	    !addr_local_is_ordinary(mb) || rules_postmaster_local(mb->local))
		return;
	if (lk->domain_hosted(lk->ctx, mb->domain) != RULES_FOUND)
		return; /* not ours; for a submission, possibly unknown: unchanged */
	addrs[0] = addr_canonical(mb);
	addrs[1] = addr_strip_subaddress(mb, cfg->subaddress_delims);
	if (strcmp(addrs[0], addrs[1]) != 0)
		n = 2;
	r = lk->storage_full(lk->ctx, (const char *const *)addrs, n, size);
	free(addrs[0]);
	free(addrs[1]);
	if (r == RULES_FOUND)
		rules_set(out, RULES_TEMPFAIL, "452", "4.2.2", "Mailbox full");
	else if (r == RULES_LOOKUP_ERROR)
		rules_tempfail(out);
}

/* rules_check_suppressed - an authenticated recipient: accepted unless
 * on the sender's suppression list (550 5.1.1; 451 4.3.0 when the lookup
 * fails) */
static void rules_check_suppressed(const struct rules_lookups *lk, const struct rules_session *s,
				   const struct mailbox *mb, struct rules_verdict *out)
{
	enum rules_lookup r;
	char *addr;

	rules_accept(out);
	if (lk->suppressed == NULL || (mb->flags & (ADDR_F_NULL | ADDR_F_ROUTE | ADDR_F_LITERAL)))
		return;
	addr = addr_canonical(mb);
	r = lk->suppressed(lk->ctx, addr, s->auth_user);
	free(addr);
	if (r == RULES_FOUND)
		rules_set(out, RULES_REJECT, "550", "5.1.1", RULES_SUPPRESSED_TEXT);
	else if (r == RULES_LOOKUP_ERROR)
		rules_tempfail(out);
}

void rules_check_rcpt(const struct rules_config *cfg, const struct rules_lookups *lk,
		      const struct rules_session *s, const char *rcpt, struct rules_verdict *out)
{
	rules_check_rcpt_size(cfg, lk, s, rcpt, -1, out);
}

void rules_check_rcpt_size(const struct rules_config *cfg, const struct rules_lookups *lk,
			   const struct rules_session *s, const char *rcpt, long long size,
			   struct rules_verdict *out)
{
	struct mailbox mb;
	int rc;

	if (!rules_authenticated(s) && !rules_unauth_allowed(cfg, s)) {
		rules_auth_required(out);
		return;
	}
	/* RFC 5321 4.5.1: a bare <Postmaster> MUST be accepted (the MX role;
	 * a submission still needs an address with a domain) */
	if (!rules_authenticated(s) && rules_postmaster_bare(rcpt)) {
		rules_accept(out);
		return;
	}
	/* routes parse (RFC 5321 4.1.2) so that they can be judged below */
	rc = rules_parse_path(s, rcpt, ADDR_OPT_ROUTE, &mb);
	if (rc == -2) {
		rules_set(out, RULES_REJECT, "553", "5.6.7",
			  "Non-ASCII recipient address requires SMTPUTF8");
		return;
	}
	if (rc < 0) {
		rules_set(out, RULES_REJECT, "501", "5.1.3", "Bad recipient address syntax");
		return;
	}
	if (rules_authenticated(s))
		rules_check_suppressed(lk, s, &mb, out); /* a submission: to anyone */
	else
		rules_check_inbound(cfg, lk, &mb, out);
	if (out->kind == RULES_ACCEPT)
		rules_check_storage(cfg, lk, &mb, size, out);
	addr_free(&mb);
}

void rules_check_size(const struct rules_config *cfg, long long size, struct rules_verdict *out)
{
	if (size > cfg->message_size_max)
		rules_set(out, RULES_REJECT, "552", "5.3.4", "Message size exceeds fixed limit");
	else
		rules_accept(out);
}

/* ---- postmaster ---------------------------------------------------------- */

int rules_postmaster_local(const char *local)
{
	return local != NULL && strcasecmp(local, "postmaster") == 0;
}

int rules_postmaster_bare(const char *path)
{
	size_t n;

	if (path == NULL)
		return 0;
	n = strlen(path);
	if (n >= 2 && path[0] == '<' && path[n - 1] == '>')
		return n == 12 && strncasecmp(path + 1, "postmaster", 10) == 0;
	return rules_postmaster_local(path);
}

char *rules_postmaster_qualify(const char *d, const char *path)
{
	char *out, *p;

	if (d == NULL || *d == '\0' || !rules_postmaster_bare(path))
		return NULL;
	out = xasprintf("postmaster@%s", d);
	for (p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (p > out && p[-1] == '.') /* one trailing dot, as hosted domains are kept */
		p[-1] = '\0';
	return out;
}

/* ---- port roles ------------------------------------------------------- */

const char *rules_role_name(enum rules_role r)
{
	switch (r) {
	case RULES_ROLE_MX: return "mx";
	case RULES_ROLE_SUBMISSION: return "submission";
	default: return "other";
	}
}

/* rules_role_parse_word - "mx" | "submission" | "other" */
static int rules_role_parse_word(const char *w, size_t n, enum rules_role *r)
{
	if (n == 2 && strncasecmp(w, "mx", 2) == 0)
		*r = RULES_ROLE_MX;
	else if (n == 10 && strncasecmp(w, "submission", 10) == 0)
		*r = RULES_ROLE_SUBMISSION;
	else if (n == 5 && strncasecmp(w, "other", 5) == 0)
		*r = RULES_ROLE_OTHER;
	else
		return -1;
	return 0;
}

/* rules_role_next - the next "KEY=ROLE" entry of map from *pos; 1 found,
 * 0 end, -1 malformed (*pos at the bad entry) */
static int rules_role_next(const char **pos, const char **key, size_t *keylen, enum rules_role *r)
{
	const char *p = *pos + strspn(*pos, " \t,;"), *eq, *end;

	if (*p == '\0') {
		*pos = p;
		return 0;
	}
	end = p + strcspn(p, " \t,;");
	eq = memchr(p, '=', (size_t)(end - p));
	*pos = p;
	if (eq == NULL || eq == p || rules_role_parse_word(eq + 1, (size_t)(end - eq - 1), r) < 0)
		return -1;
	*key = p;
	*keylen = (size_t)(eq - p);
	*pos = end;
	return 1;
}

int rules_role_map_check(const char *map, char **error_r)
{
	const char *pos = map ? map : "", *key;
	size_t keylen;
	enum rules_role r;
	int rc;

	while ((rc = rules_role_next(&pos, &key, &keylen, &r)) > 0)
		;
	if (rc < 0) {
		*error_r = xasprintf("bad port role entry '%.*s' (want KEY=mx|submission|other)",
				     (int)strcspn(pos, " \t,;"), pos);
		return -1;
	}
	return 0;
}

/* rules_role_find - the role map's entry for key */
static int rules_role_find(const char *map, const char *want, enum rules_role *role_r)
{
	const char *pos = map, *key;
	size_t keylen;
	enum rules_role r;

	if (map == NULL || want == NULL || *want == '\0')
		return -1;
	while (rules_role_next(&pos, &key, &keylen, &r) > 0) {
		if (keylen == strlen(want) && strncasecmp(key, want, keylen) == 0) {
			*role_r = r;
			return 0;
		}
	}
	return -1;
}

enum rules_role rules_role_resolve(const char *map, const char *name, const char *port)
{
	enum rules_role r;

	if (rules_role_find(map, name, &r) == 0 || rules_role_find(map, port, &r) == 0)
		return r;
	return RULES_ROLE_OTHER;
}

void rules_config_from_conf(const struct conf *conf, struct rules_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mx_enabled = conf_bool(conf, "rules.mx_enabled");
	cfg->recipient_validation = conf_bool(conf, "rules.recipient_validation");
	cfg->sender_login_match = conf_bool(conf, "rules.sender_login_match");
	cfg->subaddress_delims = conf_str(conf, "rules.subaddress_delimiters");
	cfg->message_size_max = conf_int(conf, "limits.message_size_max");
	cfg->postmaster_domain = conf_str(conf, "rules.postmaster_domain");
	cfg->storage_quota = conf_bool(conf, "rules.storage_quota");
}
