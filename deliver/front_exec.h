/* front_exec.h - execute postroom-deliver-store in place of the front
 * end (direct mode).
 *
 * CONTRACT: returns only through deliver_operator_error (75, 4.3.5) when
 * no usable storing program is found; otherwise it is replaced by it. */
#ifndef POSTROOM_DELIVER_FRONT_EXEC_H
#define POSTROOM_DELIVER_FRONT_EXEC_H

/* front_exec_store - exec the storing program with argv (unchanged) */
void front_exec_store(char **argv) __attribute__((noreturn));

#endif
