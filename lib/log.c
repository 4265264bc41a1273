/*
 * NAME
 *	log - graded logging to syslog (facility mail) and/or stderr
 * DESCRIPTION
 *	One line per event: "[context: ]message". Daemons log to syslog and,
 *	in the foreground (-f), also to stderr; command-line tools to stderr.
 * NEVER
 *	logs API keys or passwords: callers pass only what is safe to show.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static const char *log_progname = "postroom";
static int log_to_stderr = 1;
static int log_to_syslog = 0;
static int log_debug_on = 0;
static char log_context[128];

void log_init(const char *progname, int foreground, int stderr_only)
{
	log_progname = progname;
	log_to_stderr = foreground || stderr_only;
	log_to_syslog = !stderr_only;
	if (log_to_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_context(const char *id)
{
	if (id == NULL)
		log_context[0] = '\0';
	else
		snprintf(log_context, sizeof(log_context), "%s", id);
}

void log_set_debug(int on) { log_debug_on = on; }

static void log_vemit(int prio, const char *tag, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_to_syslog)
		syslog(prio, "%s%s%s%s", tag, log_context, log_context[0] ? ": " : "", msg);
	if (log_to_stderr)
		fprintf(stderr, "%s: %s%s%s%s\n", log_progname, tag, log_context,
			log_context[0] ? ": " : "", msg);
}

#define LOG_BODY(prio, tag)            \
	va_list ap;                    \
	va_start(ap, fmt);             \
	log_vemit(prio, tag, fmt, ap); \
	va_end(ap)

void log_debug(const char *fmt, ...)
{
	if (log_debug_on) {
		LOG_BODY(LOG_DEBUG, "debug: ");
	}
}
void log_info(const char *fmt, ...) { LOG_BODY(LOG_INFO, ""); }
void log_warn(const char *fmt, ...) { LOG_BODY(LOG_WARNING, "warning: "); }
void log_error(const char *fmt, ...) { LOG_BODY(LOG_ERR, "error: "); }

void log_fatal(int status, const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "fatal: ");
	exit(status);
}

void log_panic(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "panic: ");
	abort();
}
