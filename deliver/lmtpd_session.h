/* lmtpd_session.h - postroom-lmtpd's LMTP sessions, one thread each.
 *
 * CONTRACT: lmtpd_session_spawn takes fd over (the session closes it)
 * and counts the session in srv->nsessions until its thread ends; over
 * lmtpd.max_sessions the connection gets 421 4.3.2 and is closed. */
#ifndef POSTROOM_LMTPD_SESSION_H
#define POSTROOM_LMTPD_SESSION_H

#include "lmtpd.h"

/* lmtpd_session_spawn - serve fd on a thread of its own (detached);
 * trusted: may use AUTH=, XFORWARD, X-POSTROOM-SENT; peer for the log */
void lmtpd_session_spawn(struct lmtpd_server *srv, int fd, int trusted, const char *peer);
/* lmtpd_session_reap - join the threads whose session has ended: they
 * are gone, their thread-local state (OpenSSL's, GLib's) freed */
void lmtpd_session_reap(struct lmtpd_server *srv);

#endif
