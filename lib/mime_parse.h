/* mime_parse.h - a message as the rows postroom stores (GMime 3 does all
 * MIME work: headers, RFC 2047 words, RFC 2231 parameters, charsets,
 * transfer decoding).
 *
 * CONTRACT: mime_parse never fails because of the message: whatever GMime
 * cannot make sense of is reported in parse_problem and the fields are
 * best effort. All strings are valid UTF-8 without NUL bytes (what a
 * PostgreSQL text column takes); the caller frees the result with
 * mime_msg_free. Attachment contents are decoded into one memfd
 * (att_fd) at [offset, offset + size), not into the heap. */
#ifndef POSTROOM_MIME_PARSE_H
#define POSTROOM_MIME_PARSE_H

#include <stddef.h>

#include "verdict.h"

#include "crypto.h"

enum mime_rcpt_type { MIME_TO, MIME_CC, MIME_BCC };

struct mime_rcpt {
	char *address; /* addr-spec as written */
	char *display; /* decoded display name or NULL */
	enum mime_rcpt_type type;
};

struct mime_attachment {
	char *filename;          /* filename_safe() of the decoded name, or generated */
	char *filename_original; /* decoded as given (first 1024 bytes), NULL: none */
	char *content_type;      /* lower-case type/subtype */
	char *content_id;        /* without angle brackets, or NULL */
	int is_inline;
	long long offset; /* decoded content in the message's att_fd */
	long long size;
	unsigned char sha256[SHA256_LEN];
	/* a base64 leaf part: its encoded body is [enc_offset, enc_offset +
	 * enc_len) of the message (what lib/raw_compact may cut out);
	 * enc_len -1: not base64, or an attached message copied as it stands */
	long long enc_offset, enc_len;
};

/* what mime_parse extracts at most (the message itself is always stored
 * whole): attachments over attachment_size_max decoded bytes are not
 * extracted (0: no limit); parts beyond the first parts_max are not
 * walked (0: MIME_PARTS_MAX_DEFAULT). Both are said in parse_problem. */
/* a text part whose decoded text is part of text_body or html_body and
 * may be cut out of the raw message like an attachment (lib/raw_compact
 * compares before cutting): charset absent, UTF-8 or US-ASCII, and no
 * transfer encoding (7bit, 8bit, binary: the text is the encoded body
 * itself) or base64. The text is [body_off, body_off + len) of the
 * body; its encoded body [enc_offset, enc_offset + enc_len) of the
 * message. */
struct mime_text_piece {
	int html; /* in html_body, else in text_body */
	int base64;
	long long body_off, len;
	long long enc_offset, enc_len;
};

struct mime_limits {
	long long attachment_size_max;
	size_t parts_max;
};

#define MIME_PARTS_MAX_DEFAULT 50000
#define MIME_PARTS_MAX_MIN 20000

struct mime_msg {
	char *message_id; /* without angle brackets; generated when missing */
	int message_id_generated;
	char *from_address;          /* "" when missing */
	char *from_display;          /* NULL when none */
	char *subject;               /* "(No Subject)" when missing or empty */
	char *text_body, *html_body; /* NULL when none */
	char *in_reply_to;           /* NULL when none */
	char **references;           /* in header order */
	size_t nreferences;
	struct mime_rcpt *rcpts; /* distinct addresses: first of To, Cc, Bcc */
	size_t nrcpts;
	struct mime_attachment *atts;
	size_t natts;
	struct mime_text_piece *texts; /* in message order */
	size_t ntexts;
	/* the largest decoded size of an attachment left out for being over
	 * attachment_size_max (0: none was), and how many were left out */
	long long oversize_size;
	size_t noversize;
	int att_fd;          /* memfd with the decoded attachments, -1 when none */
	char *parse_problem; /* NULL when the structure parsed cleanly */
	/* raw value of the milter's signed submission header (topmost), or NULL */
	char *submission_hdr;
	/* the top-level headers in message order, down to and including the
	 * second Received: (what lib/verdict.c reads: this hop's headers) */
	struct verdict_header *top_headers;
	size_t ntop_headers;
	/* what lib/mail_class.c reads: the report-type parameter (lower
	 * case) of a top-level multipart/report, else NULL; the top-level
	 * fields named in mime_class_fields (mime_parse.c), in message order */
	char *report_type;
	struct verdict_header *class_headers;
	size_t nclass_headers;
};

/* mime_parse - parse the message at [start, end) of fd (end -1 = to EOF).
 * id is the message's identity (used for a generated Message-Id); lim
 * may be NULL (no attachment limit, the default parts limit).
 * Returns 0 with *msg_r set, or -1 with *error_r (caller frees) on a
 * system error (memory file, I/O), never because of the content. */
int mime_parse(int fd, long long start, long long end, const unsigned char id[SHA256_LEN],
	       const struct mime_limits *lim, struct mime_msg **msg_r, char **error_r);
void mime_msg_free(struct mime_msg **msg);

/* mime_default_filename - the generated name for a part without one
 * (static): image/jpeg -> attachment.jpg ... anything else -> attachment */
const char *mime_default_filename(const char *content_type);

/* mime_clean_utf8 - a copy of s (len bytes) that is valid UTF-8 with no
 * NUL bytes (invalid sequences become U+FFFD, NULs are dropped),
 * truncated to at most max bytes on a character boundary (0 = no limit) */
char *mime_clean_utf8(const char *s, size_t len, size_t max);

#endif
