/*
 * NAME
 *	front_client - postroom-deliver's LMTP client mode (deliver.lmtpd_socket)
 * DESCRIPTION
 *	Speaks LMTP (RFC 2033) to postroom-lmtpd on its unix socket: LHLO,
 *	then pipelined (RFC 2920, one write, the replies read in order)
 *	XFORWARD ADDR= IDENT= (only what the server announced), MAIL FROM
 *	with AUTH=<xtext user> (RFC 4954 section 5; AUTH=<> when none) and
 *	BODY=8BITMIME/SMTPUTF8 when announced, one RCPT per recipient (with
 *	X-POSTROOM-SENT for --sent) and DATA (one command a write when
 *	the server announces no PIPELINING); a refusal before DATA's 354
 *	ends the call by closing the connection, so nothing is stored and
 *	the call defers or bounces as it would without pipelining. Then the
 *	message, read once from stdin (after the 354 with DATA):
 *	with BDAT (CHUNKING) the bytes exactly as the MTA passed them, else
 *	DATA with CRLF line endings and dot-stuffing. lmtpd applies the
 *	same per-delivery prefix rules (lib/store_spool) as direct mode.
 *	The per-recipient replies become one pipe(8) exit status: any 4xx
 *	defers the call; at least one 2xx and only permanent refusals
 *	otherwise is success (direct mode likewise stores a
 *	multi-recipient call once and bounces nobody); all refused: 67
 *	5.1.1, 69 5.3.4, 69 for other permanent refusals. QUIT is sent,
 *	its reply not waited for.
 *	Parameters: deliver.lmtpd_socket, deliver.timeout.
 * NEVER
 *	bounces mail because lmtpd is unreachable, slow or speaks an
 *	unexpected protocol (75 4.3.0, logged loudly); reads the message
 *	twice; touches PostgreSQL.
 */
#include "front_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

#define CLIENT_CHUNK (1024 * 1024) /* BDAT chunk, DATA read size */

/* What the server announced in its LHLO reply. */
struct client_caps {
	int pipelining, chunking, eightbit, smtputf8, dsn;
	int xf_addr, xf_ident;
};

/* client_ms - milliseconds since the start */
static long client_ms(const struct client_session *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - s->start.tv_sec) * 1000 +
		      (now.tv_nsec - s->start.tv_nsec) / 1000000);
}

/* client_email_id - the email id in lmtpd's "... stored as ID" reply */
static void client_email_id(const char *detail, char *id, size_t size)
{
	const char *p = detail ? strstr(detail, "stored as ") : NULL;
	size_t n;

	if (p == NULL) {
		snprintf(id, size, "-");
		return;
	}
	p += 10;
	n = strspn(p, "0123456789abcdef-");
	snprintf(id, size, "%.*s", (int)(n ? n : 1), n ? p : "-");
}

/* client_log - the one line per delivery */
static void client_log(const struct client_session *s, const char *result, const char *detail)
{
	const struct deliver_args *a = s->a;
	char rcpts[1024], id[40];
	size_t i, n = 0;

	rcpts[0] = '\0';
	for (i = 0; i < a->nrcpts && n + 2 < sizeof(rcpts); i++)
		n += (size_t)snprintf(rcpts + n, sizeof(rcpts) - n, "%s%s", i ? "," : "",
				      a->rcpts[i]);
	client_email_id(detail, id, sizeof(id));
	log_info(
		"email=%s from=<%.200s> client=%.64s rcpts=%.1000s%s via=lmtpd ms=%ld result=%s%s%.500s",
		id, a->sender ? a->sender : "", a->client ? a->client : "-", rcpts,
		a->sent ? " (sent copy)" : "", client_ms(s), result, detail ? ": " : "",
		detail ? detail : "");
}

/* client_fail - lmtpd unreachable, silent or incomprehensible: defer */
static void __attribute__((noreturn))
client_fail(struct client_session *s, const char *what, const char *err)
{
	log_error("MAIL DEFERRED: postroom-lmtpd at %s: %s: %s", s->socket, what, err);
	client_log(s, "deferred", err);
	deliver_exit(EX_TEMPFAIL, "4.3.0 mail store unavailable, try again later");
}

void client_connect(struct client_session *s)
{
	const char *err;

	if (lmtp_connect(&s->conn, s->socket, s->timeout, &err) < 0)
		client_fail(s, "cannot connect", err);
}

