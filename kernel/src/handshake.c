/*
 * handshake.c - scif_connect, scif_accept, and what a request asks for
 * (scif_net_set_stream_only).
 *
 * A caller binds its socket to an abstract name, its request, connects to
 * the listener's socket, and waits for the acceptor's answer, which brings
 * the queue pair's memfd. The request names the caller - its node and port,
 * its descriptor and its process's inbox, where the RMA channel's ends are
 * sent if the acceptor makes it (channel.h) - and says what it asks for:
 * the acceptor reads it with the connection itself, so it never waits for a
 * message.
 *
 * The request also carries QP_STREAM_ONLY when the caller was made
 * stream-only: the acceptor makes a stream-only connection, one that never
 * gets an RMA channel, when the caller or the listener is, and says so in
 * its answer. And it says how many tokens the caller sent ahead of it, which
 * keep its descriptor unwritable until it is answered (tokens.h): the
 * acceptor takes them once its answer is in the caller's socket, so a
 * non-blocking caller's POLLOUT finds the answer there.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel.h"
#include "connection.h"
#include "listener.h"
#include "lost.h"
#include "reset.h"
#include "scif.h"
#include "service.h"
#include "scif_net.h"

/* Names a caller tries before it gives up with EADDRINUSE. */
#define NAME_TRIES 8

/* Every bit a request may carry. */
#define REQUEST_KNOWN (QP_FLAGS_KNOWN | (0xffu << QP_PREFILL_SHIFT))

/* A connect attempt that failed after reaching the listener leaves the socket
 * useless; give the descriptor a fresh one so the endpoint stays bound and
 * can try again, as SCIF allows. (Also a socket named by a failed attempt
 * before the endpoint became stream-only: its name is the request.) */
static int renew_socket(struct endpoint *ep)
{
	int fd = conn_new_socket();
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
	int err = conn_check_unconnected(ep);

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
	err = ep_closing(ep) ? -EINTR : stream_only_locked(ep);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return err ? FAIL(err) : 0;
}

/* flags: the descriptor's file status flags (O_NONBLOCK). */
static int dial(struct endpoint *ep, const struct scif_portID *dst, int flags)
{
	struct fabric *f = ep->fabric;
	struct sockaddr_un sa;
	socklen_t len;
	int rc, err;

	if (!ep->named) {
		struct fabric_caller me = {
			.id = { .node = f->self, .port = ep->port },
			.flags = (ep->stream_only ? QP_STREAM_ONLY : 0) |
				 tok_full() << QP_PREFILL_SHIFT,
			.epd = ep->fd,
		};

		/* The inbox first: the acceptor may make the channel and send
		 * our ends there as soon as it has answered. */
		err = chan_inbox(f, &me.inbox);
		if (!err)
			err = tok_socket(ep->fd);
		if (err)
			return err;
		me.pfd = f->ports_fd;
		/* Another process (of any uid) may hold a name we chose: a
		 * fresh nonce makes another name. */
		err = -EADDRINUSE;
		for (int i = 0; i < NAME_TRIES && err == -EADDRINUSE; i++) {
			err = fabric_nonce(&me.nonce);
			if (err)
				return err;
			fabric_caller_addr(f, &me, &sa, &len);
			err = bind(ep->fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
		}
		if (err)
			return err;
		ep->named = true;
	}
	/* An endpoint opened before its fabric directory went reaches nobody
	 * (the path may name a directory made anew, whose listeners would
	 * refuse a caller of ours). */
	if (fabric_check(f)) {
		fabric_refused_error(f, dst->node, dst->port);
		return -ECONNREFUSED;
	}
	err = fabric_listener_addr(f, dst->node, dst->port, &sa, &len);
	if (err)
		return err;
	/* A full backlog refuses, as in SCIF, instead of making us wait. */
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
		/* Nobody ever listened there, or the directory went (or is new):
		 * the second says so. */
		(void)fabric_check(f);
		fabric_refused_error(f, dst->node, dst->port);
		return -ECONNREFUSED;
	case ECONNREFUSED:
	case EAGAIN:
		/* No listener there, a stale one, or a full backlog. */
		return -ECONNREFUSED;
	default:
		return -err;
	}
	ep->state = EP_CONNECTING;
	/* Unwritable until answered. An acceptor that refused and left at
	 * once makes this fail; its answer says so, and is what counts. */
	(void)tok_prefill(ep->fd, tok_full());
	return 0;
}

