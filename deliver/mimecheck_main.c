/*
 * NAME
 *	postroom-mimecheck - is an attachment over the limit? (Exim's DATA ACL)
 * SYNOPSIS
 *	postroom-mimecheck [-c FILE] [MESSAGE]
 *	postroom-mimecheck [-c FILE] -e SPOOL_DIRECTORY MESSAGE_ID HEADERS
 * DESCRIPTION
 *	The check postroom-milter makes at end of data, for an MTA without
 *	milters: lib/mime_check (lib/mime_parse with limits.attachment_size_max
 *	and limits.mime_parts_max), so the answer is exactly what
 *	postroom-deliver would count. The message is a file (or standard
 *	input), or with -e what Exim's DATA ACL has: the headers
 *	($message_headers_raw) and the spool data file SPOOL/input/ID-D (or
 *	SPOOL/input/X/ID-D with split_spool_directory, X the sixth character
 *	of the id), whose first line is its own name. It is copied to a
 *	memory file (lib/store_spool's writer), never to the heap.
 *	Exit 0: no attachment over the limit, nothing printed. Exit 1: one
 *	line on standard output, "attachment of N bytes exceeds the limit of
 *	M bytes". Otherwise (64 usage, 66 no spool file, 74 I/O, 78
 *	configuration) a message on standard error and in syslog.
 *	Parameters: limits.attachment_size_max, limits.mime_parts_max,
 *	limits.message_size_max (no more than this plus 64 KiB is read: a
 *	larger message is the MTA's message_size_limit's to refuse).
 * NEVER
 *	decodes MIME itself, writes to the spool, prints anything but the
 *	one line on standard output.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "mime_check.h"
#include "store_spool.h"
#include "xalloc.h"

#define MIMECHECK_PROG "postroom-mimecheck"
#define MIMECHECK_CHUNK 65536

/* What lives until exit, reachable from here (no leak at exit). */
static struct conf *mimecheck_cfg;
static struct store_spool mimecheck_sp = { -1, 0, 0, 0, { 0 } };

static void mimecheck_cleanup(void)
{
	conf_free(&mimecheck_cfg);
	store_spool_close(&mimecheck_sp);
}

static void mimecheck_usage(void)
{
	fprintf(stderr,
		"usage: " MIMECHECK_PROG " [-c FILE] [MESSAGE]\n"
		"       " MIMECHECK_PROG " [-c FILE] -e SPOOL_DIRECTORY MESSAGE_ID HEADERS\n");
	exit(EX_USAGE);
}

/* mimecheck_copy - the rest of fd into the writer; skip_line drops the
 * first line (the -D file's own name) */
static void mimecheck_copy(int fd, struct store_spool_writer *w, int skip_line)
{
	char *buf = xmalloc(MIMECHECK_CHUNK), *err = NULL, *p;
	ssize_t n;

	while ((n = read(fd, buf, MIMECHECK_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			log_fatal(EX_IOERR, "cannot read the message: %s", strerror(errno));
		p = buf;
		if (skip_line) {
			char *nl = memchr(buf, '\n', (size_t)n);
			if (nl == NULL)
				continue; /* still in the first line */
			skip_line = 0;
			p = nl + 1;
		}
		if (store_spool_writer_put(w, p, (size_t)(buf + n - p), &err) < 0)
			log_fatal(EX_IOERR, "cannot copy the message to a memory file: %s", err);
		if (w->too_big)
			break;
	}
	free(buf);
}

/* mimecheck_open_data - Exim's -D file of id, split spool or not */
static int mimecheck_open_data(const char *spool, const char *id)
{
	char *path = xasprintf("%s/input/%s-D", spool, id);
	int fd;

	if (strchr(id, '/') != NULL || strlen(id) < 6)
		log_fatal(EX_USAGE, "not an Exim message id: %s", id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == ENOENT) {
		free(path);
		path = xasprintf("%s/input/%c/%s-D", spool, id[5], id);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		log_fatal(EX_NOINPUT, "cannot open %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

/* mimecheck_spool - the message into a memory file: with exim_headers,
 * they, an empty line and the -D file's body; else the whole file. The
 * writer's CRLF size in *size_r. */
static void mimecheck_spool(const char *file, const char *spool, const char *id,
			    const char *exim_headers, long long size_max, long long *size_r)
{
	struct store_spool_writer w;
	char *err = NULL;
	size_t hlen;
	int fd = 0;

	if (store_spool_writer_open(&w, &mimecheck_sp, size_max, &err) < 0)
		log_fatal(EX_OSERR, "%s", err);
	if (exim_headers) {
		hlen = strlen(exim_headers);
		fd = mimecheck_open_data(spool, id);
		if (store_spool_writer_put(&w, exim_headers, hlen, &err) < 0 ||
		    (hlen > 0 && exim_headers[hlen - 1] != '\n' &&
		     store_spool_writer_put(&w, "\n", 1, &err) < 0) ||
		    store_spool_writer_put(&w, "\n", 1, &err) < 0)
			log_fatal(EX_IOERR, "cannot copy the message to a memory file: %s", err);
	} else if (file && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		log_fatal(EX_NOINPUT, "cannot open %s: %s", file, strerror(errno));
	}
	mimecheck_copy(fd, &w, exim_headers != NULL);
	if (fd > 0)
		close(fd);
	*size_r = w.too_big ? -1 : w.crlf;
	if (store_spool_writer_close(&w, &err) < 0)
		log_fatal(EX_IOERR, "cannot copy the message to a memory file: %s", err);
}

int main(int argc, char **argv)
{
	const char *conf_path = POSTROOM_CONFIG_DEFAULT, *file = NULL;
	struct mime_limits lim;
	long long size, oversize;
	char *err = NULL;
	int opt, exim = 0;

	log_init(MIMECHECK_PROG, 1, 0);
	atexit(mimecheck_cleanup);
	while ((opt = getopt(argc, argv, "c:eh")) != -1) {
		if (opt == 'c')
			conf_path = optarg;
		else if (opt == 'e')
			exim = 1;
		else
			mimecheck_usage();
	}
	if (exim ? argc - optind != 3 : argc - optind > 1)
		mimecheck_usage();
	if (!exim && optind < argc)
		file = argv[optind];
	if ((mimecheck_cfg = conf_load(conf_path, 0, &err)) == NULL)
		log_fatal(EX_CONFIG, "configuration error: %s", err);
	lim.attachment_size_max = conf_int(mimecheck_cfg, "limits.attachment_size_max");
	lim.parts_max = (size_t)conf_int(mimecheck_cfg, "limits.mime_parts_max");
	mimecheck_spool(file, exim ? argv[optind] : NULL, exim ? argv[optind + 1] : NULL,
			exim ? argv[optind + 2] : NULL,
			conf_int(mimecheck_cfg, "limits.message_size_max"), &size);
	if (size < 0)
		return 0; /* over limits.message_size_max: not this check's to refuse */
	if (mime_check_attachments(mimecheck_sp.fd, 0, mimecheck_sp.len, size, &lim, &oversize,
				   &err) < 0)
		log_fatal(EX_IOERR, "attachment check: %s", err);
	if (oversize == 0)
		return 0;
	err = mime_check_reason(oversize, lim.attachment_size_max);
	printf("%s\n", err);
	free(err);
	return 1;
}
