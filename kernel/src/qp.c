/*
 * qp.c - queue pair memory, bells and the connection handshake.
 */
#include "qp.h"

#include "arena.h"
#include "fabric.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

static size_t qp_bytes(uint32_t ring_size)
{
	return QP_HEADER_BYTES + 2 * (size_t)ring_size;
}

/* Queue-pair memory this process maps; the fabric says how much it may
 * (qp.h). */
static _Atomic uint64_t mapped;

static int reserve(size_t len)
{
	const struct fabric *f = fabric_get();	/* open: we are connecting */
	uint64_t mapped_cap = f ? f->ring_memory : FABRIC_DEFAULT_RING_MEMORY;
	/* seq_cst: the service thread, deciding whether to keep sweeping,
	 * must see this before it can miss our connection's wake-up
	 * (service.c's service_watch). Not the data path. */
	uint64_t now = atomic_fetch_add_explicit(&mapped, len, memory_order_seq_cst) + len;

	if (mapped_cap && now > mapped_cap) {
		atomic_fetch_sub_explicit(&mapped, len, memory_order_relaxed);
		fabric_set_error("queue pairs would map %llu bytes, past SCIF_NET_RING_MEMORY=%llu",
				 (unsigned long long)now, (unsigned long long)mapped_cap);
		return -ENOMEM;
	}
	return 0;
}

static void unreserve(size_t len)
{
	atomic_fetch_sub_explicit(&mapped, len, memory_order_relaxed);
}

uint64_t qp_mapped(void)
{
	return atomic_load_explicit(&mapped, memory_order_seq_cst);
}

/* Our side's rings. Nothing of the header is read: its page is touched
 * only once the connection is used (qp_create). */
static void qp_bind_rings(struct qp *qp, int side, uint32_t ring_size)
{
	uint8_t *base = (uint8_t *)qp->hdr + QP_HEADER_BYTES;
	int peer = 1 - side;

	qp->side = side;
	rb_attach(&qp->tx, &qp->hdr->ring[side], base + (size_t)side * ring_size, ring_size);
	rb_attach(&qp->rx, &qp->hdr->ring[peer], base + (size_t)peer * ring_size, ring_size);
}

/* The header of a new queue pair, in h (zeroed). */
static void init_header(struct qp_header *h, uint32_t ring_size, const struct qp_ends *ends,
			unsigned caller_full)
{
	h->magic = QP_MAGIC;
	h->version = QP_VERSION;
	h->ring_size = ring_size;
	atomic_init(&h->closed[0], 0);
	atomic_init(&h->closed[1], 0);
	h->ends = *ends;
	atomic_init(&h->chan, QP_CHAN_NONE);
	atomic_init(&h->chan_lock.word, SHLOCK_FREE);
	for (int side = 0; side < 2; side++) {
		struct qp_rma *r = &h->rma[side];

		rb_init_shared(&h->ring[side]);
		tok_init(&h->tokens[side]);
		atomic_init(&r->started, 0);
		atomic_init(&r->waiting, 0);
		atomic_init(&r->ctl_sent, 0);
		atomic_init(&r->ctl_done, 0);
		for (int i = 0; i < QP_RMA_SLOTS; i++)
			atomic_init(&r->done[i], 0);
	}
	/* Each writer's own measure (tokens.h): the caller's came in its request. */
	atomic_init(&h->tokens[0].full, caller_full);
	atomic_init(&h->tokens[1].full, tok_full());
}

int qp_create(struct qp *qp, uint32_t ring_size, const struct qp_ends *ends,
	      unsigned caller_full, pid_t caller, int *memfd, uint64_t *off)
{
	/* The header is made here and written into the file, not stored
	 * through our mapping: neither side maps its page in until the
	 * connection is used, so an idle connection costs neither process a
	 * resident page (and nobody a page fault now). Its locks are plain
	 * words (shlock.h), and nobody has them mapped yet. */
	union {
		struct qp_header h;
		char page[QP_HEADER_BYTES];
	} buf;
	size_t len = qp_bytes(ring_size);
	struct arena *a;
	int err;

	memset(&buf, 0, sizeof(buf));
	init_header(&buf.h, ring_size, ends, caller_full);
	err = reserve(len);
	if (err)
		return err;
	err = arena_carve(caller, ends->inbox[0], len, &a, off);
	if (err) {
		unreserve(len);
		return err;
	}
	errno = ENOSPC;		/* what a short write means, if pwrite() says nothing */
	if (pwrite(arena_fd(a), buf.page, QP_HEADER_BYTES, (off_t)*off) != QP_HEADER_BYTES) {
		err = -errno;
		arena_put(a);
		unreserve(len);
		return err;
	}
	qp->arena = a;
	qp->hdr = (struct qp_header *)(arena_base(a) + *off);
	qp->map_len = len;
	qp_bind_rings(qp, 1, ring_size);
	*memfd = arena_fd(a);
	return 0;
}

int qp_attach(struct qp *qp, int memfd, uint32_t ring_size, uint64_t off)
{
	size_t len = qp_bytes(ring_size);
	struct arena *a;
	int err;

	/* The answer said what it is (its version is ours), and the acceptor
	 * wrote our token count from our request: no need to read the header. */
	if (ring_size < 4096 || (ring_size & (ring_size - 1)))
		return -EPROTO;
	if (reserve(len))
		return -ENOMEM;
	err = arena_attach(memfd, len, off, &a);
	if (err) {
		unreserve(len);
		return err;
	}
	qp->arena = a;
	qp->hdr = (struct qp_header *)(arena_base(a) + off);
	qp->map_len = len;
	qp_bind_rings(qp, 0, ring_size);
	return 0;
}