/* client_has_code - text starts with an enhanced status code "c.x.y " */
static size_t client_code_len(const char *t)
{
	size_t n = 0;
	int dots = 0;

	if (t[0] < '2' || t[0] > '5' || t[1] != '.')
		return 0;
	for (n = 1; t[n] && t[n] != ' '; n++) {
		if (t[n] == '.')
			dots++;
		else if (t[n] < '0' || t[n] > '9')
			return 0;
	}
	return dots == 2 ? n : 0;
}

enum client_verdict client_classify(int code, const char *text)
{
	size_t n = client_code_len(text);

	if (code >= 200 && code < 300)
		return CLIENT_OK;
	if (code >= 400 && code < 500)
		return CLIENT_TEMP;
	if (code < 500 || code > 599 || (code >= 500 && code <= 504) || code == 555 ||
	    (n && strncmp(text, "5.5.", 4) == 0))
		return CLIENT_PROTOCOL; /* our command was refused: never bounce for that */
	if (n == 5 && strncmp(text, "5.1.1", 5) == 0)
		return CLIENT_NOUSER;
	if (n == 5 && strncmp(text, "5.3.4", 5) == 0)
		return CLIENT_TOO_BIG;
	return CLIENT_PERM;
}

/* client_cmd - send one command line, read its reply */
static void client_cmd(struct client_session *s, struct lmtp_reply *r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_cmd(struct client_session *s, struct lmtp_reply *r, const char *fmt, ...)
{
	char line[2048];
	const char *err;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		client_fail(s, "command", "command line too long");
	memcpy(line + n, "\r\n", 3);
	if (lmtp_write(&s->conn, line, (size_t)n + 2, &err) < 0 ||
	    lmtp_read_reply(&s->conn, r, &err) < 0) {
		line[strcspn(line, " :\r")] = '\0'; /* the verb, for the log */
		client_fail(s, line, err);
	}
}

/* client_finish - map a reply to the exit status and leave; unless the
 * reply is about the recipients (per_rcpt), only 4xx is a verdict and
 * anything else a refused session command, which never bounces */
static void __attribute__((noreturn))
client_finish(struct client_session *s, const struct lmtp_reply *r, const char *stage, int per_rcpt)
{
	enum client_verdict v = client_classify(r->code, r->last);
	const char *t = r->last;
	int st = EX_UNAVAILABLE;

	if (!per_rcpt && v != CLIENT_TEMP)
		v = CLIENT_PROTOCOL;

	lmtp_write(&s->conn, "QUIT\r\n", 6, &(const char *){ NULL });
	lmtp_close(&s->conn);
	switch (v) {
	case CLIENT_OK:
		client_log(s, "delivered", t);
		exit(0); /* like direct mode: nothing on stdout */
	case CLIENT_PROTOCOL:
		log_error("MAIL DEFERRED: postroom-lmtpd at %s refused %s: %d %s", s->socket, stage,
			  r->code, t);
		client_log(s, "deferred", t);
		deliver_exit(EX_TEMPFAIL, "4.3.0 mail store unavailable, try again later");
	case CLIENT_TEMP:
		client_log(s, "deferred", t);
		if (client_code_len(t))
			deliver_exit(EX_TEMPFAIL, "%s", t);
		deliver_exit(EX_TEMPFAIL, "4.3.0 %s", t);
	case CLIENT_NOUSER: st = EX_NOUSER; break;
	case CLIENT_TOO_BIG:
	case CLIENT_PERM: break;
	}
	client_log(s, "bounced", t);
	if (client_code_len(t))
		deliver_exit(st, "%s", t);
	deliver_exit(st, "5.3.0 %s", t);
}

/* client_lhlo - greeting and LHLO; fills *caps */
static void client_lhlo(struct client_session *s, struct client_caps *caps)
{
	struct lmtp_reply r;
	char host[256], *line, *save = NULL;
	const char *err;

	if (lmtp_read_reply(&s->conn, &r, &err) < 0)
		client_fail(s, "greeting", err);
	if (r.code != 220)
		client_finish(s, &r, "greeting", 0);
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	client_cmd(s, &r, "LHLO %s", host);
	if (r.code != 250)
		client_finish(s, &r, "LHLO", 0);
	memset(caps, 0, sizeof(*caps));
	for (line = strtok_r(r.text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcasecmp(line, "PIPELINING") == 0)
			caps->pipelining = 1;
		else if (strcasecmp(line, "CHUNKING") == 0)
			caps->chunking = 1;
		else if (strcasecmp(line, "8BITMIME") == 0)
			caps->eightbit = 1;
		else if (strcasecmp(line, "SMTPUTF8") == 0)
			caps->smtputf8 = 1;
		else if (strcasecmp(line, "DSN") == 0)
			caps->dsn = 1;
		else if (strncasecmp(line, "XFORWARD ", 9) == 0) {
			caps->xf_addr = strcasestr(line, " ADDR") != NULL;
			caps->xf_ident = strcasestr(line, " IDENT") != NULL;
		}
	}
}

/* client_is_utf8 - an envelope address needs SMTPUTF8 */
static int client_is_utf8(const struct deliver_args *a)
{
	const char *p;
	size_t i;

	for (p = a->sender; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return 1;
	for (i = 0; i < a->nrcpts; i++)
		for (p = a->rcpts[i]; *p; p++)
			if ((unsigned char)*p >= 0x80)
				return 1;
	return 0;
}

/* What one pipelined command is; its reply is read in this order. */
enum client_step { STEP_XFORWARD, STEP_MAIL, STEP_RCPT, STEP_DATA };

#define CLIENT_PIPE_MAX 64      /* commands written before their replies are read */
#define CLIENT_PIPE_BYTES 16384 /* ... or this many bytes of them */

/* The envelope, pipelined (RFC 2920): XFORWARD, MAIL, every RCPT and
 * DATA go in one write, then the replies are read in order. A window
 * keeps a long recipient list from filling both socket buffers. */
struct client_pipe {
	char *buf;
	size_t len, size;
	enum client_step step[CLIENT_PIPE_MAX];
	size_t rcpt[CLIENT_PIPE_MAX];
	size_t n;
	int pipelining;             /* the server announced PIPELINING */
	size_t accepted;            /* RCPTs answered 2xx */
	struct lmtp_reply *refused; /* the first permanent RCPT refusal */
};

static const char *const client_step_name[] = { "XFORWARD", "MAIL FROM", "RCPT TO", "DATA" };

/* client_reply - what a pipelined command's reply means; an early end
 * exits (the server may already be in DATA: closing the connection
 * without the final dot stores nothing) */
static void client_reply(struct client_session *s, struct client_pipe *p, enum client_step step,
			 size_t i, struct lmtp_reply *r)
{
	enum client_verdict v;

	switch (step) {
	case STEP_XFORWARD:
	case STEP_MAIL:
		if (r->code != 250)
			client_finish(s, r, client_step_name[step], 0);
		return;
	case STEP_RCPT:
		v = client_classify(r->code, r->last);
		if (v == CLIENT_OK) {
			p->accepted++;
			return;
		}
		if (v == CLIENT_TEMP || v == CLIENT_PROTOCOL)
			client_finish(s, r, "RCPT TO", 0);
		log_warn("recipient <%s> refused by postroom-lmtpd: %d %s", s->a->rcpts[i], r->code,
			 r->last);
		if (p->refused->code == 0) {
			*p->refused = *r;
			p->refused->last = p->refused->text + (r->last - r->text);
		}
		return;
	case STEP_DATA:
		if (p->accepted == 0) /* lmtpd says 554 no valid recipients */
			client_finish(s, p->refused, "every recipient", 1);
		if (r->code != 354)
			client_finish(s, r, "DATA", 0);
		return;
	}
}

/* client_flush - write the queued commands, read their replies */
static void client_flush(struct client_session *s, struct client_pipe *p)
{
	struct lmtp_reply r;
	const char *err;
	size_t i;

	if (p->n == 0)
		return;
	if (lmtp_write(&s->conn, p->buf, p->len, &err) < 0)
		client_fail(s, client_step_name[p->step[0]], err);
	for (i = 0; i < p->n; i++) {
		if (lmtp_read_reply(&s->conn, &r, &err) < 0)
			client_fail(s, client_step_name[p->step[i]], err);
		client_reply(s, p, p->step[i], p->rcpt[i], &r);
	}
	p->len = p->n = 0;
}

/* client_queue - one command line for the next write */
static void client_queue(struct client_session *s, struct client_pipe *p, enum client_step step,
			 size_t rcpt, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void client_queue(struct client_session *s, struct client_pipe *p, enum client_step step,
			 size_t rcpt, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		client_fail(s, client_step_name[step], "command line too long");
	if (p->len + (size_t)n + 2 > p->size) {
		p->size = p->len + (size_t)n + 2 + CLIENT_PIPE_BYTES;
		p->buf = xrealloc(p->buf, p->size);
	}
	memcpy(p->buf + p->len, line, (size_t)n);
	memcpy(p->buf + p->len + n, "\r\n", 2);
	p->len += (size_t)n + 2;
	p->step[p->n] = step;
	p->rcpt[p->n++] = rcpt;
	if (!p->pipelining || p->n == CLIENT_PIPE_MAX || p->len >= CLIENT_PIPE_BYTES)
		client_flush(s, p);
}

/* client_envelope - XFORWARD, MAIL FROM, one RCPT per recipient and
 * (without CHUNKING) DATA, pipelined; returns how many recipients were
 * accepted (at least one: none ends the call). A 4xx or a protocol
 * refusal ends the call; permanent RCPT refusals are kept in *refused
 * (the first one) */
static size_t client_envelope(struct client_session *s, const struct client_caps *caps,
			      struct lmtp_reply *refused)
{
	const struct deliver_args *a = s->a;
	const char *orig = deliver_env("ORIGINAL_RECIPIENT");
	struct client_pipe p;
	char x1[600], x2[600], xf[1300], orcpt[700] = "";
	size_t i;

	memset(&p, 0, sizeof(p));
	p.refused = refused;
	p.pipelining = caps->pipelining;
	refused->code = 0;
	xf[0] = '\0';
	if (caps->xf_addr && a->client)
		snprintf(xf, sizeof(xf), " ADDR=%s", lmtp_xtext(a->client, x1, sizeof(x1)));
	if (caps->xf_ident && a->queue_id)
		snprintf(xf + strlen(xf), sizeof(xf) - strlen(xf), " IDENT=%s",
			 lmtp_xtext(a->queue_id, x2, sizeof(x2)));
	if (xf[0])
		client_queue(s, &p, STEP_XFORWARD, 0, "XFORWARD%s", xf);
	if (a->sasl_user)
		lmtp_xtext(a->sasl_user, x1, sizeof(x1));
	client_queue(s, &p, STEP_MAIL, 0, "MAIL FROM:<%s> AUTH=%s%s%s", a->sender,
		     a->sasl_user ? x1 : "<>", caps->eightbit ? " BODY=8BITMIME" : "",
		     caps->smtputf8 && client_is_utf8(a) ? " SMTPUTF8" : "");
	if (caps->dsn && orig) { /* local(8)'s X-Original-To: a delivery line too */
		memcpy(orcpt, " ORCPT=rfc822;", 15);
		lmtp_xtext(orig, orcpt + 14, sizeof(orcpt) - 14);
	}
	for (i = 0; i < a->nrcpts; i++)
		client_queue(s, &p, STEP_RCPT, i, "RCPT TO:<%s>%s%s", a->rcpts[i], orcpt,
			     a->sent ? " X-POSTROOM-SENT" : "");
	if (!caps->chunking)
		client_queue(s, &p, STEP_DATA, 0, "DATA");
	client_flush(s, &p);
	free(p.buf);
	if (p.accepted == 0) /* BDAT: no DATA reply said so */
		client_finish(s, refused, "every recipient", 1);
	return p.accepted;
}

/* client_read_in - fill buf from stdin up to size; *eof at end of input */
static ssize_t client_read_in(char *buf, size_t size, int *eof)
{
	size_t n = 0;
	ssize_t k;

	*eof = 0;
	while (n < size) {
		k = read(STDIN_FILENO, buf + n, size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			*eof = 1;
			break;
		}
		n += (size_t)k;
	}
	return (ssize_t)n;
}

/* client_drain - read the rest of stdin, so the MTA sees no broken pipe */
static void client_drain(char *buf, size_t size)
{
	int eof = 0;

	while (!eof && client_read_in(buf, size, &eof) > 0)
		;
}

/* client_in_error - stdin failed: drop the connection mid-transfer, so
 * lmtpd stores nothing, and defer */
static void __attribute__((noreturn)) client_in_error(struct client_session *s)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "cannot read the message: %s", strerror(errno));
	lmtp_close(&s->conn);
	client_log(s, "deferred", msg);
	deliver_exit(EX_TEMPFAIL, "4.3.0 %s", msg);
}

/* client_bdat - the message as it is, in BDAT chunks */
static void client_bdat(struct client_session *s, char *buf)
{
	struct lmtp_reply r;
	const char *err;
	char cmd[64];
	ssize_t n;
	int eof = 0, len;

	while (!eof) {
		if ((n = client_read_in(buf, CLIENT_CHUNK, &eof)) < 0)
			client_in_error(s);
		len = snprintf(cmd, sizeof(cmd), "BDAT %zd%s\r\n", n, eof ? " LAST" : "");
		if (lmtp_write(&s->conn, cmd, (size_t)len, &err) < 0 ||
		    lmtp_write(&s->conn, buf, (size_t)n, &err) < 0)
			client_fail(s, "BDAT", err);
		if (eof)
			return;
		if (lmtp_read_reply(&s->conn, &r, &err) < 0)
			client_fail(s, "BDAT", err);
		if (r.code != 250) {
			client_drain(buf, CLIENT_CHUNK);
			client_finish(s, &r, "the message chunk", 1);
		}
	}
}

/* client_stuff - in[0..n) with bare LF as CRLF and leading dots doubled
 * into out (room for 2n + 1); bol and cr carry the state between chunks */
static size_t client_stuff(const char *in, size_t n, char *out, int *bol, int *cr)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (*bol && in[i] == '.')
			out[o++] = '.';
		if (in[i] == '\n' && !*cr)
			out[o++] = '\r';
		out[o++] = in[i];
		*cr = in[i] == '\r';
		*bol = in[i] == '\n';
	}
	return o;
}

