/*
 * window.c - window objects, their views, the per-endpoint tables, and what
 * the peer tells us about its windows.
 */
#include "window.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "ctl.h"
#include "endpoint.h"
#include "scif.h"

struct window *win_new(int64_t off, uint64_t len, int prot, unsigned nseg)
{
	struct window *w = calloc(1, sizeof(*w) + nseg * sizeof(w->seg[0]));

	if (!w)
		return NULL;
	w->off = off;
	w->len = len;
	w->prot = prot;
	w->nseg = nseg;
	atomic_init(&w->refs, 1);
	for (unsigned i = 0; i < nseg; i++)
		w->seg[i].fd = -1;
	return w;
}

int win_map_view(struct window *w, bool ours)
{
	int prot = ours ? PROT_READ | PROT_WRITE :
		   ((w->prot & SCIF_PROT_READ) ? PROT_READ : 0) |
		   ((w->prot & SCIF_PROT_WRITE) ? PROT_WRITE : 0);
	uint8_t *base;
	uint64_t at = 0;

	/* One reservation first, so the segments land side by side. */
	base = mmap(NULL, w->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	for (unsigned i = 0; prot && i < w->nseg; i++) {
		if (mmap(base + at, w->seg[i].len, prot, MAP_SHARED | MAP_FIXED | MAP_POPULATE, w->seg[i].fd,
			 (off_t)w->seg[i].file_off) == MAP_FAILED) {
			int err = errno == EACCES ? -EACCES : -ENOMEM;

			munmap(base, w->len);
			return err;
		}
		at += w->seg[i].len;
	}
	w->view = base;
	return 0;
}

void win_get(struct window *w)
{
	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
}

void win_put(struct window *w)
{
	/* Pairs with itself: whoever frees sees every other user's accesses done. */
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (w->view)
		munmap(w->view, w->len);
	if (w->pinned)
		reg_unpin(w->pinned);
	for (unsigned i = 0; i < w->nseg; i++) {
		if (w->seg[i].ext)
			reg_release(w->seg[i].ext);
		else if (w->seg[i].fd >= 0)
			close(w->seg[i].fd);
	}
	free(w);
}

/* ---- tables ---- */

size_t wt_first_after(const struct win_table *t, int64_t off)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->w[mid]->off + (int64_t)t->w[mid]->len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int wt_insert(struct win_table *t, struct window *w)
{
	size_t i = wt_first_after(t, w->off);

	if (i < t->n && t->w[i]->off < w->off + (int64_t)w->len)
		return -EADDRINUSE;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		struct window **grown = realloc(t->w, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		t->w = grown;
		t->cap = cap;
	}
	memmove(&t->w[i + 1], &t->w[i], (t->n - i) * sizeof(*t->w));
	t->w[i] = w;
	t->n++;
	return 0;
}

struct window *wt_take(struct win_table *t, int64_t off)
{
	size_t i = wt_first_after(t, off);
	struct window *w;

	if (i == t->n || t->w[i]->off != off)
		return NULL;
	w = t->w[i];
	memmove(&t->w[i], &t->w[i + 1], (t->n - i - 1) * sizeof(*t->w));
	t->n--;
	return w;
}

int64_t wt_free_offset(const struct win_table *t, uint64_t len)
{
	int64_t at = WIN_AUTO_BASE;

	/* First fit above the fixed range, as MPSS places them. */
	for (size_t i = wt_first_after(t, at); i < t->n; i++) {
		if ((uint64_t)(t->w[i]->off - at) >= len)
			return at;
		at = t->w[i]->off + (int64_t)t->w[i]->len;
	}
	return (uint64_t)(INT64_MAX - at) >= len ? at : -ENOSPC;
}

/* ---- spans ---- */

static int span_push(struct win_span *sp, struct window *w, uint64_t at, uint64_t len)
{
	if (sp->n == sp->cap) {
		unsigned cap = sp->cap ? 2 * sp->cap : 16;
		struct win_piece *grown = malloc(cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		memcpy(grown, sp->p, sp->n * sizeof(*grown));
		if (sp->p != sp->inline_p)
			free(sp->p);
		sp->p = grown;
		sp->cap = cap;
	}
	win_get(w);
	sp->p[sp->n++] = (struct win_piece){ .w = w, .at = at, .len = len };
	return 0;
}

int win_resolve(struct win_table *t, int64_t off, uint64_t len, int need_prot,
		struct win_span *sp)
{
	size_t i = wt_first_after(t, off);
	int64_t at = off;
	uint64_t left = len;
	int err = 0;

	sp->n = 0;
	sp->cap = sizeof(sp->inline_p) / sizeof(sp->inline_p[0]);
	sp->p = sp->inline_p;
	if (off < 0 || len > (uint64_t)(INT64_MAX - off))
		return -ENXIO;
	while (left && !err) {
		struct window *w = i < t->n ? t->w[i] : NULL;
		uint64_t n;

		/* Windows must follow each other without a gap. */
		if (!w || w->off > at)
			err = -ENXIO;
		else if ((w->prot & need_prot) != need_prot)
			err = -EACCES;
		if (err)
			break;
		n = (uint64_t)(w->off + (int64_t)w->len - at);
		if (n > left)
			n = left;
		err = span_push(sp, w, (uint64_t)(at - w->off), n);
		at += (int64_t)n;
		left -= n;
		i++;
	}
	if (err)
		win_span_put(sp);
	return err;
}

void win_span_put(struct win_span *sp)
{
	for (unsigned i = 0; i < sp->n; i++)
		win_put(sp->p[i].w);
	if (sp->p != sp->inline_p)
		free(sp->p);
	sp->n = 0;
	sp->p = sp->inline_p;
}

/* ---- the peer's windows ---- */

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Whether a run of the peer's pages can be mapped and stay mapped: whole
 * pages inside its memfd, which is sealed so that it can never shrink under
 * the view (a short or shrinkable file is SIGBUS in an RMA's copy). */
static bool seg_sound(const struct win_seg *sg, size_t page)
{
	struct stat st;

	return sg->len > 0 && !(sg->len & (page - 1)) && !(sg->file_off & (page - 1)) &&
	       sg->file_off <= (uint64_t)INT64_MAX - sg->len && memfd_sealed(sg->fd) &&
	       fstat(sg->fd, &st) == 0 && sg->file_off + sg->len <= (uint64_t)st.st_size;
}

int win_recv_add(struct endpoint *ep, const struct ctl_msg *m, int *fds, int nfds)
{
	size_t page = reg_page();
	struct window *w;
	uint64_t total = 0;
	int err;

	if (m->nseg == 0 || m->nseg > WIN_MAX_SEGS || (int)m->nseg != nfds || m->off < 0 ||
	    m->len == 0 || m->len > (uint64_t)(INT64_MAX - m->off) || (m->len & (page - 1)) ||
	    (m->off & (int64_t)(page - 1))) {
		close_all(fds, nfds);
		return -EPROTO;
	}
	w = win_new(m->off, m->len, (int)m->prot, m->nseg);
	if (!w) {
		close_all(fds, nfds);
		return -ENOMEM;
	}
	err = 0;
	for (unsigned i = 0; i < m->nseg; i++) {
		w->seg[i] = (struct win_seg){
			.fd = fds[i], .file_off = m->seg[i].file_off, .len = m->seg[i].len,
		};
		if (!err && !seg_sound(&w->seg[i], page))
			err = -EPROTO;
		total += m->seg[i].len;
	}
	if (!err)
		err = total == m->len ? win_map_view(w, false) : -EPROTO;
	if (!err)
		err = wt_insert(&ep_rma(ep)->peer, w);
	if (err)
		win_put(w);
	return err;
}

int win_recv_del(struct endpoint *ep, const struct ctl_msg *m, int *fds, int nfds)
{
	struct window *w = wt_take(&ep_rma(ep)->peer, m->off);

	close_all(fds, nfds);
	if (!w)
		return -EPROTO;
	/* RMAs using it hold their own references. */
	win_put(w);
	return 0;
}

static void drop_all(struct win_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		win_put(t->w[i]);
	t->n = 0;
}

/* Only ctl.c's handle_one() calls it, reading the channel: the state is there. */
void win_drop_peer(struct endpoint *ep)
{
	struct ep_rma *r = ep_rma(ep);

	drop_all(&r->peer);
	r->ctl_eof = true;
}

void win_release_endpoint(struct endpoint *ep)
{
	struct ep_rma *r = ep_rma(ep);

	/* None made: the connection never had a window, ours or the peer's. */
	if (!r)
		return;
	drop_all(&r->peer);
	drop_all(&r->self);
	free(r->peer.w);
	free(r->self.w);
	r->peer = (struct win_table){ 0 };
	r->self = (struct win_table){ 0 };
}
