/*
 * NAME
 *	mime_parse - turn a spooled message into the rows postroom stores
 * DESCRIPTION
 *	The message is read into the heap (up to 1 MiB) or mapped read-only
 *	(above), and GMime 3 parses it one entity at a time, never as a
 *	whole tree: the header block of each entity
 *	(lib/mime_scan finds where it ends) is parsed alone; a multipart's
 *	children are found by its delimiter lines (lib/mime_scan, GMime's
 *	rule) and walked one after the other, each freed before the next;
 *	a leaf part gets its content as a reference into the mapping, as
 *	GMime's own parser gives it; an attached message is copied as it
 *	stands, not parsed. So the memory of a parse is that of one entity,
 *	whatever the number of parts, and a header block of more than
 *	MIME_FIELDS_MAX fields is given to GMime filtered (its first fields,
 *	and the later ones postroom reads). The walk picks what a mail
 *	client shows: the text/plain and text/html alternatives (the last of
 *	each kind inside multipart/alternative, nested related and mixed
 *	parts walked), and everything else that is a leaf part or an
 *	attached message becomes an attachment: decoded into one memfd,
 *	measured and hashed there. Header fields are decoded (RFC 2047,
 *	RFC 2231, charsets) and cleaned to valid UTF-8 (a NUL byte becomes
 *	U+FFFD), and bounded in length so that no index entry can overflow.
 *	The limits (struct mime_limits: attachment size, parts walked) and
 *	MIME_DEPTH_MAX bound what is extracted; each says so in
 *	parse_problem. The message itself is always stored whole.
 * NEVER
 *	fails or crashes because of the message's content: problems GMime
 *	reports are collected in parse_problem; holds an attachment or the
 *	whole MIME tree in the heap; writes to the mapping.
 */
#include "mime_parse.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "buf.h"
#include "filename_safe.h"
#include "mime_scan.h"
#include "store_spool.h"
#include "xalloc.h"

#define MIME_ID_MAX 900  /* Message-Id, In-Reply-To, each reference */
#define MIME_REFS_MAX 64 /* the last ones are kept */
#define MIME_ADDR_MAX 512
#define MIME_NAME_MAX 1024 /* display names, filenames */
#define MIME_SUBJECT_MAX 4096
#define MIME_PROBLEM_MAX 1000
#define MIME_FIELDS_MAX 1000        /* header fields of one block given to GMime */
#define MIME_DEPTH_MAX 64           /* multipart nesting walked */
#define MIME_UNFOLD_MIN 65536       /* a header block given to GMime unfolded */
#define MIME_READ_MAX (1024 * 1024) /* read into the heap up to this, mapped above */

struct mime_walk {
	struct mime_msg *msg;
	struct mime_limits lim;
	GMimeParserOptions *opts;
	const char *map;         /* the message, mapped read-only */
	size_t len;              /* its length */
	char *unmap;             /* the mapping (from a page boundary), NULL: heap */
	size_t released;         /* bytes of it given back (mime_release) */
	GMimeStream *whole;      /* a memory stream over map, never copied */
	gint64 base;             /* offset in the message of what GMime parses */
	int header_only;         /* GMime parses a header block without its body */
	size_t nparts;           /* leaf parts and attached messages seen */
	int parts_over;          /* stopped at lim.parts_max */
	int too_deep;            /* a multipart nested deeper than MIME_DEPTH_MAX */
	size_t nfiltered;        /* header fields not given to GMime */
	GMimeStream *att_stream; /* over msg->att_fd */
	struct buf text;         /* text/plain body being built */
	int have_text;
	char *html;
	int nul_replaced;            /* a text body held NUL bytes */
	size_t leaf_start, leaf_end; /* the encoded body of the leaf being walked */
	int error;                   /* a system error while writing */
	char *error_text;
};

/* the fields read after MIME_FIELDS_MAX in a filtered header block */
static const char *const mime_fields_kept[] = { "From",
						"To",
						"Cc",
						"Bcc",
						"Subject",
						"Message-ID",
						"In-Reply-To",
						"References",
						"X-Postroom-Submission",
						"MIME-Version",
						"Content-Type",
						"Content-Transfer-Encoding",
						"Content-Disposition",
						"Content-ID",
						"Auto-Submitted",
						"Precedence",
						"List-Id",
						"X-Autoreply",
						"X-Failed-Recipients",
						NULL };

/* the top-level fields lib/mail_class.c reads (struct mime_msg) */
static const char *const mime_class_fields[] = { "Auto-Submitted", "Precedence",
						 "List-Id",        "List-Unsubscribe",
						 "List-Post",      "X-Autoreply",
						 "X-Autorespond",  "X-Failed-Recipients",
						 "Return-Path",    NULL };

/* mime_global_init - GMime once per process, whichever thread is first
 * (postroom-lmtpd parses in its session threads) */
static void mime_global_init_once(void) { g_mime_init(); }

static void mime_global_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, mime_global_init_once);
}

char *mime_clean_utf8(const char *s, size_t len, size_t max)
{
	char *valid = NULL, *out;
	const char *v = s;
	size_t vlen = len;

	/* g_utf8_validate_len refuses a NUL; g_utf8_make_valid replaces
	 * it, as it replaces every invalid sequence, with U+FFFD */
	if (!g_utf8_validate_len(s, len, NULL)) {
		v = valid = g_utf8_make_valid(s, (gssize)len);
		vlen = strlen(valid);
	}
	if (max > 0 && vlen > max) {
		const char *cut = g_utf8_find_prev_char(v, v + max + 1);

		vlen = cut ? (size_t)(cut - v) : 0;
	}
	out = xmalloc(vlen + 1);
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	g_free(valid);
	return out;
}

/* mime_clean - mime_clean_utf8 of a C string, NULL stays NULL */
static char *mime_clean(const char *s, size_t max)
{
	return s ? mime_clean_utf8(s, strlen(s), max) : NULL;
}

