/*
 * connection.h - what connection.c (an endpoint's life: open, bind, close)
 * gives handshake.c (connect, accept); listener.h is listener.c's.
 */
#ifndef SCIF_NET_CONNECTION_H
#define SCIF_NET_CONNECTION_H

#include <stdint.h>

#include "endpoint.h"
#include "fabric.h"

#define FAIL(err) (errno = -(err), -1)

/* A new endpoint socket (close-on-exec: scif_open's descriptors are). */
int conn_new_socket(void);
/* Whether the endpoint is still to connect or listen: 0, -EINVAL (listening)
 * or -EISCONN. */
int conn_check_unconnected(const struct endpoint *ep);
/* scif_bind, with ep->lock held: the port, or -errno. */
int conn_bind_locked(struct endpoint *ep, uint16_t pn);
/* Tears down an endpoint taken out of the table (ep_remove) and frees it. */
void conn_destroy(struct endpoint *ep);

#endif
