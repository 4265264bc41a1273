/* fuzz-policyd - libFuzzer target for postroom-policyd's request framing
 * and parsing (policyd/request.c). The first input byte picks the limits
 * (policyd.line_max, policyd.request_max, within their bounds) and the
 * form: as sent (Postfix: LF) or every LF made CRLF (Exim's readsocket
 * through our ACL); the rest is what a client sends on one connection,
 * drained as policyd/server.c drains it: frame, parse, the next request.
 * Invariants checked: no crash or sanitizer report; a framed request is
 * within the data and ends with LF, and every shorter prefix of it
 * needs more; a parsed request has request= and every value it found
 * lies in its own storage, without LF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static const size_t fuzz_line_max[] = { 256, 4096, 65536, 300 };
static const size_t fuzz_request_max[] = { 1024, 32768 };

/* fuzz_value_check - a value found lies inside the request's storage */
static void fuzz_value_check(const struct policy_request *rq, size_t len, const char *v)
{
	if (v == NULL)
		return;
	if (v < rq->storage || v > rq->storage + len)
		abort();
	if (strchr(v, '\n') != NULL)
		abort();
}

/* fuzz_request - parse one framed request */
static void fuzz_request(const char *data, size_t len)
{
	struct policy_request rq;
	const char *err = NULL;

	if (policy_request_parse(data, len, &rq, &err) < 0) {
		if (err == NULL || rq.storage != NULL)
			abort();
		return;
	}
	if (rq.request == NULL || rq.nattrs < 1)
		abort();
	fuzz_value_check(&rq, len, rq.request);
	fuzz_value_check(&rq, len, rq.protocol_state);
	fuzz_value_check(&rq, len, rq.protocol_name);
	fuzz_value_check(&rq, len, rq.client_address);
	fuzz_value_check(&rq, len, rq.client_name);
	fuzz_value_check(&rq, len, rq.helo_name);
	fuzz_value_check(&rq, len, rq.sender);
	fuzz_value_check(&rq, len, rq.recipient);
	fuzz_value_check(&rq, len, rq.sasl_username);
	fuzz_value_check(&rq, len, rq.size);
	fuzz_value_check(&rq, len, rq.queue_id);
	fuzz_value_check(&rq, len, rq.instance);
	fuzz_value_check(&rq, len, rq.server_address);
	fuzz_value_check(&rq, len, rq.server_port);
	fuzz_value_check(&rq, len, rq.policy_context);
	fuzz_value_check(&rq, len, rq.smtputf8);
	policy_request_free(&rq);
	if (rq.storage != NULL)
		abort();
}

/* fuzz_crlf - every LF preceded by CR (copy, caller frees) */
static char *fuzz_crlf(const uint8_t *data, size_t size, size_t *len_r)
{
	char *out = malloc(2 * size + 1);
	size_t i, o = 0;

	for (i = 0; i < size; i++) {
		if (data[i] == '\n')
			out[o++] = '\r';
		out[o++] = (char)data[i];
	}
	*len_r = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t line_max, request_max, len, off = 0;
	char *in;
	long n;

	if (size < 1)
		return 0;
	line_max = fuzz_line_max[data[0] & 3];
	request_max = fuzz_request_max[(data[0] >> 2) & 1];
	if (data[0] & 8) {
		in = fuzz_crlf(data + 1, size - 1, &len);
	} else {
		len = size - 1;
		in = malloc(len ? len : 1);
		memcpy(in, data + 1, len);
	}
	/* server_drain: every complete request, until one is malformed */
	while ((n = policy_frame(in + off, len - off, line_max, request_max)) > 0) {
		if ((size_t)n > len - off || in[off + (size_t)n - 1] != '\n')
			abort();
		/* a prefix of a request is never complete, nor broken */
		if (policy_frame(in + off, (size_t)n - 1, line_max, request_max) != 0)
			abort();
		fuzz_request(in + off, (size_t)n);
		off += (size_t)n;
	}
	if (n != POLICY_FRAME_NEED_MORE && policy_frame_error(n) == NULL)
		abort();
	free(in);
	return 0;
}