/* mime_clean_id - a message id without white space, NULL when empty */
static char *mime_clean_id(const char *s)
{
	char *id, *p, *q;

	if (s == NULL)
		return NULL;
	id = mime_clean(s, MIME_ID_MAX);
	for (p = q = id; *p; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			*q++ = *p;
	*q = '\0';
	if (*id == '\0')
		xfree(&id);
	return id;
}

const char *mime_default_filename(const char *ct)
{
	static const struct {
		const char *type, *name;
	} table[] = {
		{ "image/jpeg", "attachment.jpg" },      { "image/png", "attachment.png" },
		{ "application/pdf", "attachment.pdf" }, { "application/zip", "attachment.zip" },
		{ "text/plain", "attachment.txt" },      { "message/rfc822", "attachment.eml" },
	};
	size_t i;

	for (i = 0; ct && i < sizeof(table) / sizeof(table[0]); i++)
		if (g_ascii_strcasecmp(ct, table[i].type) == 0)
			return table[i].name;
	return "attachment";
}

/* mime_note - add a problem to parse_problem ("; "-separated, bounded) */
static void mime_note(struct mime_msg *msg, const char *text)
{
	char *joined;

	if (msg->parse_problem == NULL) {
		msg->parse_problem = mime_clean(text, MIME_PROBLEM_MAX);
		return;
	}
	if (strlen(msg->parse_problem) + 2 + strlen(text) > MIME_PROBLEM_MAX)
		return;
	joined = xasprintf("%s; %s", msg->parse_problem, text);
	free(msg->parse_problem);
	msg->parse_problem = mime_clean(joined, MIME_PROBLEM_MAX);
	free(joined);
}

/* mime_problem_text - what parse_problem says for a GMime warning, NULL
 * for the cosmetic ones (and, while GMime sees a header block alone, for
 * those about the body it does not see: the walk reports them itself) */
static const char *mime_problem_text(const struct mime_walk *w, GMimeParserWarning code,
				     const gchar *item)
{
	switch (code) {
	case GMIME_WARN_MALFORMED_MULTIPART:
		return w->header_only ? NULL : "multipart without parts";
	case GMIME_WARN_TRUNCATED_MESSAGE:
		return w->header_only
			       ? NULL
			       : "truncated message (a multipart lacks its closing boundary)";
	case GMIME_WARN_MALFORMED_MESSAGE:
		/* an attached message's own headers: not parsed (copied) */
		return w->header_only ? NULL : "malformed message";
	case GMIME_CRIT_INVALID_HEADER_NAME: return "invalid header name";
	case GMIME_CRIT_CONFLICTING_HEADER:
		/* two Subjects or Dates do not break the structure; two Content-Types do */
		if (item == NULL || g_ascii_strncasecmp(item, "Content-", 8) != 0)
			return NULL;
		return "conflicting header";
	case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting header parameter";
	case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "multipart without boundary";
	case GMIME_CRIT_NESTING_OVERFLOW: return "MIME nesting too deep";
	case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
		return w->header_only ? NULL : "part without headers or content";
	default: return NULL; /* duplicated headers, 8-bit headers, bad encoded words */
	}
}

/* mime_problem - remember the first serious problem GMime reports */
static void mime_problem(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
	struct mime_walk *w = data;
	const char *what = mime_problem_text(w, code, item);
	char *text;

	if (what == NULL || w->msg->parse_problem != NULL)
		return;
	text = offset >= 0
		       ? xasprintf("%s at offset %lld%s%.80s", what, (long long)(offset + w->base),
				   item ? ": " : "", item ? item : "")
		       : xasprintf("%s%s%.80s", what, item ? ": " : "", item ? item : "");
	mime_note(w->msg, text);
	free(text);
}

/* mime_problem_at - a problem the walk finds itself, in GMime's words
 * (offset -1: none, as GMime gives none for a truncated multipart); the
 * first one only, as for GMime's own */
static void mime_problem_at(struct mime_walk *w, const char *what, long long offset,
			    const char *item)
{
	char *text;

	if (w->msg->parse_problem != NULL)
		return;
	text = offset >= 0 ? xasprintf("%s at offset %lld%s%.80s", what, offset, item ? ": " : "",
				       item ? item : "")
			   : xasprintf("%s", what);

	mime_note(w->msg, text);
	free(text);
}

/* mime_add_rcpt - append a recipient unless its address is already there
 * (a hash set: a header with a million addresses must not cost n^2) */
static void mime_add_rcpt(struct mime_msg *msg, GHashTable *seen, const char *addr,
			  const char *name, enum mime_rcpt_type type)
{
	char *a = mime_clean(addr, MIME_ADDR_MAX), *key;

	g_strstrip(a);
	key = g_ascii_strdown(a, -1);
	if (*a == '\0' || g_hash_table_contains(seen, key)) {
		g_free(key);
		free(a);
		return;
	}
	g_hash_table_add(seen, key);
	msg->rcpts = xgrow(msg->rcpts, msg->nrcpts, sizeof(*msg->rcpts));
	msg->rcpts[msg->nrcpts].address = a;
	msg->rcpts[msg->nrcpts].display = name && *name ? mime_clean(name, MIME_NAME_MAX) : NULL;
	msg->rcpts[msg->nrcpts].type = type;
	msg->nrcpts++;
}

/* mime_add_list - the mailboxes of an address list, groups flattened */
static void mime_add_list(struct mime_msg *msg, GHashTable *seen, InternetAddressList *list,
			  enum mime_rcpt_type type, int depth)
{
	int i, n = list ? internet_address_list_length(list) : 0;

	for (i = 0; i < n && depth < 4; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia))
			mime_add_list(
				msg, seen,
				internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
				type, depth + 1);
		else if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			mime_add_rcpt(
				msg, seen,
				internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)),
				internet_address_get_name(ia), type);
	}
}

/* mime_first_mailbox - the first mailbox of a list (groups searched) */
static InternetAddress *mime_first_mailbox(InternetAddressList *list, int depth)
{
	int i, n = list ? internet_address_list_length(list) : 0;

	for (i = 0; i < n && depth < 4; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i), *m;

		if (INTERNET_ADDRESS_IS_MAILBOX(ia))
			return ia;
		if (INTERNET_ADDRESS_IS_GROUP(ia) &&
		    (m = mime_first_mailbox(
			     internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
			     depth + 1)))
			return m;
	}
	return NULL;
}

