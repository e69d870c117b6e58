/*
 * fence.c - scif_fence_mark, scif_fence_wait and scif_fence_signal.
 *
 * A mark is the number of the last RMA begun by us (SCIF_FENCE_INIT_SELF) or
 * by the peer (SCIF_FENCE_INIT_PEER) when it was taken; waiting for it waits
 * until every RMA up to that number has completed (track.h). Marks are ints,
 * as MPSS 4 makes them: bit 31 says the peer's RMAs (so such a mark is
 * negative, and no error), bits 0-30 the low bits of the number, which is
 * found again as the latest number with those bits - exact for marks less
 * than 2^31 RMAs old, and for older ones a later number, whose wait is
 * longer but still ends. (MPSS 3 used bit 30.) Every int is a valid mark.
 *
 * scif_fence_signal waits for the RMAs it marks and then writes its values,
 * in this thread: the value lands after the marked RMAs, as SCIF promises,
 * only earlier than an asynchronous signal could. The offsets' windows are
 * looked up (and referenced) before the wait, as the driver validates them
 * when the signal is queued.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "ctl.h"
#include "endpoint.h"
#include "scif.h"
#include "track.h"

#define FAIL(err) (errno = -(err), -1)

#define MARK_PEER (1u << 31)
#define MARK_SEQ (MARK_PEER - 1)

static bool one_init_flag(int flags)
{
	int init = flags & (SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER);

	return init == SCIF_FENCE_INIT_SELF || init == SCIF_FENCE_INIT_PEER;
}

int scif_fence_mark(scif_epd_t epd, int flags, int *mark)
{
	struct endpoint *ep = ep_get(epd);
	int err;

	if (!ep)
		return -1;
	err = rma_verify(ep);
	if (!err && ((flags & ~(SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER)) || !one_init_flag(flags)))
		err = -EINVAL;
	if (!err && !mark)
		err = -EFAULT;
	if (!err) {
		bool peer = flags & SCIF_FENCE_INIT_PEER;

		uint32_t m = (uint32_t)(rma_started(ep, peer) & MARK_SEQ) | (peer ? MARK_PEER : 0);

		memcpy(mark, &m, sizeof(m));	/* the bits, not the value: bit 31 is the sign */
	}
	ep_put(ep);
	return err ? FAIL(err) : 0;
}

int scif_fence_wait(scif_epd_t epd, int mark)
{
	struct endpoint *ep = ep_get(epd);
	int err;

	if (!ep)
		return -1;
	err = rma_verify(ep);
	if (!err) {
		uint32_t m = (uint32_t)mark;
		bool peer = m & MARK_PEER;
		uint64_t now = rma_started(ep, peer);
		uint64_t back = (now - (m & MARK_SEQ)) & MARK_SEQ;

		/* A mark from before the first RMA (or never issued) waits for none. */
		err = rma_wait(ep, peer, back <= now ? now - back : 0);
		/* A peer that died meanwhile: what was copied may be partial, as the
		 * driver says of a disconnected endpoint (scif_verify_epd). */
		if (!err)
			err = rma_verify(ep);
	}
	ep_put(ep);
	return err ? FAIL(err) : 0;
}

/* Eight bytes at a 4-byte aligned offset, in one window that allows writing. */
static int find_signal(struct win_table *t, int64_t off, struct win_span *sp)
{
	int err = win_resolve(t, off, sizeof(uint64_t), SCIF_PROT_WRITE, sp);

	if (!err && sp->n != 1) {
		win_span_put(sp);
		err = -ENXIO;
	}
	return err;
}

static void store_signal(const struct win_span *sp, uint64_t val)
{
	uint8_t *p = sp->p[0].w->view + sp->p[0].at;

	/* Whoever spins on it sees the marked RMAs' data once it sees this. */
	if (((uintptr_t)p & 7) == 0) {
		atomic_store_explicit((_Atomic uint64_t *)p, val, memory_order_release);
	} else {
		atomic_thread_fence(memory_order_release);
		memcpy(p, &val, sizeof(val));
	}
}

static int fence_signal(struct endpoint *ep, int64_t loff, uint64_t lval, int64_t roff,
		  uint64_t rval, int flags)
{
	struct win_span ls = { 0 }, rs = { 0 };
	bool peer = flags & SCIF_FENCE_INIT_PEER;
	bool local = flags & SCIF_SIGNAL_LOCAL, remote = flags & SCIF_SIGNAL_REMOTE;
	uint64_t seq = rma_started(ep, peer);
	int err;

	err = ctl_lock(ep);
	if (!err && local)
		err = find_signal(&ep_rma(ep)->self, loff, &ls);
	if (!err && remote) {
		err = find_signal(&ep_rma(ep)->peer, roff, &rs);
		if (err && local)
			win_span_put(&ls);
	}
	ctl_unlock(ep);
	if (err)
		return err;
	err = rma_wait(ep, peer, seq);
	if (!err && local)
		store_signal(&ls, lval);
	if (!err && remote)
		store_signal(&rs, rval);
	if (local)
		win_span_put(&ls);
	if (remote)
		win_span_put(&rs);
	return err;
}

int scif_fence_signal(scif_epd_t epd, off_t loff, uint64_t lval, off_t roff, uint64_t rval,
		      int flags)
{
	const int valid = SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL |
			  SCIF_SIGNAL_REMOTE;
	struct endpoint *ep = ep_get(epd);
	int err;

	if (!ep)
		return -1;
	err = rma_verify(ep);
	if (!err && ((flags & ~valid) || !one_init_flag(flags) ||
		     !(flags & (SCIF_SIGNAL_LOCAL | SCIF_SIGNAL_REMOTE)) ||
		     ((flags & SCIF_SIGNAL_LOCAL) && (loff & 3)) ||
		     ((flags & SCIF_SIGNAL_REMOTE) && (roff & 3))))
		err = -EINVAL;
	if (!err)
		err = fence_signal(ep, loff, lval, roff, rval, flags);
	ep_put(ep);
	return err ? FAIL(err) : 0;
}
