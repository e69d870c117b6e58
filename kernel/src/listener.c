/*
 * listener.c - listening endpoints: scif_listen, the callers waiting in a
 * listener's queue, and a listener held by several processes.
 *
 * A listener is a Unix stream socket listening at <fabric>/n<node>p<port>;
 * its port is a lock in the node's port registry (fabric.h). On MPSS an
 * endpoint is an open file of the SCIF device, so its descriptor may be
 * passed to another process (SCM_RIGHTS) or dup()ed, and scif_accept works
 * on it there: node:cluster's workers accept on the listener their primary
 * opened. Here the descriptor is the listening socket, which travels as well;
 * what the receiving process lacks is the endpoint. So the libscif calls
 * *adopt* a descriptor they do not know (ep_get) if it is a listener of this
 * fabric on our node: a new endpoint for the same socket, listening on the
 * same port, with the descriptor as its epd.
 *
 * Several processes then accept on one socket: the kernel hands each caller
 * to exactly one accept4(), and the rest of the handshake - the caller's
 * tokens, its answer - is on the caller's own connection, which only that
 * acceptor holds. An acceptor that dies half-way closes the caller's
 * connection with it: the caller is refused, as by a listener that went.
 *
 * The port: every process holding the listener holds the port's lock
 * shared (fabric_port_share, _adopt, _leave), so binds elsewhere fail while
 * any of them holds it, however the others left. scif_close lets go of this
 * process's hold; the last holder in the fabric (the one that then gets the
 * lock alone) takes the listener down: its socket shut, so nobody can
 * connect and a process that adopts it later is refused; its waiting callers
 * refused, as SCIF refuses them; its name removed. A holder's death lets go
 * of its hold with its locks, and leaves the name, as any dead listener's:
 * the next listener on the port replaces it. A process holds the listener
 * from its first libscif call on the descriptor (scif_poll, scif_get_fd,
 * scif_accept...): one that received it but never used it keeps nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "lost.h"
#include "scif.h"
#include "tokens.h"

/* ---- callers in the queue ---- */

/* A caller is taken with a descriptor of its own. A process out of them
 * would leave it waiting, unanswered, for as long as it stays out; libuv
 * keeps a spare descriptor to take and drop node:net's TCP callers with, and
 * so does the fabric: one per process, opened with its first listener. Out
 * of descriptors, it is let go to take one caller and tell it EMFILE (or
 * ENFILE) by name, and opened again. */
static _Atomic int spare_fd = -1;

static void spare_open(void)
{
	int fd, none = -1;

	if (atomic_load_explicit(&spare_fd, memory_order_acquire) >= 0)
		return;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && !atomic_compare_exchange_strong_explicit(&spare_fd, &none, fd, memory_order_acq_rel,
								  memory_order_acquire))
		close(fd);	/* another thread's is there */
}

/* Takes the next caller off the queue: its descriptor (flags as accept4's),
 * or -errno (-EAGAIN: there is none). */
static int take_caller(struct endpoint *lep, int flags, struct fabric_caller *caller)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int fd = accept4(lep->fd, (struct sockaddr *)&sa, &len, flags);

	if (fd < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ? -EAGAIN : -errno;
	if (!fabric_parse_caller(lep->fabric, &sa, len, caller))
		*caller = (struct fabric_caller){ .flags = 0 };	/* not ours: nothing sent ahead */
	return fd;
}

int conn_take_caller(struct endpoint *lep, int *fd, struct fabric_caller *caller)
{
	int err, spare;

	/* Not close-on-exec: the driver's accepted descriptors are not (its
	 * libscif opens them without O_CLOEXEC; only scif_open sets it). The
	 * listener is non-blocking (listen_locked, adopt): another process
	 * may take the caller that made it readable. */
	err = take_caller(lep, 0, caller);
	if (err >= 0) {
		*fd = err;
		return 1;
	}
	*fd = -1;
	if (err == -EAGAIN)
		return 0;
	/* EMFILE and ENFILE as they are: MPSS's scif_accept opens the device
	 * for the new endpoint first, and says what open says. */
	if ((err == -EMFILE || err == -ENFILE) &&
	    (spare = atomic_exchange_explicit(&spare_fd, -1, memory_order_acq_rel)) >= 0) {
		struct fabric_caller other;
		int taken;

		close(spare);
		taken = take_caller(lep, SOCK_CLOEXEC, &other);
		if (taken >= 0)
			conn_refuse(taken, -err, other.flags);
		spare_open();
	}
	return err;
}

