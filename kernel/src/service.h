/*
 * service.h - the process's fabric service thread, what the driver's
 * interrupt handler and workqueue are to SCIF: it learns of what peers do
 * without waiting for the application to call the fabric.
 *
 * It sleeps in epoll on every connection of the process: on the descriptor
 * for its hang-up alone (a peer's death or close: the connection is noted
 * gone and the error a killed peer leaves on the socket is taken), and on
 * the control channel once the connection has one (window messages are read
 * as they arrive, so a peer's registrations and unregistrations never wait
 * for this process's next call). And on the process's inbox, where peers
 * send this process its ends of the RMA channels they make (channel.h); and,
 * once the process listens, on news of its fabric directory (lost.c). The
 * data path never wakes it: a token arriving carries POLLIN, which it does
 * not ask for. While the process maps queue pairs it also wakes every
 * SCIF_NET_RECLAIM_MS to give idle rings' pages back (reclaim.h).
 *
 * It starts with the process's first connection or listener and lives as
 * long as the process. A child forked meanwhile has none until it connects (its
 * inherited connections are watched by nobody of its own).
 */
#ifndef SCIF_NET_SERVICE_H
#define SCIF_NET_SERVICE_H

struct endpoint;

/* Watches a connection that has just been made (connect, accept), and its
 * control channel if it has one: 0 or -errno (no thread, no epoll). */
int service_watch(struct endpoint *ep);
/* Watches the control channel of a watched connection that just got one. */
int service_watch_ctl(struct endpoint *ep);
/* Watches an inbox of the process: handler reads them whenever one holds
 * messages. */
int service_watch_inbox(int inbox, void (*handler)(void));
/* Watches what tells of the fabric directories going (lost.c): handler
 * reads it whenever it has news. */
int service_watch_fabric_dir(int fd, void (*handler)(void));

#endif
