/*
 * register.c - scif_register and scif_unregister.
 *
 * Registering moves the pages onto memfds (registry.h), maps them once more
 * as the window's view, places the window in the endpoint's registered
 * address space and announces it on the control channel before returning,
 * so the peer knows of it before it can learn the offset from us.
 *
 * Unregistering takes the windows out of the table and tells the peer, then
 * waits until the peer has handled the message (its views are gone) and
 * every RMA the peer had begun by then has completed: an RMA that looked
 * the window up before the peer read our message has begun by then (the
 * peer numbers an RMA before reading its control channel, track.c), so no
 * copy into the window is still running when its pages go back to private
 * memory. The windows' own RMAs in our other threads hold references and
 * keep the pages until they finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ctl.h"
#include "endpoint.h"
#include "scif.h"
#include "track.h"

#define FAIL(err) (errno = -(err), -1)

/* A window the peer may only read reaches it as a read-only file, so not
 * even a peer bypassing this library can write it. Without /proc the
 * read-write descriptor goes, and the library's checks alone protect it. */
static int peer_fd(int fd, int prot)
{
	char path[64];
	int ro;

	if (prot & SCIF_PROT_WRITE)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	return ro >= 0 ? ro : fd;
}

static int announce(struct endpoint *ep, const struct window *w)
{
	struct ctl_msg m = {
		.op = CTL_WIN_ADD, .nseg = w->nseg, .off = w->off, .len = w->len,
		.prot = (uint32_t)w->prot,
	};
	int fds[WIN_MAX_SEGS], err;
	uint32_t sent;

	for (unsigned i = 0; i < w->nseg; i++) {
		m.seg[i] = (struct ctl_seg){ .file_off = w->seg[i].file_off, .len = w->seg[i].len };
		fds[i] = peer_fd(w->seg[i].fd, w->prot);
	}
	err = ctl_send(ep, &m, fds, (int)w->nseg, &sent);
	for (unsigned i = 0; i < w->nseg; i++)
		if (fds[i] != w->seg[i].fd)
			close(fds[i]);
	return err;
}

static struct window *make_window(void *addr, size_t len, int prot, int *err)
{
	struct win_seg segs[WIN_MAX_SEGS];
	uint64_t pages = len / reg_page();
	struct window *w;
	unsigned nseg;

	/* The driver counts before it pins: EAGAIN, and nothing moved. */
	*err = reg_pin(pages, fabric_capable(CAP_IPC_LOCK));
	if (*err)
		return NULL;
	*err = reg_acquire(addr, len, segs, WIN_MAX_SEGS, &nseg);
	if (*err) {
		reg_unpin(pages);
		return NULL;
	}
	w = win_new(0, len, prot, nseg);
	if (!w) {
		for (unsigned i = 0; i < nseg; i++)
			reg_release(segs[i].ext);
		reg_unpin(pages);
		*err = -ENOMEM;
		return NULL;
	}
	w->pinned = pages;
	for (unsigned i = 0; i < nseg; i++)
		w->seg[i] = segs[i];
	*err = win_map_view(w, true);
	if (*err) {
		win_put(w);
		return NULL;
	}
	return w;
}

/* Under ctl_lock: the RMA state is made (rma_verify made it). */
static bool fixed_range_free(struct endpoint *ep, int64_t off, uint64_t len)
{
	const struct win_table *t = &ep_rma(ep)->self;
	size_t i = wt_first_after(t, off);

	return i == t->n || t->w[i]->off >= off + (int64_t)len;
}

static int64_t do_register(struct endpoint *ep, void *addr, size_t len, off_t offset,
			   int prot, bool fixed)
{
	struct window *w;
	int64_t off = offset;
	int err;

	/* Refused before any page moves. */
	err = ctl_lock(ep);
	if (!err && fixed && !fixed_range_free(ep, off, len))
		err = -EADDRINUSE;
	ctl_unlock(ep);
	if (err)
		return err;
	w = make_window(addr, len, prot, &err);
	if (!w)
		return err;
	err = ctl_lock(ep);
	if (!err && !fixed) {
		off = wt_free_offset(&ep_rma(ep)->self, len);
		err = off < 0 ? -ENOMEM : 0;
	}
	if (!err) {
		w->off = off;
		err = wt_insert(&ep_rma(ep)->self, w);
	}
	if (!err) {
		err = announce(ep, w);
		if (err)
			wt_take(&ep_rma(ep)->self, off);
	}
	ctl_unlock(ep);
	if (err) {
		win_put(w);
		return err;
	}
	return off;
}