/* mime_parse_ids - the message ids of a header value, in order */
static char **mime_parse_ids(GMimeParserOptions *opts, const char *value, size_t *n_r)
{
	GMimeReferences *refs;
	char **ids = NULL, *id;
	int i, n, first;
	size_t k = 0;

	*n_r = 0;
	if (value == NULL || (refs = g_mime_references_parse(opts, value)) == NULL)
		return NULL;
	n = g_mime_references_length(refs);
	first = n > MIME_REFS_MAX ? n - MIME_REFS_MAX : 0;
	for (i = first; i < n; i++) {
		if ((id = mime_clean_id(g_mime_references_get_message_id(refs, i))) == NULL)
			continue;
		ids = xgrow(ids, k, sizeof(*ids));
		ids[k++] = id;
	}
	g_mime_references_free(refs);
	*n_r = k;
	return ids;
}

/* mime_lower_type - "type/subtype" in lower case */
static char *mime_lower_type(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	char *t = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	char *out = mime_clean(t ? t : "application/octet-stream", 255);

	g_free(t);
	for (t = out; *t; t++)
		*t = g_ascii_tolower(*t);
	return out;
}

/* mime_hash_region - size and SHA-256 of [off, off + len) of fd */
static int mime_hash_region(int fd, long long off, long long len, unsigned char out[SHA256_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char chunk[16384];
	int rc = 0;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		rc = -1;
	while (rc == 0 && len > 0) {
		ssize_t n = pread(fd, chunk,
				  len < (long long)sizeof(chunk) ? (size_t)len : sizeof(chunk),
				  (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = -1;
			break;
		}
		EVP_DigestUpdate(md, chunk, (size_t)n);
		off += n;
		len -= n;
	}
	if (rc == 0)
		EVP_DigestFinal_ex(md, out, NULL);
	EVP_MD_CTX_free(md);
	return rc;
}

/* mime_att_stream - the attachment memfd, created on first use */
static GMimeStream *mime_att_stream(struct mime_walk *w)
{
	if (w->att_stream == NULL) {
		int fd = memfd_create("postroom-attachments", MFD_CLOEXEC);

		if (fd < 0) {
			w->error = 1;
			w->error_text = xasprintf("memfd_create: %s", strerror(errno));
			return NULL;
		}
		w->msg->att_fd = fd;
		w->att_stream = g_mime_stream_fs_new(fd);
		g_mime_stream_fs_set_owner(GMIME_STREAM_FS(w->att_stream), FALSE);
	}
	return w->att_stream;
}

/* mime_drop_attachment - forget the attachment just written at start of
 * the memfd: over limits.attachment_size_max, it is not extracted */
static void mime_drop_attachment(struct mime_walk *w, GMimeStream *s, gint64 start, gint64 size)
{
	struct mime_msg *msg = w->msg;
	char *note;

	if (g_mime_stream_seek(s, start, GMIME_STREAM_SEEK_SET) < 0 ||
	    ftruncate(msg->att_fd, (off_t)start) < 0) {
		w->error = 1;
		w->error_text = xasprintf("truncating the attachments' memory file failed");
		return;
	}
	if (size > msg->oversize_size)
		msg->oversize_size = size;
	if (msg->noversize++ == 0) {
		note = xasprintf("attachment of %lld bytes exceeds limits.attachment_size_max"
				 " (%lld bytes): not extracted",
				 (long long)size, w->lim.attachment_size_max);
		mime_note(msg, note);
		free(note);
	}
}

/* mime_finish_attachment - the row of the attachment just written at
 * start of the memfd (or its removal when over the size limit) */
static void mime_finish_attachment(struct mime_walk *w, GMimeObject *obj, const char *filename,
				   GMimeStream *s, gint64 start)
{
	struct mime_msg *msg = w->msg;
	const char *disp = g_mime_object_get_disposition(obj);
	struct mime_attachment *a;
	char *name;

	if (w->lim.attachment_size_max > 0 &&
	    g_mime_stream_tell(s) - start > w->lim.attachment_size_max) {
		mime_drop_attachment(w, s, start, g_mime_stream_tell(s) - start);
		return;
	}
	msg->atts = xgrow(msg->atts, msg->natts, sizeof(*msg->atts));
	a = &msg->atts[msg->natts++];
	memset(a, 0, sizeof(*a));
	a->content_type = mime_lower_type(obj);
	/* the safe name from the whole name (a long one keeps its extension) */
	name = filename ? mime_clean(filename, 0) : NULL;
	a->filename = filename_safe(name, mime_default_filename(a->content_type));
	a->filename_original = name ? mime_clean(name, MIME_NAME_MAX) : NULL;
	free(name);
	a->content_id = mime_clean_id(g_mime_object_get_content_id(obj));
	a->is_inline = disp ? g_ascii_strcasecmp(disp, "inline") == 0 : a->content_id != NULL;
	a->offset = start;
	a->size = g_mime_stream_tell(s) - start;
	a->enc_len = -1;
	if (GMIME_IS_PART(obj) && w->leaf_end > w->leaf_start &&
	    g_mime_part_get_content_encoding(GMIME_PART(obj)) == GMIME_CONTENT_ENCODING_BASE64) {
		a->enc_offset = (long long)w->leaf_start;
		a->enc_len = (long long)(w->leaf_end - w->leaf_start);
	}
	if (mime_hash_region(msg->att_fd, a->offset, a->size, a->sha256) < 0) {
		w->error = 1;
		w->error_text = xasprintf("reading an attachment back from the memory file failed");
	}
}

/* mime_add_attachment - decode obj's content into the memfd and add its
 * row; raw (rawlen bytes), when not NULL, is written as it stands
 * instead (an attached message) */
static void mime_add_attachment(struct mime_walk *w, GMimeObject *obj, const char *filename,
				const char *raw, size_t rawlen)
{
	GMimeStream *s = mime_att_stream(w);
	gint64 start;
	ssize_t n = 0;

	if (s == NULL)
		return;
	start = g_mime_stream_tell(s);
	if (raw) {
		n = rawlen > 0 ? g_mime_stream_write(s, raw, rawlen) : 0;
	} else if (GMIME_IS_PART(obj)) {
		GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(obj));

		if (content)
			n = g_mime_data_wrapper_write_to_stream(content, s);
	}
	if (n < 0 || g_mime_stream_flush(s) < 0) {
		w->error = 1;
		w->error_text = xasprintf("writing an attachment to the memory file failed");
		return;
	}
	mime_finish_attachment(w, obj, filename, s, start);
}

/* part_decoded - a memory stream with the part's decoded bytes,
 * converted from charset to UTF-8 when charset is given */
static GMimeStream *part_decoded(GMimeDataWrapper *content, const char *charset)
{
	GMimeStream *mem = g_mime_stream_mem_new(), *filtered;
	GMimeFilter *filter = charset ? g_mime_filter_charset_new(charset, "utf-8") : NULL;

	if (filter) {
		filtered = g_mime_stream_filter_new(mem);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), filter);
		g_object_unref(filter);
		g_mime_data_wrapper_write_to_stream(content, filtered);
		g_mime_stream_flush(filtered);
		g_object_unref(filtered);
	} else {
		g_mime_data_wrapper_write_to_stream(content, mem);
	}
	return mem;
}

