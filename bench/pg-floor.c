/*
 * NAME
 *	pg-floor - what storing a message in PostgreSQL costs at the least
 * SYNOPSIS
 *	pg-floor [-s SESSIONS] CONNINFO DIR
 * DESCRIPTION
 *	The floor under postroom-lmtpd's storing rate (issue 23): reads every
 *	regular file of DIR (before the clock starts), then opens SESSIONS
 *	connections at once. Session k stores messages k, k + SESSIONS, ...
 *	each as one INSERT of its bytes (a binary parameter) into
 *	floor_raw (id bigserial primary key, raw bytea, lz4 like the raw
 *	message of an email), in autocommit: one transaction and one durable
 *	commit a message, one round trip. No LMTP, no parsing, no other row
 *	or index: whatever stores the message in PostgreSQL with a durable
 *	commit pays at least this. Creates the table when missing. Prints
 *	"name value" lines as lmtp-load does: messages, delivered, failed,
 *	seconds, per_second, p50_ms, p99_ms, bytes.
 * NEVER
 *	Never retries a failed INSERT: a failure is counted, not hidden.
 *	Benchmark code, not part of postroom.
 */
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct msg {
	char *data;
	size_t len;
};

static struct msg *msgs;
static size_t nmsgs, cap;
static double *lat;
static int nsessions = 1;
static const char *conninfo;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "pg-floor: %s: %s\n", what, detail);
	exit(2);
}

static void load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;

	if (f == NULL || fstat(fileno(f), &st) < 0)
		die(path, strerror(errno));
	if (nmsgs == cap) {
		cap = cap ? 2 * cap : 1024;
		if ((msgs = realloc(msgs, cap * sizeof(*msgs))) == NULL)
			die("memory", "out of memory");
	}
	msgs[nmsgs].len = st.st_size;
	if ((msgs[nmsgs].data = malloc(st.st_size + 1)) == NULL)
		die("memory", "out of memory");
	if (fread(msgs[nmsgs].data, 1, st.st_size, f) != (size_t)st.st_size)
		die(path, "short read");
	fclose(f);
	nmsgs++;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* load_dir - every regular file of DIR, in name order (as lmtp-load) */
static void load_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, full[4096];
	size_t n = 0, i;
	struct stat st;

	if (d == NULL)
		die(dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if ((names = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			die("memory", "out of memory");
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", dir, names[i]);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
			load_file(full);
		free(names[i]);
	}
	free(names);
}

static PGconn *connect_db(void)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK)
		die("connect", PQerrorMessage(c));
	return c;
}

static void *session(void *arg)
{
	int s = (int)(long)arg;
	PGconn *c = connect_db();
	size_t i;

	for (i = s; i < nmsgs; i += nsessions) {
		const char *values[1] = { msgs[i].data };
		int lengths[1] = { (int)msgs[i].len }, formats[1] = { 1 };
		double t0 = now();
		PGresult *r = PQexecParams(c, "INSERT INTO floor_raw (raw) VALUES ($1)", 1, NULL,
					   values, lengths, formats, 0);

		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			lat[i] = (now() - t0) * 1000;
		else
			fprintf(stderr, "pg-floor: session %d: %s", s, PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return NULL;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	pthread_t *t;
	double t0, seconds, *ok;
	size_t i, n = 0, bytes = 0;
	PGconn *c;
	PGresult *r;
	int k;

	if (argc == 5 && strcmp(argv[1], "-s") == 0) {
		nsessions = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 3 || nsessions < 1)
		die("usage", "pg-floor [-s SESSIONS] CONNINFO DIR");
	conninfo = argv[1];
	load_dir(argv[2]);
	lat = malloc(nmsgs * sizeof(double));
	ok = malloc(nmsgs * sizeof(double));
	t = malloc(nsessions * sizeof(*t));
	if (lat == NULL || ok == NULL || t == NULL)
		die("memory", "out of memory");
	for (i = 0; i < nmsgs; i++)
		lat[i] = -1;
	c = connect_db();
	r = PQexec(c, "CREATE TABLE IF NOT EXISTS floor_raw (id bigserial PRIMARY KEY, "
		      "raw bytea COMPRESSION lz4 NOT NULL)");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		die("create table", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	t0 = now();
	for (k = 0; k < nsessions; k++)
		pthread_create(&t[k], NULL, session, (void *)(long)k);
	for (k = 0; k < nsessions; k++)
		pthread_join(t[k], NULL);
	seconds = now() - t0;
	for (i = 0; i < nmsgs; i++) {
		bytes += msgs[i].len;
		if (lat[i] >= 0)
			ok[n++] = lat[i];
	}
	qsort(ok, n, sizeof(double), dbl_cmp);
	printf("sessions %d\nmessages %zu\nbytes %zu\ndelivered %zu\nfailed %zu\n", nsessions,
	       nmsgs, bytes, n, nmsgs - n);
	printf("seconds %.3f\nper_second %.1f\n", seconds, n / seconds);
	printf("p50_ms %.2f\np99_ms %.2f\n", n ? ok[n / 2] : 0.0,
	       n ? ok[(size_t)(n * 0.99) < n ? (size_t)(n * 0.99) : n - 1] : 0.0);
	return n == nmsgs ? 0 : 1;
}
