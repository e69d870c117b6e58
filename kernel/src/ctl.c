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

int ctl_send(struct endpoint *ep, const struct ctl_msg *m, const int *fds, int nfds)
{
	size_t len = CTL_MSG_BYTES(m->nseg);
	struct iovec iov = { .iov_base = (void *)m, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union ctl_cmsg cm;
	bool rang = false;

	qp_attach_fds(&mh, cm.buf, fds, nfds);
	for (;;) {
		struct pollfd p = { .fd = ep->ctl, .events = POLLIN | POLLOUT };
		ssize_t n;
		int err;

		if (ep->rma.ctl_eof)
			return -ECONNRESET;
		n = sendmsg(ep->ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == (ssize_t)len) {
			/* Tells the peer's doorbell drains there is something to read. */
			atomic_fetch_add_explicit(&ep->qp.hdr->rma[ep->qp.side].ctl_sent, 1,
						  memory_order_release);
			return 0;
		}
		if (n >= 0)
			return -EPROTO;		/* a datagram goes whole or not at all */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ?
			       -ECONNRESET : -errno;
		if (!rang) {
			/* The peer does not read its channel: wake it, whether it
			 * sleeps on its descriptor (an event loop, a send, a recv)
			 * or waits for our RMAs on the bell. A failed doorbell
			 * shows up below as a hang-up. */
			(void)qp_ring_doorbell(ep->fd);
			(void)qp_ring_doorbell(ep->bell);
			rang = true;
		}
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
		/* Reading our own queue meanwhile: the peer may be in here too. */
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			err = ctl_drain(ep);
			if (err)
				return err;
		}
	}
}

/* Takes the descriptors of a received message; how many there were. */
static int take_fds(struct msghdr *mh, int *fds)
{
	int n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n < WIN_MAX_SEGS)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

static void peer_gone(struct endpoint *ep)
{
	win_drop_peer(ep);
	atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
}

int ctl_drain(struct endpoint *ep)
{
	if (ep->rma.ctl_eof)
		return -ECONNRESET;
	for (;;) {
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
			continue;
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
		ep->rma.ctl_seen++;
		nfds = take_fds(&mh, fds);
		if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
		    (size_t)n < CTL_MSG_BYTES(0) || m.nseg > WIN_MAX_SEGS ||
		    (size_t)n != CTL_MSG_BYTES(m.nseg) || m.op == 0 || m.op >= CTL_NR_OPS) {
			/* Not from a peer of ours: nothing to act on. */
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			continue;
		}
		/* A message that cannot be honoured (no memory to map the
		 * window, say) leaves that window unknown here: RMAs to it
		 * fail with ENXIO, which is what SCIF says of such ranges. */
		handlers[m.op](ep, &m, fds, nfds);
	}
}

void ctl_poll(struct endpoint *ep)
{
	uint32_t sent;

	if (ep->ctl < 0 || !ep->qp.hdr || pthread_mutex_trylock(&ep->rma.lock) != 0)
		return;
	sent = atomic_load_explicit(&ep->qp.hdr->rma[1 - ep->qp.side].ctl_sent, memory_order_acquire);
	if (!ep->rma.ctl_eof && (sent != ep->rma.ctl_seen ||
				 atomic_load_explicit(&ep->peer_gone, memory_order_acquire)))
		ctl_drain(ep);
	pthread_mutex_unlock(&ep->rma.lock);
}
