/* fuzz-authd - libFuzzer target for postroom-authd's side of the Dovecot
 * auth-client protocol (authd/proto.c): the input is what a client sends
 * on one connection. It is framed into lines as authd/server.c frames
 * them (LF, an optional CR, AUTHD_LINE_MAX; the head of a longer line is
 * split for its id), each line split into fields with the \001 escapes
 * undone, and played through a model of the server's commands: the
 * VERSION gate, AUTH (parameters, mechanism, initial response), CONT,
 * CANCEL, with the base64 decoding and the PLAIN and LOGIN steps on
 * every response. No database, no bcrypt: the credentials stop here.
 * Invariants checked: no crash or sanitizer report; a split gives
 * 1..max fields; an accepted AUTH has an id and a mechanism; decoded
 * base64 encodes to a string that decodes to the same bytes, of the
 * length base64 has; a PLAIN split points inside the data at two
 * non-empty strings; escaping a field and splitting it again gives the
 * field back as one field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"

#define FUZZ_REQS_MAX 128 /* as AUTHD_REQUESTS_MAX */

struct fuzz_req {
	unsigned int id;
	enum authd_mech mech;
	int step;
};

struct fuzz_conn {
	int version_ok;
	struct fuzz_req reqs[FUZZ_REQS_MAX];
	size_t nreqs;
};

/* fuzz_req_find - the open request with this id, or NULL */
static struct fuzz_req *fuzz_req_find(struct fuzz_conn *c, unsigned int id)
{
	for (size_t i = 0; i < c->nreqs; i++)
		if (c->reqs[i].id == id)
			return &c->reqs[i];
	return NULL;
}

static void fuzz_req_drop(struct fuzz_conn *c, struct fuzz_req *r) { *r = c->reqs[--c->nreqs]; }

/* fuzz_b64_check - decoded bytes round-trip through the encoder */
static void fuzz_b64_check(const struct buf *data)
{
	struct buf enc = BUF_INIT, again = BUF_INIT;

	authd_b64_encode(data->data, data->len, &enc);
	if (enc.len != (data->len + 2) / 3 * 4)
		abort();
	if (authd_b64_decode(buf_cstr(&enc), &again) < 0)
		abort();
	if (again.len != data->len || (data->len && memcmp(again.data, data->data, data->len) != 0))
		abort();
	buf_free(&enc);
	buf_free(&again);
}

/* fuzz_step - one decoded response to the request's mechanism; 1 when
 * the request is finished (credentials complete or refused) */
static int fuzz_step(struct fuzz_req *r, struct buf *data)
{
	const char *authzid, *authcid, *pass, *err;

	if (r->mech == AUTHD_MECH_PLAIN) {
		if (authd_sasl_plain(data->data, data->len, &authzid, &authcid, &pass, &err) < 0)
			return 1;
		if (authzid != data->data || authcid <= authzid || pass <= authcid ||
		    pass >= data->data + data->len || *authcid == '\0' || *pass == '\0')
			abort();
		if (strlen(authzid) + strlen(authcid) + strlen(pass) + 2 != data->len)
			abort();
		return 1;
	}
	if (!authd_sasl_text_ok(data->data, data->len))
		return 1;
	if (strlen(data->data) != data->len)
		abort();
	return r->step++ == 2;
}

static void fuzz_auth(struct fuzz_conn *c, char **f, size_t n)
{
	struct authd_auth_req a;
	struct buf data = BUF_INIT;
	struct fuzz_req *r;
	const char *err;

	if (authd_proto_parse_auth(f, n, &a, &err) < 0)
		return;
	if (a.id == 0 || a.mech_name == NULL || *a.mech_name == '\0' || a.service == NULL ||
	    a.rip == NULL || a.lip == NULL || (a.resp && *a.resp == '\0'))
		abort();
	if ((r = fuzz_req_find(c, a.id)) != NULL)
		fuzz_req_drop(c, r);
	if (a.mech == AUTHD_MECH_NONE || c->nreqs >= FUZZ_REQS_MAX)
		return;
	if (a.resp && authd_b64_decode(a.resp, &data) < 0)
		return;
	r = &c->reqs[c->nreqs++];
	r->id = a.id;
	r->mech = a.mech;
	r->step = 1;
	if (a.resp && !(a.mech == AUTHD_MECH_LOGIN && data.len == 0)) {
		fuzz_b64_check(&data);
		if (fuzz_step(r, &data))
			fuzz_req_drop(c, r);
	}
	buf_free(&data);
}

