/*
 * arena.c - queue-pair memory shared by one pair of processes (arena.h).
 */
#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct arena {
	struct arena *next;
	uint8_t *base;
	size_t len;
	unsigned live;		/* its queue pairs open on this side */
	int fd;			/* the acceptor's memfd; -1 in a caller */
	/* The acceptor's: whose it is, and where the next queue pair goes. */
	bool carving;
	pid_t pid;
	uint32_t inbox;
	size_t qp_len;
	uint64_t cut;
	/* The caller's: how a memfd received again is known. */
	dev_t dev;
	ino_t ino;
	/* Queue pairs both sides closed, their pages still to give back. */
	struct arena_span *dead;
	unsigned ndead, dead_cap;
};

struct arena_span {
	uint64_t off;
	size_t len;
};

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct arena *arenas;	/* guarded by arena_lock */
/* Held by a sweep while it punches: no arena is unmapped meanwhile. */
static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A forked child keeps its parent's mappings and memfds, but must not cut
 * queue pairs from the parent's arenas: the parent goes on cutting them, and
 * two connections would share rings. It makes arenas of its own. */
static void arena_prepare(void)
{
	pthread_mutex_lock(&sweep_lock);
	pthread_mutex_lock(&arena_lock);
}

static void arena_parent(void)
{
	pthread_mutex_unlock(&arena_lock);
	pthread_mutex_unlock(&sweep_lock);
}

static void arena_child(void)
{
	for (struct arena *a = arenas; a; a = a->next)
		a->carving = false;
	pthread_mutex_unlock(&arena_lock);
	pthread_mutex_unlock(&sweep_lock);
}

static void arena_atfork(void)
{
	pthread_atfork(arena_prepare, arena_parent, arena_child);
}

bool memfd_sealed(int memfd)
{
	int seals = fcntl(memfd, F_GET_SEALS);
	int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

	/* Unsealed, the peer could shrink the file under our mapping, and our
	 * next access would be SIGBUS; F_SEAL_SEAL keeps it so. */
	return seals >= 0 && (seals & need) == need;
}

static void link_arena(struct arena *a)
{
	a->next = arenas;
	arenas = a;
}

/* A new arena for pid's queue pairs of len bytes: as many as fit in
 * ARENA_BYTES (one for a caller we cannot tell apart from others). */
