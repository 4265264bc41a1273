/* test-delivery - the delivery core both storing programs call
 * (deliver/delivery.c): the limits and the parse of delivery_prepare,
 * the store request, the result word and when there is a notification.
 * Table-driven; no database (storing is the programs' part). */
#include <stdlib.h>
#include <string.h>

#include "../../deliver/delivery.h"
#include "log.h"
#include "unit.h"

#define ATT_MSG                                                                                \
	"Subject: a\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" \
	"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"                                        \
	"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment;"    \
	" filename=x.bin\r\n\r\n0123456789abcdef0123456789abcdef\r\n--b--\r\n"

/* prepare - delivery_prepare of msg under the limits; the step, and
 * the error text in *why (caller frees) */
static enum delivery_step prepare(const char *msg, long long size_max, long long att_max,
				  int too_big, char **why)
{
	static const char *rcpts[] = { "bob@example.com" };
	struct store_envelope env = { "alice@example.org", rcpts, 1, NULL };
	struct delivery_conf dc;
	struct delivery d;
	enum delivery_step st;
	char *err = NULL;

	memset(&dc, 0, sizeof(dc));
	dc.size_max = size_max;
	dc.attachment_max = att_max;
	delivery_init(&d, &dc, "test: ");
	if (store_spool_from_mem(msg, strlen(msg), &d.sp, &err) < 0) {
		free(err);
		return (enum delivery_step) - 1;
	}
	if (too_big)
		d.sp.size = size_max + 1; /* as the reader leaves it */
	st = delivery_prepare(&d, too_big, &env);
	*why = d.error ? strdup(d.error) : NULL;
	delivery_free(&d);
	return st;
}

static void test_prepare(void)
{
	static const struct {
		const char *msg;
		long long size_max, att_max;
		int too_big;
		enum delivery_step want;
		const char *why;
	} t[] = {
		{ "Subject: x\r\n\r\nbody\r\n", 1000, 1000, 0, DELIVERY_READY, NULL },
		/* 20 bytes: a limit of 20 lets it in, 19 does not */
		{ "Subject: x\r\n\r\nbody\r\n", 20, 1000, 0, DELIVERY_READY, NULL },
		{ "Subject: x\r\n\r\nbody\r\n", 19, 1000, 0, DELIVERY_TOO_BIG,
		  "message of 20 bytes exceeds the limit of 19 bytes" },
		/* bare LF counts as CRLF: 17 bytes, 20 in CRLF size */
		{ "Subject: x\n\nbody\n", 19, 1000, 0, DELIVERY_TOO_BIG,
		  "message of 20 bytes exceeds the limit of 19 bytes" },
		/* the reader stopped: too big whatever was spooled */
		{ "Subject: x\r\n\r\nbody\r\n", 5, 1000, 1, DELIVERY_TOO_BIG,
		  "message of 6 bytes exceeds the limit of 5 bytes" },
		/* a 32-byte attachment: over the limit, stored without it
		 * (test_attachment_over_limit), never refused after acceptance */
		{ ATT_MSG, 100000, 32, 0, DELIVERY_READY, NULL },
		{ ATT_MSG, 100000, 31, 0, DELIVERY_READY, NULL },
	};
	enum delivery_step st;
	char *why;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		st = prepare(t[i].msg, t[i].size_max, t[i].att_max, t[i].too_big, &why);
		UNIT_OK(st == t[i].want, "case %zu: step %d", i, (int)t[i].want);
		UNIT_STR_EQ(why, t[i].why, "case %zu: the reason", i);
		free(why);
	}
}

/* test_attachment_over_limit - an attachment one byte over the limit is
 * left out and said in parse_problem; at the limit it is extracted */
static void test_attachment_over_limit(void)
{
	static const char *rcpts[] = { "bob@example.com" };
	struct store_envelope env = { "alice@example.org", rcpts, 1, NULL };
	struct delivery_conf dc;
	struct delivery d;
	char *err = NULL;
	long long max;

	for (max = 31; max <= 32; max++) {
		memset(&dc, 0, sizeof(dc));
		dc.size_max = 100000;
		dc.attachment_max = max;
		delivery_init(&d, &dc, "test: ");
		UNIT_OK(store_spool_from_mem(ATT_MSG, strlen(ATT_MSG), &d.sp, &err) == 0,
			"spooled");
		UNIT_OK(delivery_prepare(&d, 0, &env) == DELIVERY_READY, "limit %lld: ready", max);
		UNIT_OK(d.m && d.m->natts == (max == 32 ? 1u : 0u), "limit %lld: %s", max,
			max == 32 ? "the attachment is extracted" : "the attachment is left out");
		UNIT_OK(d.m && d.m->oversize_size == (max == 32 ? 0 : 32),
			"limit %lld: the oversize attachment's size", max);
		UNIT_STR_EQ(d.m ? d.m->parse_problem : NULL,
			    max == 32 ? NULL
				      : "attachment of 32 bytes exceeds limits.attachment_size_max"
					" (31 bytes): not extracted",
			    "limit %lld: parse_problem", max);
		UNIT_STR_EQ(d.m ? d.m->text_body : NULL, "hi", "limit %lld: the text body", max);
		delivery_free(&d);
	}
}

static void test_request(void)
{
	static const char *rcpts[] = { "bob@example.com" };
	struct store_envelope env = { "alice@example.org", rcpts, 1, NULL };
	struct delivery_conf dc;
	struct store_request rq;

	memset(&dc, 0, sizeof(dc));
	dc.recipient_validation = 1;
	dc.subaddress_delims = "+-";
	dc.header_max_age = 60;
	dc.hmac_secret = "k";
	dc.authserv_id = "mx.example.com";
	delivery_request(&dc, &env, 1, "alice", "4QID", &rq);
	UNIT_OK(rq.env == &env && rq.sent == 1, "envelope and --sent");
	UNIT_STR_EQ(rq.sasl_user, "alice", "the authenticated user");
	UNIT_STR_EQ(rq.queue_id, "4QID", "the queue id");
	UNIT_OK(rq.recipient_validation == 1 && rq.header_max_age == 60, "the rules");
	UNIT_STR_EQ(rq.subaddress_delims, "+-", "the sub-address delimiters");
	UNIT_STR_EQ(rq.hmac_secret, "k", "the HMAC secret");
	UNIT_STR_EQ(rq.authserv_id, "mx.example.com", "the trusted authserv-id");
}

static void test_result(void)
{
	static const struct {
		int duplicate;
		size_t newly;
		const char *want;
	} t[] = {
		{ 0, 1, "delivered" },
		{ 1, 1, "delivered (already stored)" },
		{ 1, 0, "already delivered" },
	};
	struct store_result res;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&res, 0, sizeof(res));
		res.duplicate = t[i].duplicate;
		res.newly_delivered = t[i].newly;
		UNIT_STR_EQ(delivery_result(&res), t[i].want, "result word %zu", i);
	}
}

int main(void)
{
	log_init("test-delivery", 0, 1);
	test_prepare();
	test_attachment_over_limit();
	test_request();
	test_result();
	return unit_done();
}