void conn_answer_no(int fd, int status, uint32_t request)
{
	if (qp_send_accept(fd, status, 0, 0, -1, 0) == 0)
		(void)tok_take(fd, QP_PREFILL(request), CONN_TAKE_TIMEOUT_MS);
}

void conn_refuse(int fd, int status, uint32_t request)
{
	conn_answer_no(fd, status, request);
	close(fd);
}

static void refuse_pending(struct endpoint *lep)
{
	struct fabric_caller caller;
	int fd;

	while (conn_take_caller(lep, &fd, &caller) > 0)
		conn_refuse(fd, ECONNREFUSED, caller.flags);
}

int listener_wait_locked(struct endpoint *lep)
{
	struct pollfd p[2] = {
		{ .fd = lep->fd, .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};
	int n;

	/* Its own wake-up, as the socket may be other processes' too: our
	 * close must not shut it down under them (ep_remove). */
	if (lep->accept_wake < 0) {
		lep->accept_wake = eventfd(0, EFD_CLOEXEC);
		if (lep->accept_wake < 0)
			return errno == EMFILE || errno == ENFILE ? -ENOMEM : -errno;
	}
	p[1].fd = lep->accept_wake;
	pthread_mutex_unlock(&lep->lock);
	n = poll(p, 2, -1);
	pthread_mutex_lock(&lep->lock);
	if (ep_closing(lep))
		return -EINTR;
	return n < 0 && errno != EINTR ? -errno : 0;
}

/* Whether the listener's last holder took it down (listener_leave_locked),
 * or lost.c did. */
static bool taken_down(int fd)
{
	struct pollfd p = { .fd = fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

/* ---- listening ---- */

static int listen_locked(struct endpoint *ep, int backlog)
{
	struct fabric *f = ep->fabric;
	struct sockaddr_un sa;
	socklen_t len;
	int err;

	switch (ep->state) {
	case EP_UNBOUND:
		return -EINVAL;
	case EP_BOUND:
		break;
	case EP_LISTENING:
	case EP_CONNECTING:
	case EP_CONNECTED:
		return -EISCONN;
	}
	/* Watched first, then looked at: a directory that goes from here on
	 * is news, one gone before is found now. */
	(void)fabric_watch_dir(f);
	if (fabric_check(f)) {
		fabric_set_error("the fabric directory %s was removed after this endpoint was opened: "
				 "it cannot listen there (a new endpoint joins the directory made anew)", f->dir);
		return -ENODEV;
	}
	err = fabric_listener_addr(f, f->self, ep->port, &sa, &len);
	if (!err)
		err = fabric_listener_record(f, ep->port, ep->stream_only ? QP_STREAM_ONLY : 0);
	if (err)
		return err;
	/* A file left by a listener that died; the port is ours now, so is the name. */
	fabric_listener_unlink(f, ep->port);
	/* accept4() must not wait: scif_accept() decides whether to sleep. */
	if (fcntl(ep->fd, F_SETFL, fcntl(ep->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    bind(ep->fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(ep->fd, backlog < 0 ? 0 : backlog) < 0) {
		err = -errno;
		fabric_listener_unlink(f, ep->port);
		return err;
	}
	ep->named = true;
	ep->state = EP_LISTENING;
	fabric_port_share(f, ep->port);
	spare_open();
	return 0;
}

int scif_listen(scif_epd_t epd, int backlog)
{
	struct endpoint *ep = ep_get(epd);
	int err;

	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	err = ep_closing(ep) ? -EINTR : listen_locked(ep, backlog);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}

/* ---- a listener's holders ---- */

void listener_leave_locked(struct endpoint *ep)
{
	if (ep->left)
		return;
	ep->left = true;
	ep->owns_port = fabric_port_leave(ep->fabric, ep->port);
	if (!ep->owns_port)
		return;		/* others hold it: they accept on */
	/* The last: nobody connects any more, then those waiting are refused,
	 * then the name goes (ours: nobody else holds the port). The port is
	 * released with the endpoint (conn_destroy). */
	shutdown(ep->fd, SHUT_RDWR);
	refuse_pending(ep);
	fabric_listener_unlink(ep->fabric, ep->port);
}

/*
 * ENODEV, as the driver's scif_accept says when the node a connection would
 * come from is lost ("the requesting node is lost or existed, but is not
 * currently in the network", include/linux/scif.h): a listener whose fabric
 * directory went hears from no node any more. Its descriptor says POLLIN |
 * POLLHUP (lost.c shut it down), as a socket shut down does; the driver's,
 * for an endpoint no longer listening, says POLLERR (__scif_pollfd).
 */
int listener_lost_locked(struct endpoint *lep, bool idle)
{
	struct fabric *f = lep->fabric;

	/* Our own scif_close lets go of the hold (which may shut the socket
	 * down) before it says closing: either is "closed meanwhile". */
	if (lep->left || ep_closing(lep))
		return -EINTR;
	if (!fabric_lost(f)) {
		/* Shut under us with nobody waiting: another holder found
		 * the directory gone first, or we have not heard yet. */
		if (!idle || !taken_down(lep->fd))
			return 0;
		if (!fabric_check(f)) {
			fabric_set_error("listener on port %u was taken down by another process holding it",
					 lep->port);
			return -ENODEV;
		}
	}
	shutdown(lep->fd, SHUT_RDWR);	/* as every holder's: pollers see it */
	fabric_set_error("the fabric directory %s was %s while this process listened in it: "
			 "port %u can no longer be reached (close the listener; a new one joins the directory made anew)",
			 f->dir, fabric_dir_removed(f) ? "removed" : "moved away", lep->port);
	return -ENODEV;
}

/* The port of a listener of our node's in this fabric, from its name
 * (<fabric>/n<node>p<port>, or /proc/self/fd/<n>/n<node>p<port> as a
 * process whose fabric's path is too long binds it): 0 if fd is none. */
static uint16_t listener_port(const struct fabric *f, int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	unsigned node, port, dirfd;
	const char *slash;
	int accepting = 0, type = 0, used = -1;
	socklen_t ilen = sizeof(int);
	size_t dir;

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
	    len <= offsetof(struct sockaddr_un, sun_path) + 1 || sa.sun_path[0] == '\0')
		return 0;
	sa.sun_path[len - offsetof(struct sockaddr_un, sun_path) - 1] = '\0';
	slash = strrchr(sa.sun_path, '/');
	if (!slash || sscanf(slash + 1, "n%up%u%n", &node, &port, &used) != 2 ||
	    slash[1 + used] != '\0' || node != f->self || port == 0 || port > 65535)
		return 0;
	dir = (size_t)(slash - sa.sun_path);
	used = -1;
	if (!(dir == strlen(f->dir) && strncmp(sa.sun_path, f->dir, dir) == 0) &&
	    !(sscanf(sa.sun_path, "/proc/self/fd/%u%n", &dirfd, &used) == 1 && (size_t)used == dir))
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &ilen) < 0 || !accepting ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ilen) < 0 || type != SOCK_STREAM)
		return 0;
	return (uint16_t)port;
}

static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;

/* A new endpoint for listener fd on port: a hold on the port, with a
 * reference; NULL if the listener is no longer one. */
static struct endpoint *adopt(struct fabric *f, int fd, uint16_t port)
{
	struct endpoint *ep;
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fabric_port_adopt(f, port) != 0)
		return NULL;
	/* Checked holding the port: its last holder shut it down first. */
	if (taken_down(fd) ||
	    (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) ||
	    ep_create_adopted(f, fd, &ep) != 0) {
		if (fabric_port_leave(f, port))
			fabric_port_release(f, port);	/* ours alone: any name there is stale */
		return NULL;
	}
	ep->state = EP_LISTENING;
	ep->port = port;
	ep->owns_port = true;
	ep->named = true;
	ep->stream_only = fabric_listener_flags(f, port) & QP_STREAM_ONLY;
	ep_hold(ep);
	/* Its holders hear of the directory going, this one too. */
	(void)fabric_watch_dir(f);
	spare_open();
	return ep;
}

static struct endpoint *listener_adopt(int fd)
{
	struct fabric *f;
	struct endpoint *ep;
	uint16_t port;

	if (fd < 0 || !(f = fabric_get()))
		return NULL;
	port = listener_port(f, fd);
	if (!port)
		return NULL;
	/* One adoption at a time: two threads adopting one descriptor make
	 * one endpoint. */
	pthread_mutex_lock(&adopt_lock);
	ep = ep_find(fd);
	if (!ep)
		ep = adopt(f, fd, port);
	pthread_mutex_unlock(&adopt_lock);
	return ep;
}

struct endpoint *ep_get(int epd)
{
	struct endpoint *ep = ep_find(epd);

	if (!ep)
		ep = listener_adopt(epd);
	if (!ep)
		errno = EBADF;
	return ep;
}
