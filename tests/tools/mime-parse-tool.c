/* mime-parse-tool - lib/mime_parse on one file, for tests and bench/.
 *   mime-parse-tool [-d] [-a ATTACHMENT_SIZE_MAX] FILE
 * -d prints every extracted field first (message id, from, subject,
 * recipients, references, SHA-256 of the bodies, each attachment), for
 * comparing two parsers line by line. Then, a line each:
 *   attachments N / bytes N / largest N / text N / html N / rcpts N /
 *   references N / oversize N / problem TEXT|-
 * and, last, "rss_kb N": the process's peak RSS (VmHWM) after the parse,
 * so that bench/ can read it without /usr/bin/time.
 * Exit 0, or 1 on a system error. A test helper, never installed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

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

/* tool_sha - hex SHA-256 of s, "-" for NULL (static buffer) */
static const char *tool_sha(const char *s)
{
	static char hex[2 * SHA256_LEN + 1];
	unsigned char md[SHA256_LEN];

	if (s == NULL)
		return "-";
	EVP_Digest(s, strlen(s), md, NULL, EVP_sha256(), NULL);
	crypto_hex(md, SHA256_LEN, hex);
	return hex;
}

/* tool_dump - every field of m, one a line */
static void tool_dump(const struct mime_msg *m)
{
	char hex[2 * SHA256_LEN + 1];
	size_t i;

	printf("message_id %s%s\n", m->message_id, m->message_id_generated ? " (generated)" : "");
	printf("from %s|%s\n", m->from_address, m->from_display ? m->from_display : "-");
	printf("subject %s\n", m->subject);
	printf("in_reply_to %s\n", m->in_reply_to ? m->in_reply_to : "-");
	for (i = 0; i < m->nreferences; i++)
		printf("reference %s\n", m->references[i]);
	for (i = 0; i < m->nrcpts; i++)
		printf("rcpt %d %s|%s\n", (int)m->rcpts[i].type, m->rcpts[i].address,
		       m->rcpts[i].display ? m->rcpts[i].display : "-");
	printf("text_sha %s\n", tool_sha(m->text_body));
	printf("html_sha %s\n", tool_sha(m->html_body));
	for (i = 0; i < m->natts; i++) {
		crypto_hex(m->atts[i].sha256, SHA256_LEN, hex);
		printf("att %zu %s|%s|%s|%d|%lld|%s\n", i, m->atts[i].filename,
		       m->atts[i].content_type, m->atts[i].content_id ? m->atts[i].content_id : "-",
		       m->atts[i].is_inline, m->atts[i].size, hex);
	}
	printf("submission %s\n", m->submission_hdr ? m->submission_hdr : "-");
	for (i = 0; i < m->ntop_headers; i++)
		printf("top %s: %.200s\n", m->top_headers[i].name, m->top_headers[i].value);
}

int main(int argc, char **argv)
{
	unsigned char id[SHA256_LEN] = { 0 };
	struct mime_limits lim = { 0, 0 };
	struct mime_msg *m = NULL;
	char *err = NULL;
	long long bytes = 0, largest = 0;
	int dump = 0, opt, fd;
	size_t i;

	while ((opt = getopt(argc, argv, "da:")) != -1) {
		if (opt == 'd')
			dump = 1;
		else if (opt == 'a')
			lim.attachment_size_max = strtoll(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: mime-parse-tool [-d] [-a ATTACHMENT_SIZE_MAX] FILE\n");
		return 2;
	}
	if ((fd = open(argv[optind], O_RDONLY)) < 0) {
		perror(argv[optind]);
		return 1;
	}
	if (mime_parse(fd, 0, -1, id, &lim, &m, &err) < 0) {
		fprintf(stderr, "mime_parse: %s\n", err);
		return 1;
	}
	if (dump)
		tool_dump(m);
	for (i = 0; i < m->natts; i++) {
		bytes += m->atts[i].size;
		if (m->atts[i].size > largest)
			largest = m->atts[i].size;
	}
	printf("attachments %zu\nbytes %lld\nlargest %lld\n", m->natts, bytes, largest);
	printf("text %zu\nhtml %zu\n", m->text_body ? strlen(m->text_body) : 0,
	       m->html_body ? strlen(m->html_body) : 0);
	printf("rcpts %zu\nreferences %zu\n", m->nrcpts, m->nreferences);
	printf("oversize %lld\n", m->oversize_size);
	printf("problem %s\n", m->parse_problem ? m->parse_problem : "-");
	mime_msg_free(&m);
	close(fd);
	printf("rss_kb %ld\n", tool_hwm_kb());
	return 0;
}
