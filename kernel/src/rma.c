/*
 * rma.c - scif_readfrom, scif_writeto, scif_vreadfrom and scif_vwriteto.
 *
 * Both windows are mapped here (their views), so an RMA is a memmove
 * between two memfd mappings. As the driver's DMA it is asynchronous: the
 * call checks its arguments, numbers the RMA, resolves and references both
 * windows and queues the copy to the DMA engine (dma.h), which makes it
 * later, in order, and completes it into the numbering fences wait on
 * (track.h). SCIF_RMA_SYNC waits for it; SCIF_RMA_USECPU and
 * SCIF_RMA_USECACHE change nothing. SCIF_RMA_ORDERED copies the last cache
 * line of the destination last, behind a full fence. vreadfrom/vwriteto
 * copy from or into the caller's memory when the engine gets to it: it must
 * stay valid until a fence says the RMA is done, as SCIF's pinned pages do.
 *
 * An RMA to a peer that is gone fails with ECONNRESET; one the peer left
 * during completes into our views (which hold the pages even when their
 * owner dies: never SIGBUS), and what waits for it - SCIF_RMA_SYNC, a fence
 * - learns of the departure, as of a DMA whose remote node reset.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "dma.h"
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

/* An RMA on its way to the DMA engine: both ends resolved and referenced. */
struct rma_job {
	struct dma_job dma;	/* first: the engine hands this back */
	struct endpoint *ep;	/* referenced */
	uint64_t seq;
	struct win_span ls, rs;
	struct end local, remote;
	uint64_t len;
	bool to_peer, ordered, virt;
};

/* On the DMA engine's thread: the copy, then its completion. */
static void run(struct dma_job *dma)
{
	struct rma_job *j = (struct rma_job *)dma;

	if (j->to_peer)
		transfer(&j->remote, &j->local, j->len, j->ordered);
	else
		transfer(&j->local, &j->remote, j->len, j->ordered);
	/* The windows go before the RMA completes, so an unregister or a
	 * close waiting for it drops the last reference itself (register.c). */
	if (!j->virt)
		win_span_put(&j->ls);
	win_span_put(&j->rs);
	rma_end(j->ep, j->seq);
	ep_put(j->ep);
	free(j);
}

/* Resolves both ends of j under the control channel's lock. Ours must be
 * readable to write from it, writable to read into it; the peer's the other
 * way round. */
static int resolve(struct rma_job *j, int64_t loff, int64_t roff)
{
	struct endpoint *ep = j->ep;
	int err = ctl_lock(ep);

	if (!err && !j->virt)
		err = win_resolve(&ep_rma(ep)->self, loff, j->len,
				  j->to_peer ? SCIF_PROT_READ : SCIF_PROT_WRITE, &j->ls);
	if (!err) {
		err = win_resolve(&ep_rma(ep)->peer, roff, j->len,
				  j->to_peer ? SCIF_PROT_WRITE : SCIF_PROT_READ, &j->rs);
		if (err && !j->virt)
			win_span_put(&j->ls);
	}
	ctl_unlock(ep);
	return err;
}

/* addr: vreadfrom/vwriteto's local memory; NULL: the local window at loff. */
static int rma(scif_epd_t epd, int64_t loff, void *addr, bool virt, size_t len, int64_t roff,
	       int flags, enum dir dir)
{
	struct endpoint *ep = ep_get(epd);
	struct rma_job *j = NULL;
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
	if (!err) {
		j = calloc(1, sizeof(*j));
		if (!j)
			err = -ENOMEM;
	}
	if (err)
		goto out;
	*j = (struct rma_job){
		.dma.run = run, .ep = ep, .len = len, .to_peer = dir == TO_PEER,
		.ordered = flags & SCIF_RMA_ORDERED, .virt = virt,
	};
	j->local = (struct end){ .plain = addr, .sp = &j->ls };
	j->remote = (struct end){ .sp = &j->rs };
	/* Numbered before looking at the peer's windows (register.c). */
	seq = rma_begin(ep);
	err = resolve(j, loff, roff);
	if (err) {
		rma_end(ep, seq);
		free(j);
		goto out;
	}
	j->seq = seq;
	ep_hold(ep);
	/* No engine to be had (no thread): the copy is ours to make. */
	if (dma_queue(&j->dma))
		run(&j->dma);
	/* Ours, and every RMA numbered before it; a peer that left meanwhile
	 * makes it fail, as a DMA whose remote node reset. */
	if (flags & SCIF_RMA_SYNC) {
		rma_wait(ep, false, seq);
		err = drain(ep);
	}
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
