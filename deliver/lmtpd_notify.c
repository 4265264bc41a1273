/*
 * NAME
 *	lmtpd_notify - a queue of new-email notifications and its sender thread
 * DESCRIPTION
 *	A stored email is announced to the application with an HTTP POST
 *	(delivery_notify_send: lib/store_notify). In the LMTP server the session only queues the
 *	request; one thread sends them in order, so an application that is
 *	slow or down never delays a reply to the MTA. The queue is bounded
 *	(LMTPD_NOTIFY_QUEUE_MAX): beyond it a notification is dropped with a
 *	warning (the email is stored and NOTIFY postroom_new_email was sent in
 *	its transaction, so nothing is lost for a LISTENing application).
 * NEVER
 *	blocks a session on the network; logs the API key.
 * CONFIGURATION
 *	deliver.notify_url, deliver.notify_key, deliver.notify_connect_timeout,
 *	deliver.notify_timeout (read by the caller, passed per request)
 */
#include "lmtpd_notify.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

struct notify_job {
	struct notify_job *next;
	struct store_notify_conf cf; /* strings owned by the job */
	char email_id[40];
	char *body;
};

static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;
static struct notify_job *notify_head, **notify_tail = &notify_head;
static size_t notify_len;
static int notify_stopping, notify_running;
static time_t notify_deadline;
static pthread_t notify_thread;
static struct metric *notify_failed, *notify_dropped;

/* notify_job_free - release one job, wiping the key copy */
static void notify_job_free(struct notify_job *j)
{
	if (j->cf.api_key) {
		explicit_bzero((char *)j->cf.api_key, strlen(j->cf.api_key));
		free((char *)j->cf.api_key);
	}
	free((char *)j->cf.url);
	free(j->body);
	free(j);
}

/* notify_next - wait for a job; NULL when stopping and done */
static struct notify_job *notify_next(void)
{
	struct notify_job *j;

	pthread_mutex_lock(&notify_lock);
	while (notify_head == NULL && !notify_stopping)
		pthread_cond_wait(&notify_cond, &notify_lock);
	j = notify_head;
	if (j && notify_stopping && time(NULL) > notify_deadline)
		j = NULL;
	if (j) {
		notify_head = j->next;
		if (notify_head == NULL)
			notify_tail = &notify_head;
		notify_len--;
	}
	pthread_mutex_unlock(&notify_lock);
	return j;
}

/* notify_main - the sender thread */
static void *notify_main(void *arg)
{
	struct notify_job *j;

	(void)arg;
	while ((j = notify_next()) != NULL) {
		if (delivery_notify_send(&j->cf, j->email_id, j->body) < 0)
			metric_inc(notify_failed);
		notify_job_free(j);
	}
	return NULL;
}

void lmtpd_notify_start(void)
{
	notify_failed =
		metrics_counter("postroom_lmtpd_notify_failures_total",
				"new-email notifications the application did not accept", NULL);
	notify_dropped =
		metrics_counter("postroom_lmtpd_notify_dropped_total",
				"new-email notifications dropped because the queue was full", NULL);
	if (pthread_create(&notify_thread, NULL, notify_main, NULL) != 0)
		log_fatal(EX_OSERR, "cannot start the notification thread");
	notify_running = 1;
}

void lmtpd_notify_push(const struct store_notify_conf *cf, const char *email_id, char *body)
{
	struct notify_job *j = xcalloc(1, sizeof(*j));

	j->cf = *cf;
	j->cf.url = xstrdup(cf->url);
	j->cf.api_key = cf->api_key ? xstrdup(cf->api_key) : NULL;
	snprintf(j->email_id, sizeof(j->email_id), "%s", email_id);
	j->body = body;
	pthread_mutex_lock(&notify_lock);
	if (notify_len >= LMTPD_NOTIFY_QUEUE_MAX || notify_stopping) {
		pthread_mutex_unlock(&notify_lock);
		metric_inc(notify_dropped);
		log_warn("email %s stored, notification dropped: the queue is full", email_id);
		notify_job_free(j);
		return;
	}
	*notify_tail = j;
	notify_tail = &j->next;
	notify_len++;
	pthread_cond_signal(&notify_cond);
	pthread_mutex_unlock(&notify_lock);
}

void lmtpd_notify_stop(int drain_seconds)
{
	struct notify_job *j;

	if (!notify_running)
		return;
	pthread_mutex_lock(&notify_lock);
	notify_stopping = 1;
	notify_deadline = time(NULL) + drain_seconds;
	pthread_cond_broadcast(&notify_cond);
	pthread_mutex_unlock(&notify_lock);
	pthread_join(notify_thread, NULL);
	notify_running = 0;
	while ((j = notify_head) != NULL) {
		notify_head = j->next;
		log_warn("email %s stored, notification dropped at shutdown", j->email_id);
		notify_job_free(j);
	}
	notify_tail = &notify_head;
	notify_len = 0;
}
