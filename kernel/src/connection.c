/*
 * connection.c - an endpoint's life: scif_open, scif_bind, scif_listen and
 * scif_close (connecting and accepting are handshake.c's).
 *
 * A listener is a Unix stream socket listening at <fabric>/n<node>p<port>;
 * a bound port is a lock in the node's port registry (fabric.h). Both go
 * with the endpoint, or with its process. The callers waiting in a
 * listener's queue are taken from it here, to be answered (handshake.c) or
 * refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connection.h"
#include "scif.h"
#include "tokens.h"

int conn_new_socket(void)
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
	fd = conn_new_socket();
	if (fd < 0)
		return SCIF_OPEN_FAILED;
	err = ep_create(f, fd, &ep);
	if (err) {
		close(fd);
		return FAIL(err);
	}
	return fd;
}

/* Reads what the peer left in our socket (its tokens; a caller's unread
 * answer), once nothing more can come: a socket closed with bytes in it
 * leaves its peer an error (POLLERR), which the driver's never shows. */
static void drain_socket(int fd)
{
	char buf[256];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

void conn_destroy(struct endpoint *ep)
{
	/* The peer learns of the close first (closed flag, then end of file
	 * with nothing of its left here), then our windows' pages go back to
	 * being private. */
	if (ep->qp.hdr)
		qp_detach(&ep->qp);
	if (ep->state != EP_LISTENING)
		drain_socket(ep->fd);
	win_release_endpoint(ep);
	if (ep->ctl >= 0)
		close(ep->ctl);
	if (ep->bell >= 0)
		close(ep->bell);
	if (ep->state == EP_LISTENING) {
		struct sockaddr_un sa;
		socklen_t len;

		/* Still ours: we hold the port, so nobody else can have re-created it. */
		if (fabric_listener_addr(ep->fabric, ep->fabric->self, ep->port, &sa, &len) == 0)
			unlink(sa.sun_path);
	}
	if (ep->owns_port)
		fabric_port_release(ep->fabric, ep->port);
	close(ep->fd);
	ep_free(ep);
}

int scif_close(scif_epd_t epd)
{
	struct endpoint *ep = ep_get(epd);

	if (!ep)
		return -1;
	/* A listener's waiting callers are refused, as SCIF's are, before its
	 * socket goes: they see an answer and a hang-up, not an error. */
	pthread_mutex_lock(&ep->lock);
	if (ep->state == EP_LISTENING && !ep_closing(ep))
		conn_refuse_pending(ep);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	ep = ep_remove(epd);
	if (!ep)
		return FAIL(-EBADF);
	conn_destroy(ep);
	return 0;
}

void conn_answer_no(int fd, int status, uint32_t request)
{
	if (qp_send_accept(fd, status, 0, 0, -1, -1, -1) == 0)
		(void)tok_take(fd, QP_PREFILL(request), CONN_TAKE_TIMEOUT_MS);
}

void conn_refuse(int fd, int status, uint32_t request)
{
	conn_answer_no(fd, status, request);
	close(fd);
}

int conn_take_caller(struct endpoint *lep, int *fd, struct scif_portID *peer,
		     uint32_t *request)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);

	/* Not close-on-exec: the driver's accepted descriptors are not (its
	 * libscif opens them without O_CLOEXEC; only scif_open sets it). */
	*fd = accept4(lep->fd, (struct sockaddr *)&sa, &len, 0);
	if (*fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED)
			return 0;
		return errno == EMFILE || errno == ENFILE ? -ENOMEM : -errno;
	}
	if (!fabric_parse_caller(lep->fabric, &sa, len, peer, request))
		*request = 0;	/* not a fabric endpoint: nothing was sent ahead */
	return 1;
}

void conn_refuse_pending(struct endpoint *lep)
{
	struct scif_portID peer;
	uint32_t request;
	int fd;

	while (conn_take_caller(lep, &fd, &peer, &request) > 0)
		conn_refuse(fd, ECONNREFUSED, request);
}

int conn_check_unconnected(const struct endpoint *ep)
{
	switch (ep->state) {
	case EP_UNBOUND:
	case EP_BOUND:
		break;
	case EP_LISTENING:
		return -EINVAL;
	case EP_CONNECTING:
	case EP_CONNECTED:
		return -EISCONN;
	}
	return 0;
}

int conn_bind_locked(struct endpoint *ep, uint16_t pn)
{
	int port = ep->state == EP_BOUND ? -EINVAL : conn_check_unconnected(ep);

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
	ret = ep_closing(ep) ? -EINTR : conn_bind_locked(ep, pn);
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
	err = ep_closing(ep) ? -EINTR : listen_locked(ep, backlog);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return err ? FAIL(err) : 0;
}
