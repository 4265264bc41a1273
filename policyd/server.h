/* server.h - policyd's connection handling (server.c). */
#ifndef POSTROOM_POLICYD_SERVER_H
#define POSTROOM_POLICYD_SERVER_H

/* server_accept - accept one connection on lfd and serve it in a thread
 * of its own (waits while max_connections are open). 0 ok, -1 when the
 * listening socket failed. */
int server_accept(int lfd, int max_connections);
/* server_stop_all - wake every connection, wait until all are closed */
void server_stop_all(void);

#endif