/* is_ascii - every byte below 0x80 and none NUL */
static int is_ascii(const guint8 *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] == 0 || p[i] >= 0x80)
			return 0;
	return 1;
}

enum as_is { AS_IS_NO, AS_IS_UTF8, AS_IS_ASCII };

/* charset_as_is - may a part in charset skip the conversion to UTF-8 when
 * its bytes are valid (as_is_valid)? Converting valid UTF-8 or ASCII to
 * UTF-8 copies it unchanged, and iconv was most of the cost of the text
 * parts (perf of postroom-lmtpd). */
static enum as_is charset_as_is(const char *charset)
{
	if (charset == NULL)
		return AS_IS_NO;
	if (g_ascii_strcasecmp(charset, "utf-8") == 0 || g_ascii_strcasecmp(charset, "utf8") == 0)
		return AS_IS_UTF8;
	if (g_ascii_strcasecmp(charset, "us-ascii") == 0)
		return AS_IS_ASCII;
	return AS_IS_NO;
}

/* as_is_valid - valid UTF-8 (without NUL), or ASCII, as kind says;
 * anything else (invalid bytes, a NUL) takes the conversion, as before */
static int as_is_valid(enum as_is kind, const GByteArray *b)
{
	return kind == AS_IS_UTF8 ? g_utf8_validate_len((const char *)b->data, b->len, NULL)
				  : is_ascii(b->data, b->len);
}

/* mime_part_text - the decoded UTF-8 text of a text part, whole: GMime's
 * g_mime_text_part_get_text returns a C string, which a NUL in the text
 * would cut, so the decoded bytes are taken with their length here (the
 * same steps: the part's charset, if any, converted to UTF-8) and every
 * NUL becomes U+FFFD */
static char *mime_part_text(struct mime_walk *w, GMimeObject *obj)
{
	GMimeDataWrapper *content =
		GMIME_IS_PART(obj) ? g_mime_part_get_content(GMIME_PART(obj)) : NULL;
	const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
	enum as_is kind = charset_as_is(charset);
	GMimeStream *mem = NULL;
	GByteArray *bytes = NULL;
	int valid = 0;
	char *out;

	if (content == NULL)
		return xstrdup("");
	if (kind != AS_IS_NO) {
		mem = part_decoded(content, NULL);
		bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
		if (!(valid = as_is_valid(kind, bytes))) {
			g_object_unref(mem);
			mem = NULL;
		}
	}
	if (mem == NULL) {
		mem = part_decoded(content, charset);
		bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	}
	if (!valid && bytes->len > 0 && memchr(bytes->data, '\0', bytes->len))
		w->nul_replaced = 1;
	if (valid || g_utf8_validate_len((const char *)bytes->data, bytes->len, NULL)) {
		/* valid already (the usual case): the decoded bytes themselves
		 * (g_malloc is malloc: freed by the caller with free) */
		g_byte_array_append(bytes, (const guint8 *)"", 1);
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
		g_object_unref(mem);
		return (char *)g_byte_array_free(bytes, FALSE);
	}
	out = mime_clean_utf8((const char *)bytes->data, bytes->len, 0);
	g_object_unref(mem);
	return out;
}

/* mime_text_drop - forget the pieces of a body about to be replaced */
static void mime_text_drop(struct mime_msg *msg, int html)
{
	size_t i, k = 0;

	for (i = 0; i < msg->ntexts; i++)
		if (msg->texts[i].html != html)
			msg->texts[k++] = msg->texts[i];
	msg->ntexts = k;
}

/* mime_text_add - the leaf being walked, whose text is [off, off + len)
 * of a body, as a piece raw_compact may cut (struct mime_text_piece);
 * nothing when its encoding or charset rules it out */
static void mime_text_add(struct mime_walk *w, GMimeObject *obj, int html, size_t off, size_t len)
{
	const char *cs = g_mime_object_get_content_type_parameter(obj, "charset");
	struct mime_text_piece *t;
	int b64 = 0;

	if (!GMIME_IS_PART(obj) || w->leaf_end <= w->leaf_start || len == 0)
		return;
	switch (g_mime_part_get_content_encoding(GMIME_PART(obj))) {
	case GMIME_CONTENT_ENCODING_DEFAULT:
	case GMIME_CONTENT_ENCODING_7BIT:
	case GMIME_CONTENT_ENCODING_8BIT:
	case GMIME_CONTENT_ENCODING_BINARY: break;
	case GMIME_CONTENT_ENCODING_BASE64: b64 = 1; break;
	default: return;
	}
	if (cs && g_ascii_strcasecmp(cs, "utf-8") != 0 && g_ascii_strcasecmp(cs, "utf8") != 0 &&
	    g_ascii_strcasecmp(cs, "us-ascii") != 0)
		return;
	w->msg->texts = xgrow(w->msg->texts, w->msg->ntexts, sizeof(*w->msg->texts));
	t = &w->msg->texts[w->msg->ntexts++];
	t->html = html;
	t->base64 = b64;
	t->body_off = (long long)off;
	t->len = (long long)len;
	t->enc_offset = (long long)w->leaf_start;
	t->enc_len = (long long)(w->leaf_end - w->leaf_start);
}

