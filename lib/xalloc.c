/*
 * NAME
 *	xalloc - memory allocation that never returns NULL
 * DESCRIPTION
 *	Wrappers over malloc(3) and friends. Running out of memory is not
 *	something a mail daemon can recover from half-way through a
 *	transaction, so it is fatal (EX_OSERR, which MTAs treat as a deferral).
 * NEVER
 *	returns NULL.
 */
#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void *xalloc_check(void *p)
{
	if (p == NULL)
		log_fatal(EX_OSERR, "out of memory");
	return p;
}

void *xmalloc(size_t size) { return xalloc_check(malloc(size ? size : 1)); }
void *xcalloc(size_t n, size_t size) { return xalloc_check(calloc(n ? n : 1, size ? size : 1)); }
void *xrealloc(void *ptr, size_t size) { return xalloc_check(realloc(ptr, size ? size : 1)); }

void *xgrow(void *p, size_t n, size_t size)
{
	if (n == 0)
		return xrealloc(p, 8 * size);
	if (n < 8 || (n & (n - 1)) != 0)
		return p; /* room left: the capacity is the next power of two */
	if (n > ((size_t)-1) / 2 / size)
		log_fatal(EX_OSERR, "out of memory (an array of %zu elements)", n);
	return xrealloc(p, 2 * n * size);
}

char *xstrdup(const char *s) { return xalloc_check(strdup(s)); }
char *xstrndup(const char *s, size_t n) { return xalloc_check(strndup(s, n)); }

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;

	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		out = NULL;
	va_end(ap);
	return xalloc_check(out);
}
