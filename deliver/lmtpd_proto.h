/* lmtpd_proto.h - the pure parts of LMTP (RFC 2033): command lines,
 * ESMTP parameters, xtext, and the end-of-data / dot-unstuffing state
 * machine. No I/O, no allocation but where a contract says so. */
#ifndef POSTROOM_LMTPD_PROTO_H
#define POSTROOM_LMTPD_PROTO_H

#include <stddef.h>

#define LMTPD_LINE_MAX 4096 /* longest command line accepted */
#define LMTPD_PARAMS_MAX 16

enum lmtpd_verb {
	LMTPD_UNKNOWN,
	LMTPD_LHLO,
	LMTPD_HELO,
	LMTPD_MAIL,
	LMTPD_RCPT,
	LMTPD_DATA,
	LMTPD_BDAT,
	LMTPD_RSET,
	LMTPD_NOOP,
	LMTPD_QUIT,
	LMTPD_VRFY,
	LMTPD_XFORWARD
};

struct lmtpd_param {
	const char *name;  /* points into the parsed line (NUL-terminated there) */
	const char *value; /* NULL when the parameter has no "=" */
};

struct lmtpd_cmd {
	enum lmtpd_verb verb;
	const char *arg;  /* LHLO domain, VRFY/BDAT argument, XFORWARD attributes; "" when none */
	const char *path; /* MAIL/RCPT: the address between < and > ("" = null path) */
	struct lmtpd_param params[LMTPD_PARAMS_MAX];
	size_t nparams;
};

/* lmtpd_cmd_parse - parse one command line (line is modified: NULs are
 * written into it; no CR/LF at the end). 0 ok; -1 with a static
 * "5.5.x text" in *error_r for a syntax error (verb known). An unknown
 * verb is not an error: cmd->verb = LMTPD_UNKNOWN. */
int lmtpd_cmd_parse(char *line, struct lmtpd_cmd *cmd, const char **error_r);

/* lmtpd_param_get - the parameter called name (case-insensitive) or NULL */
const struct lmtpd_param *lmtpd_param_get(const struct lmtpd_cmd *cmd, const char *name);

/* lmtpd_xtext_decode - RFC 3461 xtext to text (caller frees *out_r).
 * 0 ok, -1 on a malformed "+XX" or a control character. */
int lmtpd_xtext_decode(const char *in, char **out_r);

/* lmtpd_xforward_value - XFORWARD value: "[UNAVAILABLE]" and
 * "[TEMPUNAVAIL]" mean none (NULL); otherwise xtext-decoded (caller frees) */
char *lmtpd_xforward_value(const char *in);

/* The end of DATA: "CRLF.CRLF" only (a dot after a bare LF is data);
 * a leading dot of a line is removed (RFC 5321 4.5.2). */
struct lmtpd_dot {
	int state; /* start with lmtpd_dot_init */
};
void lmtpd_dot_init(struct lmtpd_dot *d);

/* lmtpd_dot_feed - consume bytes of in[0..len): the unstuffed data goes
 * to out (room for len + 1 bytes), its length to *outlen. Returns how many
 * input bytes were consumed: all of them, or fewer when the end of data
 * was seen (*done = 1; the bytes after it are the next command). */
size_t lmtpd_dot_feed(struct lmtpd_dot *d, const char *in, size_t len, char *out, size_t *outlen,
		      int *done);

#endif
