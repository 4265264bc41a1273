/* address.h - RFC 5321 mailbox parsing and canonical forms. */
#ifndef POSTROOM_ADDRESS_H
#define POSTROOM_ADDRESS_H

#include <stddef.h>

/* parse options */
#define ADDR_OPT_UTF8 0x1  /* SMTPUTF8: UTF-8 local parts and domains */
#define ADDR_OPT_ROUTE 0x2 /* accept (and drop) a source route <@a,@b:u@d> */
#define ADDR_OPT_NULL 0x4  /* accept the null path <> */
#define ADDR_OPT_BARE 0x8  /* angle brackets optional (command line, headers) */

/* flags describing what was parsed */
#define ADDR_F_QUOTED 0x1  /* local part was a quoted string */
#define ADDR_F_LITERAL 0x2 /* domain is an address literal [..] */
#define ADDR_F_ROUTE 0x4   /* a source route was present */
#define ADDR_F_UTF8 0x8    /* non-ASCII characters present */
#define ADDR_F_NULL 0x10   /* the null path <> */

#define ADDR_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, with the brackets */

struct mailbox {
	char *local;  /* local part, unquoted (quoted-pairs resolved) */
	char *domain; /* lower-case (ASCII), one trailing dot removed */
	unsigned flags;
};

/* addr_parse - parse one path or mailbox of len bytes. Returns 0 and fills
 * *mb (free with addr_free), or -1 with *error_r (static text). */
int addr_parse(const char *in, size_t len, unsigned opts, struct mailbox *mb, const char **error_r);
void addr_free(struct mailbox *mb);

/* addr_local_is_ordinary - a dot-atom of atext other than '!' and '%'
 * (UTF-8 allowed when parsed with ADDR_OPT_UTF8): user, user+tag, VERP and
 * SRS forms; never quoted, routed, '%' or '!' forms. */
int addr_local_is_ordinary(const struct mailbox *mb);

/* addr_canonical - lower-case "local@domain" for lookups (caller frees);
 * the null path gives "". Quoted local parts are re-quoted. */
char *addr_canonical(const struct mailbox *mb);

/* addr_canonicalize - parse a bare address and return its canonical form,
 * or NULL with *error_r set when it is not an ordinary address at a domain
 * name (what the admin CLI accepts for users and aliases). */
char *addr_canonicalize(const char *in, const char **error_r);

/* addr_strip_subaddress - canonical form with "+tag" (first delimiter
 * char found, from delims) removed from the local part; caller frees. */
char *addr_strip_subaddress(const struct mailbox *mb, const char *delims);

/* addr_utf8_valid - well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF) */
int addr_utf8_valid(const unsigned char *s, size_t len);

#endif
