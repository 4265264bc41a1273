/* sighdr-tool - sign or verify an internal header from a test script.
 *   sighdr-tool sign SECRET HEADER-NAME UNIXTIME name=value...
 *   sighdr-tool verify SECRET HEADER-NAME VALUE [MESSAGE-ID|- [QUEUE-ID|-]]
 * verify prints "ok" and the fields (name=value lines), or "fail: why";
 * exit 0 / 1. A test helper, never installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sighdr.h"

static int tool_sign(int argc, char **argv)
{
	struct sighdr f;
	char *v;
	int i;

	memset(&f, 0, sizeof(f));
	for (i = 5; i < argc && f.nfields < SIGHDR_MAX_FIELDS; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL)
			return 2;
		*eq = '\0';
		f.fields[f.nfields].name = argv[i];
		f.fields[f.nfields++].value = eq + 1;
	}
	v = sighdr_sign(argv[2], argv[3], &f, (time_t)strtoll(argv[4], NULL, 10));
	if (v == NULL)
		return 1;
	printf("%s\n", v);
	free(v);
	return 0;
}

static int tool_verify(int argc, char **argv)
{
	struct sighdr_binding b = { NULL, NULL, 0, 0 };
	struct sighdr h;
	char *storage = NULL;
	const char *err = NULL;
	size_t i;

	if (argc > 5 && strcmp(argv[5], "-") != 0)
		b.message_id = argv[5];
	if (argc > 6 && strcmp(argv[6], "-") != 0)
		b.queue_id = argv[6];
	if (sighdr_verify(argv[2], argv[3], argv[4], &b, &h, &storage, &err) < 0) {
		printf("fail: %s\n", err);
		return 1;
	}
	printf("ok\n");
	for (i = 0; i < h.nfields; i++)
		printf("%s=%s\n", h.fields[i].name, h.fields[i].value);
	free(storage);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "sign") == 0)
		return tool_sign(argc, argv);
	if (argc >= 5 && strcmp(argv[1], "verify") == 0)
		return tool_verify(argc, argv);
	fprintf(stderr, "usage: sighdr-tool sign|verify SECRET HEADER ...\n");
	return 2;
}
