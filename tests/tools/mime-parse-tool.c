/* mime-parse-tool - lib/mime_parse on one file, for tests and bench/.
 *   mime-parse-tool FILE
 * Prints what deliver would store of the message, a line each:
 *   attachments N / bytes N / largest N / text N / html N / rcpts N /
 *   references N / problem TEXT|-
 * and, last, "rss_kb N": the process's peak RSS (VmHWM) after the parse,
 * so that bench/ can read it without /usr/bin/time.
 * Exit 0, or 1 on a system error. A test helper, never installed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime_parse.h"

/* tool_hwm_kb - VmHWM of this process in KiB, -1 when unknown */
static long tool_hwm_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	unsigned char id[SHA256_LEN] = { 0 };
	struct mime_msg *m = NULL;
	char *err = NULL;
	long long bytes = 0, largest = 0;
	size_t i;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: mime-parse-tool FILE\n");
		return 2;
	}
	if ((fd = open(argv[1], O_RDONLY)) < 0) {
		perror(argv[1]);
		return 1;
	}
	if (mime_parse(fd, 0, -1, id, NULL, &m, &err) < 0) {
		fprintf(stderr, "mime_parse: %s\n", err);
		return 1;
	}
	for (i = 0; i < m->natts; i++) {
		bytes += m->atts[i].size;
		if (m->atts[i].size > largest)
			largest = m->atts[i].size;
	}
	printf("attachments %zu\nbytes %lld\nlargest %lld\n", m->natts, bytes, largest);
	printf("text %zu\nhtml %zu\n", m->text_body ? strlen(m->text_body) : 0,
	       m->html_body ? strlen(m->html_body) : 0);
	printf("rcpts %zu\nreferences %zu\n", m->nrcpts, m->nreferences);
	printf("problem %s\n", m->parse_problem ? m->parse_problem : "-");
	mime_msg_free(&m);
	close(fd);
	printf("rss_kb %ld\n", tool_hwm_kb());
	return 0;
}
