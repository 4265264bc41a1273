/* unit.h - tiny TAP-emitting assertions for table-driven unit tests. */
#ifndef POSTROOM_UNIT_H
#define POSTROOM_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_n, unit_failed;

#define UNIT_OK(cond, ...)                                                              \
	do {                                                                            \
		int unit_ok_ = !!(cond); /* evaluated once */                           \
		unit_n++;                                                               \
		if (unit_ok_) {                                                         \
			printf("ok %d - ", unit_n);                                     \
		} else {                                                                \
			unit_failed++;                                                  \
			printf("not ok %d - ", unit_n);                                 \
		}                                                                       \
		printf(__VA_ARGS__);                                                    \
		printf("\n");                                                           \
		if (!unit_ok_)                                                          \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	} while (0)

#define UNIT_STR_EQ(got, want, ...)                                                        \
	do {                                                                               \
		const char *g_ = (got), *w_ = (want);                                      \
		int eq_ = (g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0); \
		UNIT_OK(eq_, __VA_ARGS__);                                                 \
		if (!eq_)                                                                  \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)",            \
			       w_ ? w_ : "(null)");                                        \
	} while (0)

static inline int unit_done(void)
{
	printf("# %d tests, %d failed\n", unit_n, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
