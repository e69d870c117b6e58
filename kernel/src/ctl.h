/*
 * ctl.h - a connection's control channel: how a peer learns of our windows.
 *
 * Window messages must never be lost, carry descriptors (SCM_RIGHTS) and are
 * needed by whichever thread calls an RMA, so they have a socket of their
 * own rather than sharing the endpoint's, whose queue holds the readiness
 * tokens (tokens.h): a SOCK_SEQPACKET pair, made with the RMA bell by the
 * side that first needs RMA (channel.h). Datagrams keep records whole and
 * their descriptors attached, and concurrent senders cannot interleave.
 *
 * Messages are numbered operations dispatched through a handler table, as
 * the SCIF driver's node queue pair does. They are read as they arrive, by
 * the fabric's service thread (service.h), and by every RMA, mapping and
 * registration call before it looks at the peer's windows (ctl_lock).
 * Ordering does the rest: a window is announced before scif_register
 * returns, so before its offset can reach the peer by scif_send. Each side
 * publishes how many of the other's messages it has handled (qp_rma.ctl_done)
 * and rings the other's RMA bell if it waits for that: an unregister returns
 * once the peer has dropped its views of the windows, as the driver's waits
 * for the peer's acknowledgement.
 *
 * One thread at a time reads the channel, under the endpoint's RMA lock.
 * The service thread never waits for that lock: if it is taken when a
 * message comes, the holder reads the channel before it lets go (ctl_unlock).
 * End of file on the channel means the peer is gone: its windows are
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

/* Takes the endpoint's rma->lock (it guards the window tables and the
 * channel) and handles every message waiting, if the connection has a
 * channel: 0, or -ECONNRESET when the peer is gone (its windows are
 * released then). The lock is held either way. The RMA state must be made
 * (ep_rma): every caller is past rma_verify(), or has seen it. */
int ctl_lock(struct endpoint *ep);
/* Gives rma->lock back, handling first what the service thread found
 * waiting while it was held. */
void ctl_unlock(struct endpoint *ep);

/* Sends one message with nfds descriptors, under ctl_lock: 0 or
 * -ECONNRESET. *sent: how many this side has sent, this one included. */
int ctl_send(struct endpoint *ep, const struct ctl_msg *m, const int *fds, int nfds,
	     uint32_t *sent);

/* Handles what is waiting if no other thread holds the channel (it will, if
 * one does): the service thread's, and any call's that finds the peer gone. */
void ctl_service(struct endpoint *ep);

#endif
