/* test-received - the queue id in the Received: header Postfix adds: the
 * forms Postfix 3.7 writes (smtpd with and without TLS or AUTH comments,
 * one or several recipients, pickup's "from userid", long queue ids) give
 * their id; other MTAs' forms, malformed values and odd ids give none;
 * only the topmost Received: header of a message is read. */
#include <stdlib.h>

#include "received.h"
#include "unit.h"

struct rcv_case {
	const char *value;
	const char *qid; /* NULL: no id */
	const char *what;
};

static const struct rcv_case cases[] = {
	{ "from client.example (localhost [127.0.0.1])\r\n\tby mx.postroom.test (Postfix) with ESMTP id 3AD87A741B3\r\n"
	  "\tfor <alice@example.test>; Sat,  5 Dec 2026 02:56:09 +0000 (UTC)",
	  "3AD87A741B3", "smtpd, one recipient (CRLF folding)" },
	{ "from client.example (localhost [127.0.0.1])\n\tby mx.postroom.test (Postfix) with ESMTP id 47702A75632;\n"
	  "\tSat,  5 Dec 2026 02:56:09 +0000 (UTC)",
	  "47702A75632", "smtpd, several recipients (no for)" },
	{ "from [192.0.2.7] (unknown [192.0.2.7]) by mx.example.com (Postfix) with SMTP id 5ECA3A7D8D7 for <a@b>; date",
	  "5ECA3A7D8D7", "smtpd, HELO an address literal, unfolded" },
	{ "from laptop (host.example.net [2001:db8::1])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
	  "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n"
	  "\t(No client certificate requested)\n\t(Authenticated sender: alice@example.com)\n"
	  "\tby mx.example.com (Postfix) with ESMTPSA id 3F06BA7D8DC\n\tfor <bob@example.net>; date",
	  "3F06BA7D8DC", "smtpd, TLS and AUTH comments (nested parentheses)" },
	{ "from client (localhost [127.0.0.1]) by mx (Postfix) with UTF8SMTPSA id 4Mxq2F0Sv5z9tHn for <x@y>; d",
	  "4Mxq2F0Sv5z9tHn", "long queue id, SMTPUTF8 protocol" },
	{ "from mx1.example (mx1.example [192.0.2.1]) by mx.example (Postfix) with LMTP id ABCDEF123; d",
	  "ABCDEF123", "with LMTP" },
	{ "by mx.postroom.test (Postfix, from userid 0)\n\tid 9A1B2C3D4E5; Sat,  5 Dec 2026 03:00:00 +0000 (UTC)",
	  "9A1B2C3D4E5", "pickup (local sendmail): from userid" },
	{ "by mx.postroom.test (Postfix)\n\tid 9A1B2C3D4E6; date", "9A1B2C3D4E6",
	  "Postfix-generated mail (no from, no with)" },
	{ "from c (l [127.0.0.1]) BY mx (Postfix) WITH ESMTP ID 00AA11BB22; d", "00AA11BB22",
	  "keywords in any case" },
	{ "from c (l [127.0.0.1]) by mx (MyMail) with ESMTP id 00AA11BB23; d", "00AA11BB23",
	  "another mail_name" },
	/* not Postfix's form */
	{ "from mail.example.net ([192.0.2.9]) by mx.example.com with esmtps (TLS1.3) tls TLS_AES_256_GCM_SHA384\n"
	  "\t(Exim 4.96)\n\t(envelope-from <a@example.net>)\n\tid 1r2s3t-000123-AB\n\tfor a@example.com; date",
	  NULL, "Exim's form" },
	{ "from client (client [192.0.2.1]) by mx.example (8.15.2/8.15.2/Debian-22) with ESMTP id 3B1KcQ8d012345; d",
	  NULL, "sendmail's form (version comment)" },
	{ "from c (l [127.0.0.1]) by mx with ESMTP id 00AA11BB22; d", NULL,
	  "no comment after the host" },
	{ "from c (l [127.0.0.1]) by mx (Postfix, from userid x) id 00AA11BB22; d", NULL,
	  "userid not a number" },
	{ "from c (l [127.0.0.1]) by mx (Postfix) with ESMTP id 00AA-11BB; d", NULL,
	  "id with a dash" },
	{ "from c (l [127.0.0.1]) by mx (Postfix) with ESMTP id 1234; d", NULL, "id too short" },
	{ "from c (l [127.0.0.1]) by mx (Postfix) with ESMTP id 0123456789012345678901234567890123456789X; d",
	  NULL, "id too long" },
	{ "from c (l [127.0.0.1]) by mx (Postfix) with ESMTP id 00AA11BB22 extra; d", NULL,
	  "junk after the id" },
	{ "from c (l [127.0.0.1]) by mx (Postfix) with ESMTP; d", NULL, "no id" },
	{ "from c (l [127.0.0.1] by mx (Postfix) with ESMTP id 00AA11BB22; d", NULL,
	  "unclosed comment" },
	{ "from by (l [127.0.0.1]) by mx (Postfix) with ESMTP id 00AA11BB24; d", "00AA11BB24",
	  "HELO \"by\"" },
	{ "from c (x) by mx (Postfix) with ESMTP id; d", NULL, "empty id" },
	{ "", NULL, "empty value" },
	{ "by (Postfix) id 00AA11BB22;", NULL, "no host" },
};

