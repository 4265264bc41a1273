/*
 * NAME
 *	filename_safe - an attachment filename an application can use as is
 * DESCRIPTION
 *	Takes the last path component of a sender's decoded filename, drops
 *	the characters that hide or reorder text (controls, bidirectional
 *	formatting), replaces the ones Windows forbids, trims white space and
 *	dots at both ends, shortens it to FILENAME_SAFE_MAX bytes (keeping a
 *	short extension) and puts '_' before a Windows device name. GLib does
 *	the UTF-8 work. Pure: no I/O. Reads no configuration parameter.
 * NEVER
 *	returns an empty name, a name with a '/' or '\\', or bytes that are
 *	not valid UTF-8; reads past the NUL of its input.
 */
#include "filename_safe.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "xalloc.h"

/* filename_last_component - what follows the last '/' or '\\' */
static const char *filename_last_component(const char *s)
{
	const char *p, *last = s;

	for (p = s; *p; p++)
		if (*p == '/' || *p == '\\')
			last = p + 1;
	return last;
}

/* filename_dropped - a character that hides, moves or reorders text */
static int filename_dropped(gunichar c)
{
	GUnicodeType t = g_unichar_type(c);

	if (t == G_UNICODE_CONTROL || t == G_UNICODE_LINE_SEPARATOR ||
	    t == G_UNICODE_PARAGRAPH_SEPARATOR)
		return 1;
	return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) || c == 0x200E ||
	       c == 0x200F || c == 0x061C || c == 0xFEFF;
}

/* filename_keep - append s's characters but the dropped ones to out */
static void filename_keep(GString *out, const char *s)
{
	for (; *s; s = g_utf8_next_char(s)) {
		gunichar c = g_utf8_get_char(s);

		if (filename_dropped(c))
			continue;
		if (c < 0x80 && strchr("<>:\"|?*", (int)c) != NULL)
			g_string_append_c(out, '_');
		else
			g_string_append_unichar(out, c);
	}
}

/* filename_trimmed - white space or a dot, trimmed at either end */
static int filename_trimmed(gunichar c) { return c == '.' || g_unichar_isspace(c); }

/* filename_trim - drop white space and dots at both ends of s */
static void filename_trim(GString *s)
{
	const char *p = s->str, *end = s->str + s->len;
	size_t start;

	while (end > s->str) {
		const char *prev = g_utf8_prev_char(end);

		if (!filename_trimmed(g_utf8_get_char(prev)))
			break;
		end = prev;
	}
	g_string_truncate(s, (gsize)(end - s->str));
	while (*p && filename_trimmed(g_utf8_get_char(p)))
		p = g_utf8_next_char(p);
	start = (size_t)(p - s->str);
	g_string_erase(s, 0, (gssize)start);
}

/* filename_boundary - the longest prefix of s of at most max bytes that
 * ends on a character boundary: its length */
static size_t filename_boundary(const char *s, size_t len, size_t max)
{
	const char *cut;

	if (len <= max)
		return len;
	cut = g_utf8_find_prev_char(s, s + max + 1);
	return cut ? (size_t)(cut - s) : 0;
}

/* filename_shorten - s to at most max bytes, keeping a short extension */
static void filename_shorten(GString *s, size_t max)
{
	const char *dot = strrchr(s->str, '.');
	size_t ext = dot ? s->len - (size_t)(dot - s->str) : 0;

	if (s->len <= max)
		return;
	if (dot && dot > s->str && ext >= 2 && ext <= FILENAME_SAFE_EXT_MAX) {
		size_t stem = filename_boundary(s->str, (size_t)(dot - s->str), max - ext);

		g_string_erase(s, (gssize)stem, (gssize)(s->len - ext - stem));
	} else {
		g_string_truncate(s, filename_boundary(s->str, s->len, max));
	}
	filename_trim(s);
}

/* filename_reserved - a Windows device name, with or without extension */
static int filename_reserved(const char *s)
{
	static const char *const names[] = { "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$" };
	size_t n = strcspn(s, "."), i;

	while (n > 0 && s[n - 1] == ' ') /* Windows ignores them: "NUL .txt" */
		n--;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (n == strlen(names[i]) && g_ascii_strncasecmp(s, names[i], n) == 0)
			return 1;
	if (g_ascii_strncasecmp(s, "COM", 3) != 0 && g_ascii_strncasecmp(s, "LPT", 3) != 0)
		return 0;
	if (n == 4 && g_ascii_isdigit(s[3]))
		return 1;
	/* superscript one, two, three (U+00B9, U+00B2, U+00B3) */
	return n == 5 && (unsigned char)s[3] == 0xC2 &&
	       ((unsigned char)s[4] == 0xB9 || (unsigned char)s[4] == 0xB2 ||
		(unsigned char)s[4] == 0xB3);
}

char *filename_safe(const char *decoded, const char *fallback)
{
	GString *s;
	char *valid, *out;

	if (decoded == NULL)
		return xstrdup(fallback ? fallback : "attachment");
	valid = g_utf8_make_valid(decoded, -1);
	s = g_string_new(NULL);
	filename_keep(s, filename_last_component(valid));
	g_free(valid);
	filename_trim(s);
	filename_shorten(s, FILENAME_SAFE_MAX);
	if (filename_reserved(s->str)) {
		g_string_prepend_c(s, '_');
		filename_shorten(s, FILENAME_SAFE_MAX);
	}
	out = xstrdup(s->len > 0 ? s->str : fallback ? fallback : "attachment");
	g_string_free(s, TRUE);
	return out;
}
