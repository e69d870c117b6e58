/*
 * shlock.c - the slow half of a lock in a word the peer can write
 * (shlock.h): waiting, bounded, and waking.
 */
#include "shlock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static int64_t now_ms(void)
{
	struct timespec t;

	/* CLOCK_MONOTONIC cannot fail with a valid clock and pointer; a
	 * zero reading would only end the wait sooner. */
	if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
		return 0;
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sleeps while the word still says SHLOCK_WAITED, at most ms: 0 (woken,
 * timed out, or the word changed first), or -errno. Not FUTEX_PRIVATE_FLAG:
 * the word is in a shared mapping, and the peer's wake must reach us. */
static int futex_wait(struct shlock *l, int ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	if (syscall(SYS_futex, (uint32_t *)&l->word, FUTEX_WAIT, SHLOCK_WAITED, &t, NULL, 0) == 0)
		return 0;
	return errno == EAGAIN || errno == ETIMEDOUT || errno == EINTR ? 0 : -errno;
}

void shlock_wake(struct shlock *l)
{
	/* One waiter: it takes the lock with SHLOCK_WAITED, so its own unlock
	 * wakes the next. A failure (none is possible on a mapped, aligned
	 * word) would leave a waiter to its next look. */
	(void)syscall(SYS_futex, (uint32_t *)&l->word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

int shlock_lock_slow(struct shlock *l, const struct shlock_wait *how)
{
	int64_t until;

	/* A holder keeps the lock for a system call or two: spinning a while
	 * spares both sides a sleep and a wake-up. */
	for (unsigned i = 0; i < how->spins; i++) {
		cpu_relax();
		if (atomic_load_explicit(&l->word, memory_order_relaxed) == SHLOCK_FREE &&
		    shlock_trylock(l))
			return 0;
	}
	until = now_ms() + how->limit_ms;
	for (bool slept = false;; slept = true) {
		int64_t left;
		int err;

		/* Whatever the word held - the peer may have put anything
		 * there - it is SHLOCK_WAITED now, and ours if it was free. */
		if (atomic_exchange_explicit(&l->word, SHLOCK_WAITED, memory_order_acquire) ==
		    SHLOCK_FREE)
			return 0;
		/* Only after a sleep: looking is a system call, which before
		 * the first one would widen the window in which the holder
		 * lets go before we sleep (a wake-up for nobody, then a futex
		 * call that finds the word changed) - measured, with the
		 * tokens' lock on the message path, as slower round trips. A
		 * live holder wakes us long before the sleep ends. Each sleep
		 * is a whole look_ms, the first too: a short first one (1 ms)
		 * measured about 15% slower round trips than glibc's mutex,
		 * a timer that near being likely the CPU's next, which arming
		 * and cancelling reprogram. */
		err = slept && how->look ? how->look(how->arg) : 0;
		if (err)
			return err;
		left = until - now_ms();
		if (left <= 0)
			return -EPROTO;
		err = futex_wait(l, left < how->look_ms ? (int)left : how->look_ms);
		if (err)
			return err;
	}
}
