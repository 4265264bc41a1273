/* verp.h - per-message VERP envelope senders (issue 21): the address
 * that the milter puts in MAIL FROM of an authenticated submission, and
 * its check when a bounce comes back to it.
 *
 * The address is the sender's own address with a subaddress:
 *	LOCAL<delim>verp-HHHHHHHHHHHHHHHHMMMMMMMMMMMMMMMM@DOMAIN
 * H: the first 8 bytes of SHA-256 over the Message-Id as postroom stores
 * it (blanks and angle brackets taken off), in hex (verp_msgid_hash; the
 * database computes the same, postroom_verp_hash in sql/026);
 * M: the first 8 bytes of HMAC-SHA256(security.hmac_secret,
 * "postroom-verp:" LOCAL@DOMAIN ":" H), hex: nobody without the secret
 * can make an address that names another sent email or another sender.
 *
 * CONTRACT: pure functions, no I/O, no logging; returned strings are the
 * caller's (free). */
#ifndef POSTROOM_VERP_H
#define POSTROOM_VERP_H

#define VERP_TAG "verp-"
#define VERP_HASH_HEX 16 /* hex digits of the Message-Id hash */
#define VERP_MAC_HEX 16  /* hex digits of the MAC */

/* verp_msgid_hash - H of a Message-Id (with or without <>) into out */
void verp_msgid_hash(const char *message_id, char out[VERP_HASH_HEX + 1]);

/* verp_address - the VERP sender for sender (a path or bare address; an
 * existing subaddress is dropped) and the message's Message-Id, with
 * delim (one of rules.subaddress_delimiters). NULL when sender is the
 * null path, not an ordinary address, or the local part would exceed 64
 * octets: the caller keeps the sender then. */
char *verp_address(const char *secret, const char *sender, char delim, const char *message_id);

/* verp_check - is address (a recipient, bare or in <>) a VERP address
 * of this server? 1: yes, its MAC verifies; *base_r (lower-case
 * LOCAL@DOMAIN, caller frees) and hash_r (H) set. 0: not a VERP
 * address. -1: VERP-shaped, but the MAC does not verify (forged or made
 * with another secret). */
int verp_check(const char *secret, const char *address, const char *delims, char **base_r,
	       char hash_r[VERP_HASH_HEX + 1]);

#endif
