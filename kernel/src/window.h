/*
 * window.h - registered windows: ours (registered through an endpoint) and
 * the peer's (announced over the control channel), each a run of whole pages
 * at an offset of a registered address space, made of memfd runs.
 *
 * Every window, ours or the peer's, is mapped once more into this process as
 * its "view": RMA is a memmove between two views, and stays correct whatever
 * the owner later does to its own addresses (SCIF: munmap or mmap over a
 * registered range does not change the window).
 *
 * A window is referenced by its table and by each RMA, signal or mapping call
 * using it at the moment, so an unregister or a peer's departure never pulls
 * pages from under a copy; the last reference unmaps the view and gives its
 * pages back (registry.h).
 */
#ifndef SCIF_NET_WINDOW_H
#define SCIF_NET_WINDOW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

/* Memfd runs per window: what one control message can carry. */
#define WIN_MAX_SEGS 32

/* Offsets the implementation chooses (MPSS): SCIF_MAP_FIXED may not use them. */
#define WIN_AUTO_BASE (1ll << 62)

struct endpoint;
struct ctl_msg;

struct window {
	int64_t off;
	uint64_t len;
	int prot;		/* SCIF_PROT_READ | SCIF_PROT_WRITE */
	uint8_t *view;
	_Atomic unsigned refs;
	uint64_t pinned;	/* ours: pages counted against RLIMIT_MEMLOCK (reg_pin) */
	unsigned nseg;
	struct win_seg seg[];
};

struct win_table {
	struct window **w;	/* sorted by offset, never overlapping */
	size_t n, cap;
};

/* A range of a registered address space: the windows covering it in order,
 * each referenced, and the part of each that the range uses. */
struct win_piece {
	struct window *w;
	uint64_t at, len;
};

struct win_span {
	unsigned n, cap;
	struct win_piece *p;
	struct win_piece inline_p[4];
};

/* The RMA state of one endpoint, made when the connection first needs it
 * (endpoint.h: ep_rma_make_locked), freed with the endpoint. Every function
 * below that takes an endpoint and names this state expects it made. */
struct ep_rma {
	/* Guards both tables and the control socket, which only one thread
	 * at a time reads or writes (ctl_lock). Taken after ep->lock, never
	 * before. */
	pthread_mutex_t lock;
	struct win_table self, peer;
	uint32_t ctl_seen;	/* control messages received */
	bool ctl_eof;		/* the peer is gone: its windows were released */
	/* Raised by the service thread when it found the lock taken as a
	 * message came: the holder reads the channel before it lets go. */
	_Atomic bool ctl_missed;

	/* Threads of this process waiting for our own RMAs (track.c). */
	pthread_mutex_t slot_lock;
	pthread_cond_t slot_cond;
	_Atomic unsigned slot_waiters;
};

struct window *win_new(int64_t off, uint64_t len, int prot, unsigned nseg);
/* Maps w's segments into its view: read-write for our own windows, as the
 * window allows for the peer's. */
int win_map_view(struct window *w, bool ours);
void win_get(struct window *w);
void win_put(struct window *w);

/* Tables; callers hold the endpoint's rma->lock. */
int wt_insert(struct win_table *t, struct window *w);	/* -EADDRINUSE on overlap */
struct window *wt_take(struct win_table *t, int64_t off);	/* removes, keeps the ref */
int64_t wt_free_offset(const struct win_table *t, uint64_t len);	/* -ENOSPC if none */
/* Index of the first window ending after off. */
size_t wt_first_after(const struct win_table *t, int64_t off);

/*
 * Resolves [off, off + len) into contiguous windows allowing need_prot, with
 * a reference on each: 0, -ENXIO (a gap, a negative offset, an overflow) or
 * -EACCES. The span is released with win_span_put().
 */
int win_resolve(struct win_table *t, int64_t off, uint64_t len, int need_prot,
		struct win_span *sp);
void win_span_put(struct win_span *sp);

/* Control messages about the peer's windows (ctl.c's handler table). */
int win_recv_add(struct endpoint *ep, const struct ctl_msg *m, int *fds, int nfds);
int win_recv_del(struct endpoint *ep, const struct ctl_msg *m, int *fds, int nfds);

/* The peer has gone: its windows are released (rma->lock held). */
void win_drop_peer(struct endpoint *ep);

/* scif_close: every window of the endpoint is released (none if it never
 * made its RMA state). */
void win_release_endpoint(struct endpoint *ep);

#endif