/* mime_leaf - a body candidate or an attachment */
static void mime_leaf(struct mime_walk *w, GMimeObject *obj, int in_alt)
{
	const char *disp = g_mime_object_get_disposition(obj);
	const char *filename = g_mime_part_get_filename(GMIME_PART(obj));
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	int attached = disp && g_ascii_strcasecmp(disp, "attachment") == 0;
	int plain = ct && g_mime_content_type_is_type(ct, "text", "plain");
	int html = ct && g_mime_content_type_is_type(ct, "text", "html");
	char *t;

	if (!attached && plain && (in_alt || !w->have_text || filename == NULL)) {
		t = mime_part_text(w, obj);
		if (in_alt || !w->have_text) {
			mime_text_drop(w->msg, 0);
			mime_text_add(w, obj, 0, 0, strlen(t));
			buf_adopt(&w->text, t, strlen(t)); /* a large body is not copied */
		} else {
			buf_append_char(&w->text, '\n');
			mime_text_add(w, obj, 0, w->text.len, strlen(t));
			buf_append_str(&w->text, t);
			free(t);
		}
		w->have_text = 1;
		return;
	}
	if (!attached && html && (in_alt || w->html == NULL)) {
		free(w->html);
		w->html = mime_part_text(w, obj);
		mime_text_drop(w->msg, 1);
		mime_text_add(w, obj, 1, 0, strlen(w->html));
		return;
	}
	mime_add_attachment(w, obj, filename, NULL, 0);
}

/* mime_region - a stream over [start, end) of the mapping (no copy) */
static GMimeStream *mime_region(struct mime_walk *w, size_t start, size_t end)
{
	return g_mime_stream_substream(w->whole, (gint64)start, (gint64)end);
}

/* mime_header_copied - GMime gets a copy of the header block, not the
 * block itself: more than MIME_FIELDS_MAX fields (filtered), or a large
 * block of folded fields (unfolded: GMime grows its buffer for a field
 * 64 bytes a line, a copy of the whole field each time when realloc
 * cannot grow in place, quadratic in a References of 100,000 ids) */
static int mime_header_copied(size_t hdr_len, size_t nfields, size_t nlines)
{
	return nfields > MIME_FIELDS_MAX || (hdr_len > MIME_UNFOLD_MIN && nlines > nfields);
}

/* mime_header_stream - what GMime parses of the header block at start:
 * the block and its empty line as they stand, or a filtered, unfolded
 * copy and an empty line (mime_header_copied) */
static GMimeStream *mime_header_stream(struct mime_walk *w, size_t start, size_t hdr_len,
				       size_t body_off, size_t nfields, size_t nlines)
{
	GMimeStream *s;
	size_t out_len, dropped;
	char *copy;

	if (!mime_header_copied(hdr_len, nfields, nlines))
		return mime_region(w, start, start + body_off);
	copy = mime_scan_filter_headers(w->map + start, hdr_len, MIME_FIELDS_MAX, mime_fields_kept,
					hdr_len > MIME_UNFOLD_MIN, &out_len, &dropped);
	w->nfiltered += dropped;
	s = g_mime_stream_mem_new_with_buffer(copy, out_len);
	g_mime_stream_seek(s, 0, GMIME_STREAM_SEEK_END);
	g_mime_stream_write(s, "\n", 1);
	g_mime_stream_reset(s);
	free(copy);
	return s;
}

/* mime_parse_headers - GMime's object for the header block of the entity
 * at start (ending at its empty line, or at a delimiter line of b): the
 * top-level message (msg_r set) or a part; *body_r where its body starts */
static GMimeObject *mime_parse_headers(struct mime_walk *w, size_t start,
				       const struct mime_bounds *b, size_t *body_r,
				       GMimeMessage **msg_r)
{
	size_t hdr_len, nfields, nlines, body_off;
	GMimeStream *s;
	GMimeParser *parser;
	GMimeObject *obj = NULL;

	body_off =
		mime_scan_headers(w->map + start, w->len - start, b, &hdr_len, &nfields, &nlines);
	*body_r = start + body_off;
	s = mime_header_stream(w, start, hdr_len, body_off, nfields, nlines);
	parser = g_mime_parser_new_with_stream(s);
	/* a substream's offsets are the message's; a copy's are its own */
	w->base = mime_header_copied(hdr_len, nfields, nlines) ? (gint64)start : 0;
	w->header_only = 1;
	if (msg_r) {
		g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
		*msg_r = g_mime_parser_construct_message(parser, w->opts);
		if (*msg_r && (obj = g_mime_message_get_mime_part(*msg_r)))
			g_object_ref(obj);
	} else {
		obj = g_mime_parser_construct_part(parser, w->opts);
	}
	w->header_only = 0;
	g_object_unref(parser);
	g_object_unref(s);
	return obj;
}

/* mime_set_content - the content of a leaf part: [start, end) of the
 * mapping, decoded by the part's transfer encoding (what GMime's parser
 * gives a part, a reference into its stream) */
static void mime_set_content(struct mime_walk *w, GMimePart *part, size_t start, size_t end)
{
	GMimeStream *s = mime_region(w, start, end);
	GMimeDataWrapper *content =
		g_mime_data_wrapper_new_with_stream(s, g_mime_part_get_content_encoding(part));

	g_mime_part_set_content(part, content);
	g_object_unref(content);
	g_object_unref(s);
}

/* mime_count_part - one more leaf or attached message; 0 past the limit */
static int mime_count_part(struct mime_walk *w)
{
	if (w->nparts >= w->lim.parts_max) {
		w->parts_over = 1;
		return 0;
	}
	w->nparts++;
	return 1;
}

/* the walk's place: the boundaries around it, and what GMime's parser
 * would know of the parent (inside an alternative, a digest) */
struct mime_place {
	struct mime_bounds *b;
	int in_alt, digest, depth;
};

static void mime_walk_at(struct mime_walk *w, size_t start, const struct mime_place *pl,
			 struct mime_delim *end);

