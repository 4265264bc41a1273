/* test-policyd-request - framing and parsing of policy requests: complete,
 * partial, pipelined, CR tolerated, unknown attributes ignored, and the
 * inputs that close the connection (binary, long line, long request,
 * no '=', empty name, no request=). */
#include <stdlib.h>
#include "request.h"
#include "unit.h"

/* T - UNIT_OK evaluating cond once (the assertions here have side effects) */
#define T(cond, ...)                      \
	do {                              \
		int t_ = !!(cond);        \
		UNIT_OK(t_, __VA_ARGS__); \
	} while (0)

static const struct {
	const char *in;
	long want; /* policy_frame result */
	const char *desc;
} frames[] = {
	{ "request=smtpd_access_policy\n\n", 29, "one complete request" },
	{ "request=smtpd_access_policy\nprotocol_state=RCPT\n", 0, "no empty line yet: need more" },
	{ "request=smtpd_access_policy\n", 0, "one line: need more" },
	{ "", 0, "nothing: need more" },
	{ "a=b\n\nrequest=x\n\n", 5, "pipelined: only the first request" },
	{ "request=x\r\n\r\n", 13, "CRLF line ends tolerated" },
	{ "\n", 1, "a lone empty line is a (malformed) empty request" },
	{ "request=x\nbad\001value\n\n", POLICY_FRAME_BINARY, "control character" },
	{ "request=x\nnul=\0\n\n", POLICY_FRAME_BINARY, "NUL byte" },
	{ "request=x\ntab=a\tb\n\n", 19, "TAB allowed in a value" },
};

int main(void)
{
	struct policy_request rq;
	const char *err = NULL;
	char *big;
	size_t i;

	for (i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		size_t len = strlen(frames[i].in);

		if (strstr(frames[i].desc, "NUL"))
			len = 17;
		T(policy_frame(frames[i].in, len, 4096, 32768) == frames[i].want,
		  "frame: %s (got %ld)", frames[i].desc,
		  policy_frame(frames[i].in, len, 4096, 32768));
	}
	big = malloc(6000);
	memset(big, 'x', 5999);
	big[5999] = '\0';
	memcpy(big, "sender=", 7);
	T(policy_frame(big, 5999, 4096, 32768) == POLICY_FRAME_LINE_TOO_LONG,
	  "a line over line_max is refused before its end");
	for (i = 0; i < 5999; i += 100)
		big[i] = '\n';
	big[0] = 'a';
	T(policy_frame(big, 5999, 4096, 2048) == POLICY_FRAME_TOO_LONG,
	  "no empty line within request_max is refused");
	free(big);

	{
		const char *in =
			"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=a@b.example\n"
			"recipient=c@d.example\nsasl_username=\nfuture_attribute=whatever\n"
			"client_address=192.0.2.1\nserver_port=25\ninstance=123.abc\n\n";
		T(policy_request_parse(in, strlen(in), &rq, &err) == 0, "parse a full request");
		UNIT_STR_EQ(rq.protocol_state, "RCPT", "protocol_state");
		UNIT_STR_EQ(rq.sender, "a@b.example", "sender");
		UNIT_STR_EQ(rq.recipient, "c@d.example", "recipient");
		UNIT_STR_EQ(rq.sasl_username, "", "empty sasl_username is present and empty");
		UNIT_STR_EQ(rq.server_port, "25", "server_port");
		UNIT_STR_EQ(rq.policy_context, NULL, "absent attribute is NULL");
		T(rq.nattrs == 9, "all nine attributes counted, unknown ones too");
		policy_request_free(&rq);
	}
	{
		const char *in = "request=smtpd_access_policy\r\nsender=\r\nhelo_name=x=y\r\n\r\n";
		T(policy_request_parse(in, strlen(in), &rq, &err) == 0, "parse CRLF request");
		UNIT_STR_EQ(rq.sender, "", "null sender, CR stripped");
		UNIT_STR_EQ(rq.helo_name, "x=y", "value keeps later '='");
		policy_request_free(&rq);
	}
	T(policy_request_parse("request=a\nnoequals\n\n", 20, &rq, &err) < 0 &&
		  strstr(err, "'='") != NULL,
	  "line without '=' refused (%s)", err);
	T(policy_request_parse("request=a\n=v\n\n", 14, &rq, &err) < 0, "empty name refused");
	T(policy_request_parse("sender=a\n\n", 10, &rq, &err) < 0 &&
		  strstr(err, "request=") != NULL,
	  "missing request= refused");
	T(policy_request_parse("\n", 1, &rq, &err) < 0, "empty request refused");
	return unit_done();
}
