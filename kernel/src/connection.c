/*
 * connection.c - scif_open, scif_close, scif_bind, scif_listen, scif_connect
 * and scif_accept.
 *
 * A listener is a Unix stream socket listening at <fabric>/n<node>p<port>. A
 * caller binds its socket to an abstract name carrying its own node and port,
 * connects, and waits for the acceptor's answer, which brings the queue pair's
 * memfd and the caller's ends of the control channel and the RMA bell. Socket-level acceptance
 * needs nothing from the acceptor's process, so scif_accept never waits for a
 * caller.
 *
 * The caller's name is its request: it also carries QP_STREAM_ONLY when the
 * caller was made stream-only (scif_net_set_stream_only). The acceptor makes
 * a stream-only connection - the memfd alone, no control channel, no RMA bell
 * - when the caller or the listener is, and says so in its answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "reset.h"
#include "scif.h"
#include "scif_net.h"

#define FAIL(err) (errno = -(err), -1)

static int new_socket(void)
{
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

scif_epd_t scif_open(void)
{
	struct fabric *f = fabric_get();
	struct endpoint *ep;
	int fd, err;

	if (!f)
		return SCIF_OPEN_FAILED;
	if (!fabric_node_online(f, f->self)) {
		fabric_set_error("node %u is offline in fabric %s", f->self, f->dir);
		return FAIL(-ENODEV);
	}
	fd = new_socket();
	if (fd < 0)
		return SCIF_OPEN_FAILED;
	err = ep_create(f, fd, &ep);
	if (err) {
		close(fd);
		return FAIL(err);
	}
	return fd;
}

int scif_close(scif_epd_t epd)
{
	int err = ep_destroy(epd);

	return err ? FAIL(err) : 0;
}

/* Whether the endpoint is still to connect or listen: 0, -EINVAL (listening)
 * or -EISCONN. */
static int check_unconnected(const struct endpoint *ep)
{
	switch (ep->state) {
	case EP_UNBOUND:
	case EP_BOUND:
		break;
	case EP_LISTENING:
		return -EINVAL;
	case EP_CONNECTING:
	case EP_CONNECTED:
	case EP_DISCONNECTED:
		return -EISCONN;
	}
	return 0;
}

static int bind_locked(struct endpoint *ep, uint16_t pn)
{
	int port = ep->state == EP_BOUND ? -EINVAL : check_unconnected(ep);

	if (port < 0)
		return port;
	port = pn ? fabric_port_claim(ep->fabric, pn) : fabric_port_claim_any(ep->fabric);
	/* The driver says EINVAL for a port in use, as for an endpoint bound already. */
	if (port == -EADDRINUSE)
		return -EINVAL;
	if (port < 0)
		return port;
	ep->port = pn ? pn : (uint16_t)port;
	ep->owns_port = true;
	ep->state = EP_BOUND;
	return ep->port;
}

int scif_bind(scif_epd_t epd, uint16_t pn)
{
	struct endpoint *ep = ep_get(epd);
	int ret;

	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	ret = ep->closing ? -EINTR : bind_locked(ep, pn);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return ret < 0 ? FAIL(ret) : ret;
}

