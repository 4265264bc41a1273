/*
 * NAME
 *	lmtp-load - LMTP load client for the delivery benchmarks
 * SYNOPSIS
 *	lmtp-load [-s SESSIONS] [-r RCPT[,RCPT...]] [-f SENDER] [-n MAX]
 *		SOCKET PATH...
 * DESCRIPTION
 *	Reads the message files named by PATH (a file, or a directory whose
 *	regular files are taken in name order), converts each to CRLF line
 *	endings with dot-stuffing (before the clock starts), then opens
 *	SESSIONS connections to SOCKET (a unix socket path, or HOST:PORT)
 *	at once. Session k sends messages k, k + SESSIONS, ... over its one
 *	connection: LHLO, then per message MAIL FROM (with SIZE= when the
 *	server offers SIZE), one RCPT TO per recipient, DATA and the
 *	message, pipelined when the server offers PIPELINING (as Postfix's
 *	lmtp client does), and reads one reply per accepted recipient after
 *	the final dot (RFC 2033). A message counts as delivered only when
 *	every recipient got a 2xx reply after the dot. Prints "name value"
 *	lines: messages, delivered, failed, seconds, per_second, p50_ms,
 *	p99_ms, bytes. The first failing replies go to stderr. Exit status
 *	0 when every message was delivered, 1 otherwise, 2 on usage error.
 * NEVER
 *	Never retries a message: a failure is reported, not hidden.
 */
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct msg {
	char *data; /* CRLF, dot-stuffed, without the final dot */
	size_t len;
	size_t raw_len; /* the file's size */
};

struct conn {
	int fd;
	char buf[8192];
	size_t have, pos;
	int pipelining, size_ext;
};

static struct msg *msgs;
static size_t nmsgs, msgs_cap;
static char **rcpts;
static int nrcpts;
static const char *sender = "sender@example.org";
static const char *target;
static int nsessions = 1;
static double *lat; /* per message, ms; -1 when it failed */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int errors_shown;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("lmtp-load: out of memory");
	return p;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* report - print one failure (the first 20 of the run) */
static void report(int session, const char *what, const char *reply)
{
	pthread_mutex_lock(&err_lock);
	if (errors_shown++ < 20)
		fprintf(stderr, "lmtp-load: session %d: %s: %s\n", session, what,
			reply ? reply : strerror(errno));
	pthread_mutex_unlock(&err_lock);
}

/* stuff - the file's bytes with CRLF line endings and leading dots doubled */
static void stuff(struct msg *m, const char *raw, size_t n)
{
	size_t i, o = 0;
	int bol = 1;

	m->data = xmalloc(2 * n + 3);
	for (i = 0; i < n; i++) {
		if (bol && raw[i] == '.')
			m->data[o++] = '.';
		bol = 0;
		if (raw[i] == '\n') {
			if (i == 0 || raw[i - 1] != '\r')
				m->data[o++] = '\r';
			bol = 1;
		}
		m->data[o++] = raw[i];
	}
	if (!bol) {
		m->data[o++] = '\r';
		m->data[o++] = '\n';
	}
	m->len = o;
	m->raw_len = n;
}

/* load_file - read one message file and add it to msgs */
static void load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	char *raw;

	if (f == NULL || fstat(fileno(f), &st) < 0)
		die("lmtp-load: %s: %s", path, strerror(errno));
	raw = xmalloc(st.st_size);
	if (st.st_size > 0 && fread(raw, 1, st.st_size, f) != (size_t)st.st_size)
		die("lmtp-load: %s: short read", path);
	fclose(f);
	if (nmsgs == msgs_cap) {
		msgs_cap = msgs_cap ? 2 * msgs_cap : 1024;
		msgs = realloc(msgs, msgs_cap * sizeof(*msgs));
		if (msgs == NULL)
			die("lmtp-load: out of memory");
	}
	stuff(&msgs[nmsgs++], raw, st.st_size);
	free(raw);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* load_path - a file, or every regular file of a directory in name order */
