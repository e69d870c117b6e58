/*
 * qp.c - queue pair memory, doorbells and the connection handshake.
 */
#include "qp.h"

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

static void qp_bind_rings(struct qp *qp, int side)
{
	uint8_t *base = (uint8_t *)qp->hdr + QP_HEADER_BYTES;
	uint32_t size = qp->hdr->ring_size;
	int peer = 1 - side;

	qp->side = side;
	rb_attach(&qp->tx, &qp->hdr->ring[side], base + (size_t)side * size, size, true);
	rb_attach(&qp->rx, &qp->hdr->ring[peer], base + (size_t)peer * size, size, false);
}

int qp_create(struct qp *qp, uint32_t ring_size, int *memfd)
{
	size_t len = qp_bytes(ring_size);
	int fd, err;

	fd = memfd_create("scif-qp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0)
		goto fail;
	/* A peer must not be able to shrink the memory under us (SIGBUS). */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	qp->hdr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (qp->hdr == MAP_FAILED)
		goto fail;
	qp->map_len = len;
	qp->hdr->magic = QP_MAGIC;
	qp->hdr->version = QP_VERSION;
	qp->hdr->ring_size = ring_size;
	atomic_init(&qp->hdr->closed[0], 0);
	atomic_init(&qp->hdr->closed[1], 0);
	rb_init_shared(&qp->hdr->ring[0]);
	rb_init_shared(&qp->hdr->ring[1]);
	qp_bind_rings(qp, 1);
	*memfd = fd;
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

int qp_attach(struct qp *qp, int memfd, uint32_t ring_size)
{
	size_t len = qp_bytes(ring_size);
	struct stat st;

	if (ring_size < 4096 || (ring_size & (ring_size - 1)) ||
	    fstat(memfd, &st) < 0 || (size_t)st.st_size != len)
		return -EPROTO;
	qp->hdr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (qp->hdr == MAP_FAILED)
		return -errno;
	qp->map_len = len;
	if (qp->hdr->magic != QP_MAGIC || qp->hdr->version != QP_VERSION ||
	    qp->hdr->ring_size != ring_size) {
		qp_detach(qp);
		return -EPROTO;
	}
	qp_bind_rings(qp, 0);
	return 0;
}

void qp_detach(struct qp *qp)
{
	if (qp->hdr) {
		atomic_store_explicit(&qp->hdr->closed[qp->side], 1, memory_order_release);
		munmap(qp->hdr, qp->map_len);
		qp->hdr = NULL;
	}
}

int qp_ring_doorbell(int fd)
{
	static const char bell = 1;

	if (send(fd, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
		return 0;
	/* A full socket already holds a wake-up the peer has not looked at. */
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	return errno == EPIPE || errno == ENOTCONN ? -ECONNRESET : -errno;
}

int qp_drain_doorbells(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0)
			return 1;
		/* Read on even after a short read: a peer that rang and then died
		 * left its EOF behind the doorbells, and stopping here would report
		 * it as alive (POLLOUT, no POLLHUP) until the next look. */
		if (n > 0)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == ECONNRESET || errno == ENOTCONN ? 1 : -errno;
	}
}

int qp_send_accept(int fd, int status, uint32_t ring_size, int memfd)
{
	struct qp_accept_msg msg = {
		.magic = QP_MAGIC, .version = QP_VERSION,
		.status = status, .ring_size = ring_size,
	};
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (memfd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &memfd, sizeof(int));
	}
	if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
		return errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
	return 0;
}

int qp_recv_accept(int fd, uint32_t *ring_size, int *memfd)
{
	struct qp_accept_msg msg;
	struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c;
	ssize_t n;
	int got = -1;

	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return -EAGAIN;
	if (n <= 0)
		return -ECONNREFUSED;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&got, CMSG_DATA(c), sizeof(int));
	if (n != (ssize_t)sizeof(msg) || msg.magic != QP_MAGIC || msg.version != QP_VERSION ||
	    (mh.msg_flags & MSG_CTRUNC)) {
		if (got >= 0)
			close(got);
		return -EPROTO;
	}
	if (msg.status != 0 || got < 0) {
		if (got >= 0)
			close(got);
		return msg.status > 0 ? -msg.status : -ECONNREFUSED;
	}
	*ring_size = msg.ring_size;
	*memfd = got;
	return 0;
}
