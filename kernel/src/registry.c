/*
 * registry.c - moving registered pages onto memfds and back (registry.h).
 */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maps.h"

struct extent {
	struct extent *next;
	uintptr_t va;		/* where the owner's pages are */
	uint64_t len;
	int fd;
	dev_t dev;
	ino_t ino;
	unsigned refs;
	/* Still mapped at va as far as we know. The owner may unmap or replace
	 * the pages behind our back (free() of a registered buffer): then the
	 * extent is detached, lives on for the windows that use it, and gives
	 * nothing back at the end, since va is no longer its own. */
	bool attached;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct extent *extents;
static _Atomic uint64_t pinned;	/* pages of this process's windows (reg_pin) */

size_t reg_page(void)
{
	static size_t page;

	if (!page) {
		long p = sysconf(_SC_PAGESIZE);

		page = p > 0 ? (size_t)p : 4096;
	}
	return page;
}

/*
 * Copies src to dst, which holds zeros, leaving out pages the owner never
 * touched: they read as zeros, and writing them would make every page of a
 * fresh buffer real memory. /proc/self/pagemap tells which they are without
 * reading them (which would also be a read of uninitialised memory to
 * valgrind); without it, every page is copied.
 */
static void copy_touched(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t page = reg_page(), pages = n / page, done = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t map[512];

	while (fd >= 0 && done < pages) {
		size_t want = pages - done < 512 ? pages - done : 512, got;
		off_t at = (off_t)(((uintptr_t)src / page + done) * sizeof(uint64_t));
		ssize_t r = pread(fd, map, want * sizeof(uint64_t), at);

		if (r <= 0 || r % (ssize_t)sizeof(uint64_t))
			break;
		got = (size_t)r / sizeof(uint64_t);
		for (size_t i = 0; i < got; i++) {
			/* Bit 63: present; bit 62: swapped out. */
			if (map[i] >> 62)
				memcpy(dst + (done + i) * page, src + (done + i) * page, page);
		}
		done += got;
	}
	if (fd >= 0)
		close(fd);
	if (done < pages)
		memcpy(dst + done * page, src + done * page, n - done * page);
}

static struct extent *extent_create(uintptr_t va, uint64_t len, int prot, int *err)
{
	struct extent *e = calloc(1, sizeof(*e));
	struct stat st;
	void *tmp;

