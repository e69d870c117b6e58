/*
 * track.h - numbering RMAs, completing them, and waiting for them: what
 * fences are made of.
 *
 * RMAs are copies the DMA engine (dma.h) makes after their call returned;
 * fences wait for ours (INIT_SELF) and for the peer's (INIT_PEER), which only
 * shared memory can show. Each side numbers its RMAs from 1 with one counter
 * in the queue pair's
 * header (qp_rma.started). RMA number s completes into slot s % N by storing
 * s there, and may only begin once the slot's previous RMA, s - N, has
 * completed, so each slot's numbers complete in order. "Every RMA up to m has
 * completed" is then exact and race-free: for every slot, the last number up
 * to m that falls in it has been stored there. A mark is a number; waiting
 * for it is that test.
 *
 * Waiting for our own RMAs uses a condition variable. Waiting for the peer
 * (its RMAs, or its handling of our control messages) uses the connection's
 * RMA bell (qp.h): the waiter raises the peer's "waiting" flag, fences and
 * tests again; the peer makes progress, fences, and rings the bell if it
 * takes the flag (qp_notify_peer) - an event-count handshake. The bell is a
 * socket of its own, which only these waiters read: one thread sleeps on it
 * and the others wait for it to report (leader/follower). They never touch
 * the endpoint's descriptor, whose readiness belongs to the rings. The
 * peer's death (end of file on the bell) wakes them with ECONNRESET, our own
 * scif_close() with EINTR.
 */
#ifndef SCIF_NET_TRACK_H
#define SCIF_NET_TRACK_H

#include <stdbool.h>
#include <stdint.h>

struct endpoint;

/* As the SCIF driver's scif_verify_epd: 0, -ECONNRESET (the peer is gone, or
 * a node of the connection was lost: reset.h), -ENOTCONN, -ENODEV (its node is
 * going off line, the moment before the epoch that resets it moves), -EINTR
 * (closed meanwhile); and
 * -EOPNOTSUPP for a stream-only connection, which has no RMA channel. Every
 * RMA, mapping, registration and fence call asks this before it touches the
 * control channel or the RMA bell, and the first on either side of a
 * connection makes them (channel.h): errors of chan_ensure() too. */
int rma_verify(struct endpoint *ep);

/* Numbers a new RMA of ours, once its slot is free. */
uint64_t rma_begin(struct endpoint *ep);
void rma_end(struct endpoint *ep, uint64_t seq);

/* The last number given to an RMA of ours (peer: of the peer's). */
uint64_t rma_started(struct endpoint *ep, bool peer);

/* Returns when every RMA of ours (peer: of the peer's) numbered up to seq
 * has completed: 0, -ECONNRESET, -EINTR. */
int rma_wait(struct endpoint *ep, bool peer, uint64_t seq);

/* Returns when the peer has handled our control messages up to number sent
 * (ctl.h): 0, -ECONNRESET, -EINTR. */
int rma_wait_handled(struct endpoint *ep, uint32_t sent);

#endif