/* mime_walk_children - the parts of the multipart obj (headers at head,
 * body at start), one after the other, each freed before the next,
 * until its closing delimiter and epilogue; *end what ended it (a
 * delimiter of an outer multipart, or none). Problems as GMime words
 * them: no closing delimiter, a truncated message; none but the closing
 * one, a multipart without parts (at its header offset). */
static void mime_walk_children(struct mime_walk *w, GMimeObject *obj, size_t head, size_t start,
			       const struct mime_place *pl, struct mime_delim *end)
{
	static const char truncated[] =
		"truncated message (a multipart lacks its closing boundary)";
	const char *boundary = g_mime_multipart_get_boundary(GMIME_MULTIPART(obj));
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	struct mime_place child = { pl->b, pl->in_alt, 0, pl->depth + 1 };
	struct mime_bounds *b = pl->b;
	int mine = (int)b->n;
	struct mime_delim d;

	if (boundary == NULL || *boundary == '\0' || b->n >= MIME_SCAN_DEPTH_MAX) {
		/* GMime has said "multipart without boundary": content to skip */
		mime_scan_boundary(w->map, w->len, start, b, end);
		return;
	}
	child.in_alt |= ct && g_mime_content_type_is_type(ct, "multipart", "alternative");
	child.digest = ct && g_mime_content_type_is_type(ct, "multipart", "digest");
	b->boundary[b->n] = boundary;
	b->len[b->n++] = strlen(boundary);
	mime_scan_boundary(w->map, w->len, start, b, &d); /* the end of the prologue */
	if (d.which == mine && d.close)
		mime_problem_at(w, "multipart without parts", (long long)head,
				ct ? g_mime_content_type_get_media_subtype(ct) : NULL);
	while (d.which == mine && !d.close && !w->error && !w->parts_over)
		mime_walk_at(w, d.next, &child, &d);
	if (d.which == mine && !d.close) /* stopped early: skip the rest of this multipart */
		while (d.which == mine && !d.close)
			mime_scan_boundary(w->map, w->len, d.next, b, &d);
	b->n--;
	if (d.which == mine) { /* closed: the epilogue runs to an outer delimiter */
		mime_scan_boundary(w->map, w->len, d.next, b, end);
		return;
	}
	if (d.which >= 0) /* an outer delimiter came first: GMime's words */
		mime_problem_at(w, "multipart without parts", (long long)head,
				ct ? g_mime_content_type_get_media_subtype(ct) : NULL);
	else
		mime_problem_at(w, truncated, -1, NULL);
	*end = d;
}

/* mime_release - give the pages of the mapping below the message
 * offset upto back to the kernel once MIME_READ_MAX of them are walked
 * (MADV_DONTNEED: a private read-only file mapping is faulted in again
 * from the spool if read later), so that the parse of a large message
 * does not hold all of it in its RSS (bench/lmtp-bench's 45 MiB message:
 * its text body and its whole mapping at once, 1.59x its size) */
static void mime_release(struct mime_walk *w, size_t upto)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t to;

	if (w->unmap == NULL)
		return;
	to = (size_t)(w->map - w->unmap) + upto;
	to -= to % (size_t)page;
	if (to < w->released + MIME_READ_MAX)
		return;
	(void)madvise(w->unmap + w->released, to - w->released, MADV_DONTNEED);
	w->released = to;
}

/* mime_walk_entity - the entity whose header block GMime has parsed into
 * obj (at head; body at body): a multipart's parts, an attached message
 * copied as it stands, or a leaf; *end the delimiter that ends it */
static void mime_walk_entity(struct mime_walk *w, GMimeObject *obj, size_t head, size_t body,
			     const struct mime_place *pl, struct mime_delim *end)
{
	int message = GMIME_IS_MESSAGE_PART(obj);

	if (GMIME_IS_MULTIPART(obj)) {
		if (pl->depth < MIME_DEPTH_MAX) {
			mime_walk_children(w, obj, head, body, pl, end);
			return;
		}
		w->too_deep = 1;
	}
	mime_scan_boundary(w->map, w->len, body, pl->b, end);
	if (GMIME_IS_MULTIPART(obj) || !mime_count_part(w))
		return;
	/* a digest's part without a Content-Type is a message (RFC 2046 5.1.5) */
	if (!message && pl->digest && g_mime_object_get_header(obj, "Content-Type") == NULL) {
		GMimeContentType *ct = g_mime_content_type_parse(w->opts, "message/rfc822");

		g_mime_object_set_content_type(obj, ct);
		g_object_unref(ct);
		message = 1;
	}
	if (message) {
		const char *name = g_mime_object_get_content_disposition_parameter(obj, "filename");

		if (name == NULL)
			name = g_mime_object_get_content_type_parameter(obj, "name");
		w->leaf_start = w->leaf_end = 0; /* copied as it stands: nothing to cut */
		mime_add_attachment(w, obj, name, w->map + body, end->content_end - body);
	} else if (GMIME_IS_PART(obj)) {
		mime_set_content(w, GMIME_PART(obj), body, end->content_end);
		w->leaf_start = body;
		w->leaf_end = end->content_end;
		mime_leaf(w, obj, pl->in_alt);
	}
	mime_release(w, end->content_end);
}

/* mime_walk_at - the part starting at start: its header block parsed
 * alone, then walked; freed before the next part */
static void mime_walk_at(struct mime_walk *w, size_t start, const struct mime_place *pl,
			 struct mime_delim *end)
{
	size_t body;
	GMimeObject *obj = mime_parse_headers(w, start, pl->b, &body, NULL);

	if (obj == NULL) {
		if (start < w->len) /* at the end: "truncated", said by the caller */
			mime_problem_at(w, "part without headers or content", (long long)start,
					NULL);
		mime_scan_boundary(w->map, w->len, body, pl->b, end);
		return;
	}
	mime_walk_entity(w, obj, start, body, pl, end);
	g_object_unref(obj);
}

/* mime_top_headers - copy the headers down to the second Received: (this
 * hop's headers and what milters inserted below its Received:, for
 * lib/verdict.c), raw values unfolded by the reader */
