/*
 * mmap.c - scif_mmap and scif_munmap: the peer's window pages, mapped here.
 *
 * The mapping is of the very memfds the peer's pages live on, so stores on
 * either side are seen by the other at once. It holds its own reference to
 * the files: it outlives scif_close, the peer's unregister and the peer
 * itself, until scif_munmap (or munmap) - as SCIF documents.
 */
#include <errno.h>
#include <sys/mman.h>

#include "ctl.h"
#include "endpoint.h"
#include "scif.h"
#include "track.h"

#define FAIL_MAP(err) (errno = -(err), SCIF_MMAP_FAILED)

/* Maps bytes [at, at + len) of window w at dst. */
static int map_piece(uint8_t *dst, const struct window *w, uint64_t at, uint64_t len, int prot)
{
	uint64_t seg_start = 0;

	for (unsigned i = 0; i < w->nseg && len; i++) {
		const struct win_seg *s = &w->seg[i];
		uint64_t skip, n;

		if (at >= seg_start + s->len) {
			seg_start += s->len;
			continue;
		}
		skip = at - seg_start;
		n = s->len - skip < len ? s->len - skip : len;
		if (mmap(dst, n, prot, MAP_SHARED | MAP_FIXED, s->fd, (off_t)(s->file_off + skip)) ==
		    MAP_FAILED)
			return errno == EACCES ? -EACCES : -ENOMEM;
		dst += n;
		at += n;
		len -= n;
		seg_start += s->len;
	}
	return 0;
}

static void *map_span(void *addr, size_t len, int prot, bool fixed, const struct win_span *sp,
		      int *err)
{
	uint8_t *base = addr;
	uint64_t at = 0;

	if (!fixed) {
		/* Reserve the whole range first, where the kernel likes (addr
		 * is a hint), then fill it: it never lands on an existing
		 * mapping or at 0. */
		base = mmap(addr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED) {
			*err = -ENOMEM;
			return NULL;
		}
	}
	*err = 0;
	for (unsigned i = 0; i < sp->n && !*err; i++) {
		*err = map_piece(base + at, sp->p[i].w, sp->p[i].at, sp->p[i].len, prot);
		at += sp->p[i].len;
	}
	if (*err) {
		munmap(base, len);
		return NULL;
	}
	return base;
}

void *scif_mmap(void *addr, size_t len, int prot_flags, int map_flags, scif_epd_t epd,
		off_t offset)
{
	uint64_t mask = reg_page() - 1;
	bool fixed = map_flags & SCIF_MAP_FIXED;
	int prot = ((prot_flags & SCIF_PROT_READ) ? PROT_READ : 0) |
		   ((prot_flags & SCIF_PROT_WRITE) ? PROT_WRITE : 0);
	struct endpoint *ep = ep_get(epd);
	struct win_span sp;
	void *ret = NULL;
	int err = 0;

	if (!ep)
		return SCIF_MMAP_FAILED;
	if ((map_flags & ~SCIF_MAP_FIXED) || (prot_flags & ~(SCIF_PROT_READ | SCIF_PROT_WRITE)) ||
	    !len || (len & mask) || ((uint64_t)offset & mask) || (fixed && ((uintptr_t)addr & mask)))
		err = -EINVAL;
	if (!err)
		err = rma_verify(ep);
	if (!err) {
		err = ctl_lock(ep);
		if (!err)
			err = win_resolve(&ep_rma(ep)->peer, offset, len, prot_flags, &sp);
		if (!err) {
			ret = map_span(addr, len, prot, fixed, &sp, &err);
			win_span_put(&sp);
		}
		ctl_unlock(ep);
	}
	ep_put(ep);
	return err ? FAIL_MAP(err) : ret;
}

int scif_munmap(void *addr, size_t len)
{
	uint64_t mask = reg_page() - 1;

	if (((uintptr_t)addr & mask) || (len & mask) || munmap(addr, len) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}
