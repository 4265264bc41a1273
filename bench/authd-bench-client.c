/*
 * NAME
 *	authd-bench-client - load generator for Dovecot auth-client servers
 * SYNOPSIS
 *	authd-bench-client SOCKET cached CONNS SECONDS USER PASS
 *	authd-bench-client SOCKET loaded QUEUE USER PASS QFILE
 *	authd-bench-client SOCKET uncached CONNS SECONDS QFILE
 *	authd-bench-client bcrypt HASH PASS SECONDS
 * DESCRIPTION
 *	cached: CONNS connections, each with one AUTH PLAIN in flight at a
 *	time (as a Postfix smtpd), for SECONDS; prints requests per second
 *	and latency percentiles. All answers must be OK.
 *	loaded: one connection authenticates USER/PASS once (warming a
 *	cache), then QUEUE connections each send one AUTH for another user of
 *	QFILE ("user key" lines, none cached yet, all different: QUEUE
 *	bcrypts), and the first connection times USER/PASS requests one
 *	after another until every queued one is answered (at least 20);
 *	prints their percentiles.
 *	uncached: as cached, connection i using user i of QFILE, against a
 *	server that verifies every request (authd with its cache off; Dovecot
 *	verifies even cached ones); verifications per second. Distinct users
 *	per connection: authd verifies identical concurrent attempts once.
 *	bcrypt: crypt_r(PASS, HASH) in a loop on one core for SECONDS.
 *	Works against postroom-authd and Dovecot's auth-client socket alike.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	char buf[8192];
	size_t len;
	double sent;
	unsigned id;
	const char *resp;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *m)
{
	perror(m);
	exit(1);
}

static void b64(const unsigned char *in, size_t len, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;

	for (i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static char *plain_resp(const char *user, const char *pass)
{
	unsigned char raw[1024];
	size_t ul = strlen(user), pl = strlen(pass);
	char *out = malloc(2048);

	raw[0] = 0;
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = 0;
	memcpy(raw + 2 + ul, pass, pl);
	b64(raw, 2 + ul + pl, out);
	return out;
}

/* readline - blocking read of one line into line; 0 ok */
static int readline(struct conn *c, char *line, size_t size)
{
	for (;;) {
		char *lf = memchr(c->buf, '\n', c->len);
		ssize_t n;

		if (lf) {
			size_t l = (size_t)(lf - c->buf);
			if (l >= size)
				l = size - 1;
			memcpy(line, c->buf, l);
			line[l] = '\0';
			c->len -= (size_t)(lf - c->buf) + 1;
			memmove(c->buf, lf + 1, c->len);
			return 0;
		}
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

static void conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sun;
	char line[512];

	memset(c, 0, sizeof(*c));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		die("connect");
	if (write(c->fd, "VERSION\t1\t0\nCPID\t4242\n", 22) != 22)
		die("write");
	do {
		if (readline(c, line, sizeof(line)) < 0)
			die("greeting");
	} while (strcmp(line, "DONE") != 0);
}

static void send_auth(struct conn *c, const char *resp, unsigned rip)
{
	char req[2600];
	int n;

	c->id++;
	n = snprintf(req, sizeof(req),
		     "AUTH\t%u\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\t"
		     "rip=10.%u.%u.%u\tsecured\tresp=%s\n",
		     c->id, (rip >> 16) & 255, (rip >> 8) & 255, rip & 255, resp);
	c->sent = now();
	if (write(c->fd, req, (size_t)n) != n)
		die("write");
}

/* read_qfile - "user key" lines as PLAIN responses; *n_r set */
static char **read_qfile(const char *path, int *n_r)
{
	FILE *f = fopen(path, "r");
	char u[512], k[512], **out = NULL;
	int n = 0;

	if (f == NULL)
		die(path);
	while (fscanf(f, "%511s %511s", u, k) == 2) {
		out = realloc(out, sizeof(*out) * (size_t)(n + 1));
		out[n++] = plain_resp(u, k);
	}
	fclose(f);
	if (n == 0)
		die("empty QFILE");
	*n_r = n;
	return out;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report_lat(const char *tag, double *lat, size_t n)
{
	if (n == 0) {
		printf("%s_p50_ms 0\n%s_p99_ms 0\n%s_max_ms 0\n", tag, tag, tag);
		return;
	}
	qsort(lat, n, sizeof(*lat), cmp);
	printf("%s_p50_ms %.3f\n%s_p99_ms %.3f\n%s_max_ms %.3f\n", tag, lat[n / 2] * 1e3, tag,
	       lat[(size_t)((double)n * 0.99)] * 1e3, tag, lat[n - 1] * 1e3);
}

/* run - CONNS connections in an epoll loop for SECONDS */
static void run(const char *path, int nconns, double seconds, char **resps, int nresps,
		int distinct, const char *want, const char *tag)
{
	struct conn *c = calloc((size_t)nconns, sizeof(*c));
	struct epoll_event ev[64];
	size_t cap = 1 << 22, n = 0, bad = 0;
	double *lat = malloc(cap * sizeof(double)), t0, end;
	unsigned rip = 1;
	int i, ep = epoll_create1(0);

	for (i = 0; i < nconns; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = &c[i] };

		conn_open(&c[i], path);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &e) < 0)
			die("epoll_ctl");
	}
	t0 = now();
	end = t0 + seconds;
	for (i = 0; i < nconns; i++) {
		c[i].resp = resps[i % nresps];
		send_auth(&c[i], c[i].resp, distinct ? rip++ : 1);
	}
	while (now() < end) {
		int k = epoll_wait(ep, ev, 64, 1000);

		for (i = 0; i < k; i++) {
			struct conn *cc = ev[i].data.ptr;
			char line[512];

			if (readline(cc, line, sizeof(line)) < 0)
				die("read");
			if (strncmp(line, want, strlen(want)) != 0 && bad++ < 3)
				fprintf(stderr, "unexpected: %s\n", line);
			if (n < cap)
				lat[n++] = now() - cc->sent;
			if (now() < end)
				send_auth(cc, cc->resp, distinct ? rip++ : 1);
		}
	}
	printf("%s_requests %zu\n%s_seconds %.2f\n%s_per_second %.1f\n%s_unexpected %zu\n", tag, n,
	       tag, now() - t0, tag, (double)n / (now() - t0), tag, bad);
	report_lat(tag, lat, n);
	for (i = 0; i < nconns; i++)
		close(c[i].fd);
	close(ep);
	free(c);
	free(lat);
}