static void mime_top_headers(struct mime_msg *msg, GMimeHeaderList *list)
{
	int i, n = list ? g_mime_header_list_get_count(list) : 0, received = 0;

	msg->top_headers = xcalloc((size_t)n + 1, sizeof(*msg->top_headers));
	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = g_mime_header_get_name(h);
		const char *value = g_mime_header_get_raw_value(h);

		msg->top_headers[i].name = mime_clean(name ? name : "", 0);
		msg->top_headers[i].value = mime_clean(value ? value : "", 0);
		msg->ntop_headers = (size_t)i + 1;
		if (name && g_ascii_strcasecmp(name, "Received") == 0 && ++received == 2)
			break;
	}
}

/* mime_class_headers - copy the fields of mime_class_fields (at most 64) */
static void mime_class_headers(struct mime_msg *msg, GMimeHeaderList *list)
{
	int i, k, n = list ? g_mime_header_list_get_count(list) : 0;

	for (i = 0; i < n && msg->nclass_headers < 64; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = g_mime_header_get_name(h);
		const char *value = g_mime_header_get_raw_value(h);

		for (k = 0; name && mime_class_fields[k]; k++)
			if (g_ascii_strcasecmp(name, mime_class_fields[k]) == 0)
				break;
		if (name == NULL || mime_class_fields[k] == NULL)
			continue;
		msg->class_headers =
			xgrow(msg->class_headers, msg->nclass_headers, sizeof(*msg->class_headers));
		msg->class_headers[msg->nclass_headers].name = mime_clean(mime_class_fields[k], 0);
		msg->class_headers[msg->nclass_headers].value =
			mime_clean(value ? value : "", MIME_SUBJECT_MAX);
		msg->nclass_headers++;
	}
}

/* mime_report_type - the report-type of a top-level multipart/report */
static void mime_report_type(struct mime_msg *msg, GMimeObject *top)
{
	GMimeContentType *ct = top ? g_mime_object_get_content_type(top) : NULL;
	const char *rt;
	char *p;

	if (ct == NULL || !g_mime_content_type_is_type(ct, "multipart", "report"))
		return;
	rt = g_mime_content_type_get_parameter(ct, "report-type");
	msg->report_type = mime_clean(rt ? rt : "", 255);
	for (p = msg->report_type; *p; p++)
		*p = g_ascii_tolower(*p);
}

/* mime_fill_headers - the header fields of the top-level message */
static void mime_fill_headers(struct mime_msg *msg, GMimeMessage *m, GMimeParserOptions *opts)
{
	GMimeObject *o = GMIME_OBJECT(m);
	InternetAddress *from = mime_first_mailbox(g_mime_message_get_from(m), 0);
	const char *subject = g_mime_message_get_subject(m), *name;
	char **irt;
	size_t n, i;

	msg->message_id = mime_clean_id(g_mime_message_get_message_id(m));
	if (from) {
		msg->from_address = mime_clean(
			internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(from)),
			MIME_ADDR_MAX);
		g_strstrip(msg->from_address);
		name = internet_address_get_name(from);
		msg->from_display = name && *name ? mime_clean(name, MIME_NAME_MAX) : NULL;
	}
	if (subject) {
		msg->subject = mime_clean(subject, MIME_SUBJECT_MAX);
		g_strstrip(msg->subject);
		if (*msg->subject == '\0')
			xfree(&msg->subject);
	}
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	mime_add_list(msg, seen, g_mime_message_get_to(m), MIME_TO, 0);
	mime_add_list(msg, seen, g_mime_message_get_cc(m), MIME_CC, 0);
	mime_add_list(msg, seen, g_mime_message_get_bcc(m), MIME_BCC, 0);
	g_hash_table_destroy(seen);
	irt = mime_parse_ids(opts, g_mime_object_get_header(o, "In-Reply-To"), &n);
	if (n > 0)
		msg->in_reply_to = irt[0];
	for (i = 1; i < n; i++)
		free(irt[i]);
	free(irt);
	msg->references =
		mime_parse_ids(opts, g_mime_object_get_header(o, "References"), &msg->nreferences);
	msg->submission_hdr = mime_clean(g_mime_object_get_header(o, "X-Postroom-Submission"), 0);
	mime_top_headers(msg, g_mime_object_get_header_list(o));
	mime_class_headers(msg, g_mime_object_get_header_list(o));
}

/* mime_defaults - the documented defaults for what the message lacks */
static void mime_defaults(struct mime_msg *msg, const unsigned char id[SHA256_LEN])
{
	char hex[2 * SHA256_LEN + 1];

	if (msg->message_id == NULL) {
		crypto_hex(id, 16, hex);
		msg->message_id = xasprintf("%s@postroom.generated", hex);
		msg->message_id_generated = 1;
	}
	if (msg->from_address == NULL)
		msg->from_address = xstrdup("");
	if (msg->subject == NULL)
		msg->subject = xstrdup("(No Subject)");
}

/* mime_map - the message at [start, end) of fd: read into the heap up to
 * MIME_READ_MAX (munmap in a threaded process costs every CPU a TLB
 * flush: postroom-lmtpd's 8 sessions parsed 0.5 ms a message instead of
 * 0.3), mapped read-only above; NULL with errno set when it cannot be.
 * What to munmap is returned in unmap_r and unmap_len_r (from the page
 * boundary below start), what to free in heap_r. */
static const char *mime_map(int fd, long long start, long long end, size_t *len_r, void **unmap_r,
			    size_t *unmap_len_r, char **heap_r)
{
	static const char empty[1] = { 0 };
	long page = sysconf(_SC_PAGESIZE);
	long long from;
	struct stat st;
	void *p;

	if (end < 0) {
		if (fstat(fd, &st) < 0)
			return NULL;
		end = st.st_size;
	}
	*unmap_r = NULL;
	*unmap_len_r = 0;
	*heap_r = NULL;
	*len_r = end > start ? (size_t)(end - start) : 0;
	if (*len_r == 0)
		return empty;
	if (*len_r <= MIME_READ_MAX) {
		ssize_t n;

		*heap_r = xmalloc(*len_r);
		if ((n = store_spool_pread_all(fd, *heap_r, *len_r, start)) != (ssize_t)*len_r) {
			xfree(heap_r);
			errno = n < 0 ? errno : EIO;
			return NULL;
		}
		return *heap_r;
	}
	from = start - start % page;
	p = mmap(NULL, (size_t)(end - from), PROT_READ, MAP_PRIVATE, fd, (off_t)from);
	if (p == MAP_FAILED)
		return NULL;
	*unmap_r = p;
	*unmap_len_r = (size_t)(end - from);
	return (const char *)p + (start - from);
}

