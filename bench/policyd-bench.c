/*
 * NAME
 *	policyd-bench - load generator for postroom-policyd
 * SYNOPSIS
 *	policyd-bench HOST PORT persistent|readsocket CONNECTIONS REQUESTS
 * DESCRIPTION
 *	CONNECTIONS threads each send REQUESTS RCPT requests: "persistent"
 *	on one connection per thread, one request at a time awaiting each
 *	reply (Postfix); "readsocket" with a new connection per request,
 *	half-closed after writing and read until EOF (Exim). Prints the
 *	rate and latency percentiles. Every reply must be action=DUNNO.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;
static int readsocket_mode, nreq;
static double *lat;
static int errors;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

static void bad(const char *what)
{
	pthread_mutex_lock(&err_lock);
	if (errors++ < 3)
		fprintf(stderr, "policyd-bench: %s\n", what);
	pthread_mutex_unlock(&err_lock);
}

/* one_request - send, read the reply (until the empty line, or EOF) */
static void one_request(int fd, const char *req, size_t len, int until_eof)
{
	char buf[512];
	size_t got = 0;
	ssize_t n;

	if (write(fd, req, len) != (ssize_t)len)
		bad("short write");
	if (until_eof)
		shutdown(fd, SHUT_WR);
	for (;;) {
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (!until_eof && got >= 2 && strcmp(buf + got - 2, "\n\n") == 0)
			break;
	}
	buf[got] = '\0';
	if (strncmp(buf, "action=DUNNO\n\n", 14) != 0)
		bad(buf);
}

static void *worker(void *arg)
{
	long id = (long)arg;
	char req[1024];
	int i, fd = -1;
	size_t len = (size_t)snprintf(
		req, sizeof(req),
		"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
		"client_address=198.51.100.%ld\nclient_name=client%ld.example\nhelo_name=client.example\n"
		"sender=someone@example.org\nrecipient=alice@postroom.test\nsasl_username=\n"
		"server_port=25\nqueue_id=\ninstance=bench.%ld\nsize=1234\n\n",
		id % 250 + 1, id, id);

	if (!readsocket_mode)
		fd = dial();
	for (i = 0; i < nreq; i++) {
		double t = now();

		if (readsocket_mode)
			fd = dial();
		one_request(fd, req, len, readsocket_mode);
		if (readsocket_mode)
			close(fd);
		lat[id * nreq + i] = now() - t;
	}
	if (!readsocket_mode)
		close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	pthread_t *t;
	long i, nconn;
	double start, secs;
	size_t total;

	if (argc != 6) {
		fprintf(stderr,
			"usage: policyd-bench HOST PORT persistent|readsocket CONNECTIONS REQUESTS\n");
		return 64;
	}
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short)atoi(argv[2]));
	inet_pton(AF_INET, argv[1], &addr.sin_addr);
	readsocket_mode = strcmp(argv[3], "readsocket") == 0;
	nconn = atol(argv[4]);
	nreq = atoi(argv[5]);
	total = (size_t)nconn * (size_t)nreq;
	lat = calloc(total, sizeof(*lat));
	t = calloc((size_t)nconn, sizeof(*t));
	start = now();
	for (i = 0; i < nconn; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (i = 0; i < nconn; i++)
		pthread_join(t[i], NULL);
	secs = now() - start;
	qsort(lat, total, sizeof(*lat), cmp);
	printf("%-10s conns=%-3ld requests=%-7zu %8.0f req/s  p50=%.3f ms  p99=%.3f ms  max=%.3f ms  errors=%d\n",
	       argv[3], nconn, total, total / secs, lat[total / 2] * 1e3,
	       lat[(size_t)(total * 0.99)] * 1e3, lat[total - 1] * 1e3, errors);
	return errors ? 1 : 0;
}
