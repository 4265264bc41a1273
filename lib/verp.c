/*
 * NAME
 *	verp - per-message VERP envelope senders and their check
 * DESCRIPTION
 *	Written once, used by postroom-milter (verp_address at end of
 *	message, milter.verp) and by the store (verp_check on a bounce's
 *	envelope recipients, lib/store_mail.c): see verp.h for the form.
 *	The VERP address is a subaddress of the sender's own address, so
 *	that it needs nothing new in DNS (the domain's MX already receives
 *	it) and is accepted and stored for the sender by the recipient
 *	lookups every program already does (rules.subaddress_delimiters).
 * NEVER
 *	compares a MAC with memcmp; writes its own HMAC (lib/crypto does);
 *	accepts a token whose MAC does not verify.
 */
#include "verp.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "crypto.h"
#include "xalloc.h"

void verp_msgid_hash(const char *message_id, char out[VERP_HASH_HEX + 1])
{
	unsigned char h[SHA256_LEN];
	const char *s = message_id, *e;

	while (*s && strchr(" \t\r\n", *s))
		s++;
	e = s + strlen(s);
	while (e > s && strchr(" \t\r\n", e[-1]))
		e--;
	if (e - s >= 2 && *s == '<' && e[-1] == '>') {
		s++;
		e--;
	}
	crypto_sha256(s, (size_t)(e - s), h);
	crypto_hex(h, VERP_HASH_HEX / 2, out);
}

/* verp_mac - M for base (lower-case LOCAL@DOMAIN) and hash */
static void verp_mac(const char *secret, const char *base, const char *hash,
		     char out[VERP_MAC_HEX + 1])
{
	unsigned char m[SHA256_LEN];
	char *data = xasprintf("postroom-verp:%s:%s", base, hash);

	crypto_hmac_sha256(secret, strlen(secret), data, strlen(data), m);
	crypto_hex(m, VERP_MAC_HEX / 2, out);
	crypto_wipe(m, sizeof(m));
	free(data);
}

/* verp_base - lower-case LOCAL@DOMAIN of an ordinary address, its
 * subaddress (from the first of delims) dropped; NULL otherwise */
static char *verp_base(const char *address, const char *delims)
{
	struct mailbox mb;
	const char *err;
	char *base = NULL;

	if (addr_parse(address, strlen(address), ADDR_OPT_BARE | ADDR_OPT_NULL, &mb, &err) < 0)
		return NULL;
	if (!(mb.flags & (ADDR_F_NULL | ADDR_F_LITERAL | ADDR_F_UTF8)) &&
	    addr_local_is_ordinary(&mb))
		base = addr_strip_subaddress(&mb, delims);
	addr_free(&mb);
	if (base)
		for (char *p = base; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return base;
}

char *verp_address(const char *secret, const char *sender, char delim, const char *message_id)
{
	char delims[2] = { delim, '\0' }, hash[VERP_HASH_HEX + 1], mac[VERP_MAC_HEX + 1];
	char *base = verp_base(sender, delims), *at, *out;

	if (base == NULL || delim == '\0')
		goto fail;
	at = strrchr(base, '@');
	if ((size_t)(at - base) + 1 + strlen(VERP_TAG) + VERP_HASH_HEX + VERP_MAC_HEX >
	    ADDR_LOCAL_MAX)
		goto fail;
	verp_msgid_hash(message_id, hash);
	verp_mac(secret, base, hash, mac);
	*at = '\0';
	out = xasprintf("%s%c" VERP_TAG "%s%s@%s", base, delim, hash, mac, at + 1);
	free(base);
	return out;
fail:
	free(base);
	return NULL;
}

/* verp_token - where address's local part carries <delim>verp-TOKEN (a
 * delimiter from delims, 32 hex digits up to '@'), or NULL */
static const char *verp_token(const char *address, const char *delims)
{
	const char *at = strrchr(address, '@'), *t;
	size_t n = strlen(VERP_TAG) + VERP_HASH_HEX + VERP_MAC_HEX;

	if (at == NULL || (size_t)(at - address) < n + 2)
		return NULL;
	t = at - n;
	if (strchr(delims, t[-1]) == NULL || strncasecmp(t, VERP_TAG, strlen(VERP_TAG)) != 0)
		return NULL;
	for (const char *p = t + strlen(VERP_TAG); p < at; p++)
		if (!isxdigit((unsigned char)*p))
			return NULL;
	return t + strlen(VERP_TAG);
}

int verp_check(const char *secret, const char *address, const char *delims, char **base_r,
	       char hash_r[VERP_HASH_HEX + 1])
{
	char mac[VERP_MAC_HEX + 1], given[VERP_MAC_HEX + 1], *bare, *base;
	const char *tok;
	size_t len = strlen(address);
	int rc = 0;

	*base_r = NULL;
	if (delims == NULL || *delims == '\0' || secret == NULL)
		return 0;
	if (len >= 2 && address[0] == '<' && address[len - 1] == '>')
		bare = xstrndup(address + 1, len - 2);
	else
		bare = xstrdup(address);
	if ((tok = verp_token(bare, delims)) == NULL || (base = verp_base(bare, delims)) == NULL)
		goto done;
	for (size_t i = 0; i < VERP_HASH_HEX; i++)
		hash_r[i] = (char)tolower((unsigned char)tok[i]);
	hash_r[VERP_HASH_HEX] = '\0';
	for (size_t i = 0; i < VERP_MAC_HEX; i++)
		given[i] = (char)tolower((unsigned char)tok[VERP_HASH_HEX + i]);
	given[VERP_MAC_HEX] = '\0';
	verp_mac(secret, base, hash_r, mac);
	if (crypto_equal(mac, given, VERP_MAC_HEX)) {
		*base_r = base;
		rc = 1;
	} else {
		free(base);
		rc = -1;
	}
done:
	free(bare);
	return rc;
}
