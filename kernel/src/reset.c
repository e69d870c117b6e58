/*
 * reset.c - node-loss resets (reset.h): links, checks, and the watcher.
 *
 * The watcher is a thread of this process asleep on a futex word in the node
 * table, a shared file mapping, so one FUTEX_WAKE from any process of the
 * fabric wakes the watchers of all of them. It holds no descriptor and no
 * file: nothing to leak into a child, nothing left behind by a killed
 * process. It starts with the process's first connection in the fabric and
 * lives as long as the process (libscif.so.0 is linked so that dlclose
 * keeps it loaded); a child forked meanwhile has no watcher and starts its
 * own when it connects. A fabric opened anew after its directory went gets
 * a watcher of its own.
 */
#include "reset.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "endpoint.h"
#include "thread.h"

static uint32_t epoch_of(const struct fabric *f, uint16_t node)
{
	return atomic_load_explicit(&f->table->epoch[node], memory_order_acquire);
}

/* The RESET_* bits of the nodes whose epochs moved since the link. */
static unsigned moved(const struct endpoint *ep)
{
	const struct fabric *f = ep->fabric;
	unsigned r = 0;

	if (epoch_of(f, f->self) != ep->epoch_self)
		r |= RESET_SELF;
	if (epoch_of(f, ep->peer.node) != ep->epoch_peer)
		r |= RESET_PEER;
	return r;
}

/* Once: our ends of the connection's sockets are shut down, so the peer sees
 * end of file as if we had died, and every thread of ours asleep on them
 * (in ep_wait, a fence, a control message send, an event loop) wakes to it:
 * both descriptors report POLLHUP. */
static void reset_now(struct endpoint *ep, unsigned why)
{
	/* seq_cst, as the channel's flag where it is attached (channel.c):
	 * we see the channel and shut it down, or the attach sees the reset. */
	if (atomic_fetch_or_explicit(&ep->reset, why, memory_order_seq_cst) != 0)
		return;
	atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
	shutdown(ep->fd, SHUT_RDWR);
	if (atomic_load_explicit(&ep->has_channel, memory_order_seq_cst)) {
		shutdown(ep->ctl, SHUT_RDWR);
		shutdown(ep->bell, SHUT_RDWR);
	}
}

unsigned reset_check(struct endpoint *ep)
{
	unsigned r = atomic_load_explicit(&ep->reset, memory_order_acquire);

	if (r)
		return r;
	r = moved(ep);
	if (r)
		reset_now(ep, r);
	return r;
}

bool conn_gone(struct endpoint *ep)
{
	if (atomic_load_explicit(&ep->peer_gone, memory_order_acquire))
		return true;
	if (ep->qp.hdr &&
	    atomic_load_explicit(&ep->qp.hdr->closed[1 - ep->qp.side], memory_order_acquire)) {
		atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
		return true;
	}
	return reset_check(ep) != 0;
}

void conn_break(struct endpoint *ep)
{
	reset_now(ep, RESET_PROTO);
}

int conn_gone_err(struct endpoint *ep)
{
	return atomic_load_explicit(&ep->reset, memory_order_acquire) & RESET_PROTO ?
	       -EPROTO : -ECONNRESET;
}

int reset_link_check_locked(struct endpoint *ep)
{
	const struct fabric *f = ep->fabric;

	/* The epochs first: a node lost after they were read is off line here,
	 * or (back already) has moved its epoch. */
	if (atomic_load_explicit(&ep->reset, memory_order_acquire) || moved(ep) ||
	    !fabric_node_online(f, f->self) || !fabric_node_online(f, ep->peer.node))
		return -ENODEV;
	return 0;
}

void reset_unlink_locked(struct endpoint *ep)
{
	ep->linked = false;
	atomic_store_explicit(&ep->reset, 0, memory_order_relaxed);
	atomic_store_explicit(&ep->peer_gone, false, memory_order_relaxed);
}

/* ---- the watcher ---- */

/* One watcher per fabric of the process that has made a connection: a
 * fabric opened anew after its directory went (lost.c) has a node table of
 * its own, and the lost one's connections still follow theirs. */
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void reset_if_stale(struct endpoint *ep)
{
	pthread_mutex_lock(&ep->lock);
	if (ep->linked && !ep_closing(ep)) {
		unsigned r = moved(ep);

		if (r)
			reset_now(ep, r);
	}
	pthread_mutex_unlock(&ep->lock);
}

static void *watch_main(void *arg)
{
	_Atomic uint32_t *word = &((struct fabric *)arg)->table->resets;

	for (;;) {
		/* Read before the scan: a node lost during it wakes us again. */
		uint32_t seen = atomic_load_explicit(word, memory_order_acquire);

		ep_for_each(reset_if_stale);
		while (atomic_load_explicit(word, memory_order_acquire) == seen)
			syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, seen, NULL, NULL, 0);
	}
	return NULL;
}

/* A fork copies no thread: the child has no watcher, whatever it remembers. */
static void watch_prepare(void)
{
	pthread_mutex_lock(&watch_lock);
}

static void watch_parent(void)
{
	pthread_mutex_unlock(&watch_lock);
}

static void watch_child(void)
{
	for (struct fabric *f = fabric_newest(); f; f = f->older)
		f->reset_watched = false;
	pthread_mutex_unlock(&watch_lock);
}

static void watch_atfork(void)
{
	pthread_atfork(watch_prepare, watch_parent, watch_child);
}

static int watch_start(struct fabric *f)
{
	int err = 0;

	pthread_once(&atfork_once, watch_atfork);
	pthread_mutex_lock(&watch_lock);
	if (!f->reset_watched) {
		err = thread_start(watch_main, f, "scif-reset");
		f->reset_watched = err == 0;
	}
	pthread_mutex_unlock(&watch_lock);
	return err ? -ENOMEM : 0;
}

int reset_link_locked(struct endpoint *ep, const struct scif_portID *peer)
{
	const struct fabric *f = ep->fabric;
	int err = watch_start(ep->fabric);

	if (err)
		return err;
	ep->peer = *peer;
	ep->epoch_self = epoch_of(f, f->self);
	ep->epoch_peer = epoch_of(f, peer->node);
	atomic_store_explicit(&ep->reset, 0, memory_order_relaxed);
	ep->linked = true;
	return reset_link_check_locked(ep);
}

void reset_notify(struct fabric *f)
{
	atomic_fetch_add_explicit(&f->table->resets, 1, memory_order_acq_rel);
	syscall(SYS_futex, (uint32_t *)&f->table->resets, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	/* Ours at once, not a moment later: once the call returns, our
	 * descriptors say POLLHUP. */
	ep_for_each(reset_if_stale);
}
