/* mime_check.h - is an attachment of a message over
 * limits.attachment_size_max, counted exactly as postroom-deliver counts
 * it? The check of the SMTP session (postroom-milter at end of data,
 * postroom-mimecheck in Exim's DATA ACL), so that deliver never has to
 * bounce a message it has accepted (no backscatter).
 *
 * It is lib/mime_parse with the limits: the same GMime walk and the same
 * decoded sizes, not a second decoder. A decoded part is never larger
 * than its encoded form, so a message of at most attachment_size_max
 * bytes (CRLF size) is answered without being parsed. */
#ifndef POSTROOM_MIME_CHECK_H
#define POSTROOM_MIME_CHECK_H

#include "mime_parse.h"

/* mime_check_attachments - the decoded size of the largest attachment of
 * the message at [start, end) of fd (end -1 = to EOF) that is over
 * lim->attachment_size_max, in *oversize_r (0: none is, or no limit).
 * size is the message's size with CRLF line endings (or more): at most
 * the limit, the message is not read. Returns 0, or -1 with *error_r
 * (caller frees) on a system error (memory file, I/O), never because of
 * the content. */
int mime_check_attachments(int fd, long long start, long long end, long long size,
			   const struct mime_limits *lim, long long *oversize_r, char **error_r);

/* mime_check_reason - "attachment of N bytes exceeds the limit of M
 * bytes", the text of the 552 5.3.4 reply (caller frees) */
char *mime_check_reason(long long oversize, long long max);

#endif