off_t scif_register(scif_epd_t epd, void *addr, size_t len, off_t offset, int prot_flags,
		    int map_flags)
{
	uint64_t mask = reg_page() - 1;
	bool fixed = map_flags & SCIF_MAP_FIXED;
	struct endpoint *ep = ep_get(epd);
	int64_t ret = 0;

	if (!ep)
		return SCIF_REGISTER_FAILED;
	/* The argument checks of the SCIF driver, in its order. */
	if ((map_flags & ~SCIF_MAP_FIXED) ||
	    (fixed && (((uint64_t)offset & mask) || offset < 0 ||
		       len > (uint64_t)(INT64_MAX - offset))) ||
	    (prot_flags & ~(SCIF_PROT_READ | SCIF_PROT_WRITE)) ||
	    !len || ((uintptr_t)addr & mask) || (len & mask))
		ret = -EINVAL;
	else if (fixed && (uint64_t)offset + len > (uint64_t)WIN_AUTO_BASE)
		ret = -EADDRINUSE;	/* MPSS keeps these offsets for itself */
	if (!ret)
		ret = rma_verify(ep);
	if (!ret)
		ret = do_register(ep, addr, len, offset, prot_flags, fixed);
	ep_put(ep);
	return ret < 0 ? FAIL(ret) : (off_t)ret;
}

/*
 * Finds the windows to close: [offset, offset + len) must be covered by
 * windows without a gap (ENXIO) and cut none of them (EINVAL). 0 with the
 * first index and count, checked before anything changes.
 */
static int find_range(const struct win_table *t, int64_t offset, uint64_t len,
		      size_t *first, size_t *count)
{
	size_t i = wt_first_after(t, offset);
	int64_t at = offset, end = offset + (int64_t)len;

	*first = i;
	while (at < end) {
		if (i == t->n || t->w[i]->off > at)
			return -ENXIO;
		at = t->w[i]->off + (int64_t)t->w[i]->len;
		i++;
	}
	if (t->w[*first]->off < offset || at > end)
		return -EINVAL;
	*count = i - *first;
	return 0;
}

static int do_unregister(struct endpoint *ep, int64_t offset, uint64_t len)
{
	struct ep_rma *r = ep_rma(ep);	/* rma_verify made it */
	struct window **gone;
	size_t first, count;
	bool peer_alive;
	uint32_t sent = 0;
	int err;

	err = ctl_lock(ep);
	if (!err)
		err = find_range(&r->self, offset, len, &first, &count);
	gone = err ? NULL : malloc(count * sizeof(*gone));
	if (!err && !gone)
		err = -ENOMEM;
	if (err) {
		ctl_unlock(ep);
		return err;
	}
	peer_alive = true;
	for (size_t i = 0; i < count; i++) {
		struct ctl_msg m = { .op = CTL_WIN_DEL };

		gone[i] = wt_take(&r->self, r->self.w[first]->off);
		m.off = gone[i]->off;
		m.len = gone[i]->len;
		/* A peer gone meanwhile has no view left to update. */
		if (peer_alive && ctl_send(ep, &m, NULL, 0, &sent) != 0)
			peer_alive = false;
	}
	ctl_unlock(ep);
	/* As the driver waits for the peer's acknowledgement: its views are
	 * gone once it has handled our messages; then its RMAs that looked the
	 * windows up before, which had begun by then. A departed peer has none
	 * that matter, nor has one closing meanwhile. */
	if (peer_alive && rma_wait_handled(ep, sent) == 0)
		rma_wait(ep, true, rma_started(ep, true));
	/* Ours that looked them up, which had begun by then: their copies
	 * (dma.h) let go of the windows before they complete, so the pages go
	 * back here, in the caller's thread, not under its feet later. */
	rma_wait(ep, false, rma_started(ep, false));
	for (size_t i = 0; i < count; i++)
		win_put(gone[i]);
	free(gone);
	return 0;
}

int scif_unregister(scif_epd_t epd, off_t offset, size_t len)
{
	uint64_t mask = reg_page() - 1;
	struct endpoint *ep = ep_get(epd);
	int err = 0;

	if (!ep)
		return -1;
	if (!len || (len & mask) || ((uint64_t)offset & mask) || offset < 0 ||
	    len > (uint64_t)(INT64_MAX - offset))
		err = -EINVAL;
	if (!err)
		err = rma_verify(ep);
	if (!err)
		err = do_unregister(ep, offset, len);
	ep_put(ep);
	return err ? FAIL(err) : 0;
}
