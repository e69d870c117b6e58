/*
 * ctl.c - sending and dispatching control messages (ctl.h).
 */
#include "ctl.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "reset.h"

typedef int (*ctl_handler)(struct endpoint *ep, const struct ctl_msg *m, int *fds, int nfds);

/* Handlers own the descriptors they are given, on success and failure alike. */
static const ctl_handler handlers[CTL_NR_OPS] = {
	[CTL_WIN_ADD] = win_recv_add,
	[CTL_WIN_DEL] = win_recv_del,
};

union ctl_cmsg {
	char buf[CMSG_SPACE(WIN_MAX_SEGS * sizeof(int))];
	struct cmsghdr align;
};

static int drain(struct endpoint *ep);

int ctl_send(struct endpoint *ep, const struct ctl_msg *m, const int *fds, int nfds,
	     uint32_t *sent)
{
	size_t len = CTL_MSG_BYTES(m->nseg);
	struct iovec iov = { .iov_base = (void *)m, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct ep_rma *r = ep_rma(ep);	/* under ctl_lock: made */
	union ctl_cmsg cm;

	qp_attach_fds(&mh, cm.buf, fds, nfds);
	for (;;) {
		struct pollfd p = { .fd = ep->ctl, .events = POLLIN | POLLOUT };
		ssize_t n;
		int err;

		if (r->ctl_eof)
			return -ECONNRESET;
		n = sendmsg(ep->ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)len) {
			*sent = atomic_fetch_add_explicit(&ep->qp.hdr->rma[ep->qp.side].ctl_sent, 1,
							  memory_order_release) + 1;
			return 0;
		}
		if (n >= 0)
			return -EPROTO;		/* a datagram goes whole or not at all */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ?
			       -ECONNRESET : -errno;
		/* The peer's service thread reads its channel as messages come;
		 * its own sender may hold it, waiting for room in ours: we read
		 * ours meanwhile, so neither waits for the other. */
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			err = drain(ep);
			if (err)
				return err;
		}
	}
}

static void peer_gone(struct endpoint *ep)
{
	win_drop_peer(ep);
	atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
}

/* Handles one message, if one is waiting: 1, 0 if none, -ECONNRESET if the
 * peer is gone, -errno. */
static int handle_one(struct endpoint *ep)
{
	struct ctl_msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	union ctl_cmsg cm;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	int fds[WIN_MAX_SEGS], nfds;
	ssize_t n = recvmsg(ep->ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		/* End of file (or a reset): the peer closed or died. */
		if (n == 0 || errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE) {
			peer_gone(ep);
			return -ECONNRESET;
		}
		return -errno;
	}
	ep_rma(ep)->ctl_seen++;	/* under ctl_lock: made */
	nfds = qp_take_fds(&mh, fds, WIN_MAX_SEGS);
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (size_t)n < CTL_MSG_BYTES(0) || m.nseg > WIN_MAX_SEGS ||
	    (size_t)n != CTL_MSG_BYTES(m.nseg) || m.op == 0 || m.op >= CTL_NR_OPS) {
		/* Not from a peer of ours: the connection is reset, which also
		 * ends a flood of them (the next read finds end of file). */
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		conn_break(ep);
		return 1;
	}
	/* A message that cannot be honoured (no memory to map the window,
	 * say) leaves that window unknown here: RMAs to it fail with ENXIO,
	 * which is what SCIF says of such ranges. One no peer of ours sends
	 * (a window on a short or unsealed memfd, a range out of bounds)
	 * resets the connection. */
	if (handlers[m.op](ep, &m, fds, nfds) == -EPROTO)
		conn_break(ep);
	return 1;
}

/* Handles every message waiting, then tells the peer how many it was
 * (under ctl_lock: the state r is made). */
static int drain(struct endpoint *ep)
{
	struct ep_rma *r = ep_rma(ep);
	uint32_t seen = r->ctl_seen;
	int got;

	if (r->ctl_eof)
		return -ECONNRESET;
	/* The state may be made before the channel is (chan_ensure makes it
	 * first, so that its lack fails the call before anything is sent). */
	if (!ep_has_channel(ep))
		return 0;	/* none yet: no window of the peer's to hear of */
	while ((got = handle_one(ep)) > 0)
		;
	if (r->ctl_seen != seen) {
		/* Pairs with the acquire in the peer's wait for its unregister:
		 * the views of its windows are gone once it sees this. */
		atomic_store_explicit(&ep->qp.hdr->rma[ep->qp.side].ctl_done, r->ctl_seen,
				      memory_order_release);
		qp_notify_peer(&ep->qp, ep->bell);
	}
	return got;
}

/* Callers have made the state: they are past rma_verify(), which makes it
 * (chan_ensure), or have seen it (ep_rma) or the channel, which comes after
 * it. It is never taken away before ep_free(), so what ctl_lock() locks is
 * what ctl_unlock() unlocks. */
int ctl_lock(struct endpoint *ep)
{
	pthread_mutex_lock(&ep_rma(ep)->lock);
	return drain(ep);
}

void ctl_unlock(struct endpoint *ep)
{
	struct ep_rma *r = ep_rma(ep);

	for (;;) {
		pthread_mutex_unlock(&r->lock);
		/* Pairs with the fence in ctl_service(): it raised the flag and
		 * then found the lock taken, or we see no flag and it finds the
		 * lock free. */
		atomic_thread_fence(memory_order_seq_cst);
		if (!atomic_load_explicit(&r->ctl_missed, memory_order_relaxed) ||
		    pthread_mutex_trylock(&r->lock) != 0)
			return;
		atomic_store_explicit(&r->ctl_missed, false, memory_order_relaxed);
		drain(ep);
	}
}

void ctl_service(struct endpoint *ep)
{
	struct ep_rma *r;

	if (!ep_has_channel(ep) || !ep->qp.hdr)
		return;
	/* Made before the channel was attached (channel.c's attach_locked),
	 * and has_channel's acquire above makes it seen: never NULL here,
	 * but a NULL would mean no channel, so nothing to read. */
	r = ep_rma(ep);
	if (!r)
		return;
	atomic_store_explicit(&r->ctl_missed, true, memory_order_relaxed);
	/* Pairs with the fence in ctl_unlock(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (pthread_mutex_trylock(&r->lock) != 0)
		return;		/* its holder handles what came */
	atomic_store_explicit(&r->ctl_missed, false, memory_order_relaxed);
	drain(ep);
	ctl_unlock(ep);
}
