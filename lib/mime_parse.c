/*
 * NAME
 *	mime_parse - turn a spooled message into the rows postroom stores
 * DESCRIPTION
 *	GMime 3 parses the message from memory when it is small (one read of
 *	the spool fd) and straight from the spool fd otherwise (persistent
 *	stream: part contents stay references into the fd). The walk picks
 *	what a mail client shows: the text/plain and text/html alternatives
 *	(the last of each kind inside multipart/alternative, nested related
 *	and mixed parts walked), and everything else that is a leaf part or
 *	an attached message becomes an attachment: decoded into one memfd,
 *	measured and hashed there. Header fields are decoded (RFC 2047,
 *	RFC 2231, charsets) and cleaned to valid UTF-8 without NUL bytes, and
 *	bounded in length so that no index entry can overflow.
 * NEVER
 *	fails or crashes because of the message's content: problems GMime
 *	reports are collected in parse_problem; holds an attachment in the heap.
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
#include "store_spool.h"
#include "xalloc.h"

#define MIME_ID_MAX 900  /* Message-Id, In-Reply-To, each reference */
#define MIME_REFS_MAX 64 /* the last ones are kept */
#define MIME_ADDR_MAX 512
#define MIME_NAME_MAX 1024 /* display names, filenames */
#define MIME_SUBJECT_MAX 4096
#define MIME_MEM_MAX (1024 * 1024) /* parsed from memory up to this size */
#define MIME_PROBLEM_MAX 1000

struct mime_walk {
	struct mime_msg *msg;
	struct mime_limits lim;
	size_t nparts;           /* leaf parts and attached messages seen */
	size_t nskipped;         /* of them, beyond lim.parts_max */
	GMimeStream *att_stream; /* over msg->att_fd */
	struct buf text;         /* text/plain body being built */
	int have_text;
	char *html;
	int error; /* a system error while writing */
	char *error_text;
};

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
	char *nonul = xmalloc(len + 1), *valid, *out;
	size_t i, n = 0, vlen;

	for (i = 0; i < len; i++)
		if (s[i] != '\0')
			nonul[n++] = s[i];
	nonul[n] = '\0';
	valid = g_utf8_make_valid(nonul, (gssize)n);
	free(nonul);
	vlen = strlen(valid);
	if (max > 0 && vlen > max) {
		const char *cut = g_utf8_find_prev_char(valid, valid + max + 1);

		vlen = cut ? (size_t)(cut - valid) : 0;
	}
	out = xstrndup(valid, vlen);
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

