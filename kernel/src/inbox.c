/*
 * inbox.c - a process's inbox socket: opening it, sending to another's,
 * taking what came (inbox.h).
 */
#include "inbox.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qp.h"

/* Random numbers tried before giving up: each taken one is a collision, or
 * a squatter that guessed. */
#define ID_TRIES 64

int inbox_open(const struct fabric *f, uint32_t *id)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, on = 1, err = -EADDRINUSE;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* Random, not the pid: abstract names are anyone's to bind, and one
	 * nobody can guess cannot be taken ahead of us. */
	for (uint32_t i = 0; i < ID_TRIES && err == -EADDRINUSE; i++) {
		if (getrandom(id, sizeof(*id), 0) != (ssize_t)sizeof(*id))
			break;
		fabric_inbox_addr(f, *id, &sa, &len);
		err = bind(fd, (struct sockaddr *)&sa, len) == 0 ? 0 : -errno;
	}
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Waits until fd has room or hangup_fd hangs up: 0, -ECONNRESET, -errno. */
static int wait_room(int fd, int hangup_fd)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLOUT },
		{ .fd = hangup_fd, .events = 0 },
	};

	if (poll(p, 2, -1) < 0)
		return errno == EINTR ? 0 : -errno;
	return p[1].revents & (POLLHUP | POLLNVAL) ? -ECONNRESET : 0;
}

int inbox_send(const struct fabric *f, uint32_t id, const struct inbox_msg *m,
	       const int fds[INBOX_FDS], int hangup_fd)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buf[CMSG_SPACE(INBOX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cm;
	int fd, err = 0;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	fabric_inbox_addr(f, id, &sa, &len);
	/* Connected, so that poll() can wait for room in its queue (the
	 * kernel caps a datagram socket's queue at net.unix.max_dgram_qlen). */
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		err = errno == ECONNREFUSED || errno == ENOENT ? -ECONNRESET : -errno;
	qp_attach_fds(&mh, cm.buf, fds, INBOX_FDS);
	while (!err) {
		if (sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(*m))
			break;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			err = wait_room(fd, hangup_fd);
		else if (errno != EINTR)
			/* Its process closed it (or died) meanwhile. */
			err = errno == ECONNREFUSED || errno == EPIPE || errno == ECONNRESET ?
			      -ECONNRESET : -errno;
	}
	close(fd);
	return err;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

int inbox_recv(int fd, struct inbox_msg *m, int fds[INBOX_FDS])
{
	for (;;) {
		struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
		union {
			char buf[CMSG_SPACE(sizeof(struct ucred)) +
				 CMSG_SPACE(INBOX_FDS * sizeof(int))];
			struct cmsghdr align;
		} cm;
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
		};
		bool trusted = false;
		int got[INBOX_FDS], ngot;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			struct ucred cred;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS ||
			    c->cmsg_len != CMSG_LEN(sizeof(cred)))
				continue;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			/* The kernel's word, not the sender's: as the fabric's
			 * directory, ours alone. */
			trusted = cred.uid == geteuid() || cred.uid == getuid();
		}
		ngot = qp_take_fds(&mh, got, INBOX_FDS);
		if (trusted && n == (ssize_t)sizeof(*m) && !(mh.msg_flags & MSG_TRUNC) &&
		    m->magic == INBOX_MAGIC && m->version == QP_VERSION) {
			/* Descriptors the kernel could not give us (we are at
			 * our limit) are lost: the message says for whom. */
			if (ngot != INBOX_FDS || (mh.msg_flags & MSG_CTRUNC)) {
				close_fds(got, ngot);
				fds[0] = fds[1] = -1;
			} else {
				memcpy(fds, got, sizeof(got));
			}
			return 1;
		}
		close_fds(got, ngot);
	}
}