/* Linked to both nodes first (ENODEV if either is off line), so a node lost
 * from here on fails the connect or resets the connection (reset.h). */
static int start_connect(struct endpoint *ep, const struct scif_portID *dst, int flags)
{
	int err = reset_link_locked(ep, dst);

	if (!err)
		err = dial(ep, dst, flags);
	if (err)
		reset_unlink_locked(ep);
	return err;
}

/* Takes the acceptor's answer if it is there: 0, -EAGAIN, or the failure. */
static int finish_connect(struct endpoint *ep)
{
	uint32_t ring_size, flags = 0;
	uint64_t off = 0;
	int memfd = -1, err;

	err = qp_recv_accept(ep->fd, &ring_size, &flags, &memfd, &off);
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
		err = qp_attach(&ep->qp, memfd, ring_size, off);
	if (memfd >= 0)
		close(memfd);
	if (!err) {
		err = service_watch(ep);
		if (err)
			qp_detach(&ep->qp);
	}
	if (err) {
		int renew;

		chan_release(ep);	/* ends that came early for a connection that is not */
		/* A fresh socket: the service thread's watch of this one goes with it. */
		renew = renew_socket(ep);
		return renew ? renew : err;
	}
	ep->stream_only = flags & QP_STREAM_ONLY;
	ep->state = EP_CONNECTED;
	/* The acceptor may have made the channel already. */
	chan_take_early_locked(ep);
	return 0;
}

static int wait_readable(struct endpoint *ep, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	pthread_mutex_unlock(&ep->lock);
	n = poll(&p, 1, -1);
	pthread_mutex_lock(&ep->lock);
	if (ep_closing(ep))
		return -EINTR;
	return n < 0 ? -errno : 0;
}

/* Whether to wait is O_NONBLOCK on the descriptor, as with MPSS: read once,
 * when a call first needs it (a connect being finished, the usual second
 * call made when the descriptor said so, finds its answer without it). */
static int descriptor_flags(const struct endpoint *ep, int *flags)
{
	if (*flags < 0 && (*flags = fcntl(ep->fd, F_GETFL)) < 0)
		return -errno;
	return 0;
}

int scif_connect(scif_epd_t epd, struct scif_portID *dst)
{
	struct endpoint *ep;
	bool dialed = false;
	int err = 0, flags = -1;

	if (!dst)
		return FAIL(-EINVAL);
	ep = ep_get(epd);
	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	switch (ep->state) {
	case EP_UNBOUND:
		err = conn_bind_locked(ep, 0);
		if (err < 0)
			break;
		/* fall through */
	case EP_BOUND:
		if (dst->port == 0)
			err = -EINVAL;
		else if (!fabric_node_exists(ep->fabric, dst->node))
			err = -ENODEV;
		else if ((err = descriptor_flags(ep, &flags)) == 0)
			err = start_connect(ep, dst, flags);
		dialed = !err;
		break;
	case EP_LISTENING:
		err = -EOPNOTSUPP;
		break;
	case EP_CONNECTING:
		/* A non-blocking connect being finished. */
		err = 0;
		break;
	case EP_CONNECTED:
		err = -EISCONN;
		break;
	}
	/* Just dialed, the answer cannot be there yet: no look until the
	 * descriptor says so. */
	while (!err && ep->state == EP_CONNECTING) {
		err = dialed ? -EAGAIN : finish_connect(ep);
		dialed = false;
		if (err != -EAGAIN)
			break;
		err = descriptor_flags(ep, &flags);
		if (err)
			break;
		if (flags & O_NONBLOCK) {
			err = -EINPROGRESS;
			break;
		}
		err = wait_readable(ep, ep->fd);
	}
	if (ep_closing(ep))
		err = -EINTR;
	if (!err)
		err = ep->port;
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return err < 0 ? FAIL(err) : err;
}

/* Numbers connections: unique in the fabric while they live, with our
 * inbox's number, which no other live process has. */
static _Atomic uint32_t connections;

