/* test-sighdr - signed internal headers: round trip, tampering, wrong
 * secret, moved to another message or queue id, stale and future
 * timestamps, replay, folding, encoding. */
#include <stdlib.h>
#include <string.h>

#include "sighdr.h"
#include "unit.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define NOW ((time_t)1763870000)

static char *sign_submission(const char *user, const char *mid, const char *qid, time_t t)
{
	struct sighdr f = { 0 };

	f.fields[f.nfields].name = "user";
	f.fields[f.nfields++].value = user;
	if (mid) {
		f.fields[f.nfields].name = "mid";
		f.fields[f.nfields++].value = mid;
	}
	if (qid) {
		f.fields[f.nfields].name = "qid";
		f.fields[f.nfields++].value = qid;
	}
	return sighdr_sign(SECRET, SIGHDR_SUBMISSION, &f, t);
}

/* verify - 0 ok / -1, with the binding given */
static int verify(const char *secret, const char *name, const char *value, const char *mid,
		  const char *qid, time_t now, long max_age, const char **err, char *user_out,
		  size_t n)
{
	struct sighdr_binding b = { mid, qid, now, max_age };
	struct sighdr h;
	char *storage = NULL;
	int rc = sighdr_verify(secret, name, value, &b, &h, &storage, err);

	if (rc == 0 && user_out) {
		const char *u = sighdr_get(&h, "user");
		snprintf(user_out, n, "%s", u ? u : "");
	}
	free(storage);
	return rc;
}

static void test_round_trip(void)
{
	char *v = sign_submission("alice@example.com", "<abc.123@host.example>", "4XyZ1a2B3c", NOW);
	const char *err = NULL;
	char user[128] = "";
	struct sighdr h;
	char *storage = NULL;
	struct sighdr_binding b = { "<abc.123@host.example>", "4XyZ1a2B3c", NOW + 10, 432000 };
	int rc;
	const char *want = "v=1; user=alice@example.com; mid=<abc.123@host.example>; "
			   "qid=4XyZ1a2B3c; ts=1763870000; sig=";

	UNIT_OK(v != NULL && strncmp(v, want, strlen(want)) == 0 && strlen(v) == strlen(want) + 64,
		"signed value reads as fields: %s", v ? v : "(null)");
	UNIT_OK(strchr(v, '\n') == NULL && strchr(v, '\r') == NULL, "no line break in the value");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, "<abc.123@host.example>", "4XyZ1a2B3c",
		       NOW + 10, 432000, &err, user, sizeof(user)) == 0,
		"genuine header verifies (%s)", err ? err : "ok");
	UNIT_STR_EQ(user, "alice@example.com", "user field read back");
	rc = sighdr_verify(SECRET, SIGHDR_SUBMISSION, v, &b, &h, &storage, &err);
	UNIT_OK(rc == 0 && h.nfields == 5 && sighdr_get(&h, "ts") &&
			strcmp(sighdr_get(&h, "ts"), "1763870000") == 0 && sighdr_get(&h, "qid") &&
			strcmp(sighdr_get(&h, "qid"), "4XyZ1a2B3c") == 0 &&
			sighdr_get(&h, "nope") == NULL,
		"fields v, user, mid, qid, ts available");
	free(storage);
	UNIT_OK(verify(SECRET, "x-postroom-submission", v, NULL, NULL, NOW, 0, &err, NULL, 0) == 0,
		"header name compared case-insensitively");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW, 432000, &err, NULL, 0) == 0,
		"unbound verification (no mid/qid expected) passes");
	rc = sighdr_verify(SECRET, SIGHDR_SUBMISSION, v, NULL, &h, &storage, &err);
	UNIT_OK(rc < 0 && storage == NULL,
		"NULL binding: ts is checked against now (this ts is in the past)");
	free(v);
}

