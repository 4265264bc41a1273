/*
 * NAME
 *	mime_check - an attachment over the size limit, found in the session
 * DESCRIPTION
 *	Runs lib/mime_parse on the message with the limits (attachment size,
 *	MIME parts) and reads msg->oversize_size: the attachments it leaves
 *	out are exactly the ones postroom-deliver would store flagged, their
 *	sizes decoded the same way. A message no larger than the limit is
 *	not parsed: a decoded part is never larger than its encoded form.
 *	The caller passes limits.attachment_size_max and
 *	limits.mime_parts_max in lim; no configuration is read here.
 * NEVER
 *	decodes MIME itself (one decoder: mime_parse), fails because of the
 *	content of a message.
 */
#include "mime_check.h"

#include <stdlib.h>

#include "xalloc.h"

int mime_check_attachments(int fd, long long start, long long end, long long size,
			   const struct mime_limits *lim, long long *oversize_r, char **error_r)
{
	static const unsigned char id[SHA256_LEN]; /* no Message-Id is generated for use */
	struct mime_msg *m = NULL;

	*oversize_r = 0;
	if (lim == NULL || lim->attachment_size_max <= 0 || size <= lim->attachment_size_max)
		return 0;
	if (mime_parse(fd, start, end, id, lim, &m, error_r) < 0)
		return -1;
	*oversize_r = m->oversize_size;
	mime_msg_free(&m);
	return 0;
}

char *mime_check_reason(long long oversize, long long max)
{
	return xasprintf("attachment of %lld bytes exceeds the limit of %lld bytes", oversize, max);
}
