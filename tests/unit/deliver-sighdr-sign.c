/* deliver-sighdr-sign - test helper (not a test): print the value of a
 * signed postroom header, for tests/integration/deliver-golden.sh.
 *   deliver-sighdr-sign SECRET HEADER-NAME [AGE-SECONDS] name=value...
 * AGE-SECONDS (a number) back-dates the signature. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sighdr.h"

int main(int argc, char **argv)
{
	struct sighdr h;
	time_t now = time(NULL);
	char *v;
	int i = 3;

	if (argc < 3)
		return 64;
	memset(&h, 0, sizeof(h));
	if (argc > 3 && strchr(argv[3], '=') == NULL)
		now -= atol(argv[i++]);
	for (; i < argc && h.nfields < SIGHDR_MAX_FIELDS; i++) {
		char *eq = strchr(argv[i], '=');

		if (eq == NULL)
			return 64;
		*eq = '\0';
		h.fields[h.nfields].name = argv[i];
		h.fields[h.nfields++].value = eq + 1;
	}
	if ((v = sighdr_sign(argv[1], argv[2], &h, now)) == NULL)
		return 1;
	printf("%s\n", v);
	free(v);
	return 0;
}
