/*
 * NAME
 *	request - framing and parsing of policy delegation requests
 * DESCRIPTION
 *	A request is "name=value" lines ended by LF and closed by an empty
 *	line (Postfix's policy protocol; Exim's readsocket sends the same).
 *	A trailing CR is tolerated. Framing is separate from parsing so the
 *	server can tell "wait for more" from "this can never be valid"
 *	(line too long, request too long, binary data) and close at once.
 * NEVER
 *	reads past len; keeps pointers into the caller's buffer.
 */
#include "request.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

long policy_frame(const char *data, size_t len, size_t line_max, size_t request_max)
{
	size_t i, line_start = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)data[i];

		if (ch == '\n') {
			if (i == line_start || (i == line_start + 1 && data[line_start] == '\r'))
				return (long)(i + 1); /* the empty line */
			line_start = i + 1;
			continue;
		}
		if (ch == 0 || (ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
			return POLICY_FRAME_BINARY;
		if (i - line_start >= line_max)
			return POLICY_FRAME_LINE_TOO_LONG;
		if (i >= request_max)
			return POLICY_FRAME_TOO_LONG;
	}
	return POLICY_FRAME_NEED_MORE;
}

const char *policy_frame_error(long rc)
{
	switch (rc) {
	case POLICY_FRAME_LINE_TOO_LONG: return "line too long";
	case POLICY_FRAME_TOO_LONG: return "request too long (no empty line)";
	case POLICY_FRAME_BINARY: return "binary data in request";
	default: return "malformed request";
	}
}

/* policy_attr_slot - where a known attribute's value goes, or NULL */
static const char **policy_attr_slot(struct policy_request *r, const char *name)
{
	static const struct {
		const char *name;
		size_t offset;
	} attrs[] = {
#define A(n) { #n, offsetof(struct policy_request, n) }
		A(request),        A(protocol_state), A(protocol_name),  A(client_address),
		A(client_name),    A(helo_name),      A(sender),         A(recipient),
		A(sasl_username),  A(size),           A(queue_id),       A(instance),
		A(server_address), A(server_port),    A(policy_context), A(smtputf8),
#undef A
	};
	size_t i;

	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		if (strcmp(name, attrs[i].name) == 0)
			return (const char **)(void *)((char *)r + attrs[i].offset);
	return NULL;
}

int policy_request_parse(const char *data, size_t len, struct policy_request *req,
			 const char **error_r)
{
	char *line, *next, *end;

	memset(req, 0, sizeof(*req));
	req->storage = xstrndup(data, len);
	end = req->storage + len;
	for (line = req->storage; line < end; line = next) {
		char *nl = memchr(line, '\n', (size_t)(end - line)), *eq;
		const char **slot;

		if (nl == NULL)
			nl = end;
		next = nl + 1;
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (*line == '\0')
			break; /* the terminating empty line */
		eq = strchr(line, '=');
		if (eq == NULL || eq == line) {
			*error_r = eq == NULL ? "attribute without '='"
					      : "attribute with an empty name";
			policy_request_free(req);
			return -1;
		}
		*eq = '\0';
		req->nattrs++;
		if ((slot = policy_attr_slot(req, line)) != NULL)
			*slot = eq + 1;
	}
	if (req->request == NULL) {
		*error_r = "no request= attribute";
		policy_request_free(req);
		return -1;
	}
	return 0;
}

void policy_request_free(struct policy_request *req) { xfree(&req->storage); }
