/*
 * NAME
 *	ctl_dkim - postroomctl domain dkim: DKIM signing keys for OpenDKIM and Exim
 * DESCRIPTION
 *	Makes an RSA key per (hosted domain, selector) with OpenSSL and keeps,
 *	under dkim.key_dir:
 *	  keys/DOMAIN/SELECTOR.private  PEM key, mode 0600, owner dkim.key_user
 *	  keys/DOMAIN/SELECTOR.txt      the DNS TXT record to publish
 *	  keys/DOMAIN/selectors         "SELECTOR STATE" lines, STATE one of
 *	                                active (signs), pending (made by
 *	                                --rotate, waits for its DNS record),
 *	                                old (signed before; kept until removed)
 *	  KeyTable, SigningTable        OpenDKIM's tables (refile:), written
 *	                                again after every change
 *	  signing.exim                  "DOMAIN: SELECTOR" for Exim's lsearch
 *	The first key of a domain is active at once; a rotated one becomes
 *	active when "domain dkim DOMAIN" finds its record in DNS with the
 *	same public key (dkim.dns_server, else the system resolver), and the
 *	previous one becomes old. "--remove SELECTOR" deletes an old or
 *	pending key. Private keys are never written to the database; the
 *	directory is copied to every submission host (doc/INSTALL.md), and
 *	"config check" fails on a host that lacks the key of a hosted domain
 *	when dkim.enabled is set (ctl_dkim_config_check).
 * NEVER
 *	prints or logs private key material; writes into a key directory that
 *	others can read or write.
 * PARAMETERS
 *	dkim.key_dir, dkim.key_user, dkim.enabled, dkim.dns_server
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/nameser.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "dns_resolver.h"
#include "xalloc.h"

#define DKIM_MAX_SELECTORS 16

/* the group of dkim.key_user: every file and directory here but the
 * private keys is root:that group, mode 0640/0750 (dkim_owner sets it) */
static gid_t dkim_gid;

struct dkim_sel {
	char name[64];
	char state[16];
};

struct dkim_domain {
	struct dkim_sel sel[DKIM_MAX_SELECTORS];
	int n;
};

/* dkim_selector_ok - a selector is a DNS label: letters, digits, '-' */
static int dkim_selector_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return 0;
	return 1;
}

/* dkim_key_dir - dkim.key_dir, made (0750) when missing and create is set;
 * NULL with the failure printed when it is unusable or open to others */
static const char *dkim_key_dir(struct ctl *ctl, int create)
{
	const char *dir = conf_str(ctl->conf, "dkim.key_dir");
	struct stat st;

	if (dir == NULL || dir[0] != '/') {
		ctl_fail(CTL_CONFIG, "dkim.key_dir must be an absolute path");
		return NULL;
	}
	if (stat(dir, &st) < 0 && errno == ENOENT && create) {
		if (mkdir(dir, 0750) < 0 || chown(dir, 0, dkim_gid) < 0) {
			ctl_fail(CTL_CONFIG, "cannot create %s: %s", dir, strerror(errno));
			return NULL;
		}
		if (stat(dir, &st) < 0)
			return NULL;
	} else if (stat(dir, &st) < 0) {
		ctl_fail(CTL_CONFIG, "dkim.key_dir %s: %s", dir, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode) || (st.st_mode & 0007) != 0 || (st.st_mode & 0020) != 0) {
		ctl_fail(CTL_CONFIG,
			 "dkim.key_dir %s is not a directory closed to others (mode %04o):"
			 " chmod 0750 it",
			 dir, (unsigned)(st.st_mode & 07777));
		return NULL;
	}
	return dir;
}

/* dkim_read_state - keys/DOMAIN/selectors into d (missing file: none) */
static void dkim_read_state(const char *dir, const char *dom, struct dkim_domain *d)
{
	char *path = xasprintf("%s/keys/%s/selectors", dir, dom), line[128];
	FILE *fp = fopen(path, "r");

	d->n = 0;
	while (fp && fgets(line, sizeof(line), fp) && d->n < DKIM_MAX_SELECTORS)
		if (sscanf(line, "%63s %15s", d->sel[d->n].name, d->sel[d->n].state) == 2)
			d->n++;
	if (fp)
		fclose(fp);
	free(path);
}

/* dkim_write_file - write text to path through a temporary file and
 * rename; 0 ok, -1 printed */