static int listen_locked(struct endpoint *ep, int backlog)
{
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
	case EP_DISCONNECTED:
		return -EISCONN;
	}
	err = fabric_listener_addr(ep->fabric, ep->fabric->self, ep->port, &sa, &len);
	if (err)
		return err;
	/* A file left by a listener that died; the port is ours now, so is the name. */
	unlink(sa.sun_path);
	/* accept4() must not wait: scif_accept() decides whether to sleep. */
	if (fcntl(ep->fd, F_SETFL, fcntl(ep->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    bind(ep->fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(ep->fd, backlog < 0 ? 0 : backlog) < 0) {
		err = -errno;
		unlink(sa.sun_path);
		return err;
	}
	ep->named = true;
	ep->state = EP_LISTENING;
	return 0;
}

int scif_listen(scif_epd_t epd, int backlog)
{
	struct endpoint *ep = ep_get(epd);
	int err;

	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	err = ep->closing ? -EINTR : listen_locked(ep, backlog);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return err ? FAIL(err) : 0;
}

/* A connect attempt that failed after reaching the listener leaves the socket
 * useless; give the descriptor a fresh one so the endpoint stays bound and
 * can try again, as SCIF allows. (Also a socket named by a failed attempt
 * before the endpoint became stream-only: its name is the request.) */
static int renew_socket(struct endpoint *ep)
{
	int fd = new_socket();
	int flags = fcntl(ep->fd, F_GETFL);

	if (fd < 0)
		return -errno;
	if (flags >= 0 && (flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, O_NONBLOCK);
	if (dup3(fd, ep->fd, O_CLOEXEC) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	ep->named = false;
	ep->state = EP_BOUND;
	reset_unlink_locked(ep);
	return 0;
}

static int stream_only_locked(struct endpoint *ep)
{
	int err = check_unconnected(ep);

	if (err || ep->stream_only)
		return err;
	/* A connect that failed at once left the socket named without the flag. */
	if (ep->named) {
		err = renew_socket(ep);
		if (err)
			return err;
	}
	ep->stream_only = true;
	return 0;
}

int scif_net_set_stream_only(scif_epd_t epd)
{
	struct endpoint *ep = ep_get(epd);
	int err;

	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	err = ep->closing ? -EINTR : stream_only_locked(ep);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return err ? FAIL(err) : 0;
}

static int dial(struct endpoint *ep, const struct scif_portID *dst)
{
	struct fabric *f = ep->fabric;
	struct sockaddr_un sa;
	socklen_t len;
	int flags, rc, err;

	if (!ep->named) {
		fabric_caller_addr(f, f->self, ep->port, ep->stream_only ? QP_STREAM_ONLY : 0,
				   &sa, &len);
		if (bind(ep->fd, (struct sockaddr *)&sa, len) < 0)
			return errno == EADDRINUSE ? -EADDRINUSE : -errno;
		ep->named = true;
	}
	err = fabric_listener_addr(f, dst->node, dst->port, &sa, &len);
	if (err)
		return err;
	/* A full backlog refuses, as in SCIF, instead of making us wait. */
	flags = fcntl(ep->fd, F_GETFL);
	if (flags < 0)
		return -errno;
	if (!(flags & O_NONBLOCK))
		fcntl(ep->fd, F_SETFL, flags | O_NONBLOCK);
	rc = connect(ep->fd, (struct sockaddr *)&sa, len);
	err = rc < 0 ? errno : 0;
	if (!(flags & O_NONBLOCK))
		fcntl(ep->fd, F_SETFL, flags);
	switch (err) {
	case 0:
		break;
	case ENOENT:
	case ECONNREFUSED:
	case EAGAIN:
		/* No listener there, a stale one, or a full backlog. */
		return -ECONNREFUSED;
	default:
		return -err;
	}
	ep->state = EP_CONNECTING;
	return 0;
}

/* Linked to both nodes first (ENODEV if either is off line), so a node lost
 * from here on fails the connect or resets the connection (reset.h). */
static int start_connect(struct endpoint *ep, const struct scif_portID *dst)
{
	int err = reset_link_locked(ep, dst);

	if (!err)
		err = dial(ep, dst);
	if (err)
		reset_unlink_locked(ep);
	return err;
}

/* Takes the acceptor's answer if it is there: 0, -EAGAIN, or the failure. */
static int finish_connect(struct endpoint *ep)
{
	uint32_t ring_size, flags = 0;
	int memfd = -1, ctl = -1, bell = -1, err;

	err = qp_recv_accept(ep->fd, &ring_size, &flags, &memfd, &ctl, &bell);
	/* A node of the connection lost meanwhile (the watcher may have shut
	 * the socket down under the handshake): the connection never was. */
	if (reset_link_check_locked(ep))
		err = -ENODEV;
	if (err == -EAGAIN)
		return err;
	/* Asked for stream-only, given more: not an acceptor of ours. */
	if (!err && ep->stream_only && !(flags & QP_STREAM_ONLY))
		err = -EPROTO;
	if (!err)
		err = qp_attach(&ep->qp, memfd, ring_size);
	if (memfd >= 0)
		close(memfd);
	if (err) {
		if (ctl >= 0)
			close(ctl);
		if (bell >= 0)
			close(bell);
	}
	if (err) {
		int renew = renew_socket(ep);

		return renew ? renew : err;
	}
	ep->ctl = ctl;
	ep->bell = bell;
	ep->stream_only = flags & QP_STREAM_ONLY;
	ep->state = EP_CONNECTED;
	return 0;
}

static int wait_readable(struct endpoint *ep, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	pthread_mutex_unlock(&ep->lock);
	n = poll(&p, 1, -1);
	pthread_mutex_lock(&ep->lock);
	if (ep->closing)
		return -EINTR;
	return n < 0 ? -errno : 0;
}

int scif_connect(scif_epd_t epd, struct scif_portID *dst)
{
	struct endpoint *ep;
	int err = 0;

	if (!dst)
		return FAIL(-EINVAL);
	ep = ep_get(epd);
	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	switch (ep->state) {
	case EP_UNBOUND:
		err = bind_locked(ep, 0);
		if (err < 0)
			break;
		/* fall through */
	case EP_BOUND:
		if (dst->port == 0)
			err = -EINVAL;
		else if (!fabric_node_exists(ep->fabric, dst->node))
			err = -ENODEV;
		else
			err = start_connect(ep, dst);
		break;
	case EP_LISTENING:
		err = -EOPNOTSUPP;
		break;
	case EP_CONNECTING:
		/* A non-blocking connect being finished. */
		err = 0;
		break;
	case EP_CONNECTED:
	case EP_DISCONNECTED:
		err = -EISCONN;
		break;
	}
	while (!err && ep->state == EP_CONNECTING) {
		int flags = fcntl(ep->fd, F_GETFL);

		err = finish_connect(ep);
		if (err != -EAGAIN)
			break;
		if (flags >= 0 && (flags & O_NONBLOCK)) {
			err = -EINPROGRESS;
			break;
		}
		err = wait_readable(ep, ep->fd);
	}
	if (ep->closing)
		err = -EINTR;
	if (!err)
		err = ep->port;
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return err < 0 ? FAIL(err) : err;
}

/* The queue pair and, unless stream-only, the control channel and the RMA
 * bell: ours kept in ep, the caller's ends in theirs[] (memfd, ctl, bell). */
static int make_connection(struct endpoint *ep, uint32_t ring_size, bool stream_only,
			   int theirs[3])
{
	int err = qp_create(&ep->qp, ring_size, &theirs[0]);

	if (!err && !stream_only) {
		err = qp_create_ctl(&ep->ctl, &theirs[1]);
		if (!err)
			err = qp_create_bell(&ep->bell, &theirs[2]);
	}
	return err;
}

static void close_theirs(int theirs[3])
{
	for (int i = 0; i < 3; i++)
		if (theirs[i] >= 0)
			close(theirs[i]);
}

/* Answers one caller from the listen queue: 1 with *out, 0 if none is
 * waiting, -errno. A caller that left meanwhile is skipped. */
static int accept_one(struct endpoint *lep, struct scif_portID *peer, struct endpoint **out)
{
	struct fabric *f = lep->fabric;
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	struct endpoint *ep;
	uint32_t asked, flags;
	int fd, theirs[3] = { -1, -1, -1 }, err;

	/* Not close-on-exec: the driver's accepted descriptors are not (its
	 * libscif opens them without O_CLOEXEC; only scif_open sets it). */
	fd = accept4(lep->fd, (struct sockaddr *)&sa, &len, 0);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
			return 0;
		return errno == EMFILE || errno == ENFILE ? -ENOMEM : -errno;
	}
	if (!fabric_parse_caller(f, &sa, len, peer, &asked)) {
		close(fd);	/* not a fabric endpoint */
		return -EAGAIN;
	}
	if (asked & ~QP_FLAGS_KNOWN) {
		/* A newer caller asking for what we cannot make. */
		qp_send_accept(fd, EPROTO, 0, 0, -1, -1, -1);
		close(fd);
		return -EAGAIN;
	}
	flags = asked | (lep->stream_only ? QP_STREAM_ONLY : 0);
	err = ep_create(f, fd, &ep);
	if (err) {
		qp_send_accept(fd, ENOMEM, 0, 0, -1, -1, -1);
		close(fd);
		return err;
	}
	ep->stream_only = flags & QP_STREAM_ONLY;
	err = make_connection(ep, f->ring_size, ep->stream_only, theirs);
	if (!err) {
		pthread_mutex_lock(&ep->lock);
		err = reset_link_locked(ep, peer);
		pthread_mutex_unlock(&ep->lock);
	}
	if (err) {
		close_theirs(theirs);
		qp_send_accept(fd, err == -ENODEV ? ENODEV : ENOMEM, 0, 0, -1, -1, -1);
		ep_destroy(fd);
		/* A node off line refuses this caller; the next may be another's. */
		return err == -ENODEV ? -EAGAIN : err;
	}
	err = qp_send_accept(fd, 0, f->ring_size, flags, theirs[0], theirs[1], theirs[2]);
	close_theirs(theirs);
	if (!err) {
		pthread_mutex_lock(&ep->lock);
		err = reset_link_check_locked(ep);
		if (!err) {
			ep->state = EP_CONNECTED;
			ep->port = lep->port;
		}
		pthread_mutex_unlock(&ep->lock);
	}
	if (err) {
		ep_destroy(fd);
		return -EAGAIN;	/* the caller is gone, or a node of the connection */
	}
	*out = ep;
	return 1;
}

int scif_accept(scif_epd_t epd, struct scif_portID *peer, scif_epd_t *newepd, int flags)
{
	struct endpoint *lep, *ep = NULL;
	struct scif_portID who;
	int err = 0, fd = -1;

	if (!peer || !newepd || (flags & ~SCIF_ACCEPT_SYNC))
		return FAIL(-EINVAL);
	lep = ep_get(epd);
	if (!lep)
		return -1;
	pthread_mutex_lock(&lep->lock);
	if (lep->state != EP_LISTENING)
		err = -EINVAL;
	while (!err) {
		int got = lep->closing ? -EINTR : accept_one(lep, &who, &ep);

		if (got == -EAGAIN)
			continue;
		if (got != 0) {
			err = got < 0 ? got : 0;
			fd = got > 0 ? ep->fd : -1;
			break;
		}
		if (!(flags & SCIF_ACCEPT_SYNC)) {
			err = -EAGAIN;
			break;
		}
		err = wait_readable(lep, lep->fd);
	}
	pthread_mutex_unlock(&lep->lock);
	ep_put(lep);
	if (err)
		return FAIL(err);
	*peer = who;
	*newepd = fd;
	return 0;
}