/* mime_whole_stream - a GMime memory stream over the mapping: the byte
 * array wraps map without copying, and the stream does not own it */
static GMimeStream *mime_whole_stream(const char *map, size_t len, GByteArray **array_r)
{
	GMimeStream *s;

	*array_r = g_byte_array_new_take((guint8 *)map, len);
	s = g_mime_stream_mem_new_with_byte_array(*array_r);
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
	return s;
}

/* mime_walk_message - the top-level header block, then the body */
static void mime_walk_message(struct mime_walk *w)
{
	struct mime_msg *msg = w->msg;
	struct mime_bounds bounds = { .n = 0 };
	struct mime_place top_place = { &bounds, 0, 0, 0 };
	struct mime_delim end;
	GMimeMessage *m = NULL;
	GMimeObject *top;
	size_t body;

	top = mime_parse_headers(w, 0, NULL, &body, &m);
	if (m == NULL) {
		if (msg->parse_problem == NULL)
			msg->parse_problem = xstrdup("no message header could be parsed");
		if (top)
			g_object_unref(top);
		return;
	}
	mime_fill_headers(msg, m, w->opts);
	mime_report_type(msg, top);
	if (top) {
		mime_walk_entity(w, top, 0, body, &top_place, &end);
		g_object_unref(top);
	}
	g_object_unref(m);
}

/* mime_walk_notes - what the limits left out, in parse_problem */
static void mime_walk_notes(struct mime_walk *w)
{
	char *note;

	if (w->nul_replaced)
		mime_note(w->msg, "NUL bytes in the text replaced by U+FFFD");
	if (w->nfiltered > 0) {
		note = xasprintf("%zu header fields beyond the first %d of a header block not read",
				 w->nfiltered, MIME_FIELDS_MAX);
		mime_note(w->msg, note);
		free(note);
	}
	if (w->too_deep) {
		note = xasprintf("MIME nesting deeper than %d levels: the parts below not"
				 " extracted",
				 MIME_DEPTH_MAX);
		mime_note(w->msg, note);
		free(note);
	}
	if (w->parts_over) {
		note = xasprintf("MIME parts beyond limits.mime_parts_max (%zu) not extracted",
				 w->lim.parts_max);
		mime_note(w->msg, note);
		free(note);
	}
}

int mime_parse(int fd, long long start, long long end, const unsigned char id[SHA256_LEN],
	       const struct mime_limits *lim, struct mime_msg **msg_r, char **error_r)
{
	static const char *fallback[] = { "UTF-8", "windows-1252", NULL };
	struct mime_msg *msg;
	struct mime_walk w;
	GByteArray *array;
	size_t unmap_len;
	void *unmap;
	char *heap;

	mime_global_init();
	memset(&w, 0, sizeof(w));
	if (lim)
		w.lim = *lim;
	if (w.lim.parts_max == 0)
		w.lim.parts_max = MIME_PARTS_MAX_DEFAULT;
	if ((w.map = mime_map(fd, start, end, &w.len, &unmap, &unmap_len, &heap)) == NULL) {
		*error_r = xasprintf("mapping the message: %s", strerror(errno));
		return -1;
	}
	w.unmap = unmap;
	w.msg = msg = xcalloc(1, sizeof(*msg));
	msg->att_fd = -1;
	w.opts = g_mime_parser_options_new();
	g_mime_parser_options_set_rfc2047_compliance_mode(w.opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(w.opts, fallback);
	g_mime_parser_options_set_warning_callback(w.opts, mime_problem, &w);
	w.whole = mime_whole_stream(w.map, w.len, &array);
	mime_walk_message(&w);
	mime_walk_notes(&w);
	if (w.have_text)
		msg->text_body = buf_steal(&w.text);
	buf_free(&w.text);
	msg->html_body = w.html;
	mime_defaults(msg, id);
	if (w.att_stream)
		g_object_unref(w.att_stream);
	g_object_unref(w.whole);
	g_byte_array_free(array, FALSE);
	g_mime_parser_options_free(w.opts);
	if (unmap)
		munmap(unmap, unmap_len);
	free(heap);
	if (w.error) {
		*error_r = w.error_text;
		mime_msg_free(&msg);
		return -1;
	}
	*msg_r = msg;
	return 0;
}

void mime_msg_free(struct mime_msg **mp)
{
	struct mime_msg *msg = *mp;
	size_t i;

	if (msg == NULL)
		return;
	for (i = 0; i < msg->nrcpts; i++) {
		free(msg->rcpts[i].address);
		free(msg->rcpts[i].display);
	}
	for (i = 0; i < msg->natts; i++) {
		free(msg->atts[i].filename);
		free(msg->atts[i].filename_original);
		free(msg->atts[i].content_type);
		free(msg->atts[i].content_id);
	}
	for (i = 0; i < msg->nreferences; i++)
		free(msg->references[i]);
	if (msg->att_fd >= 0)
		close(msg->att_fd);
	free(msg->rcpts);
	free(msg->atts);
	free(msg->texts);
	free(msg->references);
	free(msg->message_id);
	free(msg->from_address);
	free(msg->from_display);
	free(msg->subject);
	free(msg->text_body);
	free(msg->html_body);
	free(msg->in_reply_to);
	free(msg->parse_problem);
	free(msg->submission_hdr);
	for (i = 0; i < msg->ntop_headers; i++) {
		free((char *)msg->top_headers[i].name);
		free((char *)msg->top_headers[i].value);
	}
	free(msg->top_headers);
	for (i = 0; i < msg->nclass_headers; i++) {
		free((char *)msg->class_headers[i].name);
		free((char *)msg->class_headers[i].value);
	}
	free(msg->class_headers);
	free(msg->report_type);
	xfree(mp);
}
