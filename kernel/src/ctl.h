/*
 * ctl.h - a connection's control channel: how a peer learns of our windows.
 *
 * Why a second socket, and not typed records on the endpoint's own socket:
 * that socket's bytes are doorbells, and its invariants (rb.h, poll.c,
 * endpoint.c) rest on any thread being free to swallow them - all of them,
 * unparsed, and only the one poller thread while it sleeps. Window messages
 * must never be swallowed, carry descriptors (SCM_RIGHTS) and are needed by
 * whichever thread calls an RMA, also while another thread is the poller.
 * Mixing the two would make every doorbell drain a parser and tie RMA
 * lookups to the poller role. So the acceptor makes a SOCK_SEQPACKET pair
 * and hands one end over in the handshake with the queue pair's memfd:
 * datagrams keep records whole and their descriptors attached, concurrent
 * senders cannot interleave, and doorbells stay exactly as they were.
 *
 * Messages are numbered operations dispatched through a handler table, as
 * the SCIF driver's node queue pair does. They are read lazily: by every
 * RMA, mapping and registration call before it looks at the peer's windows,
 * and by whoever swallows doorbells or RMA bells (track.h) when the peer's
 * counter (qp_rma.ctl_sent) says something is waiting. Ordering does the rest: a window is announced
 * before scif_register returns, so before its offset can reach the peer by
 * scif_send, and the peer reads its control channel before using offsets.
 *
 * A sender that finds the peer's queue full rings a doorbell (an event loop
 * wakes, calls scif_poll, which drains) and the RMA bell (a thread waiting
 * for our RMAs wakes and drains) and reads its own queue while it waits, so two peers announcing windows to each other never wait for each
 * other. End of file on the channel means the peer is gone: its windows are
 * released there and then.
 */
#ifndef SCIF_NET_CTL_H
#define SCIF_NET_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "window.h"

struct endpoint;

enum ctl_op {
	CTL_WIN_ADD = 1,	/* a window: offset, length, protection, memfd runs (+ fds) */
	CTL_WIN_DEL,		/* the window at offset is unregistered */
	CTL_NR_OPS,
};

struct ctl_seg {
	uint64_t file_off;
	uint64_t len;
};

struct ctl_msg {
	uint32_t op;
	uint32_t nseg;
	int64_t off;
	uint64_t len;
	uint32_t prot;
	uint32_t reserved;
	struct ctl_seg seg[WIN_MAX_SEGS];	/* only nseg of them travel */
};

#define CTL_MSG_BYTES(nseg) \
	(offsetof(struct ctl_msg, seg) + (size_t)(nseg) * sizeof(struct ctl_seg))

/* Sends one message with nfds descriptors; ep->rma.lock held. 0 or -ECONNRESET. */
int ctl_send(struct endpoint *ep, const struct ctl_msg *m, const int *fds, int nfds);

/* Handles every message waiting; ep->rma.lock held. 0, or -ECONNRESET when
 * the peer is gone (its windows are released then). */
int ctl_drain(struct endpoint *ep);

/* From ep_drain_locked() and the bell's drain (track.c): drains if the peer's
 * counter says so, unless another thread holds the channel (it reads it
 * itself). */
void ctl_poll(struct endpoint *ep);

#endif
