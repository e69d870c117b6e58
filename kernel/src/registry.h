/*
 * registry.h - the process's registered pages.
 *
 * SCIF registers ordinary memory (posix_memalign, malloc'd pages, static
 * arrays) and its peers see those very pages: the owner spins on a flag a
 * peer stores through scif_mmap. In user space the only pages two processes
 * can share are those of a shared file, so registration moves the pages onto
 * one: their contents are copied into a new memfd, which is then mapped
 * MAP_SHARED | MAP_FIXED over the same addresses. The owner's pointers stay
 * valid and now point into the memfd, which peers map too.
 *
 * The registry remembers each such run of pages (an extent) for the whole
 * process, so registering the same pages again - on another endpoint, or a
 * part of them - finds the memfd already there and shares it instead of
 * moving the pages a second time (which would break the sharing with the
 * peers that mapped the first memfd). An extent lives while some window uses
 * any of its pages; when the last one goes the pages are copied back into
 * private anonymous memory at the same addresses, so that the owner's memory
 * is its own again (fork() copies it, free() may unmap it) and no memfd
 * outlives its windows. A peer that still maps the memfd keeps its pages, but
 * they no longer alias the owner's (see kernel/README.md).
 *
 * Other threads must not write to pages while they are being registered or
 * released: the copy would miss the store, as a DMA would in SCIF.
 */
#ifndef SCIF_NET_REGISTRY_H
#define SCIF_NET_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct extent;

/* A run of pages of one memfd: what a window is made of. */
struct win_seg {
	int fd;			/* the memfd */
	uint64_t file_off;	/* where the run starts in it */
	uint64_t len;
	/* Our own pages: the extent holding them (fd is the extent's). The
	 * peer's pages: NULL, and fd is the window's to close. */
	struct extent *ext;
};

size_t reg_page(void);

/*
 * Moves [addr, addr + len) onto memfds where it is not there yet and takes a
 * reference on every extent it spans: 0 with segs[0 .. *nseg - 1], or -EFAULT
 * (pages missing, unreadable, or shared with a file the registry did not
 * make), -ENOMEM (more than max runs, or no memory), -errno.
 */
int reg_acquire(void *addr, size_t len, struct win_seg *segs, unsigned max, unsigned *nseg);

/* Drops one reference taken by reg_acquire; the last one gives the pages back. */
void reg_release(struct extent *ext);

/*
 * MPSS 4 pins each registration's pages and counts them against
 * RLIMIT_MEMLOCK, per process (the same pages registered twice count
 * twice), unless the process may lock memory at will (unlimited: it has
 * CAP_IPC_LOCK): 0, or -EAGAIN past the limit. reg_unpin() gives them back
 * when the window goes.
 */
int reg_pin(uint64_t pages, bool unlimited);
void reg_unpin(uint64_t pages);

#endif
