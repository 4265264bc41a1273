/* proto.h - the Dovecot auth-client protocol, version 1.2, without I/O:
 * field splitting and escaping, request parsing, base64, and the PLAIN and
 * LOGIN mechanisms as pure steps. */
#ifndef POSTROOM_AUTHD_PROTO_H
#define POSTROOM_AUTHD_PROTO_H

#include <stddef.h>

#include "buf.h"

#define AUTHD_LINE_MAX 16384 /* as Dovecot's AUTH_CLIENT_MAX_LINE_LENGTH */
#define AUTHD_FIELDS_MAX 64
#define AUTHD_PROTO_MAJOR 1
#define AUTHD_PROTO_MINOR 2

enum authd_mech { AUTHD_MECH_NONE = 0, AUTHD_MECH_PLAIN, AUTHD_MECH_LOGIN };

/* One parsed AUTH line. The strings point into the line given to
 * authd_proto_parse_auth and live as long as it. */
struct authd_auth_req {
	unsigned int id;
	const char *mech_name;
	enum authd_mech mech;
	const char *service;   /* "" when absent */
	const char *rip, *lip; /* "" when absent */
	const char *resp;      /* NULL: no resp= or "resp=" empty (Exim) */
	int secured;
};

/* authd_proto_split - split line in place at TABs into at most max fields,
 * undoing Dovecot's \001 escapes in each. Returns the number of fields. */
size_t authd_proto_split(char *line, char **fields, size_t max);

/* authd_proto_parse_id - a request id: decimal, 1..UINT_MAX. 0 ok, -1 not */
int authd_proto_parse_id(const char *s, unsigned int *id_r);

/* authd_proto_mech - the mechanism named (case-insensitive) or NONE */
enum authd_mech authd_proto_mech(const char *name);

/* authd_proto_parse_auth - fields of "AUTH <id> <mech> [params...]"
 * (fields[0] is "AUTH"). 0 ok; -1 with *error_r (static) when the request
 * is broken; then *r->id is set when the id itself was valid (else 0). */
int authd_proto_parse_auth(char **fields, size_t n, struct authd_auth_req *r, const char **error_r);

/* authd_proto_escape - append s with TAB, LF, CR, NUL and \001 escaped */
void authd_proto_escape(struct buf *out, const char *s);

/* authd_b64_decode - strict RFC 4648 base64 (padding required) of in to
 * out (appended). 0 ok, -1 invalid: then out is as it was (the bytes
 * decoded before the error are wiped; an out that was empty is freed,
 * so a caller may return without buf_free). */
int authd_b64_decode(const char *in, struct buf *out);
void authd_b64_encode(const void *in, size_t len, struct buf *out);

/* authd_sasl_plain - split a PLAIN response "authzid NUL authcid NUL
 * password" (exactly two NULs, non-empty authcid and password). On
 * success *authzid_r, *authcid_r, *pass_r point into data (which must be
 * NUL-terminated after len, as struct buf is). 0 ok, -1 with *error_r. */
int authd_sasl_plain(char *data, size_t len, const char **authzid_r, const char **authcid_r,
		     const char **pass_r, const char **error_r);

/* authd_sasl_text_ok - a LOGIN username or password: no NUL, not empty */
int authd_sasl_text_ok(const char *data, size_t len);

#define AUTHD_LOGIN_PROMPT_USER "VXNlcm5hbWU6" /* "Username:" */
#define AUTHD_LOGIN_PROMPT_PASS "UGFzc3dvcmQ6" /* "Password:" */

#endif