/* mime_problem - remember the first serious problem GMime reports */
static void mime_problem(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
	struct mime_msg *msg = data;
	const char *what;

	switch (code) {
	case GMIME_WARN_MALFORMED_MULTIPART: what = "multipart without parts"; break;
	case GMIME_WARN_TRUNCATED_MESSAGE:
		what = "truncated message (a multipart lacks its closing boundary)";
		break;
	case GMIME_WARN_MALFORMED_MESSAGE: what = "malformed message"; break;
	case GMIME_CRIT_INVALID_HEADER_NAME: what = "invalid header name"; break;
	case GMIME_CRIT_CONFLICTING_HEADER:
		/* two Subjects or Dates do not break the structure; two Content-Types do */
		if (item == NULL || g_ascii_strncasecmp(item, "Content-", 8) != 0)
			return;
		what = "conflicting header";
		break;
	case GMIME_CRIT_CONFLICTING_PARAMETER: what = "conflicting header parameter"; break;
	case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: what = "multipart without boundary"; break;
	case GMIME_CRIT_NESTING_OVERFLOW: what = "MIME nesting too deep"; break;
	case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
		what = "part without headers or content";
		break;
	default: return; /* cosmetic: duplicated headers, 8-bit headers, bad encoded words */
	}
	if (msg->parse_problem == NULL) {
		char *text =
			offset >= 0
				? xasprintf("%s at offset %lld%s%.80s", what, (long long)offset,
					    item ? ": " : "", item ? item : "")
				: xasprintf("%s%s%.80s", what, item ? ": " : "", item ? item : "");

		msg->parse_problem = mime_clean(text, 0);
		free(text);
	}
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
	msg->rcpts = xrealloc(msg->rcpts, (msg->nrcpts + 1) * sizeof(*msg->rcpts));
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
		ids = xrealloc(ids, (k + 1) * sizeof(*ids));
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

/* mime_add_attachment - decode obj into the memfd and add its row */
static void mime_add_attachment(struct mime_walk *w, GMimeObject *obj, const char *filename)
{
	struct mime_msg *msg = w->msg;
	struct mime_attachment *a;
	char *name;
	GMimeStream *s = mime_att_stream(w);
	const char *disp = g_mime_object_get_disposition(obj);
	gint64 start;
	ssize_t n = 0;

	if (s == NULL)
		return;
	start = g_mime_stream_tell(s);
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

		if (inner)
			n = g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, s);
	} else {
		GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(obj));

		if (content)
			n = g_mime_data_wrapper_write_to_stream(content, s);
	}
	if (n < 0 || g_mime_stream_flush(s) < 0) {
		w->error = 1;
		w->error_text = xasprintf("writing an attachment to the memory file failed");
		return;
	}
	if (w->lim.attachment_size_max > 0 &&
	    g_mime_stream_tell(s) - start > w->lim.attachment_size_max) {
		mime_drop_attachment(w, s, start, g_mime_stream_tell(s) - start);
		return;
	}
	msg->atts = xrealloc(msg->atts, (msg->natts + 1) * sizeof(*msg->atts));
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
	if (mime_hash_region(msg->att_fd, a->offset, a->size, a->sha256) < 0) {
		w->error = 1;
		w->error_text = xasprintf("reading an attachment back from the memory file failed");
	}
}

/* mime_part_text - the decoded UTF-8 text of a text part */
static char *mime_part_text(GMimeObject *obj)
{
	char *t = GMIME_IS_TEXT_PART(obj) ? g_mime_text_part_get_text(GMIME_TEXT_PART(obj)) : NULL;
	char *out = mime_clean(t ? t : "", 0);

	g_free(t);
	return out;
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
		t = mime_part_text(obj);
		if (in_alt)
			buf_truncate(&w->text, 0);
		else if (w->have_text)
			buf_append_char(&w->text, '\n');
		buf_append_str(&w->text, t);
		w->have_text = 1;
		free(t);
		return;
	}
	if (!attached && html && (in_alt || w->html == NULL)) {
		free(w->html);
		w->html = mime_part_text(obj);
		return;
	}
	mime_add_attachment(w, obj, filename);
}

/* mime_walk_obj - walk the MIME tree depth-first, in order */
static void mime_walk_obj(struct mime_walk *w, GMimeObject *obj, int in_alt, int depth)
{
	if (obj == NULL || w->error || depth > 64)
		return;
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		int alt = ct && g_mime_content_type_is_type(ct, "multipart", "alternative");
		int i, n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));

		for (i = 0; i < n; i++)
			mime_walk_obj(w, g_mime_multipart_get_part(GMIME_MULTIPART(obj), i),
				      in_alt || alt, depth + 1);
	} else if (w->nparts++ >= w->lim.parts_max) {
		w->nskipped++;
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		const char *name = g_mime_object_get_content_disposition_parameter(obj, "filename");

		if (name == NULL)
			name = g_mime_object_get_content_type_parameter(obj, "name");
		mime_add_attachment(w, obj, name);
	} else if (GMIME_IS_PART(obj)) {
		mime_leaf(w, obj, in_alt);
	}
}

/* mime_top_headers - copy the headers down to the first Received: (this
 * hop's headers, for lib/verdict.c), raw values unfolded by the reader */
