/*
 * NAME
 *	msgsize - the size of a message as MISSION.md defines it
 * DESCRIPTION
 *	Headers and body with CRLF line endings: a bare LF counts as two
 *	bytes, CRLF as two. Headers are counted as "Name:" + value + CRLF
 *	(the value with its leading white space), the empty line after
 *	them as CRLF, the body as libmilter passes it (dot-unstuffed).
 *	postroom-deliver applies the same definition to the bytes it
 *	receives, so the milter refuses at end of data what deliver would
 *	bounce.
 * NEVER
 *	undercounts: a bare CR is one byte, a CRLF split across two body
 *	chunks is two.
 */
#include "milter.h"

#include <string.h>

/* msgsize_add - len bytes, plus one for each LF without its CR (found
 * with memchr: the body is counted once per message, at memory speed) */
void msgsize_add(struct msgsize *m, const void *data, size_t len)
{
	const unsigned char *start = data, *end = start + len, *p, *nl;

	if (len == 0)
		return;
	m->bytes += (long long)len;
	for (p = start; (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1)
		if (!(nl > start ? nl[-1] == '\r' : m->last_cr))
			m->bytes++; /* the CR a bare LF stands for */
	m->last_cr = end[-1] == '\r';
}

void msgsize_header(struct msgsize *m, const char *name, const char *value, int leadspc)
{
	m->last_cr = 0;
	msgsize_add(m, name, strlen(name));
	msgsize_add(m, ":", 1);
	if (!leadspc)
		msgsize_add(m, " ", 1);
	msgsize_add(m, value, strlen(value));
	m->last_cr = 0;
	msgsize_add(m, "\r\n", 2);
}
