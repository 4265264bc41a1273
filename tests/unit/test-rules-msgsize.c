/* test-rules-msgsize - the milter's message size count (MISSION.md: headers
 * and body with CRLF line endings), expected sizes counted by hand. */
#include "milter.h"
#include "unit.h"

int main(void)
{
	struct msgsize m = { 0, 0 };

	msgsize_add(&m, "a\r\nb\r\n", 6);
	UNIT_OK(m.bytes == 6, "CRLF body counts as is (6)");
	m.bytes = 0;
	m.last_cr = 0;
	msgsize_add(&m, "a\nb\n", 4);
	UNIT_OK(m.bytes == 6, "bare LF counts as CRLF (4 -> 6)");
	m.bytes = 0;
	m.last_cr = 0;
	msgsize_add(&m, "a\r", 2);
	msgsize_add(&m, "\nb", 2);
	UNIT_OK(m.bytes == 4, "CRLF split across chunks counts 2 (4)");
	m.bytes = 0;
	m.last_cr = 0;
	msgsize_add(&m, "a\rb", 3);
	UNIT_OK(m.bytes == 3, "bare CR counts 1");
	m.bytes = 0;
	m.last_cr = 0;
	msgsize_header(&m, "Subject", " hello", 1);
	UNIT_OK(m.bytes == 16, "\"Subject: hello\" CRLF is 16 bytes (leading space given)");
	m.bytes = 0;
	msgsize_header(&m, "Subject", "hello", 0);
	UNIT_OK(m.bytes == 16, "\"Subject: hello\" CRLF is 16 bytes (leading space assumed)");
	m.bytes = 0;
	msgsize_header(&m, "To", " a,\n\tb", 1);
	UNIT_OK(m.bytes == 12,
		"folded header with LF counts CRLF: \"To: a,\" (6) CRLF (2) TAB b (2) CRLF (2) = 12");
	m.bytes = 0;
	msgsize_header(&m, "To", " a,\r\n\tb", 1);
	UNIT_OK(m.bytes == 12, "folded header with CRLF: 12");
	return unit_done();
}
