/*
 * track.c - RMA numbering, completion slots and waiting (track.h).
 */
#include "track.h"

#include <errno.h>
#include <poll.h>

#include "channel.h"
#include "ctl.h"
#include "endpoint.h"
#include "reset.h"

#define N QP_RMA_SLOTS

int rma_verify(struct endpoint *ep)
{
	bool made;
	int err = 0;

	pthread_mutex_lock(&ep->lock);
	err = ep_connected_locked(ep);
	if (!err && ep->stream_only)
		err = -EOPNOTSUPP;	/* no control channel, no RMA bell: never, alive or not */
	/* Under ep->lock, which its makers hold: state made before we took
	 * it is seen, and so is the channel attached after it. */
	made = ep_rma(ep) != NULL;
	pthread_mutex_unlock(&ep->lock);
	if (!err && conn_gone(ep))
		err = conn_gone_err(ep);	/* EPROTO once the peer broke the protocol */
	/* Gone: our RMAs still queued complete first (into our views, which
	 * hold the pages), so that once a call has told of the departure
	 * nothing of ours still copies. Then the peer's windows go - whoever
	 * noticed the death may have read the control channel before it showed
	 * end of file (a killed process's descriptors are released one by
	 * one): at the first call that finds the end of file there. A
	 * connection that had not made its RMA state then has neither: no RMA
	 * of ours was numbered (that needs rma_verify() to pass, which makes
	 * the state) and no channel attached (the state comes first), so
	 * there is nothing to wait for (ctl_lock()'s drain would find no
	 * channel), and a connection that dies idle allocates nothing here. */
	if ((err == -ECONNRESET || err == -EPROTO) && made) {
		rma_wait(ep, false, rma_started(ep, false));
		(void)ctl_lock(ep);	/* waits for the service thread's drain, if it has one under way */
		ctl_unlock(ep);
	}
	if (!err && !fabric_node_online(ep->fabric, ep->peer.node))
		err = -ENODEV;
	/* The first call of the family on either side makes the channel. */
	if (!err)
		err = chan_ensure(ep);
	return err;
}

static struct qp_rma *side(struct endpoint *ep, bool peer)
{
	return &ep->qp.hdr->rma[peer ? 1 - ep->qp.side : ep->qp.side];
}

/* Every RMA numbered up to seq has stored its number in its slot. */
static bool done_upto(struct qp_rma *r, uint64_t seq)
{
	for (uint64_t j = 0; j < N; j++) {
		uint64_t last;

		if (seq < j)
			break;
		last = seq - (seq - j) % N;	/* the last number <= seq in slot j */
		/* Pairs with the release in rma_end(): the copies are visible. */
		if (last && atomic_load_explicit(&r->done[j], memory_order_acquire) < last)
			return false;
	}
	return true;
}

static bool slot_free(struct qp_rma *r, uint64_t seq)
{
	return seq <= N || atomic_load_explicit(&r->done[seq % N], memory_order_acquire) >= seq - N;
}

/* Sleeps until our own slot seq is free (free_slot) or RMAs up to seq are
 * done. Only for RMAs of ours numbered (or being numbered), which
 * rma_verify() let through: the state is made. */
static void wait_ours(struct endpoint *ep, uint64_t seq, bool free_slot)
{
	struct qp_rma *r = side(ep, false);
	struct ep_rma *st = ep_rma(ep);

	pthread_mutex_lock(&st->slot_lock);
	/* Raised before looking (seq_cst), so rma_end() either sees it or we
	 * see its slot: the same handshake as the rings'. */
	atomic_fetch_add_explicit(&st->slot_waiters, 1, memory_order_seq_cst);
	while (!(free_slot ? slot_free(r, seq) : done_upto(r, seq)))
		pthread_cond_wait(&st->slot_cond, &st->slot_lock);
	atomic_fetch_sub_explicit(&st->slot_waiters, 1, memory_order_relaxed);
	pthread_mutex_unlock(&st->slot_lock);
}

uint64_t rma_begin(struct endpoint *ep)
{
	struct qp_rma *r = side(ep, false);
	/* seq_cst: an unregister on the other side reads this counter after
	 * sending its message, and we read our control channel after this
	 * (register.c relies on one of the two seeing the other). */
	uint64_t seq = atomic_fetch_add_explicit(&r->started, 1, memory_order_seq_cst) + 1;

	if (!slot_free(r, seq))
		wait_ours(ep, seq, true);
	return seq;
}

/* The caller's thread or the DMA engine's: the RMA was numbered past
 * rma_verify(), so the state is made, and the engine's queue hands the job
 * over under its lock, which makes it seen there too. */