static void loaded(const char *path, int queue, const char *good, char **bad, int nbad)
/* bad: the queued requests (right credentials of other users) */
{
	struct conn *q = calloc((size_t)queue, sizeof(*q)), probe;
	double lat[100000], t0;
	size_t n = 0;
	int i, outstanding = queue;
	char line[512];

	for (i = 0; i < queue; i++)
		conn_open(&q[i], path);
	conn_open(&probe, path);
	/* warm the cache for the probe */
	send_auth(&probe, good, 1);
	readline(&probe, line, sizeof(line));
	t0 = now();
	for (i = 0; i < queue; i++)
		send_auth(&q[i], bad[i % nbad], 100000 + (unsigned)i);
	while ((outstanding > 0 || n < 20) && n < 100000) {
		struct pollfd pf;

		send_auth(&probe, good, 1);
		if (readline(&probe, line, sizeof(line)) < 0)
			die("probe");
		lat[n++] = now() - probe.sent;
		if (strncmp(line, "OK", 2) != 0)
			fprintf(stderr, "probe: %s\n", line);
		for (i = 0; i < queue; i++) {
			if (q[i].fd < 0)
				continue;
			pf.fd = q[i].fd;
			pf.events = POLLIN;
			if (poll(&pf, 1, 0) == 1) {
				readline(&q[i], line, sizeof(line));
				if (strncmp(line, "OK", 2) != 0)
					fprintf(stderr, "queued: %s\n", line);
				close(q[i].fd);
				q[i].fd = -1;
				outstanding--;
			}
		}
	}
	printf("loaded_queue %d\nloaded_probes %zu\nloaded_drain_seconds %.2f\n", queue, n,
	       now() - t0);
	report_lat("loaded", lat, n);
	close(probe.fd);
	free(q);
}

static void bcrypt_rate(const char *hash, const char *pass, double seconds)
{
	struct crypt_data d;
	struct timespec c0, c1;
	double t0 = now();
	long n = 0;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	while (now() - t0 < seconds) {
		memset(&d, 0, sizeof(d));
		if (crypt_r(pass, hash, &d) == NULL)
			die("crypt_r");
		n++;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	printf("bcrypt_single_core_per_second %.2f\n", (double)n / (now() - t0));
	/* per CPU-second: what one bcrypt costs, whatever else runs here */
	printf("bcrypt_per_cpu_second %.2f\n",
	       (double)n /
		       ((double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9));
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "bcrypt") == 0) {
		bcrypt_rate(argv[2], argv[3], atof(argv[4]));
		return 0;
	}
	if (argc == 7 && strcmp(argv[2], "cached") == 0) {
		char tag[32], *resp = plain_resp(argv[5], argv[6]);

		snprintf(tag, sizeof(tag), "cached_c%s", argv[3]);
		run(argv[1], atoi(argv[3]), atof(argv[4]), &resp, 1, 0, "OK", tag);
		return 0;
	}
	if (argc == 7 && strcmp(argv[2], "loaded") == 0) {
		int n;
		char **q = read_qfile(argv[6], &n);

		loaded(argv[1], atoi(argv[3]), plain_resp(argv[4], argv[5]), q, n);
		return 0;
	}
	if (argc == 6 && strcmp(argv[2], "uncached") == 0) {
		int n;
		char **q = read_qfile(argv[5], &n);

		run(argv[1], atoi(argv[3]), atof(argv[4]), q, n, 1, "OK", "uncached");
		return 0;
	}
	fprintf(stderr, "usage: see the comment at the top of authd-bench-client.c\n");
	return 64;
}
