/* test-filename-safe - the filename an application gets for a sender's
 * attachment name: path parts, control characters and terminal escapes,
 * bidirectional overrides, hidden and trailing dots, Windows device names,
 * huge names, invalid UTF-8; every result valid UTF-8, at most 255 bytes,
 * never empty, and the function idempotent. Expected values by hand. */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "filename_safe.h"
#include "unit.h"

#define FB "attachment.pdf"

struct fs_case {
	const char *in; /* NULL: the part named none */
	const char *want;
	const char *what;
};

static const struct fs_case cases[] = {
	{ "report.pdf", "report.pdf", "a plain name is kept" },
	{ "Résumé 2024 (final).docx", "Résumé 2024 (final).docx",
	  "UTF-8, spaces, parentheses kept" },
	{ "../../"
	  "../../etc/passwd",
	  "passwd", "path traversal: last component" },
	{ "/etc/passwd", "passwd", "absolute path" },
	{ "C:\\x\\y.doc", "y.doc", "Windows path" },
	{ "..\\..\\boot.ini", "boot.ini", "Windows traversal" },
	{ "dir/", FB, "ends with a separator: nothing left" },
	{ "a\x01"
	  "b\x1b[31mred",
	  "ab[31mred", "C0 controls and ESC dropped" },
	{ "tab\there\r\nx\x7f.txt", "tabherex.txt", "TAB, CR, LF, DEL dropped" },
	{ "c1\xc2\x85\xc2\x9b"
	  "31m.txt",
	  "c131m.txt", "C1 controls (NEL, CSI) dropped" },
	{ "invoice\xe2\x80\xaegpj.exe", "invoicegpj.exe", "RLO (U+202E) dropped" },
	{ "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae"
	  "x.txt",
	  "x.txt", "U+202A-U+202E dropped" },
	{ "\xe2\x81\xa6"
	  "a\xe2\x81\xa7"
	  "b\xe2\x81\xa8"
	  "c\xe2\x81\xa9.txt",
	  "abc.txt", "isolates U+2066-U+2069 dropped" },
	{ "\xe2\x80\x8e"
	  "l\xe2\x80\x8fr\xd8\x9c"
	  "a\xef\xbb\xbf.txt",
	  "lra.txt", "LRM, RLM, ALM, BOM dropped" },
	{ "line\xe2\x80\xa8sep.txt", "linesep.txt", "U+2028 dropped" },
	{ "\xd9\x85\xd9\x84\xd9\x81.pdf", "\xd9\x85\xd9\x84\xd9\x81.pdf", "Arabic letters kept" },
	{ "zw\xe2\x80\x8dj.txt", "zw\xe2\x80\x8dj.txt", "ZWJ kept (emoji, scripts)" },
	{ ".htaccess", "htaccess", "leading dot stripped" },
	{ "...hidden", "hidden", "leading dots stripped" },
	{ "  spaced.txt  ", "spaced.txt", "surrounding white space stripped" },
	{ "file.txt.", "file.txt", "trailing dot stripped" },
	{ "file.txt . . ", "file.txt", "trailing dots and spaces stripped" },
	{ "\xc2\xa0nbsp.txt\xe3\x80\x80", "nbsp.txt", "NBSP and ideographic space stripped" },
	{ "...", FB, "only dots: fallback" },
	{ "", FB, "empty: fallback" },
	{ " \t ", FB, "only white space: fallback" },
	{ "\x1b\x01", FB, "only controls: fallback" },
	{ "../..", FB, "only parent references: fallback" },
	{ NULL, FB, "no name: fallback" },
	{ "CON", "_CON", "CON" },
	{ "con", "_con", "con, lower case" },
	{ "nul.txt", "_nul.txt", "nul.txt: device with extension" },
	{ "COM1.tar.gz", "_COM1.tar.gz", "COM1.tar.gz" },
	{ "lpt9", "_lpt9", "LPT9" },
	{ "AUX .txt", "_AUX .txt", "device name, space before the dot" },
	{ "com\xc2\xb9.txt", "_com\xc2\xb9.txt", "COM with superscript one" },
	{ "PRN", "_PRN", "PRN" },
	{ "CONOUT$", "_CONOUT$", "CONOUT$" },
	{ "dir/CON", "_CON", "device name as the last component" },
	{ ".CON", "_CON", "device name after a stripped dot" },
	{ "CONSOLE.txt", "CONSOLE.txt", "CONSOLE is no device" },
	{ "COM10", "COM10", "COM10 is no device" },
	{ "nul_x", "nul_x", "nul_x is no device" },
	{ "a:b.txt", "a_b.txt", "colon (NTFS stream) replaced" },
	{ "what?<now>|\"*\".txt", "what__now_____.txt", "Windows-forbidden characters replaced" },
	{ "bad\xff\xfe.txt", "bad\xef\xbf\xbd\xef\xbf\xbd.txt", "invalid UTF-8 becomes U+FFFD" },
};

/* fs_check - the invariants of any result */
static int fs_check(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= FILENAME_SAFE_MAX && g_utf8_validate(s, (gssize)n, NULL) &&
	       strchr(s, '/') == NULL && strchr(s, '\\') == NULL && s[0] != '.' && s[n - 1] != '.';
}

static void fs_long(void)
{
	char *in = malloc(100001), *out, *again;
	size_t i;

	for (i = 0; i < 100000; i++)
		in[i] = "ab\x01"[i % 3];
	in[100000] = '\0';
	out = filename_safe(in, FB);
	UNIT_OK(fs_check(out) && strlen(out) == 255 && strspn(out, "ab") == 255,
		"100,000-byte name: 255 bytes, controls gone (got %zu bytes)", strlen(out));
	free(out);

	/* 3-byte characters: the cut falls inside one */
	for (i = 0; i + 3 <= 99990; i += 3)
		memcpy(in + i, "\xe2\x82\xac", 3); /* euro sign */
	memcpy(in + i, ".pdf", 5);
	out = filename_safe(in, FB);
	UNIT_OK(fs_check(out) && strlen(out) <= 255 && g_str_has_suffix(out, ".pdf") &&
			strlen(out) == 249 + 4,
		"long multibyte name: cut on a character boundary, extension kept (%zu bytes)",
		strlen(out));
	again = filename_safe(out, FB);
	UNIT_STR_EQ(again, out, "long name: idempotent");
	free(again);
	free(out);

	memset(in, 'x', 300);
	memcpy(in + 300, ".verylongextension_over16", 26);
	out = filename_safe(in, FB);
	UNIT_OK(fs_check(out) && strlen(out) == 255 && strspn(out, "x") == 255,
		"an extension over 16 bytes is not kept");
	free(out);

	memcpy(in, "NUL", 3);
	memset(in + 3, ' ', 300);
	memcpy(in + 303, "x", 2);
	out = filename_safe(in, FB);
	UNIT_STR_EQ(out, "_NUL", "shortening that leaves a device name: prefixed");
	free(out);
	free(in);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = filename_safe(cases[i].in, FB), *again;

		UNIT_STR_EQ(got, cases[i].want, "%s", cases[i].what);
		UNIT_OK(fs_check(got), "%s: valid, 1-255 bytes, no separator", cases[i].what);
		again = filename_safe(got, FB);
		UNIT_STR_EQ(again, got, "%s: idempotent", cases[i].what);
		free(again);
		free(got);
	}
	fs_long();
	return unit_done();
}
