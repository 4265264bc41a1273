/* mac.h - HMAC-SHA256 with the key schedule done once: the inner and outer
 * hash states after the padded key are kept and copied for each message
 * (about 5 times faster than a one-shot HMAC() call in OpenSSL 3, which
 * matters at tens of thousands of cached answers per second). */
#ifndef POSTROOM_AUTHD_MAC_H
#define POSTROOM_AUTHD_MAC_H

#include <stddef.h>

#define AUTHD_MAC_LEN 32

struct authd_mac;

/* authd_mac_new - a keyed MAC (the key is not kept) */
struct authd_mac *authd_mac_new(const void *key, size_t keylen);
void authd_mac_free(struct authd_mac **m);
/* authd_mac_parts - HMAC-SHA256 of the concatenation of n parts; safe to
 * call from several threads at once */
void authd_mac_parts(const struct authd_mac *m, const void *const *parts, const size_t *lens,
		     size_t n, unsigned char out[AUTHD_MAC_LEN]);

#endif
