/* test-verdict - deliver's reading of the spam verdict: a genuine verdict
 * added at this hop counts; a forged one, a genuine one copied from
 * another message (other queue id, or old), one below the Received:
 * header, and Authentication-Results of another authserv-id or from the
 * sender have no effect. */
#include <stdlib.h>
#include <string.h>
#include "sighdr.h"
#include "unit.h"

/* T - UNIT_OK evaluating cond once (the assertions here have side effects) */
#define T(cond, ...)                      \
	do {                              \
		int t_ = !!(cond);        \
		UNIT_OK(t_, __VA_ARGS__); \
	} while (0)
#include "verdict.h"
#include "xalloc.h"

#define SECRET "0123456789abcdef0123456789abcdef-test"

static char *sign(const char *spam, const char *reason, const char *qid, time_t ts)
{
	struct sighdr h = { 0 };

	h.fields[0] = (struct sighdr_field){ "spam", spam };
	h.fields[1] = (struct sighdr_field){ "reason", reason };
	h.fields[2] = (struct sighdr_field){ "spf", "fail" };
	h.fields[3] = (struct sighdr_field){ "qid", qid };
	h.nfields = 4;
	return sighdr_sign(SECRET, SIGHDR_VERDICT, &h, ts);
}

int main(void)
{
	time_t now = 1763870000;
	struct verdict_config cfg = { SECRET, "mx.postroom.test", "4ABC123", 0, now, NULL };
	struct verdict_result r;
	char *yes = sign("yes", "spf=fail,dnsbl=bl.example", "4ABC123", now - 5);
	char *no = sign("no", "none", "4ABC123", now - 5);
	char *other_qid = sign("no", "none", "9OTHER", now - 5);
	char *old = sign("no", "none", "4ABC123", now - 30 * 86400);
	char *forged = xstrdup(no);
	struct verdict_header received = {
		"Received", "from client.example (client.example [192.0.2.7])\r\n\tby mx"
	};

	forged[strlen(forged) - 3] = forged[strlen(forged) - 3] == 'a' ? 'b' : 'a';
	T(yes && no && other_qid && old, "test headers signed");

	{
		struct verdict_header h[] = { { SIGHDR_VERDICT, yes },
					      received,
					      { "Subject", "hi" } };
		verdict_from_headers(&cfg, h, 3, &r);
		T(r.spam == 1 && r.verdict_valid, "genuine spam verdict at the top: flagged");
		UNIT_STR_EQ(r.reason, "spf=fail,dnsbl=bl.example", "reason taken from the verdict");
		UNIT_STR_EQ(r.spf, "fail", "SPF result reported");
	}
	{
		struct verdict_header h[] = { { SIGHDR_VERDICT, no },
					      received,
					      { SIGHDR_VERDICT, yes } };
		verdict_from_headers(&cfg, h, 3, &r);
		T(r.spam == 0 && r.verdict_valid, "topmost (spam=no) wins over a copy below");
	}
	{
		struct verdict_header h[] = { received, { SIGHDR_VERDICT, no } };
		verdict_from_headers(&cfg, h, 2, &r);
		T(!r.verdict_valid && r.spam == 0,
		  "a verdict below Received: is the sender's: ignored");
	}
	{
		struct verdict_header h[] = { { SIGHDR_VERDICT, forged }, received };
		verdict_from_headers(&cfg, h, 2, &r);
		T(!r.verdict_valid && r.ignored != NULL, "forged verdict ignored (%s)",
		  r.ignored ? r.ignored : "");
	}
	{
		struct verdict_header h[] = { { SIGHDR_VERDICT, forged },
					      { SIGHDR_VERDICT, yes },
					      received };
		verdict_from_headers(&cfg, h, 3, &r);
		T(!r.verdict_valid && r.spam == 0,
		  "only the topmost counts: a bad one on top hides the rest");
	}
	{
		struct verdict_header h[] = { { SIGHDR_VERDICT, other_qid }, received };
		verdict_from_headers(&cfg, h, 2, &r);
		T(!r.verdict_valid, "genuine verdict of another queue id (copied) ignored");
	}
	{
		struct verdict_header h[] = { { SIGHDR_VERDICT, old }, received };
		verdict_from_headers(&cfg, h, 2, &r);
		T(!r.verdict_valid, "genuine but 30 days old (replayed) ignored");
	}
	{
		struct verdict_config c2 = cfg;
		struct verdict_header h[] = { { SIGHDR_VERDICT, yes }, received };

		c2.hmac_secret = "another-secret-another-secret-another";
		verdict_from_headers(&c2, h, 2, &r);
		T(!r.verdict_valid, "verdict signed with another secret ignored");
	}
	{
		struct verdict_header h[] = {
			{ "Authentication-Results",
			  "mx.postroom.test;\r\n\tdkim=pass header.d=example.org;\r\n\tdmarc=fail (p=reject) header.from=example.org" },
			{ SIGHDR_VERDICT, no },
			received
		};
		verdict_from_headers(&cfg, h, 3, &r);
		T(r.spam == 1 && r.verdict_valid, "trusted A-R dmarc=fail tags spam");
		UNIT_STR_EQ(r.reason, "dmarc=fail(p=reject)", "reason dmarc=fail(p=reject)");
		UNIT_STR_EQ(r.dkim, "pass", "dkim result read");
	}
	{
		struct verdict_header h[] = {
			{ "Authentication-Results", "evil.example; dmarc=fail" },
			{ "Authentication-Results", "mx.postroom.test.evil.example; dmarc=fail" },
			{ "Authentication-Results", "(comment) mx.postroom.test 1; dmarc=pass" },
			received,
			received,
			{ "Authentication-Results", "mx.postroom.test; dmarc=fail (p=reject)" }
		};
		verdict_from_headers(&cfg, h, 6, &r);
		T(r.spam == 0, "A-R of other ids and below the second Received: ignored");
		UNIT_STR_EQ(r.dmarc, "pass", "authserv-id with version and comment matched");
	}
	{
		/* found by tests/fuzz/authres.sh: a verdict whose reason did not
		 * fit the result's buffer flagged spam with no reason at all */
		char reason[300], *v;
		struct verdict_header h[2];

		memset(reason, 'z', sizeof(reason) - 1);
		reason[sizeof(reason) - 1] = '\0';
		v = sign("yes", reason, "4ABC123", now - 5);
		h[0] = (struct verdict_header){ SIGHDR_VERDICT, v };
		h[1] = received;
		verdict_from_headers(&cfg, h, 2, &r);
		T(r.spam == 1 && r.verdict_valid, "spam verdict with a 299-byte reason: flagged");
		UNIT_STR_EQ(r.reason, "policyd",
			    "a reason too long to keep: 'policyd', never none");
		free(v);
	}
	{
		/* Postfix puts a milter's A-R (inserted at position 1) just
		 * below its own Received: this hop's, trusted (issue 22) */
		struct verdict_header h[] = {
			received,
			{ "Authentication-Results",
			  "mx.postroom.test; dmarc=fail (p=reject dis=none) header.from=example.org" },
			{ "Authentication-Results",
			  "mx.postroom.test;\r\n\tdkim=fail reason=\"signature verification failed\" (2048-bit key; unprotected) header.d=bad.example header.i=@bad.example;\r\n\tdkim=pass (1024-bit key) header.d=Example.ORG header.i=@example.org header.b=\"abc;def\";\r\n\tdkim=pass header.d=list.example" },
			{ "Authentication-Results",
			  "mx.postroom.test; spf=pass smtp.mailfrom=example.org" },
			{ "From", "a@example.org" },
			received
		};
		char *j;

		verdict_from_headers(&cfg, h, 6, &r);
		T(r.spam == 1,
		  "A-R just below this hop's Received: trusted, dmarc=fail p=reject is spam");
		UNIT_STR_EQ(r.reason, "dmarc=fail(p=reject)", "... reason with the policy");
		UNIT_STR_EQ(r.dkim_domains, "example.org list.example",
			    "passing signing domains (lower case)");
		UNIT_STR_EQ(r.dmarc_from, "example.org", "dmarc header.from");
		j = verdict_auth_json(&r);
		UNIT_STR_EQ(
			j ? j : "(null)",
			"{\"spf\":\"pass\",\"dkim\":\"pass\",\"dkim_domains\":[\"example.org\",\"list.example\"],"
			"\"dmarc\":\"fail\",\"dmarc_policy\":\"reject\",\"dmarc_from\":\"example.org\"}",
			"auth_results JSON");
		free(j);
	}
	{
		struct verdict_header h[] = {
			received,
			{ "Authentication-Results",
			  "mx.postroom.test; dmarc=fail (p=none dis=none) header.from=example.org" },
			{ "Authentication-Results",
			  "mx.postroom.test; dkim=fail header.d=example.org" },
		};
		struct verdict_config c2 = cfg;

		verdict_from_headers(&cfg, h, 3, &r);
		T(r.spam == 0,
		  "dmarc=fail under p=none and dkim=fail: not spam (default policies)");
		UNIT_STR_EQ(r.dkim, "fail", "... dkim=fail stored");
		c2.dmarc_spam_policies = "none reject";
		verdict_from_headers(&c2, h, 3, &r);
		T(r.spam == 1, "dmarc_spam_policies = \"none reject\": p=none fail is spam");
		c2.dmarc_spam_policies = "";
		h[1].value = "mx.postroom.test; dmarc=fail (p=reject) header.from=example.org";
		verdict_from_headers(&c2, h, 3, &r);
		T(r.spam == 0, "dmarc_spam_policies = \"\": never spam");
		T(verdict_auth_json(&(struct verdict_result){ 0 }) == NULL, "no result: NULL JSON");
	}
	{
		struct verdict_header h[] = { { "Subject", "no headers of ours" } };
		verdict_from_headers(&cfg, h, 1, &r);
		T(r.spam == 0 && !r.verdict_valid && r.ignored == NULL,
		  "no Received: header, no verdict: not spam");
	}
	free(yes);
	free(no);
	free(other_qid);
	free(old);
	free(forged);
	return unit_done();
}