static int dkim_write_file(const char *path, const char *text, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode), rc = -1;
	size_t len = strlen(text);

	if (fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		if (chmod(tmp, mode) == 0 && chown(tmp, 0, dkim_gid) == 0 && rename(tmp, path) == 0)
			rc = 0;
	}
	if (rc < 0) {
		ctl_fail(CTL_SOFTWARE, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

static int dkim_write_state(const char *dir, const char *dom, const struct dkim_domain *d)
{
	char *path = xasprintf("%s/keys/%s/selectors", dir, dom), *text = xstrdup(""), *t;
	int i, rc;

	for (i = 0; i < d->n; i++) {
		t = xasprintf("%s%s %s\n", text, d->sel[i].name, d->sel[i].state);
		free(text);
		text = t;
	}
	rc = dkim_write_file(path, text, 0640);
	free(text);
	free(path);
	return rc;
}

/* dkim_active - the active selector of d, or NULL */
static const char *dkim_active(const struct dkim_domain *d)
{
	int i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->sel[i].state, "active") == 0)
			return d->sel[i].name;
	return NULL;
}

/* dkim_key_present - keys/DOMAIN/SELECTOR.private exists on this host */
static int dkim_key_present(const char *dir, const char *dom, const char *sel)
{
	char *path = xasprintf("%s/keys/%s/%s.private", dir, dom, sel);
	int ok = access(path, R_OK) == 0;

	free(path);
	return ok;
}

/* dkim_write_tables - KeyTable, SigningTable and signing.exim from every
 * domain's selectors: every key present is in the KeyTable, the active one
 * signs. 0 ok, -1 printed */
static int dkim_write_tables(const char *dir)
{
	char *keys = xstrdup(""), *sign = xstrdup(""), *exim = xstrdup(""), *t, *path;
	char *kdir = xasprintf("%s/keys", dir);
	DIR *dp = opendir(kdir);
	struct dirent *de;
	int i, rc = 0;

	while (dp && (de = readdir(dp)) != NULL) {
		struct dkim_domain d;
		const char *act;

		if (de->d_name[0] == '.')
			continue;
		dkim_read_state(dir, de->d_name, &d);
		for (i = 0; i < d.n; i++) {
			if (!dkim_key_present(dir, de->d_name, d.sel[i].name))
				continue;
			t = xasprintf("%s%s._domainkey.%s %s:%s:%s/%s/%s.private\n", keys,
				      d.sel[i].name, de->d_name, de->d_name, d.sel[i].name, kdir,
				      de->d_name, d.sel[i].name);
			free(keys);
			keys = t;
		}
		if ((act = dkim_active(&d)) != NULL && dkim_key_present(dir, de->d_name, act)) {
			t = xasprintf("%s*@%s %s._domainkey.%s\n", sign, de->d_name, act,
				      de->d_name);
			free(sign);
			sign = t;
			t = xasprintf("%s%s: %s\n", exim, de->d_name, act);
			free(exim);
			exim = t;
		}
	}
	if (dp)
		closedir(dp);
	path = xasprintf("%s/KeyTable", dir);
	rc |= dkim_write_file(path, keys, 0640);
	free(path);
	path = xasprintf("%s/SigningTable", dir);
	rc |= dkim_write_file(path, sign, 0640);
	free(path);
	path = xasprintf("%s/signing.exim", dir);
	rc |= dkim_write_file(path, exim, 0640);
	free(path);
	free(keys);
	free(sign);
	free(exim);
	free(kdir);
	return rc ? -1 : 0;
}

/* dkim_record_of - the "v=DKIM1; k=rsa; p=..." record of a key (caller frees) */
static char *dkim_record_of(EVP_PKEY *pkey)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(pkey, &der);
	char *b64, *rec;

	if (len <= 0)
		return NULL;
	b64 = xmalloc(4 * ((size_t)len + 2) / 3 + 4);
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	OPENSSL_free(der);
	rec = xasprintf("v=DKIM1; k=rsa; p=%s", b64);
	free(b64);
	return rec;
}

/* dkim_zone_line - the record as a zone file line, in strings of at most
 * 255 bytes (caller frees) */
