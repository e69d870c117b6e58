/*
 * connection.c - an endpoint's life: scif_open, scif_bind and scif_close
 * (listening is listener.c's, connecting and accepting handshake.c's).
 *
 * A bound port is a lock in the node's port registry (fabric.h); it goes
 * with the endpoint, or with its process.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "connection.h"
#include "listener.h"
#include "lost.h"
#include "scif.h"

int conn_new_socket(void)
{
	return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

scif_epd_t scif_open(void)
{
	/* A fabric whose directory went is no place for a new endpoint: it
	 * joins the directory made anew (lost.h). */
	struct fabric *f = fabric_fresh();
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
	int fd = ep->fd;

	/* The peer learns of the close first (closed flag, then end of file
	 * with nothing of its left here), then our windows' pages go back to
	 * being private. */
	if (ep->qp.hdr)
		qp_detach(&ep->qp);
	if (ep->state != EP_LISTENING)
		drain_socket(ep->fd);
	win_release_endpoint(ep);
	chan_release(ep);
	if (ep->accept_wake >= 0)
		close(ep->accept_wake);
	/* A listener's: only if it was the last hold (listener_leave_locked). */
	if (ep->owns_port)
		fabric_port_release(ep->fabric, ep->port);
	close(fd);
	ep_free(ep);
	ep_forget(fd);
}

int scif_close(scif_epd_t epd)
{
	struct endpoint *ep = ep_get(epd);

	if (!ep)
		return -1;
	/* A listener lets go of its hold before its socket goes: the last
	 * holder's waiting callers see an answer and a hang-up, not an error. */
	pthread_mutex_lock(&ep->lock);
	if (ep->state == EP_LISTENING && !ep_closing(ep))
		listener_leave_locked(ep);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	ep = ep_remove(epd);
	if (!ep)
		return FAIL(-EBADF);
	conn_destroy(ep);
	return 0;
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