static void test_table(void)
{
	char buf[RECEIVED_QID_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = received_queue_id(cases[i].value, buf, sizeof(buf));

		UNIT_STR_EQ(r == 0 ? buf : NULL, cases[i].qid, "%s", cases[i].what);
	}
}

/* test_small_buffer - an id that does not fit is no id */
static void test_small_buffer(void)
{
	char buf[8];

	UNIT_OK(received_queue_id("by mx (Postfix) id 0123456789; d", buf, sizeof(buf)) < 0,
		"an id longer than the buffer is refused");
	UNIT_OK(received_queue_id("by mx (Postfix) id 0123456; d", buf, sizeof(buf)) == 0 &&
			strcmp(buf, "0123456") == 0,
		"an id that fits exactly (with its NUL)");
}

/* test_topmost - only the topmost Received: header counts */
static void test_topmost(void)
{
	char buf[RECEIVED_QID_MAX + 1];
	struct verdict_header ours[] = {
		{ "X-Postroom-Verdict", "v=1; qid=00AA11BB22" },
		{ "received",
		  "from c (l [127.0.0.1]) by mx (Postfix) with ESMTP id 00AA11BB22; d" },
		{ "Received",
		  "from evil (evil [192.0.2.66]) by mx (Postfix) with ESMTP id FORGED0001; d" },
	};
	struct verdict_header forged_below[] = {
		{ "Received", "from c (l [127.0.0.1]) by mx with some-other-mta id x; d" },
		{ "Received",
		  "from evil (evil [192.0.2.66]) by mx (Postfix) with ESMTP id FORGED0001; d" },
	};
	struct verdict_header none[] = { { "Subject", "by mx (Postfix) id 00AA11BB22;" } };

	UNIT_OK(received_top_queue_id(ours, 3, buf, sizeof(buf)) == 0 &&
			strcmp(buf, "00AA11BB22") == 0,
		"the topmost Received: (any case) gives the id, not the one below");
	UNIT_OK(received_top_queue_id(forged_below, 2, buf, sizeof(buf)) < 0,
		"a topmost Received: not of Postfix's form: no id, a lower one is not used");
	UNIT_OK(received_top_queue_id(none, 1, buf, sizeof(buf)) < 0, "no Received: header, no id");
	UNIT_OK(received_top_queue_id(NULL, 0, buf, sizeof(buf)) < 0, "no headers, no id");
}

int main(void)
{
	test_table();
	test_small_buffer();
	test_topmost();
	return unit_done();
}
