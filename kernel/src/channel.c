/*
 * channel.c - making, sending and attaching RMA channels; the process's
 * inbox (channel.h).
 */
#include "channel.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "endpoint.h"
#include "inbox.h"
#include "reset.h"
#include "service.h"

/* ---- the process's inbox ---- */

/* Guards the inboxes - one per fabric of the process (a fabric opened anew
 * after its directory went names its sockets anew, and the lost one's
 * connections still send to the old one): opening them, and reading them -
 * one reader at a time, so a thread that takes the lock after a message
 * was sent finds it handled. */
static pthread_mutex_t inbox_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A fork copies no thread: the child's inbox is its own, made when it
 * connects (its parent's socket, which it shares, is not its to read). */
static void inbox_prepare(void)
{
	pthread_mutex_lock(&inbox_lock);
}

static void inbox_parent(void)
{
	pthread_mutex_unlock(&inbox_lock);
}

static void inbox_child(void)
{
	for (struct fabric *f = fabric_newest(); f; f = f->older) {
		if (f->inbox_fd >= 0)
			close(f->inbox_fd);
		f->inbox_fd = -1;
	}
	pthread_mutex_unlock(&inbox_lock);
}

static void inbox_atfork(void)
{
	pthread_atfork(inbox_prepare, inbox_parent, inbox_child);
}

static void deliver(const struct inbox_msg *m, int ctl, int bell);

/* Handles every message waiting, in every inbox: the service thread's, as
 * they come (all inboxes wake it alike), and chan_ensure()'s for a channel
 * the peer made. */
static void read_inbox(void)
{
	struct inbox_msg m;
	int fds[INBOX_FDS];

	pthread_mutex_lock(&inbox_lock);
	for (struct fabric *f = fabric_newest(); f; f = f->older)
		while (f->inbox_fd >= 0 && inbox_recv(f->inbox_fd, &m, fds) > 0)
			deliver(&m, fds[0], fds[1]);
	pthread_mutex_unlock(&inbox_lock);
}

int chan_inbox(struct fabric *f, uint32_t *id)
{
	int err = 0;

	pthread_once(&atfork_once, inbox_atfork);
	pthread_mutex_lock(&inbox_lock);
	if (f->inbox_fd < 0) {
		int fd = inbox_open(f, &f->inbox_id);

		err = fd < 0 ? fd : service_watch_inbox(fd, read_inbox);
		if (!err)
			f->inbox_fd = fd;
		else if (fd >= 0)
			close(fd);
	}
	*id = f->inbox_id;
	pthread_mutex_unlock(&inbox_lock);
	return err;
}

/* ---- attaching ---- */

static void close_pair(int ctl, int bell)
{
	if (ctl >= 0)
		close(ctl);
	if (bell >= 0)
		close(bell);
}

/* The channel's ends were lost on their way to us (the kernel had no
 * descriptor for them: we are at our limit), or we had no memory for the
 * RMA state they need, with ep->lock held: the connection can never have
 * its channel. Hung up, as a connection that ran out of resources, so that
 * both sides learn it at once. */
static void lost_locked(struct endpoint *ep)
{
	if (!ep_closing(ep))
		shutdown(ep->fd, SHUT_RDWR);
}

/* Makes ctl and bell the endpoint's channel (with ep->lock held), or closes
 * them: an endpoint closing, or one that has a channel already. */
static void attach_locked(struct endpoint *ep, int ctl, int bell)
{
	if (ep_closing(ep) || ep_has_channel(ep)) {
		close_pair(ctl, bell);
		return;
	}
	/* The RMA state before the channel, so that whoever sees has_channel
	 * sees the state (both published under ep->lock; this release is
	 * ordered before has_channel's store below). Our own calls made it
	 * already in chan_ensure(), where a lack of memory fails the call;
	 * here it is for ends the peer sent, which the service thread
	 * attaches (and a window of the peer's may follow them at once).
	 * Without memory for it the ends cannot be kept: the peer's channel
	 * would be half made, so the connection goes as when ends are lost. */
	if (ep_rma_make_locked(ep) != 0) {
		close_pair(ctl, bell);
		lost_locked(ep);
		return;
	}
	ep->ctl = ctl;
	ep->bell = bell;
	/* seq_cst, as the reset's flag in reset_now(): it shuts down the
	 * channel it sees, or we see the reset and shut it down ourselves.
	 * Pairs with the acquire in ep_has_channel() for everyone else. */
	atomic_store_explicit(&ep->has_channel, true, memory_order_seq_cst);
	if (atomic_load_explicit(&ep->reset, memory_order_seq_cst)) {
		shutdown(ctl, SHUT_RDWR);
		shutdown(bell, SHUT_RDWR);
	}
	/* Watched once connected; a caller still connecting is watched with
	 * its channel when its connect is finished (service_watch). If the
	 * thread cannot watch it, window messages wait for our next call. */
	if (atomic_load_explicit(&ep->watch, memory_order_relaxed))
		(void)service_watch_ctl(ep);
}

static bool is_for(const struct endpoint *ep, uint64_t conn, uint32_t side)
{
	return ep->qp.hdr && ep->qp.hdr->ends.conn == conn && (uint32_t)ep->qp.side == side;
}

/* One message from the inbox: the ends of the channel the peer made. */
static void deliver(const struct inbox_msg *m, int ctl, int bell)
{
	struct endpoint *ep = ep_find(m->epd);

	if (!ep) {
		/* Closed meanwhile: the peer sees end of file on its ends. */
		close_pair(ctl, bell);
		return;
	}
	pthread_mutex_lock(&ep->lock);
	if (is_for(ep, m->conn, m->side) && ctl < 0) {
		lost_locked(ep);
	} else if (is_for(ep, m->conn, m->side)) {
		attach_locked(ep, ctl, bell);
	} else if (ep->state == EP_CONNECTING && !ep->qp.hdr && !ep_closing(ep)) {
		close_pair(ep->chan_early.ctl, ep->chan_early.bell);
		ep->chan_early.conn = m->conn;
		ep->chan_early.ctl = ctl;
		ep->chan_early.bell = bell;
		ep->chan_early.lost = ctl < 0;
	} else {
		close_pair(ctl, bell);	/* a connection that is no more */
	}
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
}

void chan_take_early_locked(struct endpoint *ep)
{
	int ctl = ep->chan_early.ctl, bell = ep->chan_early.bell;
	bool lost = ep->chan_early.lost;

	ep->chan_early.ctl = ep->chan_early.bell = -1;
	ep->chan_early.lost = false;
	/* Nothing came early (the usual case): the header, which is_for()
	 * reads, stays untouched - an idle connection's page unmapped. */
	if (ctl < 0 && !lost)
		return;
	if (!is_for(ep, ep->chan_early.conn, 0))
		close_pair(ctl, bell);
	else if (lost)
		lost_locked(ep);
	else if (ctl >= 0)
		attach_locked(ep, ctl, bell);
}

void chan_release(struct endpoint *ep)
{
	close_pair(ep->ctl, ep->bell);
	close_pair(ep->chan_early.ctl, ep->chan_early.bell);
	ep->ctl = ep->bell = ep->chan_early.ctl = ep->chan_early.bell = -1;
	atomic_store_explicit(&ep->has_channel, false, memory_order_relaxed);
}

/* ---- making ---- */

/* SCIF_NET_CHAN_DELAY_US, read once. */
static pthread_once_t delay_once = PTHREAD_ONCE_INIT;
static long delay_us;

static void read_delay(void)
{
	const char *s = getenv("SCIF_NET_CHAN_DELAY_US");

	delay_us = s ? atol(s) : 0;
}

static void test_delay(void)
{
	pthread_once(&delay_once, read_delay);
	if (delay_us > 0)
		nanosleep(&(struct timespec){ .tv_sec = delay_us / 1000000,
					      .tv_nsec = delay_us % 1000000 * 1000 }, NULL);
}

/* The two pairs: [0] ours, [1] the peer's. */
static int make_pairs(int ctl[2], int bell[2])
{
	/* Room for a few thousand window messages where net.core.wmem_max
	 * allows (the kernel caps it there), so a peer slow to read seldom
	 * makes a registering thread wait; nothing is allocated until they
	 * are sent. Best effort: the default room works, only sooner makes
	 * senders wait. */
	int room = 4 << 20;

	/* Records stay whole with their descriptors, and threads cannot
	 * interleave them (ctl.h). */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0)
		return -errno;
	(void)setsockopt(ctl[0], SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	(void)setsockopt(ctl[1], SOL_SOCKET, SO_SNDBUF, &room, sizeof(room));
	/* Bytes, as on the endpoint's socket: a full one already holds a
	 * wake-up, and end of file is the other side's departure. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, bell) < 0) {
		int err = -errno;

		close_pair(ctl[0], ctl[1]);
		return err;
	}
	return 0;
}

/* Makes the channel, sends the peer its ends, attaches ours: with chan_lock
 * held and the state QP_CHAN_NONE. */
static int make(struct endpoint *ep)
{
	struct qp_header *h = ep->qp.hdr;
	int peer = 1 - ep->qp.side, ctl[2], bell[2], err;
	struct inbox_msg m = {
		.magic = INBOX_MAGIC, .version = QP_VERSION, .conn = h->ends.conn,
		.epd = h->ends.epd[peer], .side = (uint32_t)peer,
	};

	err = make_pairs(ctl, bell);
	if (err)
		return err == -EMFILE || err == -ENFILE ? -ENOMEM : err;	/* as SCIF says it */
	test_delay();
	err = inbox_send(ep->fabric, h->ends.inbox[peer], &m, (int[]){ ctl[1], bell[1] }, ep->fd);
	close_pair(ctl[1], bell[1]);
	if (err) {
		close_pair(ctl[0], bell[0]);
		return err;
	}
	/* Pairs with the acquire in chan_ensure(): the peer's ends are in its
	 * inbox before this says so. */
	atomic_store_explicit(&h->chan, QP_CHAN_MADE(ep->qp.side), memory_order_release);
	pthread_mutex_lock(&ep->lock);
	attach_locked(ep, ctl[0], bell[0]);
	pthread_mutex_unlock(&ep->lock);
	return 0;
}

/*
 * Takes chan_lock (shlock.h). Its holder makes the channel: a few system
 * calls (SCIF_NET_CHAN_DELAY_US more in tests). While we wait we look every
 * LOOK_MS: -EINTR once we close; -ECONNRESET once the peer hung up or its
 * end is gone - a peer that died holding the lock never lets go, and that
 * is how its death shows. A peer holding it for CHAN_LOCK_MS is broken,
 * hostile or stopped (SIGSTOP, a debugger): the connection is reset and
 * the call fails with EPROTO, as for any impossible state the peer leaves
 * in the queue pair, rather than wait on it for ever.
 */
#define LOOK_MS 50
#define CHAN_LOCK_MS 5000

static int chan_look(void *arg)
{
	struct endpoint *ep = arg;

	if (ep_closing(ep))
		return -EINTR;
	if (ep_hung_up(ep) || conn_gone(ep))
		return conn_gone_err(ep);
	return 0;
}

static int lock_chan(struct endpoint *ep)
{
	const struct shlock_wait how = {
		.spins = 0, .look_ms = LOOK_MS, .limit_ms = CHAN_LOCK_MS,
		.look = chan_look, .arg = ep,
	};
	int err = shlock_lock(&ep->qp.hdr->chan_lock, &how);

	if (err == -EPROTO)
		conn_break(ep);
	return err;
}

int chan_ensure(struct endpoint *ep)
{
	struct qp_header *h = ep->qp.hdr;
	int err;

	if (ep_has_channel(ep))
		return 0;
	/* The endpoint's RMA state first (endpoint.h), before anything is made
	 * or sent: without memory for it the call fails with ENOMEM, as the
	 * driver's RMA calls do, and the peer has heard nothing. The channel's
	 * attach finds it made, here or in the service thread's deliver(). */
	pthread_mutex_lock(&ep->lock);
	err = ep_rma_make_locked(ep);
	pthread_mutex_unlock(&ep->lock);
	if (err)
		return err;
	err = lock_chan(ep);
	if (err)
		return err;
	if (!ep_has_channel(ep) &&
	    atomic_load_explicit(&h->chan, memory_order_acquire) == QP_CHAN_NONE)
		err = make(ep);
	shlock_unlock(&h->chan_lock);
	if (err)
		return err;
	/* The peer made it: our ends are in our inbox, or attached already. */
	if (!ep_has_channel(ep))
		read_inbox();
	if (ep_has_channel(ep))
		return 0;
	return ep_closing(ep) ? -EINTR : -ECONNRESET;
}