void rma_end(struct endpoint *ep, uint64_t seq)
{
	struct qp_rma *r = side(ep, false);
	struct ep_rma *st = ep_rma(ep);

	atomic_store_explicit(&r->done[seq % N], seq, memory_order_release);
	qp_notify_peer(&ep->qp, ep->bell);
	if (atomic_load_explicit(&st->slot_waiters, memory_order_seq_cst)) {
		pthread_mutex_lock(&st->slot_lock);
		pthread_cond_broadcast(&st->slot_cond);
		pthread_mutex_unlock(&st->slot_lock);
	}
}

uint64_t rma_started(struct endpoint *ep, bool peer)
{
	return atomic_load_explicit(&side(ep, peer)->started, memory_order_seq_cst);
}

/*
 * The RMA bell's waiters, with ep->lock held: swallows pending bells (the
 * caller is the bell's poller, or there is none) and moves bell_gen on, so a
 * waiter that took its generation before cannot sleep through what was
 * swallowed. End of file is the peer's departure - unless it is our own
 * shutdown in scif_close().
 */
static void bell_drain_locked(struct endpoint *ep)
{
	if (!ep_closing(ep) && qp_drain_bells(ep->bell) != 0)
		atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
	ep->bell_gen++;
	pthread_cond_broadcast(&ep->bell_wake);
}

/* Before testing the condition: the generation to pass to bell_wait(). */
static uint64_t bell_prepare(struct endpoint *ep)
{
	uint64_t gen;

	pthread_mutex_lock(&ep->lock);
	if (!ep->bell_poller)
		bell_drain_locked(ep);
	gen = ep->bell_gen;
	pthread_mutex_unlock(&ep->lock);
	return gen;
}

/* Sleeps until the bell rings, the peer leaves or the endpoint closes
 * (-EINTR) - unless bell_gen has moved past gen already. One thread polls the
 * socket; the others wait for it to drain and report. */
static int bell_wait(struct endpoint *ep, uint64_t gen)
{
	/* And the connection's socket for its hang-up: a peer gone before it
	 * attached its end of the bell (channel.h) may leave that end open a
	 * moment longer, in its process's inbox. */
	struct pollfd p[2] = {
		{ .fd = ep->bell, .events = POLLIN },
		{ .fd = ep->fd, .events = 0 },
	};
	int err = 0;

	pthread_mutex_lock(&ep->lock);
	if (ep->bell_poller) {
		while (ep->bell_gen == gen && !ep_closing(ep))
			pthread_cond_wait(&ep->bell_wake, &ep->lock);
	} else if (ep->bell_gen == gen && !ep_closing(ep)) {
		int n, saved;

		ep->bell_poller = true;
		pthread_mutex_unlock(&ep->lock);
		n = poll(p, 2, -1);
		saved = errno;
		if (n > 0 && (p[1].revents & POLLHUP) && !ep_closing(ep))
			(void)ep_take_hangup(ep);	/* peer_gone: peer_wait() sees it */
		pthread_mutex_lock(&ep->lock);
		ep->bell_poller = false;
		bell_drain_locked(ep);
		if (n < 0)
			err = -saved;
	}
	if (ep_closing(ep))
		err = -EINTR;
	pthread_mutex_unlock(&ep->lock);
	return err;
}

/* Returns when ready(ep, arg) holds, a condition on what the peer publishes
 * in the queue pair, which it rings our bell for (qp_notify_peer) once we
 * raise its waiting flag: 0, -ECONNRESET, -EINTR. */
static int peer_wait(struct endpoint *ep, bool (*ready)(struct endpoint *ep, uint64_t arg),
		     uint64_t arg)
{
	_Atomic uint32_t *waiting = &side(ep, true)->waiting;

	for (;;) {
		uint64_t gen = bell_prepare(ep);
		int err;

		if (ready(ep, arg))
			return 0;
		/* What the peer began before dying never completes. */
		if (conn_gone(ep))
			return -ECONNRESET;
		atomic_store_explicit(waiting, 1, memory_order_relaxed);
		/* Pairs with the fence in qp_notify_peer(). */
		atomic_thread_fence(memory_order_seq_cst);
		if (ready(ep, arg))
			return 0;
		err = bell_wait(ep, gen);
		if (err)
			return err;
	}
}

static bool peer_done_upto(struct endpoint *ep, uint64_t seq)
{
	return done_upto(side(ep, true), seq);
}

int rma_wait(struct endpoint *ep, bool peer, uint64_t seq)
{
	if (!peer) {
		if (!done_upto(side(ep, false), seq))
			wait_ours(ep, seq, false);
		return 0;
	}
	return peer_wait(ep, peer_done_upto, seq);
}

static bool peer_handled(struct endpoint *ep, uint64_t sent)
{
	/* Pairs with the release in ctl.c's drain(). */
	uint32_t done = atomic_load_explicit(&side(ep, true)->ctl_done, memory_order_acquire);

	return (int32_t)(done - (uint32_t)sent) >= 0;
}

int rma_wait_handled(struct endpoint *ep, uint32_t sent)
{
	return peer_wait(ep, peer_handled, sent);
}