static int make(pid_t pid, uint32_t inbox, size_t len, struct arena **out)
{
	size_t qps = pid > 0 ? ARENA_BYTES / len : 1;
	struct arena *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	if (qps < 1)
		qps = 1;
	if (qps > ARENA_MAX_QPS)
		qps = ARENA_MAX_QPS;
	a->len = qps * len;
	a->fd = memfd_create("scif-qp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (a->fd < 0)
		goto fail;
	if (ftruncate(a->fd, (off_t)a->len) < 0 ||
	    /* A peer must not be able to shrink the memory under us (SIGBUS). */
	    fcntl(a->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	a->base = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (a->base == MAP_FAILED)
		goto fail;
	a->carving = true;
	a->pid = pid;
	a->inbox = inbox;
	a->qp_len = len;
	*out = a;
	return 0;
fail:
	err = -errno;
	if (a->fd >= 0)
		close(a->fd);
	free(a);
	return err;
}

int arena_carve(pid_t pid, uint32_t inbox, size_t len, struct arena **out, uint64_t *off)
{
	struct arena *a;

	pthread_once(&atfork_once, arena_atfork);
	pthread_mutex_lock(&arena_lock);
	for (a = arenas; a; a = a->next)
		if (a->carving && pid > 0 && a->pid == pid && a->inbox == inbox && a->qp_len == len)
			break;
	if (!a) {
		int err;

		pthread_mutex_unlock(&arena_lock);
		err = make(pid, inbox, len, &a);
		if (err)
			return err;
		pthread_mutex_lock(&arena_lock);
		link_arena(a);
	}
	*off = a->cut;
	a->cut += len;
	a->carving = a->cut + len <= a->len;
	a->live++;
	pthread_mutex_unlock(&arena_lock);
	*out = a;
	return 0;
}

int arena_fd(const struct arena *a)
{
	return a->fd;
}

uint8_t *arena_base(const struct arena *a)
{
	return a->base;
}

static struct arena *find_mapped(const struct stat *st)
{
	for (struct arena *a = arenas; a; a = a->next)
		if (a->fd < 0 && a->dev == st->st_dev && a->ino == st->st_ino)
			return a;
	return NULL;
}

int arena_attach(int memfd, size_t len, uint64_t off, struct arena **out)
{
	struct stat st;
	struct arena *a;

	pthread_once(&atfork_once, arena_atfork);
	if (fstat(memfd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size < off ||
	    (uint64_t)st.st_size - off < len || off % 4096)
		return -EPROTO;
	pthread_mutex_lock(&arena_lock);
	a = find_mapped(&st);
	if (a)
		a->live++;
	pthread_mutex_unlock(&arena_lock);
	if (a) {
		*out = a;
		return 0;
	}
	/* Sealed, it is the size fstat() said for as long as it lives (our
	 * mapping keeps it alive, and so its inode ours to know it by). */
	if (!memfd_sealed(memfd))
		return -EPROTO;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->len = (size_t)st.st_size;
	a->base = mmap(NULL, a->len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (a->base == MAP_FAILED) {
		int err = -errno;

		free(a);
		return err;
	}
	a->fd = -1;
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	a->live = 1;
	pthread_mutex_lock(&arena_lock);
	link_arena(a);
	pthread_mutex_unlock(&arena_lock);
	*out = a;
	return 0;
}

void arena_put(struct arena *a)
{
	bool last;

	pthread_mutex_lock(&arena_lock);
	last = --a->live == 0;
	if (last) {
		struct arena **p = &arenas;

		while (*p != a)
			p = &(*p)->next;
		*p = a->next;
	}
	pthread_mutex_unlock(&arena_lock);
	if (!last)
		return;
	/* A sweep may be punching its pages: the unmap waits for it, so that
	 * the arena is gone when the last close returns. */
	pthread_mutex_lock(&sweep_lock);
	pthread_mutex_unlock(&sweep_lock);
	munmap(a->base, a->len);
	if (a->fd >= 0)
		close(a->fd);
	free(a->dead);
	free(a);
}

void arena_retire(struct arena *a, uint64_t off, size_t len)
{
	pthread_mutex_lock(&arena_lock);
	if (a->ndead == a->dead_cap) {
		unsigned cap = a->dead_cap ? 2 * a->dead_cap : 8;
		struct arena_span *grown = realloc(a->dead, cap * sizeof(*grown));

		/* Without room the pages stay until the arena goes: no harm. */
		if (grown) {
			a->dead = grown;
			a->dead_cap = cap;
		}
	}
	if (a->ndead < a->dead_cap)
		a->dead[a->ndead++] = (struct arena_span){ off, len };
	pthread_mutex_unlock(&arena_lock);
}

/* Punches out the whole pages of span: 0 or -errno. */
static int punch(const struct arena *a, struct arena_span span)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)a->base + span.off + page - 1) & ~(page - 1);
	uintptr_t hi = ((uintptr_t)a->base + span.off + span.len) & ~(page - 1);

	if (hi <= lo)
		return 0;
	return madvise((void *)lo, hi - lo, MADV_REMOVE) < 0 ? -errno : 0;
}

int arena_sweep(void)
{
	int err = 0;

	/* Punched outside arena_lock, which connects and closes take; an
	 * arena's last put waits on sweep_lock before it unmaps. */
	pthread_mutex_lock(&sweep_lock);
	for (;;) {
		struct arena *a;
		struct arena_span *dead = NULL;
		unsigned ndead = 0;

		pthread_mutex_lock(&arena_lock);
		for (a = arenas; a && !a->ndead; a = a->next)
			;
		if (a) {
			dead = a->dead;
			ndead = a->ndead;
			a->dead = NULL;
			a->ndead = a->dead_cap = 0;
		}
		pthread_mutex_unlock(&arena_lock);
		if (!a)
			break;
		for (unsigned k = 0; k < ndead; k++) {
			int e = punch(a, dead[k]);

			if (!err)
				err = e;
		}
		free(dead);
	}
	pthread_mutex_unlock(&sweep_lock);
	return err;
}

unsigned arena_count(void)
{
	unsigned n = 0;

	pthread_mutex_lock(&arena_lock);
	for (struct arena *a = arenas; a; a = a->next)
		n++;
	pthread_mutex_unlock(&arena_lock);
	return n;
}
