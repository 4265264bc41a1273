/* lmtpd_session.h - postroom-lmtpd's LMTP sessions, one thread each
 * at a time (a thread serves the next connection once its own ends).
 *
 * CONTRACT: lmtpd_session_spawn takes fd over (the session closes it)
 * and counts the session in srv->nsessions until it has ended; over
 * lmtpd.max_sessions the connection gets 421 4.3.2 and is closed. */
#ifndef POSTROOM_LMTPD_SESSION_H
#define POSTROOM_LMTPD_SESSION_H

#include "lmtpd.h"

/* lmtpd_session_spawn - serve fd on a session thread that waits for one
 * (an earlier session's), or on a new one; trusted: may use AUTH=,
 * XFORWARD, X-POSTROOM-SENT; peer for the log */
void lmtpd_session_spawn(struct lmtpd_server *srv, int fd, int trusted, const char *peer);
/* lmtpd_session_reap - join the threads whose session has ended: they
 * are gone, their thread-local state (OpenSSL's, GLib's) freed */
void lmtpd_session_reap(struct lmtpd_server *srv);
/* lmtpd_session_stop - at exit, with srv->stopping set and the listeners
 * closed: end the threads waiting for a session (and, when no session is
 * open, wait for them); join every thread that has ended */
void lmtpd_session_stop(struct lmtpd_server *srv);

#endif
