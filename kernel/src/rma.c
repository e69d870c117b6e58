/*
 * rma.c - scif_readfrom, scif_writeto, scif_vreadfrom and scif_vwriteto.
 *
 * Both windows are mapped here (their views), so an RMA is a memmove
 * between two memfd mappings done by the calling thread: it has completed
 * when the call returns, whether or not SCIF_RMA_SYNC asked for that, and
 * SCIF_RMA_USECPU and SCIF_RMA_USECACHE change nothing. SCIF_RMA_ORDERED
 * copies the last cache line of the destination last, behind a full fence.
 *
 * The peer's departure is looked for before and after the copy: an RMA to a
 * peer that is gone, or that went while we copied, fails with ECONNRESET,
 * like a DMA whose remote node reset. The copy itself never faults: our
 * views hold the pages even when their owner dies.
 */
#include <errno.h>
#include <string.h>

#include "ctl.h"
#include "endpoint.h"
#include "scif.h"
#include "track.h"

#define FAIL(err) (errno = -(err), -1)

#define CACHELINE 64
#define RMA_FLAGS (SCIF_RMA_USECPU | SCIF_RMA_USECACHE | SCIF_RMA_SYNC | SCIF_RMA_ORDERED)

enum dir { TO_PEER, FROM_PEER };

/* One end of a copy: the caller's memory, or a span of windows. */
struct end {
	uint8_t *plain;
	const struct win_span *sp;
};

/* Where byte pos of the transfer is, and how many follow it contiguously. */
static uint8_t *locate(const struct end *e, uint64_t pos, uint64_t *avail)
{
	if (e->plain) {
		*avail = UINT64_MAX;
		return e->plain + pos;
	}
	for (unsigned i = 0; i < e->sp->n; i++) {
		const struct win_piece *p = &e->sp->p[i];

		if (pos < p->len) {
			*avail = p->len - pos;
			return p->w->view + p->at + pos;
		}
		pos -= p->len;
	}
	*avail = 0;
	return NULL;	/* not reached: the spans cover the transfer */
}

static void copy(const struct end *dst, const struct end *src, uint64_t from, uint64_t len)
{
	while (len) {
		uint64_t ad, as, n;
		uint8_t *d = locate(dst, from, &ad);
		const uint8_t *s = locate(src, from, &as);

		n = len < ad ? len : ad;
		n = n < as ? n : as;
		/* memmove: both views may be the same pages (a window of ours
		 * registered through both ends of a loopback connection). */
		memmove(d, s, n);
		from += n;
		len -= n;
	}
}

static void transfer(const struct end *dst, const struct end *src, uint64_t len, bool ordered)
{
	uint64_t avail, tail;
	uintptr_t last;

	if (!ordered) {
		copy(dst, src, 0, len);
		return;
	}
	/* The destination's last cache line, or the part of it we write. */
	last = (uintptr_t)locate(dst, len - 1, &avail);
	tail = (last & (CACHELINE - 1)) + 1;
	if (tail > len)
		tail = len;
	copy(dst, src, 0, len - tail);
	/* Full, not release: a large memmove may use non-temporal stores,
	 * which only a full fence orders before the next store. */
	atomic_thread_fence(memory_order_seq_cst);
	copy(dst, src, len - tail, tail);
}

/* Looks for the peer's departure and its window messages. */
static int drain(struct endpoint *ep)
{
	int err;

	err = ctl_lock(ep);
	ctl_unlock(ep);
	return err;
}

/* addr: vreadfrom/vwriteto's local memory; NULL: the local window at loff. */
static int rma(scif_epd_t epd, int64_t loff, void *addr, bool virt, size_t len, int64_t roff,
	       int flags, enum dir dir)
{
	struct endpoint *ep = ep_get(epd);
	struct win_span ls = { 0 }, rs = { 0 };
	struct end local = { .plain = addr, .sp = &ls }, remote = { .sp = &rs };
	uint64_t seq;
	int err;

	if (!ep)
		return -1;
	err = rma_verify(ep);
	if (!err && ((flags & ~RMA_FLAGS) || len == 0))
		err = -EINVAL;
	/* Other bad addresses fault in the copy, as memcpy would: only a
	 * kernel could check them for us. */
	if (!err && virt && !addr)
		err = -EFAULT;
	if (err)
		goto out;
	/* Numbered before looking at the peer's windows (register.c). */
	seq = rma_begin(ep);
	err = ctl_lock(ep);
	/* Ours must be readable to write from it, writable to read into it;
	 * the peer's the other way round. */
	if (!err && !virt)
		err = win_resolve(&ep->rma.self, loff, len,
				  dir == TO_PEER ? SCIF_PROT_READ : SCIF_PROT_WRITE, &ls);
	if (!err) {
		err = win_resolve(&ep->rma.peer, roff, len,
				  dir == TO_PEER ? SCIF_PROT_WRITE : SCIF_PROT_READ, &rs);
		if (err && !virt)
			win_span_put(&ls);
	}
	ctl_unlock(ep);
	if (!err) {
		if (dir == TO_PEER)
			transfer(&remote, &local, len, flags & SCIF_RMA_ORDERED);
		else
			transfer(&local, &remote, len, flags & SCIF_RMA_ORDERED);
		err = drain(ep);
		if (!virt)
			win_span_put(&ls);
		win_span_put(&rs);
	}
	rma_end(ep, seq);
out:
	ep_put(ep);
	return err ? FAIL(err) : 0;
}

int scif_readfrom(scif_epd_t epd, off_t loffset, size_t len, off_t roffset, int rma_flags)
{
	return rma(epd, loffset, NULL, false, len, roffset, rma_flags, FROM_PEER);
}

int scif_writeto(scif_epd_t epd, off_t loffset, size_t len, off_t roffset, int rma_flags)
{
	return rma(epd, loffset, NULL, false, len, roffset, rma_flags, TO_PEER);
}

int scif_vreadfrom(scif_epd_t epd, void *addr, size_t len, off_t roffset, int rma_flags)
{
	return rma(epd, 0, addr, true, len, roffset, rma_flags, FROM_PEER);
}

int scif_vwriteto(scif_epd_t epd, void *addr, size_t len, off_t roffset, int rma_flags)
{
	return rma(epd, 0, addr, true, len, roffset, rma_flags, TO_PEER);
}