static void load_path(const char *path)
{
	struct stat st;
	struct dirent *d;
	char **names = NULL, full[4096];
	size_t n = 0, cap = 0, i;
	DIR *dir;

	if (stat(path, &st) < 0)
		die("lmtp-load: %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode)) {
		load_file(path);
		return;
	}
	if ((dir = opendir(path)) == NULL)
		die("lmtp-load: %s: %s", path, strerror(errno));
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				die("lmtp-load: out of memory");
		}
		names[n++] = strdup(d->d_name);
	}
	closedir(dir);
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
			load_file(full);
		free(names[i]);
	}
	free(names);
}

/* dial - connect to a unix socket path or HOST:PORT; -1 on failure */
static int dial(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char host[256];
	const char *colon;
	int fd;

	if (target[0] == '/') {
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", target);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	colon = strrchr(target, ':');
	if (colon == NULL || (size_t)(colon - target) >= sizeof(host))
		return -1;
	memcpy(host, target, colon - target);
	host[colon - target] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* read_line - one line without its CRLF into line; -1 on EOF or error */
static int read_line(struct conn *c, char *line, size_t size)
{
	size_t o = 0;
	ssize_t r;
	char ch;

	for (;;) {
		if (c->pos == c->have) {
			r = read(c->fd, c->buf, sizeof(c->buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return -1;
			c->have = r;
			c->pos = 0;
		}
		ch = c->buf[c->pos++];
		if (ch == '\n')
			break;
		if (ch != '\r' && o + 1 < size)
			line[o++] = ch;
	}
	line[o] = '\0';
	return 0;
}

/* read_reply - a whole (possibly multi-line) reply; its last line in line;
 * returns the code, -1 on EOF. With ext set, notes LHLO extensions. */
static int read_reply(struct conn *c, char *line, size_t size, int ext)
{
	for (;;) {
		if (read_line(c, line, size) < 0 || strlen(line) < 3)
			return -1;
		if (ext && strlen(line) > 4) {
			if (strncasecmp(line + 4, "PIPELINING", 10) == 0)
				c->pipelining = 1;
			if (strncasecmp(line + 4, "SIZE", 4) == 0)
				c->size_ext = 1;
		}
		if (line[3] != '-')
			return atoi(line);
	}
}

/* envelope - write MAIL, the RCPTs and DATA (at once when pipelining) and
 * read their replies; returns the number of accepted recipients, -2 when
 * DATA was refused, -1 when the connection is lost */
static int envelope(struct conn *c, int s, const struct msg *m)
{
	char cmd[1024], line[1024];
	int i, code, accepted = 0, step, nsteps = nrcpts + 2;

	for (step = 0; step < nsteps; step++) {
		if (step == 0 && c->size_ext)
			snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s> SIZE=%zu\r\n", sender, m->len);
		else if (step == 0)
			snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", sender);
		else if (step <= nrcpts)
			snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", rcpts[step - 1]);
		else
			snprintf(cmd, sizeof(cmd), "DATA\r\n");
		if (write_all(c->fd, cmd, strlen(cmd)) < 0)
			return -1;
		if (c->pipelining && step + 1 < nsteps)
			continue;
		for (i = c->pipelining ? 0 : step; i <= step; i++) {
			code = read_reply(c, line, sizeof(line), 0);
			if (code < 0)
				return -1;
			if (i == 0 && code / 100 != 2)
				report(s, "MAIL", line);
			else if (i > 0 && i <= nrcpts && code / 100 == 2)
				accepted++;
			else if (i > 0 && i <= nrcpts)
				report(s, "RCPT", line);
			else if (i == nsteps - 1 && code != 354) {
				report(s, "DATA", line);
				return -2;
			}
		}
	}
	return accepted;
}

/* transaction - deliver one message; 1 delivered, 0 refused, -1 lost */
static int transaction(struct conn *c, int s, const struct msg *m)
{
	char line[1024];
	int accepted, i, ok = 1, code;

	accepted = envelope(c, s, m);
	if (accepted == -2) /* no transaction: reset and go on */
		return write_all(c->fd, "RSET\r\n", 6) < 0 ||
				       read_reply(c, line, sizeof(line), 0) < 0
			       ? -1
			       : 0;
	if (accepted < 0)
		return -1;
	if (write_all(c->fd, m->data, m->len) < 0 || write_all(c->fd, ".\r\n", 3) < 0)
		return -1;
	for (i = 0; i < accepted; i++) {
		code = read_reply(c, line, sizeof(line), 0);
		if (code < 0)
			return -1;
		if (code / 100 != 2) {
			report(s, "after DATA", line);
			ok = 0;
		}
	}
	return ok && accepted == nrcpts;
}

/* session - one connection sending every nsessions-th message */
static void *session(void *arg)
{
	int s = (int)(long)arg, r;
	struct conn c = { .fd = -1 };
	char line[1024];
	size_t i;
	double t0;

	c.fd = dial();
	if (c.fd < 0) {
		report(s, "connect", NULL);
		return NULL;
	}
	if (read_reply(&c, line, sizeof(line), 0) != 220 ||
	    write_all(c.fd, "LHLO lmtp-load.example\r\n", 24) < 0 ||
	    read_reply(&c, line, sizeof(line), 1) != 250) {
		report(s, "greeting/LHLO", line);
		close(c.fd);
		return NULL;
	}
	for (i = s; i < nmsgs; i += nsessions) {
		t0 = now();
		r = transaction(&c, s, &msgs[i]);
		if (r < 0) {
			report(s, "connection lost", NULL);
			break;
		}
		if (r == 1)
			lat[i] = (now() - t0) * 1000;
	}
	(void)write_all(c.fd, "QUIT\r\n", 6);
	close(c.fd);
	return NULL;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* results - print the name/value lines; returns the number of failures */
static size_t results(double seconds)
{
	double *ok = xmalloc(nmsgs * sizeof(double));
	size_t i, n = 0, bytes = 0;

	for (i = 0; i < nmsgs; i++) {
		bytes += msgs[i].raw_len;
		if (lat[i] >= 0)
			ok[n++] = lat[i];
	}
	qsort(ok, n, sizeof(double), dbl_cmp);
	printf("sessions %d\nmessages %zu\nbytes %zu\ndelivered %zu\nfailed %zu\n", nsessions,
	       nmsgs, bytes, n, nmsgs - n);
	printf("seconds %.3f\nper_second %.1f\n", seconds, n / seconds);
	printf("p50_ms %.2f\np99_ms %.2f\n", n ? ok[n / 2] : 0.0,
	       n ? ok[(size_t)(n * 0.99) < n ? (size_t)(n * 0.99) : n - 1] : 0.0);
	free(ok);
	return nmsgs - n;
}

static void split_rcpts(char *list)
{
	char *tok, *save = NULL;

	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		rcpts = realloc(rcpts, (nrcpts + 1) * sizeof(*rcpts));
		if (rcpts == NULL)
			die("lmtp-load: out of memory");
		rcpts[nrcpts++] = tok;
	}
}

int main(int argc, char **argv)
{
	pthread_t *th;
	size_t i, max = (size_t)-1;
	double t0;
	int opt;

	while ((opt = getopt(argc, argv, "s:r:f:n:")) != -1) {
		switch (opt) {
		case 's': nsessions = atoi(optarg); break;
		case 'r': split_rcpts(optarg); break;
		case 'f': sender = optarg; break;
		case 'n': max = strtoul(optarg, NULL, 10); break;
		default:
			die("usage: lmtp-load [-s N] [-r RCPT,...] [-f SENDER] [-n MAX] SOCKET PATH...");
		}
	}
	signal(SIGPIPE, SIG_IGN); /* a server that closes is a failure, not our death */
	if (argc - optind < 2 || nsessions < 1)
		die("usage: lmtp-load [-s N] [-r RCPT,...] [-f SENDER] [-n MAX] SOCKET PATH...");
	if (nrcpts == 0)
		split_rcpts(strdup("rcpt@example.com"));
	target = argv[optind];
	for (i = optind + 1; i < (size_t)argc; i++)
		load_path(argv[i]);
	if (nmsgs > max)
		nmsgs = max;
	lat = xmalloc(nmsgs * sizeof(double));
	for (i = 0; i < nmsgs; i++)
		lat[i] = -1;
	th = xmalloc(nsessions * sizeof(*th));
	t0 = now();
	for (i = 0; i < (size_t)nsessions; i++)
		pthread_create(&th[i], NULL, session, (void *)(long)i);
	for (i = 0; i < (size_t)nsessions; i++)
		pthread_join(th[i], NULL);
	return results(now() - t0) == 0 ? 0 : 1;
}
