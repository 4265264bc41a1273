/* filename_safe.h - an attachment filename an application can use as is.
 *
 * The name a sender gave a part is the sender's to write: a path
 * ("../../etc/passwd"), terminal escapes, bidirectional overrides that
 * show "gpj.exe" as "exe.jpg", Windows device names, 100,000 bytes.
 * filename_safe turns it into one plain file name; the name as given is
 * kept apart (email_attachments.filename_original, doc/schema.md). */
#ifndef POSTROOM_FILENAME_SAFE_H
#define POSTROOM_FILENAME_SAFE_H

/* Longest safe name in bytes (most file systems' limit for one name). */
#define FILENAME_SAFE_MAX 255
/* Longest extension (with its dot) kept when a long name is shortened. */
#define FILENAME_SAFE_EXT_MAX 16

/* filename_safe - the safe form of decoded (a name as the sender gave it,
 * decoded from RFC 2047/2231; NULL for none), or a copy of fallback when
 * nothing usable is left. The result (caller frees with free()) is valid
 * UTF-8, 1 to FILENAME_SAFE_MAX bytes (fallback's length when it is the
 * fallback), and:
 *  - is the last path component: after the last '/' or '\\';
 *  - has no control characters (C0, DEL, C1), no line or paragraph
 *    separators (U+2028, U+2029), no bidirectional formatting characters
 *    (embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069,
 *    the marks U+200E, U+200F, U+061C) and no U+FEFF: they are dropped;
 *  - has '_' in place of the characters Windows forbids in a name
 *    (< > : " | ? *; ':' also names NTFS alternate streams);
 *  - has no white space or dots at the start or end (no hidden ".name",
 *    no "name." that Windows silently shortens);
 *  - is not a Windows device name (CON PRN AUX NUL COM0-9 LPT0-9, COM and
 *    LPT with a superscript 1-3, CONIN$ CONOUT$), in any case and with any
 *    extension ("nul.txt", "COM1.tar.gz"): such names get a '_' prefix;
 *  - is shortened on a character boundary when longer than
 *    FILENAME_SAFE_MAX, keeping its last extension when that is at most
 *    FILENAME_SAFE_EXT_MAX bytes.
 * Invalid UTF-8 in decoded becomes U+FFFD. filename_safe is idempotent:
 * filename_safe(filename_safe(x, f), f) equals filename_safe(x, f). */
char *filename_safe(const char *decoded, const char *fallback);

#endif