static char *dkim_zone_line(const char *dom, const char *sel, const char *rec)
{
	char *out = xasprintf("%s._domainkey.%s. IN TXT (", sel, dom), *t;
	size_t off, len = strlen(rec);

	for (off = 0; off < len; off += 255) {
		t = xasprintf("%s \"%.*s\"", out, (int)(len - off > 255 ? 255 : len - off),
			      rec + off);
		free(out);
		out = t;
	}
	t = xasprintf("%s )", out);
	free(out);
	return t;
}

/* dkim_owner - uid/gid of dkim.key_user (root when no such user) */
static void dkim_owner(struct ctl *ctl, uid_t *uid, gid_t *gid)
{
	const char *user = conf_str(ctl->conf, "dkim.key_user");
	struct passwd *pw = user && *user ? getpwnam(user) : NULL;

	*uid = pw ? pw->pw_uid : 0;
	*gid = pw ? pw->pw_gid : 0;
	dkim_gid = *gid;
	if (pw == NULL && user && *user)
		fprintf(stderr,
			"postroomctl: warning: dkim.key_user %s does not exist; keys owned by root\n",
			user);
}

/* dkim_make_key - a new RSA key: SELECTOR.private (0600, key_user) and
 * SELECTOR.txt; 0 ok, -1 printed */
static int dkim_make_key(struct ctl *ctl, const char *dir, const char *dom, const char *sel,
			 unsigned bits)
{
	char *ddir = xasprintf("%s/keys/%s", dir, dom), *kdir = xasprintf("%s/keys", dir);
	char *path = xasprintf("%s/%s.private", ddir, sel), *txt = NULL, *rec = NULL;
	EVP_PKEY *pkey = NULL;
	FILE *fp = NULL;
	uid_t uid;
	gid_t gid;
	int fd = -1, rc = -1;

	dkim_owner(ctl, &uid, &gid);
	if ((mkdir(kdir, 0750) < 0 && errno != EEXIST) ||
	    (mkdir(ddir, 0750) < 0 && errno != EEXIST) || chown(kdir, 0, gid) < 0 ||
	    chown(ddir, 0, gid) < 0) {
		ctl_fail(CTL_SOFTWARE, "cannot create %s: %s", ddir, strerror(errno));
		goto out;
	}
	if ((pkey = EVP_RSA_gen(bits)) == NULL || (rec = dkim_record_of(pkey)) == NULL) {
		ctl_fail(CTL_SOFTWARE, "OpenSSL could not make a %u-bit RSA key", bits);
		goto out;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		ctl_fail(errno == EEXIST ? CTL_REFUSED : CTL_SOFTWARE, "cannot create %s: %s", path,
			 strerror(errno));
		goto out;
	}
	if (fchown(fd, uid, gid) < 0 || (fp = fdopen(fd, "w")) == NULL ||
	    !PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) || fflush(fp) != 0 ||
	    fsync(fd) != 0) {
		ctl_fail(CTL_SOFTWARE, "cannot write %s", path);
		unlink(path);
		goto out;
	}
	txt = xasprintf("%s/%s.txt", ddir, sel);
	rc = dkim_write_file(txt, rec, 0644);
out:
	if (fp)
		fclose(fp);
	else if (fd >= 0)
		close(fd);
	EVP_PKEY_free(pkey);
	free(rec);
	free(txt);
	free(path);
	free(ddir);
	free(kdir);
	return rc;
}

/* dkim_read_record - the record written for (dom, sel) (caller frees), or NULL */
static char *dkim_read_record(const char *dir, const char *dom, const char *sel)
{
	char *path = xasprintf("%s/keys/%s/%s.txt", dir, dom, sel), buf[4096];
	FILE *fp = fopen(path, "r");
	size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;

	if (fp)
		fclose(fp);
	free(path);
	if (n == 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return xstrdup(buf);
}

/* dkim_tag_p - the value of the p= tag of a DKIM record, spaces removed
 * (caller frees), or NULL */
static char *dkim_tag_p(const char *rec)
{
	const char *p = rec;
	char *out, *o;

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (p[0] == 'p' && (p[1] == '=' || p[1] == ' ' || p[1] == '\t')) {
			p = strchr(p, '=');
			if (p == NULL)
				return NULL;
			out = o = xmalloc(strlen(p) + 1);
			for (p++; *p && *p != ';'; p++)
				if (!isspace((unsigned char)*p))
					*o++ = *p;
			*o = '\0';
			return out;
		}
		p = strchr(p, ';');
	}
	return NULL;
}

