/* fuzz-address - libFuzzer target for the RFC 5321 path parser, the code
 * the relay decision rests on. Invariants checked on every input:
 * no crash or sanitizer report; an accepted path has a valid UTF-8 local
 * part and domain no longer than the RFC limits; its canonical form parses
 * again (as a bare address) to the same canonical form; an "ordinary"
 * local part never contains '%', '!', '@' or a quote. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

static const unsigned fuzz_opts[] = {
	0,
	ADDR_OPT_UTF8,
	ADDR_OPT_ROUTE | ADDR_OPT_NULL,
	ADDR_OPT_BARE | ADDR_OPT_UTF8,
};

static void fuzz_check(const struct mailbox *mb)
{
	struct mailbox again;
	const char *err;
	char *canon, *canon2;

	if (strlen(mb->local) > ADDR_LOCAL_MAX || strlen(mb->domain) > ADDR_DOMAIN_MAX)
		abort();
	if (!addr_utf8_valid((const unsigned char *)mb->local, strlen(mb->local)) ||
	    !addr_utf8_valid((const unsigned char *)mb->domain, strlen(mb->domain)))
		abort();
	if (addr_local_is_ordinary(mb) && strpbrk(mb->local, "%!@\"") != NULL)
		abort();
	if (mb->flags & ADDR_F_NULL)
		return;
	canon = addr_canonical(mb);
	if (addr_parse(canon, strlen(canon), ADDR_OPT_BARE | ADDR_OPT_UTF8, &again, &err) != 0)
		abort(); /* canonical form must stay parseable */
	canon2 = addr_canonical(&again);
	if (strcmp(canon, canon2) != 0)
		abort(); /* and stable */
	free(canon2);
	addr_free(&again);
	free(canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailbox mb;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(fuzz_opts) / sizeof(fuzz_opts[0]); i++) {
		if (addr_parse((const char *)data, size, fuzz_opts[i], &mb, &err) == 0) {
			fuzz_check(&mb);
			addr_free(&mb);
		}
	}
	return 0;
}