static void test_forgeries(void)
{
	char *v = sign_submission("alice@example.com", "<abc@host>", "QID1", NOW);
	char *t;
	const char *err = NULL;
	size_t off;

	UNIT_OK(verify("another-secret-another-secret-xx", SIGHDR_SUBMISSION, v, NULL, NULL, NOW, 0,
		       &err, NULL, 0) < 0,
		"wrong secret fails (%s)", err);
	UNIT_OK(verify(SECRET, SIGHDR_VERDICT, v, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"a submission header does not verify as a verdict header");
	UNIT_OK(verify("", SIGHDR_SUBMISSION, v, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"empty secret fails");
	UNIT_OK(verify(NULL, SIGHDR_SUBMISSION, v, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"no secret fails");

	/* tamper with the user */
	t = strdup(v);
	memcpy(strstr(t, "alice"), "mallo", 5);
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, t, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"changed user fails (%s)", err);
	free(t);
	/* tamper with the timestamp */
	t = strdup(v);
	off = (size_t)(strstr(t, "ts=") - t) + 3;
	t[off + 9] = t[off + 9] == '9' ? '8' : '9';
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, t, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"changed timestamp fails");
	free(t);
	/* tamper with the signature */
	t = strdup(v);
	t[strlen(t) - 1] = t[strlen(t) - 1] == '0' ? '1' : '0';
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, t, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"changed signature fails");
	free(t);
	/* drop a field */
	t = strdup(v);
	{
		char *q = strstr(t, "qid=QID1; ");
		memmove(q, q + 10, strlen(q + 10) + 1);
	}
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, t, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"removed field fails");
	free(t);
	/* add a field in front of sig= */
	t = malloc(strlen(v) + 32);
	off = (size_t)(strstr(v, "sig=") - v);
	memcpy(t, v, off);
	strcpy(t + off, "extra=1; ");
	strcat(t, v + off);
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, t, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"added field fails");
	free(t);
	/* a second user= after the signed ones */
	t = malloc(strlen(v) + 32);
	sprintf(t, "%s; user=mallory@example.com", v);
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, t, NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"field after sig= fails");
	free(t);
	/* no signature at all */
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, "v=1; user=mallory@example.com; ts=1763870000",
		       NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"unsigned header fails");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, "", NULL, NULL, NOW, 0, &err, NULL, 0) < 0,
		"empty header fails");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, "garbage;;;===", NULL, NULL, NOW, 0, &err, NULL,
		       0) < 0,
		"garbage fails");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW, 0, &err, NULL, 0) == 0,
		"the untouched original still verifies");
	free(v);
}

static void test_binding(void)
{
	char *v = sign_submission("alice@example.com", "<abc@host>", "QID1", NOW);
	char *nomid = sign_submission("alice@example.com", NULL, "QID1", NOW);
	const char *err = NULL;

	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, "<other@host>", NULL, NOW, 0, &err, NULL, 0) <
			0,
		"moved to another Message-Id fails (%s)", err);
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, "QID2", NOW, 0, &err, NULL, 0) < 0,
		"moved to another queue id fails (%s)", err);
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, "qid1", NOW, 0, &err, NULL, 0) < 0,
		"queue ids compare exactly");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, nomid, "<abc@host>", NULL, NOW, 0, &err, NULL,
		       0) < 0,
		"expected Message-Id missing from the header fails");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, " \r\n <abc@host>\r\n", "QID1", NOW, 0, &err,
		       NULL, 0) == 0,
		"Message-Id compared without folding white space");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, "abc@host", "QID1", NOW, 0, &err, NULL, 0) ==
			0,
		"Message-Id without angle brackets (as GMime returns it) matches");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, "<abc@host2>", "QID1", NOW, 0, &err, NULL, 0) <
			0,
		"a longer Message-Id does not match");
	/* replay: a genuine header copied into another message an hour later */
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, "<new@attacker>", "QID9", NOW + 3600, 0, &err,
		       NULL, 0) < 0,
		"replayed into another message fails");
	/* age */
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW + 432000, 432000, &err, NULL,
		       0) == 0,
		"at max_age still valid");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW + 432001, 432000, &err, NULL,
		       0) < 0,
		"older than max_age fails (%s)", err);
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW + 86401, 86400, &err, NULL,
		       0) < 0,
		"stale with a shorter max_age");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW + 432001, 0, &err, NULL, 0) <
			0,
		"max_age 0 means the 5-day default, not unlimited");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW - 3600, 0, &err, NULL, 0) < 0,
		"timestamp an hour in the future fails");
	UNIT_OK(verify(SECRET, SIGHDR_SUBMISSION, v, NULL, NULL, NOW - 60, 0, &err, NULL, 0) == 0,
		"a minute of clock skew is tolerated");
	free(v);
	free(nomid);
}

