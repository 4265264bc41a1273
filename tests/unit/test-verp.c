/* test-verp - VERP envelope senders (lib/verp.c): the form, the hash
 * the database computes too (sql/026 postroom_verp_hash), the check of
 * the MAC, senders that cannot carry a tag, forged and tampered tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "verp.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

int main(void)
{
	char hash[VERP_HASH_HEX + 1], *a, *b, *base, *t;
	char long_local[70];

	/* printf '%s' 'bp-verp-1@example.test' | sha256sum | cut -c1-16 */
	verp_msgid_hash("bp-verp-1@example.test", hash);
	UNIT_STR_EQ(hash, "43be8e1932da8f1b", "the hash: SHA-256 of the Message-Id, 16 hex digits");
	verp_msgid_hash(" <bp-verp-1@example.test>\r\n", hash);
	UNIT_STR_EQ(hash, "43be8e1932da8f1b", "blanks and angle brackets are not hashed");

	a = verp_address(SECRET, "<Alice@Example.TEST>", '+', "<bp-verp-1@example.test>");
	UNIT_OK(a && strncmp(a, "alice+verp-43be8e1932da8f1b", 27) == 0 &&
			strlen(a) == strlen("alice+verp-@example.test") + 32 &&
			strcmp(a + strlen(a) - 13, "@example.test") == 0,
		"the address: LOCAL+verp-HASHMAC@DOMAIN, lower case (%s)", a ? a : "(null)");
	b = verp_address(SECRET, "alice+shop@example.test", '+', "bp-verp-1@example.test");
	UNIT_STR_EQ(b, a, "an existing subaddress is dropped first");
	free(b);

	UNIT_OK(verp_check(SECRET, a, "+", &base, hash) == 1 &&
			strcmp(base, "alice@example.test") == 0 &&
			strcmp(hash, "43be8e1932da8f1b") == 0,
		"its check: valid, naming the sender and the hash");
	free(base);
	b = malloc(strlen(a) + 3);
	sprintf(b, "<%s>", a);
	for (char *p = b; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	UNIT_OK(verp_check(SECRET, b, "+", &base, hash) == 1,
		"in angle brackets, upper case: valid");
	free(base);
	free(b);

	UNIT_OK(verp_check("another-secret-another-secret-another", a, "+", &base, hash) == -1 &&
			base == NULL,
		"with another secret: forged");
	t = strdup(a);
	t[strlen("alice+verp-") + VERP_HASH_HEX + 3] =
		t[strlen("alice+verp-") + VERP_HASH_HEX + 3] == '0' ? '1' : '0'; /* a MAC digit */
	UNIT_OK(verp_check(SECRET, t, "+", &base, hash) == -1, "a MAC digit changed: forged");
	free(t);
	t = strdup(a);
	t[strlen("alice+verp-") + 2] = t[strlen("alice+verp-") + 2] == '0' ? '1' : '0'; /* hash */
	UNIT_OK(verp_check(SECRET, t, "+", &base, hash) == -1, "a hash digit changed: forged");
	free(t);
	t = strdup(a);
	t[0] = 'b'; /* another sender, the same token */
	UNIT_OK(verp_check(SECRET, t, "+", &base, hash) == -1,
		"the token on another sender: forged");
	free(t);
	UNIT_OK(verp_check(SECRET, a, "-", &base, hash) == 0, "another delimiter: not VERP");
	UNIT_OK(verp_check(SECRET, "alice+verp-43be@example.test", "+", &base, hash) == 0,
		"a short token: not VERP");
	UNIT_OK(verp_check(SECRET, "alice@example.test", "+", &base, hash) == 0,
		"a plain address: not VERP");
	UNIT_OK(verp_check(SECRET, a, "", &base, hash) == 0, "no delimiters: not VERP");
	free(a);

	UNIT_OK(verp_address(SECRET, "<>", '+', "x@y") == NULL, "the null sender gets none");
	memset(long_local, 'a', 40);
	strcpy(long_local + 40, "@example.test");
	UNIT_OK(verp_address(SECRET, long_local, '+', "x@y") == NULL,
		"a local part that would exceed 64 octets gets none");
	UNIT_OK(verp_address(SECRET, "\"a b\"@example.test", '+', "x@y") == NULL,
		"a quoted local part gets none");
	return unit_done();
}
