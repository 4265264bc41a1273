/* mail-class-tool - lib/mail_class on files, for tests.
 *   mail-class-tool [-s SENDER] FILE...
 * One line per file: FILE, TAB, class, TAB, rule, TAB, original
 * Message-Id or "-", TAB, the recipients as address/action/status/kind
 * separated by spaces (or "-"). -s gives the envelope sender ("" for
 * <>); without it the sender is unknown (Return-Path stands in).
 * Exit 0, or 1 on a system error. A test helper, never installed. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mail_class.h"

/* tool_one - classify one file and print its line; -1 on a system error */
static int tool_one(const char *path, const char *sender)
{
	unsigned char id[SHA256_LEN] = { 0 };
	struct mail_class_report r;
	struct mime_msg *m = NULL;
	char *err = NULL;
	size_t i;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || mime_parse(fd, 0, -1, id, NULL, &m, &err) < 0) {
		fprintf(stderr, "%s: %s\n", path, err ? err : "cannot open");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	mail_class_classify(m, sender, &r);
	printf("%s\t%s\t%s\t%s\t", path, mail_class_name(r.cls), r.rule,
	       r.original_message_id ? r.original_message_id : "-");
	for (i = 0; i < r.nrcpts; i++)
		printf("%s%s/%s/%s/%s", i ? " " : "", r.rcpts[i].address,
		       r.rcpts[i].action ? r.rcpts[i].action : "-",
		       r.rcpts[i].status ? r.rcpts[i].status : "-",
		       mail_class_kind_name(r.rcpts[i].kind));
	printf("%s\n", r.nrcpts ? "" : "-");
	mail_class_report_free(&r);
	mime_msg_free(&m);
	return 0;
}

int main(int argc, char **argv)
{
	const char *sender = NULL;
	int i = 1, rc = 0;

	if (argc > 2 && strcmp(argv[1], "-s") == 0) {
		sender = argv[2];
		i = 3;
	}
	for (; i < argc; i++)
		if (tool_one(argv[i], sender) < 0)
			rc = 1;
	return rc;
}