static void test_encoding(void)
{
	struct sighdr f = { 0 }, h;
	char *v, *folded, *storage = NULL;
	const char *err = NULL;
	struct sighdr_binding b = { NULL, NULL, NOW, 0 };
	int rc;

	f.fields[0].name = "user";
	f.fields[0].value = "j\xc3\xb6rg; admin=yes 100%";
	f.fields[1].name = "reason";
	f.fields[1].value = "dnsbl=zen.example\tlisted";
	f.nfields = 2;
	v = sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW);
	UNIT_OK(v && !strstr(v, "; admin=") && !strstr(v, ";admin=") && !strchr(v, '\t') &&
			strstr(v, "%3B") && strstr(v, "%25"),
		"';', '%%', space, tab and 8-bit are encoded: %s", v ? v : "");
	rc = sighdr_verify(SECRET, SIGHDR_VERDICT, v, &b, &h, &storage, &err);
	UNIT_OK(rc == 0 && strcmp(sighdr_get(&h, "user"), "j\xc3\xb6rg; admin=yes 100%") == 0 &&
			sighdr_get(&h, "admin") == NULL &&
			strcmp(sighdr_get(&h, "reason"), "dnsbl=zen.example\tlisted") == 0,
		"encoded values decode exactly, no field injected");
	free(storage);
	/* folded by an MTA: CRLF + white space between fields */
	folded = malloc(strlen(v) * 2 + 1);
	{
		const char *p;
		char *q = folded;
		for (p = v; *p; p++) {
			*q++ = *p;
			if (*p == ';') {
				*q++ = '\r';
				*q++ = '\n';
				*q++ = '\t';
			}
		}
		*q = '\0';
	}
	rc = sighdr_verify(SECRET, SIGHDR_VERDICT, folded, &b, &h, &storage, &err);
	UNIT_OK(rc == 0, "a folded copy verifies");
	free(storage);
	free(folded);
	free(v);

	/* invalid input to sign */
	f.fields[0].name = "User";
	UNIT_OK(sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW) == NULL,
		"upper-case field name refused");
	f.fields[0].name = "sig";
	UNIT_OK(sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW) == NULL, "reserved name sig refused");
	f.fields[0].name = "reason";
	UNIT_OK(sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW) == NULL, "duplicate field refused");
	f.fields[0].name = "user";
	f.fields[0].value = NULL;
	UNIT_OK(sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW) == NULL, "NULL value refused");
	f.fields[0].value = "x";
	UNIT_OK(sighdr_sign(NULL, SIGHDR_VERDICT, &f, NOW) == NULL, "no secret: nothing signed");
	/* an explicit ts is used as given */
	f.fields[1].name = "ts";
	f.fields[1].value = "1700000000";
	v = sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW);
	UNIT_OK(v && strstr(v, "ts=1700000000") && !strstr(v, "ts=1763870000"),
		"explicit ts kept, not doubled");
	free(v);
	/* bad encodings in a signed value are refused even with a valid MAC:
	 * sign "%00" literally is impossible (encoded as %2500) */
	f.fields[1].name = "note";
	f.fields[1].value = "%00";
	v = sighdr_sign(SECRET, SIGHDR_VERDICT, &f, NOW);
	rc = v ? sighdr_verify(SECRET, SIGHDR_VERDICT, v, &b, &h, &storage, &err) : -1;
	UNIT_OK(rc == 0 && strcmp(sighdr_get(&h, "note"), "%00") == 0,
		"a literal %%00 survives the round trip");
	free(storage);
	free(v);
}

int main(void)
{
	test_round_trip();
	test_forgeries();
	test_binding();
	test_encoding();
	return unit_done();
}