void qp_detach(struct qp *qp)
{
	if (qp->hdr) {
		/* seq_cst both: of two sides closing at once, one sees the other's
		 * flag, and retires the queue pair (arena.h). A peer that sets
		 * its flag early loses its own unread bytes, nothing of ours. */
		atomic_store_explicit(&qp->hdr->closed[qp->side], 1, memory_order_seq_cst);
		if (atomic_load_explicit(&qp->hdr->closed[1 - qp->side], memory_order_seq_cst))
			arena_retire(qp->arena, (uint64_t)((uint8_t *)qp->hdr - arena_base(qp->arena)),
				     qp->map_len);
		arena_put(qp->arena);
		unreserve(qp->map_len);
		qp->hdr = NULL;
		qp->arena = NULL;
	}
}

int qp_settle_tx(struct qp *qp, int fd)
{
	int side = qp->side;

	/* The settle reads the peer's offset too: checked first, so that a lie
	 * there breaks the connection now rather than leave the descriptor
	 * unwritable for ever (a non-blocking writer would wait for POLLOUT). */
	(void)rb_space(&qp->tx);
	if (rb_broken(&qp->tx))
		return -EPROTO;

	return tok_settle(&qp->hdr->tokens[side], &qp->hdr->ring[side], qp->tx.size, fd, 1);
}

int qp_settle_rx(struct qp *qp, int fd)
{
	int side = 1 - qp->side;

	(void)rb_used(&qp->rx);
	if (rb_broken(&qp->rx))
		return -EPROTO;

	return tok_settle(&qp->hdr->tokens[side], &qp->hdr->ring[side], qp->rx.size, fd, 0);
}

int qp_check_rx(struct qp *qp, int fd)
{
	int side = 1 - qp->side;

	return tok_check_rx(&qp->hdr->tokens[side], &qp->hdr->ring[side], fd);
}

int qp_ring_bell(int fd)
{
	static const char bell = 1;

	if (send(fd, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
		return 0;
	/* A full socket already holds a wake-up the peer has not looked at. */
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return errno == EPIPE || errno == ENOTCONN ? -ECONNRESET : -errno;
}

void qp_notify_peer(struct qp *qp, int bell)
{
	_Atomic uint32_t *waiting = &qp->hdr->rma[qp->side].waiting;

	/* Pairs with the fence in track.c's peer_wait(): it sees our progress
	 * or we see its flag. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(waiting, memory_order_relaxed) &&
	    atomic_exchange_explicit(waiting, 0, memory_order_acq_rel))
		(void)qp_ring_bell(bell);	/* a dead peer needs no wake-up */
}

int qp_drain_bells(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0)
			return 1;
		/* Read on even after a short read: a peer that rang and then died
		 * left its EOF behind the bells, and stopping here would report
		 * it as alive until the next look. */
		if (n > 0)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == ECONNRESET || errno == ENOTCONN ? 1 : -errno;
	}
}

void qp_attach_fds(struct msghdr *mh, void *buf, const int *fds, int nfds)
{
	struct cmsghdr *c;

	if (nfds <= 0)
		return;
	memset(buf, 0, CMSG_SPACE((size_t)nfds * sizeof(int)));
	mh->msg_control = buf;
	mh->msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
}

int qp_take_fds(struct msghdr *mh, int *fds, int max)
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
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

int qp_send_accept(int fd, int status, uint32_t ring_size, uint32_t flags, int memfd, uint64_t off)
{
	struct qp_accept_msg msg = {
		.magic = QP_MAGIC, .version = QP_VERSION,
		.status = status, .ring_size = ring_size, .flags = flags,
		.offset_pages = (uint32_t)(off / QP_HEADER_BYTES),
	};
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	qp_attach_fds(&mh, cm.buf, &memfd, status != 0 ? 0 : 1);
	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
		return errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
	return 0;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int qp_recv_accept(int fd, uint32_t *ring_size, uint32_t *flags, int *memfd, uint64_t *off)
{
	struct qp_accept_msg msg;
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	ssize_t n;
	int got[2], ngot;

	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -EAGAIN;
	if (n <= 0)
		return -ECONNREFUSED;
	/* Whatever arrived is ours to close, even in a malformed answer. */
	ngot = qp_take_fds(&mh, got, 2);
	if (n != (ssize_t)sizeof(msg) || msg.magic != QP_MAGIC || msg.version != QP_VERSION ||
	    (mh.msg_flags & MSG_CTRUNC) || (msg.flags & ~QP_FLAGS_KNOWN)) {
		close_fds(got, ngot);
		return -EPROTO;
	}
	if (msg.status != 0 || ngot != 1) {
		close_fds(got, ngot);
		return msg.status > 0 ? -msg.status : -ECONNREFUSED;
	}
	*ring_size = msg.ring_size;
	*flags = msg.flags;
	*memfd = got[0];
	*off = (uint64_t)msg.offset_pages * QP_HEADER_BYTES;
	return 0;
}
