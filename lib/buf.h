/* buf.h - length-carrying, binary-safe, growable byte buffer. */
#ifndef POSTROOM_BUF_H
#define POSTROOM_BUF_H

#include <stddef.h>

struct buf {
	char *data; /* always NUL-terminated (not counted in len) */
	size_t len;
	size_t cap;
};

/* a braced initializer as a macro body would be formatted as a block */
/* clang-format off */
#define BUF_INIT { NULL, 0, 0 }
/* clang-format on */

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_truncate(struct buf *b, size_t len);
/* buf_cstr - the contents as a C string (never NULL). */
const char *buf_cstr(struct buf *b);
/* buf_adopt - b becomes the malloc'd string s of len bytes (what b held
 * is freed): a large string taken over without a copy. */
void buf_adopt(struct buf *b, char *s, size_t len);
/* buf_steal - hand the memory to the caller (who frees it); b is reset. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);

#endif