/* Who the ends of the connection with caller c, accepted as fd in f, are. */
static int name_ends(struct fabric *f, const struct fabric_caller *c, int fd,
		     struct qp_ends *ends)
{
	uint32_t inbox;
	int err = chan_inbox(f, &inbox);

	if (err)
		return err;
	*ends = (struct qp_ends){
		.conn = (uint64_t)inbox << 32 |
			atomic_fetch_add_explicit(&connections, 1, memory_order_relaxed),
		.inbox = { c->inbox, inbox },
		.epd = { c->epd, fd },
	};
	return 0;
}

/* What a caller is told when the acceptor ran out of something: descriptors
 * by name (so both sides say EMFILE or ENFILE), anything else as ENOMEM. */
static int out_of(int err)
{
	return err == -EMFILE || err == -ENFILE ? -err : ENOMEM;
}

/* Answers one caller from the listen queue: 1 with *out, 0 if none is
 * waiting, -errno. A caller that left meanwhile is skipped (-EAGAIN). */
static int accept_one(struct endpoint *lep, struct scif_portID *peer, struct endpoint **out)
{
	struct fabric *f = lep->fabric;
	struct fabric_caller caller;
	struct qp_ends ends;
	struct endpoint *ep;
	uint32_t request, flags;
	uint64_t off = 0;
	pid_t pid = 0;
	int fd, memfd = -1, err;

	err = conn_take_caller(lep, &fd, &caller);
	if (err <= 0)
		return err;
	request = caller.flags;
	if (request == 0 || (request & ~REQUEST_KNOWN)) {
		/* Not one of ours, or a newer caller asking for what we cannot make. */
		conn_refuse(fd, EPROTO, request);
		return -EAGAIN;
	}
	/* Who it is, as the fabric knows it: not what its name says. */
	err = fabric_verify_caller(f, fd, &caller, &pid);
	if (err == -EMFILE || err == -ENFILE || err == -ENOMEM) {
		conn_refuse(fd, out_of(err), request);
		return err;
	}
	if (err) {
		conn_refuse(fd, err == -EACCES ? EACCES : EPROTO, request);
		return -EAGAIN;
	}
	*peer = caller.id;
	flags = (request & QP_FLAGS_KNOWN) | (lep->stream_only ? QP_STREAM_ONLY : 0);
	err = tok_socket(fd);
	if (!err)
		err = name_ends(f, &caller, fd, &ends);
	if (!err)
		err = ep_create(f, fd, &ep);
	if (err) {
		conn_refuse(fd, out_of(err), request);
		return err;
	}
	ep->stream_only = flags & QP_STREAM_ONLY;
	err = qp_create(&ep->qp, f->ring_size, &ends, QP_PREFILL(request), pid, &memfd, &off);
	if (!err)
		err = service_watch(ep);
	if (!err) {
		pthread_mutex_lock(&ep->lock);
		err = reset_link_locked(ep, peer);
		pthread_mutex_unlock(&ep->lock);
	}
	if (err) {
		conn_answer_no(fd, err == -ENODEV ? ENODEV : out_of(err), request);
		conn_destroy(ep_remove(fd));
		/* A node off line refuses this caller; the next may be another's. */
		return err == -ENODEV ? -EAGAIN : err;
	}
	/* The memfd is the arena's (its queue pair is ours until we close). */
	err = qp_send_accept(fd, 0, f->ring_size, flags, memfd, off);
	/* The answer is in its socket: the caller may turn writable now. */
	if (!err)
		err = tok_take(fd, QP_PREFILL(request), CONN_TAKE_TIMEOUT_MS);
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
		conn_destroy(ep_remove(fd));
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
		int got = listener_lost_locked(lep, false);

		if (!got)
			got = accept_one(lep, &who, &ep);
		if (got == -EAGAIN)
			continue;
		if (!got)
			got = listener_lost_locked(lep, true);
		if (got != 0) {
			err = got < 0 ? got : 0;
			fd = got > 0 ? ep->fd : -1;
			break;
		}
		if (!(flags & SCIF_ACCEPT_SYNC)) {
			err = -EAGAIN;
			break;
		}
		err = listener_wait_locked(lep);
	}
	pthread_mutex_unlock(&lep->lock);
	ep_put(lep);
	if (err)
		return FAIL(err);
	*peer = who;
	*newepd = fd;
	return 0;
}