static void fuzz_cont(struct fuzz_conn *c, char **f, size_t n)
{
	struct buf data = BUF_INIT;
	struct fuzz_req *r;
	unsigned int id;

	if (n < 2 || authd_proto_parse_id(f[1], &id) < 0 || (r = fuzz_req_find(c, id)) == NULL)
		return;
	if (authd_b64_decode(n >= 3 ? f[2] : "", &data) < 0) {
		fuzz_req_drop(c, r);
		return;
	}
	fuzz_b64_check(&data);
	if (fuzz_step(r, &data))
		fuzz_req_drop(c, r);
	buf_free(&data);
}

/* fuzz_escape_check - escape, split again: the same single field */
static void fuzz_escape_check(const char *field)
{
	struct buf esc = BUF_INIT;
	char *f[2];

	authd_proto_escape(&esc, field);
	if (esc.data == NULL) {
		if (*field != '\0')
			abort();
		return;
	}
	if (memchr(esc.data, '\t', esc.len) || memchr(esc.data, '\n', esc.len))
		abort();
	if (authd_proto_split(esc.data, f, 2) != 1 || strcmp(f[0], field) != 0)
		abort();
	buf_free(&esc);
}

/* fuzz_line - one line, as authd_conn_line handles it */
static void fuzz_line(struct fuzz_conn *c, char *line)
{
	char *f[AUTHD_FIELDS_MAX], *copy = strdup(line);
	size_t n = authd_proto_split(line, f, AUTHD_FIELDS_MAX);
	unsigned int id;
	struct fuzz_req *r;

	if (n < 1 || n > AUTHD_FIELDS_MAX)
		abort();
	if (n < AUTHD_FIELDS_MAX && strchr(copy, '\t') == NULL && n != 1)
		abort();
	free(copy);
	for (size_t i = 0; i < n && i < 4; i++)
		fuzz_escape_check(f[i]);
	if (!c->version_ok) {
		c->version_ok = strcmp(f[0], "VERSION") == 0 && n >= 2 && strcmp(f[1], "1") == 0;
		return;
	}
	if (strcmp(f[0], "AUTH") == 0)
		fuzz_auth(c, f, n);
	else if (strcmp(f[0], "CONT") == 0)
		fuzz_cont(c, f, n);
	else if (strcmp(f[0], "CANCEL") == 0 && n >= 2 && authd_proto_parse_id(f[1], &id) == 0 &&
		 (r = fuzz_req_find(c, id)) != NULL)
		fuzz_req_drop(c, r);
}

/* fuzz_long_line - the head of a refused line, as authd_refuse_line
 * splits it for the id */
static void fuzz_long_line(const char *line)
{
	char head[32], *tab, *f[3];
	size_t len = strnlen(line, sizeof(head) - 1), n;
	unsigned int id;

	memcpy(head, line, len);
	head[len] = '\0';
	if ((tab = strchr(head, '\t')) != NULL && (tab = strchr(tab + 1, '\t')) != NULL)
		*tab = '\0';
	n = authd_proto_split(head, f, 2);
	if (n == 2)
		(void)authd_proto_parse_id(f[1], &id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_conn c;
	char *in = malloc(size + 1), *p, *end, *lf;

	memset(&c, 0, sizeof(c));
	memcpy(in, data, size);
	in[size] = '\0';
	end = in + size;
	/* the server keeps at most AUTHD_LINE_MAX bytes without a LF */
	for (p = in; p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL; p = lf + 1) {
		size_t len = (size_t)(lf - p);

		*lf = '\0';
		if (len > AUTHD_LINE_MAX) {
			fuzz_long_line(p);
			continue;
		}
		if (len > 0 && p[len - 1] == '\r')
			p[len - 1] = '\0';
		fuzz_line(&c, p);
	}
	if (end - p > AUTHD_LINE_MAX)
		fuzz_long_line(p);
	free(in);
	return 0;
}
