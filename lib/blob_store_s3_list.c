/*
 * NAME
 *	blob_store_s3_list - the XML answer of S3's ListObjectsV2
 * DESCRIPTION
 *	Parses one page of a bucket listing with expat (no hand-parsed
 *	XML): for each <Contents> its <Key>, <LastModified> and <Size>; at
 *	the top level <IsTruncated> and <NextContinuationToken>. Keys of the
 *	blob_s3_key layout ("ab/cd/<64 hex>") become digests; any other key
 *	is only counted (blobs gc never touches what postroom did not
 *	write). Pure: no I/O, reads no configuration.
 * NEVER
 *	follows an external entity or a DTD; keeps more than a capped
 *	amount of one element's text.
 */
#include "blob_store.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define S3L_TEXT_MAX 2048 /* one element's text: keys are at most 1024 */

enum s3l_field { S3L_NONE, S3L_KEY, S3L_MTIME, S3L_SIZE, S3L_TRUNC, S3L_TOKEN };

struct s3l {
	XML_Parser xp;
	struct blob_list *page;
	int depth;    /* 1: ListBucketResult */
	int contents; /* inside a <Contents> (at depth 2) */
	enum s3l_field field;
	char text[S3L_TEXT_MAX + 1];
	size_t tlen;
	int too_long;
	char key[S3L_TEXT_MAX + 1], mtime[64], size[32];
	int truncated;
	char *token;
	char *error;
};

/* s3l_local - the local name of an element (after any namespace
 * prefix: expat runs without namespace processing) */
static const char *s3l_local(const char *name)
{
	const char *c = strrchr(name, ':');

	return c ? c + 1 : name;
}

/* s3l_fail - stop the parser with an error (the first one stays) */
static void s3l_fail(struct s3l *l, char *msg)
{
	if (l->error == NULL)
		l->error = msg;
	else
		free(msg);
	XML_StopParser(l->xp, XML_FALSE);
}

static void XMLCALL s3l_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct s3l *l = arg;
	const char *n = s3l_local(name);

	l->depth++;
	l->field = S3L_NONE;
	l->tlen = 0;
	l->too_long = 0;
	if (l->depth == 2 && strcmp(n, "Contents") == 0) {
		l->contents = 1;
		l->key[0] = l->mtime[0] = l->size[0] = '\0';
	} else if (l->depth == 3 && l->contents) {
		l->field = strcmp(n, "Key") == 0            ? S3L_KEY
			   : strcmp(n, "LastModified") == 0 ? S3L_MTIME
			   : strcmp(n, "Size") == 0         ? S3L_SIZE
							    : S3L_NONE;
	} else if (l->depth == 2) {
		l->field = strcmp(n, "IsTruncated") == 0             ? S3L_TRUNC
			   : strcmp(n, "NextContinuationToken") == 0 ? S3L_TOKEN
								     : S3L_NONE;
	}
}

static void XMLCALL s3l_chars(void *arg, const XML_Char *s, int len)
{
	struct s3l *l = arg;

	if (l->field == S3L_NONE || len <= 0)
		return;
	if (l->tlen + (size_t)len > S3L_TEXT_MAX) {
		l->too_long = 1;
		return;
	}
	memcpy(l->text + l->tlen, s, (size_t)len);
	l->tlen += (size_t)len;
}

/* s3l_copy - the element's text into out (outlen bytes), or fail */
static int s3l_copy(struct s3l *l, char *out, size_t outlen, const char *what)
{
	if (l->too_long || l->tlen >= outlen) {
		s3l_fail(l, xasprintf("ListObjectsV2: <%s> too long", what));
		return -1;
	}
	memcpy(out, l->text, l->tlen);
	out[l->tlen] = '\0';
	return 0;
}

/* s3l_object - the <Contents> just closed, into the page */
static void s3l_object(struct s3l *l)
{
	struct blob_list *p = l->page;
	struct blob_object o;
	char *end;

	if (blob_s3_key_digest(l->key, o.digest) < 0) {
		p->foreign++;
		return;
	}
	if (blob_s3_time(l->mtime, &o.mtime) < 0) {
		s3l_fail(l, xasprintf("ListObjectsV2: LastModified \"%s\" of %s is not a time",
				      l->mtime, l->key));
		return;
	}
	o.size = strtoll(l->size, &end, 10);
	if (l->size[0] == '\0' || *end != '\0' || o.size < 0) {
		s3l_fail(l, xasprintf("ListObjectsV2: Size \"%s\" of %s is not a size", l->size,
				      l->key));
		return;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 256;
		p->objs = xrealloc(p->objs, p->cap * sizeof(*p->objs));
	}
	p->objs[p->n++] = o;
}

static void XMLCALL s3l_end(void *arg, const XML_Char *name)
{
	struct s3l *l = arg;

	switch (l->field) {
	case S3L_KEY: s3l_copy(l, l->key, sizeof(l->key), "Key"); break;
	case S3L_MTIME: s3l_copy(l, l->mtime, sizeof(l->mtime), "LastModified"); break;
	case S3L_SIZE: s3l_copy(l, l->size, sizeof(l->size), "Size"); break;
	case S3L_TRUNC: l->truncated = l->tlen == 4 && memcmp(l->text, "true", 4) == 0; break;
	case S3L_TOKEN:
		if (!l->too_long) {
			free(l->token);
			l->token = xstrndup(l->text, l->tlen);
		}
		break;
	case S3L_NONE: break;
	}
	l->field = S3L_NONE;
	if (l->depth == 2 && l->contents) {
		l->contents = 0;
		s3l_object(l);
	}
	l->depth--;
}

/* s3l_no_dtd - refuse any DOCTYPE: no entity is ever expanded */
static void XMLCALL s3l_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
				const XML_Char *pubid, int has_internal_subset)
{
	struct s3l *l = arg;

	s3l_fail(l, xstrdup("ListObjectsV2: a DOCTYPE in the answer"));
}

int blob_s3_list_parse(const char *xml, size_t len, struct blob_list *page, char **error_r)
{
	struct s3l l;
	int ok;

	memset(&l, 0, sizeof(l));
	l.page = page;
	free(page->next);
	page->next = NULL;
	if ((l.xp = XML_ParserCreate("UTF-8")) == NULL) {
		*error_r = xstrdup("ListObjectsV2: XML_ParserCreate failed");
		return -1;
	}
	XML_SetUserData(l.xp, &l);
	XML_SetElementHandler(l.xp, s3l_start, s3l_end);
	XML_SetCharacterDataHandler(l.xp, s3l_chars);
	XML_SetStartDoctypeDeclHandler(l.xp, s3l_doctype);
	ok = XML_Parse(l.xp, xml, (int)len, XML_TRUE) == XML_STATUS_OK;
	if (!ok && l.error == NULL)
		l.error = xasprintf("ListObjectsV2: malformed XML at line %lu: %s",
				    (unsigned long)XML_GetCurrentLineNumber(l.xp),
				    XML_ErrorString(XML_GetErrorCode(l.xp)));
	XML_ParserFree(l.xp);
	if (l.error == NULL && l.truncated && (l.token == NULL || l.token[0] == '\0'))
		l.error = xstrdup("ListObjectsV2: truncated answer without NextContinuationToken");
	if (l.error) {
		free(l.token);
		*error_r = l.error;
		return -1;
	}
	if (l.truncated)
		page->next = l.token;
	else
		free(l.token);
	return 0;
}
