/* test-buf - the growable buffer keeps binary data and its terminator. */
#include <stdlib.h>
#include "buf.h"
#include "unit.h"

int main(void)
{
	struct buf b = BUF_INIT;
	char *s;
	int i;

	UNIT_STR_EQ(buf_cstr(&b), "", "empty buffer is an empty string");
	buf_append(&b, "a\0b", 3);
	UNIT_OK(b.len == 3 && memcmp(b.data, "a\0b", 3) == 0, "binary data kept with NUL inside");
	UNIT_OK(b.data[3] == '\0', "terminated after the data");
	buf_truncate(&b, 0);
	for (i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	UNIT_OK(b.len == 3890, "printf appends grow the buffer (len %zu)", b.len);
	UNIT_OK(strncmp(b.data + b.len - 4, "999,", 4) == 0, "last formatted item at the end");
	s = buf_steal(&b);
	UNIT_OK(b.data == NULL && b.len == 0, "steal resets the buffer");
	free(s);
	buf_free(&b);
	return unit_done();
}
