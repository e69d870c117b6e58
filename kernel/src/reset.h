/*
 * reset.h - node-loss resets: taking a node off line (a card reset,
 * scif_net_set_node_online(K, 0)) resets every connection with an end on K,
 * in every process of the fabric.
 *
 * A connection is *linked* to its two nodes when it is made: the endpoint
 * records both nodes' epochs (the node table's count of times each went down)
 * under its lock, and then checks that both are on line and their epochs
 * unmoved. It is reset once either epoch moves. Two things notice:
 *  - every call that looks at a connected endpoint (send, recv, poll,
 *    scif_net_rx_ready, the RMA family) compares the epochs first: shared
 *    memory, no system call;
 *  - each process that made a connection runs one watcher thread, asleep on
 *    a futex in the node table (its `resets` word, bumped after every
 *    node-down), which wakes, walks the process's endpoints and resets the
 *    stale ones, so threads asleep in the fabric and event loops watching
 *    the descriptor learn of it with no call to make.
 * Either order of linking and scanning is safe: a scan that misses an
 * endpoint saw the table before it was linked, so the link read the new
 * epochs (and found the node off line, or its new life).
 *
 * Resetting shuts down our ends of the connection's sockets (the endpoint's,
 * and the control channel and the RMA bell if it has them): both sides then see end of file, as
 * when a process dies, wherever they sleep. The endpoint on a lost node
 * also loses its rings (RESET_SELF): its recv reads nothing more. The other
 * side drains what was already in its ring, as after a death.
 */
#ifndef SCIF_NET_RESET_H
#define SCIF_NET_RESET_H

#include <stdbool.h>

#include "scif.h"

struct endpoint;
struct fabric;

#define RESET_PEER 0x1u	/* the peer's node went down since the connection was made */
#define RESET_SELF 0x2u	/* ours did: our rings went with it */
#define RESET_PROTO 0x4u	/* the peer broke the protocol in shared memory (EPROTO here) */

/* Links a connection being made (connect, accept) to its nodes, starting
 * this process's watcher first: 0, -ENODEV (either node is off line), or
 * -ENOMEM (no watcher). Call with ep->lock held. */
int reset_link_locked(struct endpoint *ep, const struct scif_portID *peer);
/* Forgets the link of a connect that failed: the endpoint may try again. */
void reset_unlink_locked(struct endpoint *ep);
/* Whether the connection being made is still good: 0, or -ENODEV when a
 * node of it was lost since it was linked. Call with ep->lock held. */
int reset_link_check_locked(struct endpoint *ep);

/* On a connected endpoint: 0, or the RESET_* bits of the nodes lost since it
 * connected; the first call that finds them resets it. No lock needed. */
unsigned reset_check(struct endpoint *ep);

/* Whether the connection is gone, as far as shared memory tells: a call
 * already learnt of the peer's departure, the peer closed its end, or a
 * node of it was lost (which this also notices, and resets). No system
 * call: a peer's death shows on the descriptor (endpoint.h's ep_hung_up). */
bool conn_gone(struct endpoint *ep);

/* The peer wrote something impossible into the queue pair: the connection
 * is reset as on a node loss - the peer sees a hang-up (ECONNRESET) - and
 * every later call on it here fails with EPROTO. */
void conn_break(struct endpoint *ep);
/* What a call finding the connection gone reports: -EPROTO once broken by
 * the peer, else -ECONNRESET. */
int conn_gone_err(struct endpoint *ep);

/* After a node went down in the table: wakes every watcher of the fabric,
 * and resets this process's connections with an end on it. */
void reset_notify(struct fabric *f);

#endif
