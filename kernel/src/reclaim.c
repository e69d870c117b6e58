/*
 * reclaim.c - the idle sweep that gives rings' pages back (reclaim.h).
 */
#include "reclaim.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "endpoint.h"

/* Cleared when the kernel cannot punch holes in shared memory through
 * madvise: then nothing is tried again. Only the service thread uses it. */
static bool supported = true;

/* Read by other threads (the tests'). */
static _Atomic uint64_t sweeps, given;

/* Punches out the whole pages of our ring: 0 or -errno. A ring smaller than
 * a page (4 KiB rings under larger pages) shares its pages with the header
 * or the other ring, and keeps them. */
static int punch(const struct rb *tx)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)tx->data + page - 1) & ~(page - 1);
	uintptr_t hi = ((uintptr_t)tx->data + tx->size) & ~(page - 1);

	if (hi <= lo)
		return 0;
	return madvise((void *)lo, hi - lo, MADV_REMOVE) < 0 ? -errno : 0;
}

/* With the send lock held: our ring, if it has been idle since the last
 * sweep and drained, and written since it last went back. */
static void sweep_ring(struct endpoint *ep)
{
	struct rb *tx = &ep->qp.tx;
	bool quiet = ep->tx_swept == tx->local;
	int err;

	ep->tx_swept = tx->local;
	/* Unwritten since its give-back (or ever): nothing to give, and no
	 * page of the header to touch. */
	if (!quiet || ep->tx_given == tx->local || !rb_drained(tx))
		return;
	err = punch(tx);
	/* Whatever the outcome, not again before the next write: a punch
	 * refused now would be refused at every sweep. */
	ep->tx_given = tx->local;
	if (!err)
		atomic_fetch_add_explicit(&given, 1, memory_order_relaxed);
	if (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOSYS)
		supported = false;	/* a kernel without hole punching in shmem */
}

static void sweep(struct endpoint *ep)
{
	bool connected;

	/* Never wait: the service thread has messages to read, and a lock
	 * held now is a call under way, which is not idleness. */
	if (pthread_mutex_trylock(&ep->lock))
		return;
	connected = ep->state == EP_CONNECTED && ep->qp.hdr;
	pthread_mutex_unlock(&ep->lock);
	if (!connected || pthread_mutex_trylock(&ep->send_lock))
		return;
	sweep_ring(ep);
	pthread_mutex_unlock(&ep->send_lock);
}

bool reclaim_sweep(void)
{
	if (supported) {
		int err;

		ep_for_each(sweep);
		/* Closed connections' pages, in arenas still in use (arena.h). */
		err = arena_sweep();
		if (err == -EINVAL || err == -EOPNOTSUPP || err == -ENOSYS)
			supported = false;
	}
	atomic_fetch_add_explicit(&sweeps, 1, memory_order_release);
	/* After the caller's seq_cst store (service.c): a connection made
	 * meanwhile is counted here, or it saw that store and woke us. */
	return supported && qp_mapped() > 0;
}

uint64_t reclaim_sweeps(void)
{
	return atomic_load_explicit(&sweeps, memory_order_acquire);
}

uint64_t reclaim_given(void)
{
	return atomic_load_explicit(&given, memory_order_relaxed);
}
