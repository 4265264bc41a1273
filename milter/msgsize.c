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

void msgsize_add(struct msgsize *m, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && !m->last_cr)
			m->bytes++; /* the CR a bare LF stands for */
		m->bytes++;
		m->last_cr = p[i] == '\r';
	}
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