static void mime_top_headers(struct mime_msg *msg, GMimeHeaderList *list)
{
	int i, n = list ? g_mime_header_list_get_count(list) : 0;

	msg->top_headers = xcalloc((size_t)n + 1, sizeof(*msg->top_headers));
	for (i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = g_mime_header_get_name(h);
		const char *value = g_mime_header_get_raw_value(h);

		msg->top_headers[i].name = mime_clean(name ? name : "", 0);
		msg->top_headers[i].value = mime_clean(value ? value : "", 0);
		msg->ntop_headers = (size_t)i + 1;
		if (name && g_ascii_strcasecmp(name, "Received") == 0)
			break;
	}
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

/* mime_open - the stream the parser reads: a message up to
 * MIME_MEM_MAX is read into memory at once (GMime reads a file stream
 * in small pieces with a seek before each, and again for every part it
 * decodes); a larger one is read from its file, so that it is never
 * held in memory whole. NULL when the file cannot be read. */
static GMimeStream *mime_open(int fd, long long start, long long end)
{
	GMimeStream *stream;
	struct stat st;
	char *data;
	ssize_t n;

	if (end < 0 && fstat(fd, &st) == 0)
		end = st.st_size;
	if (end < start || end - start > MIME_MEM_MAX) {
		stream = g_mime_stream_fs_new_with_bounds(fd, start, end < start ? -1 : end);
		g_mime_stream_fs_set_owner(GMIME_STREAM_FS(stream), FALSE);
		return stream;
	}
	data = xmalloc((size_t)(end - start) + 1);
	if ((n = store_spool_pread_all(fd, data, (size_t)(end - start), start)) != end - start) {
		free(data);
		errno = n < 0 ? errno : 0;
		return NULL;
	}
	stream = g_mime_stream_mem_new_with_buffer(data, (size_t)n);
	free(data);
	return stream;
}

int mime_parse(int fd, long long start, long long end, const unsigned char id[SHA256_LEN],
	       const struct mime_limits *lim, struct mime_msg **msg_r, char **error_r)
{
	static const char *fallback[] = { "UTF-8", "windows-1252", NULL };
	struct mime_msg *msg = xcalloc(1, sizeof(*msg));
	struct mime_walk w;
	GMimeParserOptions *opts;
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *m;

	mime_global_init();
	memset(&w, 0, sizeof(w));
	w.msg = msg;
	if (lim)
		w.lim = *lim;
	if (w.lim.parts_max == 0)
		w.lim.parts_max = MIME_PARTS_MAX_DEFAULT;
	msg->att_fd = -1;
	opts = g_mime_parser_options_new();
	g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_fallback_charsets(opts, fallback);
	g_mime_parser_options_set_warning_callback(opts, mime_problem, msg);
	if ((stream = mime_open(fd, start, end)) == NULL) {
		g_mime_parser_options_free(opts);
		free(msg);
		*error_r = xasprintf("reading the message back from its memory file: %s",
				     errno ? strerror(errno) : "short read");
		return -1;
	}
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	m = g_mime_parser_construct_message(parser, opts);
	if (m == NULL) {
		if (msg->parse_problem == NULL)
			msg->parse_problem = xstrdup("no message header could be parsed");
	} else {
		mime_fill_headers(msg, m, opts);
		mime_walk_obj(&w, g_mime_message_get_mime_part(m), 0, 0);
		g_object_unref(m);
	}
	if (w.nskipped > 0) {
		char *note = xasprintf("%zu MIME parts beyond limits.mime_parts_max (%zu) not"
				       " extracted",
				       w.nskipped, w.lim.parts_max);

		mime_note(msg, note);
		free(note);
	}
	if (w.have_text)
		msg->text_body = buf_steal(&w.text);
	buf_free(&w.text);
	msg->html_body = w.html;
	mime_defaults(msg, id);
	if (w.att_stream)
		g_object_unref(w.att_stream);
	g_object_unref(parser);
	g_object_unref(stream);
	g_mime_parser_options_free(opts);
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
	xfree(mp);
}
