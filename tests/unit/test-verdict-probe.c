/* test-verdict-probe - lib/verdict.c on a real message's headers.
 *
 *   test-verdict-probe SECRET QUEUE-ID AUTHSERV-ID < HEADERS
 *
 * reads an RFC 5322 header block (folded lines kept, up to the first empty
 * line; lines starting with "***" from postcat are skipped) and prints
 * "spam=N valid=N reason=R". Used by tests/mta/policyd-postfix.sh to show
 * that deliver's reading accepts the header policyd prepended through a
 * real Postfix. Without arguments (as tests/run calls it) it checks
 * itself on a built-in block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"
#include "verdict.h"
#include "xalloc.h"

#define MAXH 256

/* probe_read - split fp into headers (names and values in fresh memory) */
static size_t probe_read(FILE *fp, struct verdict_header *h)
{
	char line[8192];
	size_t n = 0;
	struct buf val = BUF_INIT;
	char *name = NULL;

	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t len = strlen(line);

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (strncmp(line, "***", 3) == 0)
			continue;
		if ((line[0] == ' ' || line[0] == '\t') && name != NULL) {
			buf_append_str(&val, "\r\n");
			buf_append_str(&val, line);
			continue;
		}
		if (name != NULL && n < MAXH) {
			h[n].name = name;
			h[n++].value = buf_steal(&val);
			name = NULL;
		}
		if (len == 0)
			break;
		{
			char *colon = strchr(line, ':');

			if (colon == NULL)
				continue;
			name = xstrndup(line, (size_t)(colon - line));
			buf_append_str(&val, colon[1] == ' ' ? colon + 2 : colon + 1);
		}
	}
	if (name != NULL && n < MAXH) {
		h[n].name = name;
		h[n++].value = buf_steal(&val);
	}
	buf_free(&val);
	return n;
}

int main(int argc, char **argv)
{
	struct verdict_header h[MAXH];
	struct verdict_result r;
	struct verdict_config cfg = { 0 };
	size_t n, i;

	if (argc == 4) {
		cfg.hmac_secret = argv[1];
		cfg.queue_id = argv[2];
		cfg.authserv_id = argv[3];
		n = probe_read(stdin, h);
		verdict_from_headers(&cfg, h, n, &r);
		printf("spam=%d valid=%d reason=%s\n", r.spam, r.verdict_valid, r.reason);
	} else {
		static const char text[] = "X-A: 1\nReceived: from x\n\tby y\nSubject: s\n\nbody\n";
		FILE *fp = fmemopen((void *)text, strlen(text), "r");

		n = probe_read(fp, h);
		fclose(fp);
		UNIT_OK(n == 3, "three headers read");
		UNIT_OK(n == 3 && strcmp(h[1].name, "Received") == 0 &&
				strstr(h[1].value, "\r\n\tby y") != NULL,
			"folded value kept");
		verdict_from_headers(&cfg, h, n, &r);
		UNIT_OK(r.spam == 0 && !r.verdict_valid, "no verdict: not spam");
	}
	for (i = 0; i < n; i++) {
		free((char *)h[i].name);
		free((char *)h[i].value);
	}
	return argc == 4 ? 0 : unit_done();
}
