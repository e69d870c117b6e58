/*
 * shlock.h - a lock in one word of memory we share with a peer process that
 * may write anything into it: the queue pair's header (qp.h), where the RMA
 * channel's lock (channel.c) and each ring's token lock (tokens.c) live.
 *
 * Why not a process-shared robust pthread mutex, as these were: every byte
 * of one is in the shared page, and glibc trusts them. Read in glibc 2.36
 * (nptl/pthread_mutex_unlock.c, __pthread_mutex_unlock_full, and
 * DEQUEUE_MUTEX/ENQUEUE_MUTEX_BOTH in nptl/descr.h): a robust mutex is
 * linked into the locking thread's robust list through the mutex's own
 * __data.__list.__next/__prev. Locking stores our thread's robust_head
 * address (in its TCB) and the list's previous head into them - the peer
 * reads where our thread and our mapping are. Unlocking does
 *	next = (__next & ~1) - offsetof(__pthread_list_t, __next);
 *	next->__prev = __prev;
 *	prev = (__prev & ~1) - offsetof(...);
 *	prev->__next = __next;
 * with both pointers loaded from the shared page: a peer that rewrites them
 * while we hold the lock makes our unlock store a value of its choosing at
 * an address of its choosing, and leaves our thread's robust_head.list
 * pointing where it likes - which the next robust lock's ENQUEUE writes
 * through, and which the kernel walks when the thread exits
 * (exit_robust_list: for each entry it reads the word at entry +
 * futex_offset and, if it holds our TID, rewrites it with FUTEX_OWNER_DIED
 * and wakes it). The mutex's kind (__kind: robust, PI, PP, recursive),
 * owner and count are in the page too and choose which path glibc takes.
 *
 * This lock is a 32-bit word used only through C11 atomics and the futex
 * system call (shared, not FUTEX_PRIVATE_FLAG: the two processes' mappings
 * of the memfd are one futex). The values are Drepper's ("Futexes are
 * tricky", mutex 2): 0 free, 1 held, 2 held and maybe waited for. Whatever
 * the peer stores, we read and write the word alone, and every other value
 * means held: a waiter overwrites it with 2 and sleeps. Taking it
 * uncontended is one CAS 0 -> 1; releasing is one exchange with 0, plus a
 * FUTEX_WAKE when the old value says someone may wait (or is garbage).
 *
 * Waiting is bounded: a few tries, then sleeps of at most look_ms, looking
 * between them (the caller's look(): is the peer gone? are we closing?),
 * and -EPROTO once limit_ms have passed - a peer that keeps a lock held for
 * its few system calls that long is broken, hostile or stopped. A peer that
 * dies holding it never wakes us: its death shows through look() (the
 * connection hung up) within look_ms. A peer spinning garbage through the
 * word can make a waiter loop, never past limit_ms.
 *
 * Mutual exclusion between the two processes is the peer's to keep; a peer
 * can also let two of our threads in at once (storing 0 while one holds
 * it). What each lock guards is safe when that happens: the token counts
 * are checked under it (tokens.c), and each side's token locks are taken in
 * our process by one sender or one receiver at a time, under the
 * endpoint's own send and receive locks; two channels made at once cost
 * the connection (channel.c), not our memory.
 */
#ifndef SCIF_NET_SHLOCK_H
#define SCIF_NET_SHLOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SHLOCK_FREE 0u
#define SHLOCK_HELD 1u
#define SHLOCK_WAITED 2u	/* held, and a waiter may sleep on it */

/* In shared memory: a new one is all zero bytes (free). */
struct shlock {
	_Atomic uint32_t word;
};

/* How to wait for a lock another holds. */
struct shlock_wait {
	unsigned spins;		/* tries before the first sleep */
	int look_ms;		/* the longest sleep between two looks */
	int limit_ms;		/* waited this long: -EPROTO */
	/* 0 to go on waiting, or the -errno to give up with. NULL: never. */
	int (*look)(void *arg);
	void *arg;
};

int shlock_lock_slow(struct shlock *l, const struct shlock_wait *how);
void shlock_wake(struct shlock *l);

static inline bool shlock_trylock(struct shlock *l)
{
	uint32_t free_word = SHLOCK_FREE;

	return atomic_compare_exchange_strong_explicit(&l->word, &free_word, SHLOCK_HELD,
						       memory_order_acquire, memory_order_relaxed);
}

/* 0 with the lock held; -EPROTO (waited how->limit_ms), how->look()'s
 * error, or -errno of the futex call, without it. */
static inline int shlock_lock(struct shlock *l, const struct shlock_wait *how)
{
	return shlock_trylock(l) ? 0 : shlock_lock_slow(l, how);
}

static inline void shlock_unlock(struct shlock *l)
{
	if (atomic_exchange_explicit(&l->word, SHLOCK_FREE, memory_order_release) != SHLOCK_HELD)
		shlock_wake(l);
}

#endif