/* client_data - the message after DATA's 354: CRLF, dot-stuffed, ".\r\n" */
static void client_data(struct client_session *s, char *buf)
{
	const char *err;
	char *out = xmalloc(2 * CLIENT_CHUNK + 8);
	ssize_t n;
	size_t o;
	int eof = 0, bol = 1, cr = 0;

	while (!eof) {
		if ((n = client_read_in(buf, CLIENT_CHUNK, &eof)) < 0)
			client_in_error(s);
		o = client_stuff(buf, (size_t)n, out, &bol, &cr);
		if (eof && !bol) {
			memcpy(out + o, "\r\n", 2);
			o += 2;
		}
		if (eof) {
			memcpy(out + o, ".\r\n", 3);
			o += 3;
		}
		if (lmtp_write(&s->conn, out, o, &err) < 0)
			client_fail(s, "DATA", err);
	}
	free(out);
}

/* client_results - one reply per accepted recipient; exits */
static void __attribute__((noreturn))
client_results(struct client_session *s, size_t accepted, struct lmtp_reply *refused)
{
	struct lmtp_reply r, first_ok, first_bad;
	const char *err;
	size_t i;
	enum client_verdict v;

	first_ok.code = first_bad.code = 0;
	for (i = 0; i < accepted; i++) {
		if (lmtp_read_reply(&s->conn, &r, &err) < 0)
			client_fail(s, "the end of data", err);
		v = client_classify(r.code, r.last);
		if (v == CLIENT_TEMP || v == CLIENT_PROTOCOL) {
			first_bad = r;
			first_bad.last = first_bad.text + (r.last - r.text);
			break;
		}
		if (v == CLIENT_OK && first_ok.code == 0) {
			first_ok = r;
			first_ok.last = first_ok.text + (r.last - r.text);
		} else if (v != CLIENT_OK && first_bad.code == 0) {
			first_bad = r;
			first_bad.last = first_bad.text + (r.last - r.text);
		}
	}
	if (first_bad.code &&
	    (first_ok.code == 0 || client_classify(first_bad.code, first_bad.last) == CLIENT_TEMP ||
	     client_classify(first_bad.code, first_bad.last) == CLIENT_PROTOCOL))
		client_finish(s, &first_bad, "the message", 1);
	if (first_bad.code)
		log_warn("stored, but refused for a recipient after the data: %d %s",
			 first_bad.code, first_bad.last);
	if (refused->code)
		log_warn("stored for the accepted recipients; refused: %d %s", refused->code,
			 refused->last);
	client_finish(s, &first_ok, "the message", 1);
}

void client_run(struct client_session *s)
{
	struct client_caps caps;
	struct lmtp_reply refused;
	size_t accepted;
	char *buf;

	lmtp_set_deadline(&s->conn, s->timeout);
	client_lhlo(s, &caps);
	accepted = client_envelope(s, &caps, &refused);
	buf = xmalloc(CLIENT_CHUNK);
	if (caps.chunking)
		client_bdat(s, buf);
	else
		client_data(s, buf);
	free(buf);
	client_results(s, accepted, &refused);
}