	if (!e) {
		*err = -ENOMEM;
		return NULL;
	}
	e->fd = memfd_create("scif-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (e->fd < 0)
		goto fail;
	if (ftruncate(e->fd, (off_t)len) < 0 || fstat(e->fd, &st) < 0)
		goto fail;
	/* Peers map it: nobody may shrink it under them (SIGBUS). */
	if (fcntl(e->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	if (fallocate(e->fd, 0, 0, (off_t)len) < 0)
		goto fail;
	tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
	if (tmp == MAP_FAILED)
		goto fail;
	copy_touched(tmp, (const uint8_t *)va, len);
	munmap(tmp, len);
	/* Atomically replaces the private pages: va never stops being mapped. */
	if (mmap((void *)va, len, prot, MAP_SHARED | MAP_FIXED, e->fd, 0) == MAP_FAILED)
		goto fail;
	e->va = va;
	e->len = len;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->refs = 1;
	e->attached = true;
	e->next = extents;
	extents = e;
	return e;
fail:
	*err = errno == EMFILE || errno == ENFILE || errno == ENOSPC ? -ENOMEM : -errno;
	if (e->fd >= 0)
		close(e->fd);
	free(e);
	return NULL;
}

static bool is_ours(const struct extent *e, const struct vma *v)
{
	return e->attached && v->shared && v->dev == e->dev && v->ino == e->ino &&
	       v->start >= e->va && v->end <= e->va + e->len && v->offset == v->start - e->va;
}

/* Extents whose addresses now hold something else are no longer the owner's. */
static void detach_overlapping(const struct vma *v)
{
	for (struct extent *e = extents; e; e = e->next)
		if (e->attached && v->start < e->va + e->len && e->va < v->end && !is_ours(e, v))
			e->attached = false;
}

/* Reads data runs of the memfd into private pages and puts them back at va. */
static void restore_range(struct extent *e, const struct vma *v)
{
	uint64_t len = v->end - v->start, at = 0;
	uint8_t *tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	/* Without memory for a copy the shared pages stay: still valid memory. */
	if (tmp == MAP_FAILED)
		return;
	while (at < len) {
		off_t data = lseek(e->fd, (off_t)(v->offset + at), SEEK_DATA), hole;

		if (data < 0 || (uint64_t)data >= v->offset + len)
			break;	/* ENXIO: only holes (zeros) are left */
		hole = lseek(e->fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > v->offset + len)
			hole = (off_t)(v->offset + len);
		at = (uint64_t)data - v->offset;
		while (at < (uint64_t)hole - v->offset) {
			ssize_t n = pread(e->fd, tmp + at, (uint64_t)hole - v->offset - at,
					  (off_t)(v->offset + at));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				munmap(tmp, len);
				return;
			}
			at += (uint64_t)n;
		}
	}
	if ((v->prot != (PROT_READ | PROT_WRITE) && mprotect(tmp, len, v->prot) < 0) ||
	    mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)v->start) == MAP_FAILED)
		munmap(tmp, len);
}

static void give_back(struct extent *e)
{
	struct vma *v;
	size_t n;

	if (!e->attached || maps_read(e->va, e->va + e->len, &v, &n) != 0)
		return;
	/* Only the parts still mapped from the memfd, where they were. */
	for (size_t i = 0; i < n; i++)
		if (is_ours(e, &v[i]))
			restore_range(e, &v[i]);
	free(v);
}

static void release_locked(struct extent *e)
{
	struct extent **pp;

	if (--e->refs > 0)
		return;
	for (pp = &extents; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	give_back(e);
	close(e->fd);
	free(e);
}

void reg_release(struct extent *ext)
{
	pthread_mutex_lock(&reg_lock);
	release_locked(ext);
	pthread_mutex_unlock(&reg_lock);
}

static int add_seg(struct win_seg *segs, unsigned max, unsigned *n, struct extent *e,
		   uint64_t file_off, uint64_t len)
{
	struct win_seg *last = *n ? &segs[*n - 1] : NULL;

	if (last && last->ext == e && last->file_off + last->len == file_off) {
		/* The same memfd run split into mappings (an mprotect, say). */
		last->len += len;
		release_locked(e);	/* one reference per run is enough */
		return 0;
	}
	if (*n == max)
		return -ENOMEM;
	segs[(*n)++] = (struct win_seg){ .fd = e->fd, .file_off = file_off, .len = len, .ext = e };
	return 0;
}

static int acquire_locked(uintptr_t start, uintptr_t end, struct win_seg *segs, unsigned max,
			  unsigned *nseg)
{
	uintptr_t at = start;
	struct vma *v;
	size_t nv;
	int err = maps_read(start, end, &v, &nv);

	if (err)
		return err;
	for (size_t i = 0; i < nv && !err; i++) {
		struct extent *e = NULL;

		if (v[i].start != at) {
			err = -EFAULT;	/* a hole */
			break;
		}
		if (v[i].shared) {
			for (e = extents; e && !is_ours(e, &v[i]); e = e->next)
				;
			if (!e) {
				/* Another file's pages: copying them would silently
				 * break whatever else shares them. */
				detach_overlapping(&v[i]);
				err = -EFAULT;
				break;
			}
			e->refs++;
		} else {
			size_t j = i;

			if (!(v[i].prot & PROT_READ)) {
				err = -EFAULT;
				break;
			}
			/* Neighbouring private mappings alike (pages given back
			 * earlier, say) move as one run. */
			detach_overlapping(&v[i]);
			while (j + 1 < nv && !v[j + 1].shared && v[j + 1].start == v[j].end &&
			       v[j + 1].prot == v[i].prot)
				detach_overlapping(&v[++j]);
			e = extent_create(v[i].start, v[j].end - v[i].start, v[i].prot, &err);
			if (!e)
				break;
			i = j;
		}
		err = add_seg(segs, max, nseg, e, at - e->va, v[i].end - at);
		if (err)
			release_locked(e);
		at = v[i].end;
	}
	if (!err && at != end)
		err = -EFAULT;
	free(v);
	return err;
}

int reg_acquire(void *addr, size_t len, struct win_seg *segs, unsigned max, unsigned *nseg)
{
	int err;

	*nseg = 0;
	pthread_mutex_lock(&reg_lock);
	err = acquire_locked((uintptr_t)addr, (uintptr_t)addr + len, segs, max, nseg);
	if (err) {
		/* Pages moved meanwhile go back: a failed call changes nothing. */
		for (unsigned i = 0; i < *nseg; i++)
			release_locked(segs[i].ext);
		*nseg = 0;
	}
	pthread_mutex_unlock(&reg_lock);
	return err;
}

int reg_pin(uint64_t pages, bool unlimited)
{
	uint64_t limit = UINT64_MAX, now;
	struct rlimit rl;

	if (!unlimited && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		limit = (uint64_t)rl.rlim_cur / reg_page();
	now = atomic_fetch_add_explicit(&pinned, pages, memory_order_relaxed) + pages;
	if (now > limit) {
		atomic_fetch_sub_explicit(&pinned, pages, memory_order_relaxed);
		return -EAGAIN;
	}
	return 0;
}

void reg_unpin(uint64_t pages)
{
	atomic_fetch_sub_explicit(&pinned, pages, memory_order_relaxed);
}
