/* log.h - one graded logging API: syslog facility mail, or stderr. */
#ifndef POSTROOM_LOG_H
#define POSTROOM_LOG_H

#include <sysexits.h>

/* log_init - name the program; foreground also copies every line to stderr.
 * stderr_only sends lines to stderr alone (command-line tools). */
void log_init(const char *progname, int foreground, int stderr_only);
/* log_set_context - a queue id or connection id shown on every line
 * (NULL clears it). */
void log_set_context(const char *id);
void log_set_debug(int on);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_fatal - log and exit with a sysexits(3) status. */
void log_fatal(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* log_panic - an internal bug: log and abort. */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