/* ctl_dns_txt - the first TXT record at name that starts with prefix
 * (case-insensitive; "" any), strings joined, into out; the DNS status
 * (DNS_NODATA when none matches) */
enum dns_status ctl_dns_txt(struct dns_resolver *r, const char *name, const char *prefix, char *out,
			    size_t outlen)
{
	unsigned char ans[4096];
	ns_msg msg;
	ns_rr rr;
	int len, i;
	enum dns_status st = dns_query(r, name, ns_t_txt, ans, sizeof(ans), &len);

	out[0] = '\0';
	if (st != DNS_OK)
		return st;
	if (ns_initparse(ans, len, &msg) < 0)
		return DNS_PERMFAIL;
	for (i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		const unsigned char *rd, *end;
		size_t o = 0;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return DNS_PERMFAIL;
		if (ns_rr_type(rr) != ns_t_txt)
			continue;
		rd = ns_rr_rdata(rr);
		end = rd + ns_rr_rdlen(rr);
		while (rd < end && rd + 1 + *rd <= end && o + *rd + 1 < outlen) {
			memcpy(out + o, rd + 1, *rd);
			o += *rd;
			rd += 1 + *rd;
		}
		out[o] = '\0';
		if (strncasecmp(out, prefix, strlen(prefix)) == 0)
			return DNS_OK;
	}
	out[0] = '\0';
	return DNS_NODATA;
}

/* ctl_dkim_dns_matches - 1 when SEL._domainkey.DOM carries the key of
 * rec; *why says what was seen */
int ctl_dkim_dns_matches(struct ctl *ctl, const char *dom, const char *sel, const char *rec,
			 const char **why)
{
	char *err = NULL, *name = xasprintf("%s._domainkey.%s", sel, dom), txt[4096];
	struct dns_resolver *r =
		dns_resolver_new(conf_str(ctl->conf, "dkim.dns_server"), 3, 2, &err);
	char *want = dkim_tag_p(rec), *got = NULL;
	enum dns_status st;
	int ok = 0;

	*why = "resolver unusable";
	if (r != NULL) {
		st = ctl_dns_txt(r, name, "", txt, sizeof(txt));
		*why = dns_status_name(st);
		if (st == DNS_OK) {
			got = dkim_tag_p(txt);
			ok = got && want && strcmp(got, want) == 0;
			*why = ok ? "published" : "published with another key";
		}
		dns_resolver_free(&r);
	}
	free(err);
	free(want);
	free(got);
	free(name);
	return ok;
}

/* dkim_promote - a pending selector whose record resolves becomes active,
 * the active one old; prints what it saw. 1 when the state changed */
static int dkim_promote(struct ctl *ctl, const char *dir, const char *dom, struct dkim_domain *d)
{
	int i, j, changed = 0;

	for (i = 0; i < d->n; i++) {
		const char *why;
		char *rec;

		if (strcmp(d->sel[i].state, "pending") != 0)
			continue;
		rec = dkim_read_record(dir, dom, d->sel[i].name);
		if (rec && ctl_dkim_dns_matches(ctl, dom, d->sel[i].name, rec, &why)) {
			for (j = 0; j < d->n; j++)
				if (strcmp(d->sel[j].state, "active") == 0)
					strcpy(d->sel[j].state, "old");
			strcpy(d->sel[i].state, "active");
			changed = 1;
			if (!ctl->json)
				printf("%s: selector %s resolves in DNS: it signs from now on\n",
				       dom, d->sel[i].name);
		} else if (!ctl->json)
			printf("%s: selector %s is pending: its DNS record is not visible (%s)\n",
			       dom, d->sel[i].name, rec ? why : "no record file");
		free(rec);
	}
	return changed;
}

/* dkim_print - the selectors of dom with their states and records */
static void dkim_print(struct ctl *ctl, const char *dir, const char *dom,
		       const struct dkim_domain *d)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < d->n; i++) {
		char *rec = dkim_read_record(dir, dom, d->sel[i].name), *zone = NULL;
		int present = dkim_key_present(dir, dom, d->sel[i].name);

		if (rec)
			zone = dkim_zone_line(dom, d->sel[i].name, rec);
		if (ctl->json)
			json_array_append_new(
				arr, json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?}", "domain", dom,
					       "selector", d->sel[i].name, "state", d->sel[i].state,
					       "key_on_this_host", present, "txt", rec, "zone_line",
					       zone));
		else
			printf("%s selector %s %s%s\n%s\n", dom, d->sel[i].name, d->sel[i].state,
			       present ? "" : " (NO KEY ON THIS HOST)", zone ? zone : "");
		free(rec);
		free(zone);
	}
	ctl_print_list(ctl, arr);
}

