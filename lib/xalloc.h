/* xalloc.h - allocation that never returns NULL (out of memory is fatal). */
#ifndef POSTROOM_XALLOC_H
#define POSTROOM_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
/* xgrow - the array p of n elements of size bytes, with room for one
 * more: its capacity doubles from 8, so that appending n elements one
 * at a time copies O(n) bytes in all, not O(n^2). p must have been grown
 * by xgrow only (or be NULL with n = 0). */
void *xgrow(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xasprintf - formatted string in fresh memory; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* xfree - free *pp and set it to NULL. */
#define xfree(pp)             \
	do {                  \
		free(*(pp));  \
		*(pp) = NULL; \
	} while (0)

#endif
