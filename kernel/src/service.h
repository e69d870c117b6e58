/*
 * service.h - the process's fabric service thread, what the driver's
 * interrupt handler and workqueue are to SCIF: it learns of what peers do
 * without waiting for the application to call the fabric.
 *
 * It sleeps in epoll on every connection of the process: on the descriptor
 * for its hang-up alone (a peer's death or close: the connection is noted
 * gone and the error a killed peer leaves on the socket is taken), and on
 * the control channel (window messages are read as they arrive, so a peer's
 * registrations and unregistrations never wait for this process's next
 * call). The data path never wakes it: a token arriving carries POLLIN,
 * which it does not ask for.
 *
 * It starts with the process's first connection and lives as long as the
 * process. A child forked meanwhile has none until it connects (its
 * inherited connections are watched by nobody of its own).
 */
#ifndef SCIF_NET_SERVICE_H
#define SCIF_NET_SERVICE_H

struct endpoint;

/* Watches a connection that has just been made (connect, accept): 0 or
 * -errno (no thread, no epoll). */
int service_watch(struct endpoint *ep);

/* Starts a detached helper thread of the fabric's, which no signal of the
 * process is ever delivered to: 0 or -errno. */
int service_start_thread(void *(*fn)(void *), void *arg, const char *name);

#endif