/* dkim_default_selector - "prYYYYMMDD", with a suffix when taken */
static void dkim_default_selector(const struct dkim_domain *d, char *out, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	int i, n, taken;

	gmtime_r(&now, &tm);
	for (n = 0; n < 100; n++) {
		if (n == 0)
			strftime(out, len, "pr%Y%m%d", &tm);
		else
			snprintf(out + 10, len - 10, "-%d", n);
		for (taken = 0, i = 0; i < d->n; i++)
			taken |= strcmp(d->sel[i].name, out) == 0;
		if (!taken)
			return;
	}
}

/* dkim_remove - drop an old or pending selector and its key files */
static int dkim_remove(const char *dir, const char *dom, struct dkim_domain *d, const char *sel)
{
	int i;
	char *path;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->sel[i].name, sel) == 0)
			break;
	if (i == d->n)
		return ctl_fail(CTL_REFUSED, "%s has no selector %s", dom, sel);
	if (strcmp(d->sel[i].state, "active") == 0)
		return ctl_fail(
			CTL_REFUSED,
			"selector %s signs %s's mail: rotate first (--rotate), then remove it", sel,
			dom);
	memmove(&d->sel[i], &d->sel[i + 1], (size_t)(d->n - i - 1) * sizeof(d->sel[0]));
	d->n--;
	if (dkim_write_state(dir, dom, d) < 0)
		return CTL_SOFTWARE;
	path = xasprintf("%s/keys/%s/%s.private", dir, dom, sel);
	unlink(path);
	free(path);
	path = xasprintf("%s/keys/%s/%s.txt", dir, dom, sel);
	unlink(path);
	free(path);
	return CTL_OK;
}

/* dkim_hosted - the domain is in the domains table */
static int dkim_hosted(struct ctl *ctl, const char *dom)
{
	const char *params[1] = { dom };
	PGresult *res = ctl_query(ctl, "SELECT 1 FROM domains WHERE lower(name) = $1", 1, params);
	int n = PQntuples(res);

	PQclear(res);
	return n > 0;
}

/* dkim_add - a new key: active when it is the domain's first, pending
 * (rotation) otherwise; refuses a second key without --rotate */
static int dkim_add(struct ctl *ctl, const char *dir, const char *dom, struct dkim_domain *d,
		    const char *sel_opt, const char *bits_opt, int rotate)
{
	char sel[64];
	char *end = NULL;
	long bits = bits_opt ? strtol(bits_opt, &end, 10) : 2048;

	if (bits_opt && (*end != '\0' || bits < 1024 || bits > 4096))
		return ctl_fail(CTL_USAGE, "--bits must be 1024 to 4096 (2048 recommended)");
	if (d->n >= DKIM_MAX_SELECTORS)
		return ctl_fail(CTL_REFUSED, "%s has %d selectors: remove old ones first", dom,
				d->n);
	if (sel_opt) {
		if (!dkim_selector_ok(sel_opt))
			return ctl_fail(CTL_USAGE, "invalid selector '%s'", sel_opt);
		snprintf(sel, sizeof(sel), "%s", sel_opt);
	} else
		dkim_default_selector(d, sel, sizeof(sel));
	if (dkim_make_key(ctl, dir, dom, sel, (unsigned)bits) < 0)
		return CTL_SOFTWARE;
	snprintf(d->sel[d->n].name, sizeof(d->sel[0].name), "%s", sel);
	snprintf(d->sel[d->n].state, sizeof(d->sel[0].state), "%s",
		 rotate && dkim_active(d) ? "pending" : "active");
	d->n++;
	return dkim_write_state(dir, dom, d) < 0 ? CTL_SOFTWARE : CTL_OK;
}

/* ctl_domain_dkim - domain dkim DOMAIN [--selector S] [--bits N] [--rotate]
 * [--remove S]; dom is canonical */
