/* request.h - Postfix policy delegation requests: framing and parsing.
 * Pure functions, no I/O (unit-tested in tests/unit/test-policyd-request). */
#ifndef POSTROOM_POLICYD_REQUEST_H
#define POSTROOM_POLICYD_REQUEST_H

#include <stddef.h>

/* The attributes postroom uses; every other attribute is ignored. A
 * missing attribute is NULL; values point into the request's storage. */
struct policy_request {
	char *storage;
	const char *request;        /* "smtpd_access_policy" */
	const char *protocol_state; /* CONNECT HELO MAIL RCPT DATA END-OF-MESSAGE ... */
	const char *protocol_name;  /* SMTP ESMTP */
	const char *client_address;
	const char *client_name;
	const char *helo_name;
	const char *sender; /* without brackets, "" = null sender */
	const char *recipient;
	const char *sasl_username; /* "" when not authenticated */
	const char *size;
	const char *queue_id;
	const char *instance;
	const char *server_address;
	const char *server_port;
	const char *policy_context;
	const char *smtputf8; /* Exim/our ACL: "yes" when SMTPUTF8 */
	int nattrs;           /* all attributes, known or not */
};

enum policy_frame {
	POLICY_FRAME_NEED_MORE = 0, /* no complete request yet */
	POLICY_FRAME_LINE_TOO_LONG = -1,
	POLICY_FRAME_TOO_LONG = -2, /* no terminator within request_max */
	POLICY_FRAME_BINARY = -3    /* NUL or a control character */
};

/* policy_frame - look for one complete request (lines ended by an empty
 * line) at the start of data[0..len). Returns its length including the
 * terminating empty line (> 0), POLICY_FRAME_NEED_MORE, or a negative
 * enum policy_frame for input that can never become a valid request. */
long policy_frame(const char *data, size_t len, size_t line_max, size_t request_max);

/* policy_request_parse - parse a framed request of len bytes (as found
 * by policy_frame). 0 ok (free with policy_request_free), -1 with a
 * static *error_r: a line without '=', an empty name, no request=. */
int policy_request_parse(const char *data, size_t len, struct policy_request *req,
			 const char **error_r);
void policy_request_free(struct policy_request *req);

/* policy_frame_error - text for a negative policy_frame result */
const char *policy_frame_error(long rc);

#endif
