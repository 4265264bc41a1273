/* front_client.h - postroom-deliver's client mode: hand the message to
 * postroom-lmtpd over LMTP instead of storing it.
 *
 * CONTRACT: client_run never returns: it exits with the status direct
 * mode would give (0 stored; 75 with the reply's 4.x.x code; 67 5.1.1;
 * 69 5.3.4 and other permanent refusals) and defers (75 4.3.0, logged
 * loudly) on anything that is not a clear answer from lmtpd. */
#ifndef POSTROOM_DELIVER_FRONT_CLIENT_H
#define POSTROOM_DELIVER_FRONT_CLIENT_H

#include "front_client_io.h"
#include "front.h"

struct client_session {
	struct lmtp_conn conn;
	const char *socket; /* deliver.lmtpd_socket, for the log */
	int timeout;        /* deliver.timeout, seconds */
	const struct deliver_args *a;
	struct timespec start;
};

/* client_connect - connect before the setgid group is dropped (the socket
 * may be reachable only with it); an unreachable lmtpd defers */
void client_connect(struct client_session *s);

/* client_run - the LMTP transaction for stdin; exits */
void client_run(struct client_session *s) __attribute__((noreturn));

/* What lmtpd's reply to one recipient means for pipe(8). */
enum client_verdict {
	CLIENT_OK,
	CLIENT_TEMP,
	CLIENT_NOUSER,
	CLIENT_TOO_BIG,
	CLIENT_PERM,
	CLIENT_PROTOCOL
};

/* client_classify - pure: the verdict of a reply code and its text */
enum client_verdict client_classify(int code, const char *text);

#endif