int ctl_domain_dkim(struct ctl *ctl, const char *dom, int argc, char **argv)
{
	char *sel = NULL, *bits = NULL, *remove = NULL, *pos[1];
	const struct ctl_opt opts[] = { { "--selector", &sel, 0 },
					{ "--bits", &bits, 0 },
					{ "--remove", &remove, 0 },
					{ NULL, NULL, 0 } };
	char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
	int i, n = 0, rotate = 0, rc = CTL_OK;
	struct dkim_domain d;
	const char *dir;
	uid_t uid;
	gid_t gid;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--rotate") == 0)
			rotate = 1;
		else
			rest[n++] = argv[i];
	}
	if (ctl_parse_args(n, rest, opts, pos, 0, 0) < 0) {
		rc = CTL_USAGE;
		goto out;
	}
	if (!dkim_hosted(ctl, dom)) {
		rc = ctl_fail(CTL_REFUSED, "%s is not a hosted domain (postroomctl domain add)",
			      dom);
		goto out;
	}
	umask(027);
	dkim_owner(ctl, &uid, &gid);
	if ((dir = dkim_key_dir(ctl, 1)) == NULL) {
		rc = CTL_CONFIG;
		goto out;
	}
	dkim_read_state(dir, dom, &d);
	if (remove)
		rc = dkim_remove(dir, dom, &d, remove);
	else if (d.n == 0 || rotate || sel)
		rc = (d.n > 0 && !rotate)
			     ? ctl_fail(CTL_REFUSED,
					"%s already has a key: use --rotate for a new one", dom)
			     : dkim_add(ctl, dir, dom, &d, sel, bits, rotate);
	else if (dkim_promote(ctl, dir, dom, &d) && dkim_write_state(dir, dom, &d) < 0)
		rc = CTL_SOFTWARE;
	if (rc == CTL_OK && dkim_write_tables(dir) < 0)
		rc = CTL_SOFTWARE;
	if (rc == CTL_OK)
		dkim_print(ctl, dir, dom, &d);
out:
	free(rest);
	free(sel);
	free(bits);
	free(remove);
	return rc;
}

/* ctl_dkim_selectors - the active and pending selectors of dom with
 * their records (NULL when the .txt file is missing; caller frees); count,
 * -1 when dkim.key_dir is unusable (printed) */
int ctl_dkim_selectors(struct ctl *ctl, const char *dom, struct ctl_dkim_sel *out, int max)
{
	const char *dir = dkim_key_dir(ctl, 0);
	struct dkim_domain d;
	int i, n = 0;

	if (dir == NULL)
		return -1;
	dkim_read_state(dir, dom, &d);
	for (i = 0; i < d.n && n < max; i++) {
		if (strcmp(d.sel[i].state, "old") == 0)
			continue;
		snprintf(out[n].name, sizeof(out[n].name), "%s", d.sel[i].name);
		snprintf(out[n].state, sizeof(out[n].state), "%s", d.sel[i].state);
		out[n].record = dkim_read_record(dir, dom, d.sel[i].name);
		n++;
	}
	return n;
}

/* ctl_dkim_config_check - with dkim.enabled, every hosted domain has an
 * active key on this host: CTL_OK, or CTL_CONFIG with the domains named */
int ctl_dkim_config_check(struct ctl *ctl)
{
	PGresult *res;
	const char *dir, *act;
	struct dkim_domain d;
	int i, bad = 0;

	if (!conf_bool(ctl->conf, "dkim.enabled"))
		return CTL_OK;
	if ((dir = dkim_key_dir(ctl, 0)) == NULL)
		return CTL_CONFIG;
	res = ctl_query(ctl, "SELECT lower(name) FROM domains ORDER BY 1", 0, NULL);
	for (i = 0; i < PQntuples(res); i++) {
		const char *dom = PQgetvalue(res, i, 0);

		dkim_read_state(dir, dom, &d);
		act = dkim_active(&d);
		if (act == NULL || !dkim_key_present(dir, dom, act)) {
			fprintf(stderr,
				"postroomctl: configuration error: dkim.enabled but hosted domain %s has %s"
				" on this host (%s): its mail would leave unsigned\n",
				dom, act ? "no copy of its active key" : "no DKIM key", dir);
			bad++;
		}
	}
	PQclear(res);
	return bad ? CTL_CONFIG : CTL_OK;
}
