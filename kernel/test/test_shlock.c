/*
 * test_shlock - the lock in a word the peer can write (src/shlock.h), on its
 * own: a shared anonymous mapping stands for the queue pair's header, a
 * forked child for the peer.
 *
 *   garbage     every class of value a peer may leave in the word (held,
 *               waited, huge, the top bit, random) is a lock held: the wait
 *               ends with EPROTO at the limit, not before and not much after
 *   look        the caller's look ends a wait with its error, within a look's
 *               interval (a holder that dies: of the death)
 *   while held  garbage stored while we hold it: our unlock leaves the word
 *               free, and the lock works on
 *   threads     threads of two processes count under it: no count is lost
 *   wake        an unlock wakes a waiter of another process at once, long
 *               before its next look
 *   scribbled   a peer storing garbage without pause while threads take and
 *               release it: every lock returns 0 or EPROTO, in bounded time
 */
#include <sys/mman.h>

#include "check.h"
#include "shlock.h"

#define LIMIT_MS 150

struct page {
	struct shlock lock;
	_Atomic uint32_t go;
	uint64_t count;		/* under lock */
};

static struct page *shared_page(void)
{
	struct page *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	return p;
}

static pid_t fork_peer(void)
{
	pid_t parent = getpid(), pid;

	/* Under valgrind a child's _exit flushes what it inherited. */
	CHECK(fflush(stdout) == 0);
	pid = fork();

	CHECK(pid >= 0);
	if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
		_exit(126);
	return pid;
}

static const uint32_t garbage[] = {
	SHLOCK_HELD, SHLOCK_WAITED, 3, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu,
};

static void garbage_is_held(struct page *p)
{
	const struct shlock_wait how = { .spins = 64, .look_ms = 20, .limit_ms = LIMIT_MS };
	uint32_t seed = 12345;

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]) + 4; i++) {
		uint32_t v = i < sizeof(garbage) / sizeof(garbage[0]) ? garbage[i] : xorshift(&seed) | 1;
		double t0;
		int err;

		atomic_store(&p->lock.word, v);
		t0 = now_ms();
		err = shlock_lock(&p->lock, &how);
		t0 = now_ms() - t0;
		if (err != -EPROTO || t0 < LIMIT_MS - 1 || t0 > LIMIT_MS + 1000) {
			fprintf(stderr, "word %#x: %d after %.1f ms\n", v, err, t0);
			exit(1);
		}
	}
	/* Freed (by the peer): ours again, uncontended. */
	atomic_store(&p->lock.word, SHLOCK_FREE);
	CHECK(shlock_trylock(&p->lock));
	shlock_unlock(&p->lock);
	CHECK(atomic_load(&p->lock.word) == SHLOCK_FREE);
	printf("# garbage: %zu values held the lock; each wait ended with EPROTO at %d ms\n",
	       sizeof(garbage) / sizeof(garbage[0]) + 4, LIMIT_MS);
}

/* A thread of ours waiting for the lock, as told. */
struct waiter {
	struct page *p;
	struct shlock_wait how;
	pthread_t thread;
	_Atomic pid_t tid;
	int ret;
	double got_ms;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	w->tid = gettid();
	w->ret = shlock_lock(&w->p->lock, &w->how);
	w->got_ms = now_ms();
	if (w->ret == 0)
		shlock_unlock(&w->p->lock);
	return NULL;
}

/* Returns once the waiter sleeps on the lock's futex. */
static void start_waiter(struct waiter *w)
{
	w->tid = 0;
	CHECK(pthread_create(&w->thread, NULL, wait_main, w) == 0);
	while (!w->tid)
		sched_yield();
	while (!sleeps_in(w->tid, SYS_futex))
		sched_yield();
}

/* Whether the peer is gone: its end of a pipe closed. */
static int pipe_hung_up(void *arg)
{
	struct pollfd pfd = { .fd = *(int *)arg, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP) ? -ECONNRESET : 0;
}

static int say_closing(void *arg)
{
	(void)arg;
	return -EINTR;
}

static void look_ends_wait(struct page *p)
{
	const struct shlock_wait closing = {
		.spins = 16, .look_ms = 20, .limit_ms = 60000, .look = say_closing,
	};
	struct waiter w = { .p = p };
	int fds[2], rd;
	double killed;
	pid_t pid;

	atomic_store(&p->lock.word, SHLOCK_HELD);
	CHECK(shlock_lock(&p->lock, &closing) == -EINTR);
	atomic_store(&p->lock.word, SHLOCK_FREE);

	/* A holder that dies while we sleep: only the look can tell. */
	CHECK(pipe(fds) == 0);
	pid = fork_peer();
	if (pid == 0) {
		close(fds[0]);
		CHECK(shlock_trylock(&p->lock));
		atomic_store(&p->go, 1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	rd = fds[0];
	while (!atomic_load(&p->go))
		sched_yield();
	w.how = (struct shlock_wait){
		.spins = 16, .look_ms = 20, .limit_ms = 60000, .look = pipe_hung_up, .arg = &rd,
	};
	start_waiter(&w);
	CHECK(kill(pid, SIGKILL) == 0);
	killed = now_ms();
	CHECK(pthread_join(w.thread, NULL) == 0);
	CHECK(w.ret == -ECONNRESET && w.got_ms - killed < 1000);
	expect_signal(pid, SIGKILL);
	close(rd);
	atomic_store(&p->lock.word, SHLOCK_FREE);
	atomic_store(&p->go, 0);
	printf("# look: the caller's EINTR after a look's sleep; a holder killed under a sleeping waiter: "
	       "ECONNRESET %.2f ms after (looks every 20 ms)\n", w.got_ms - killed);
}

static void garbage_while_held(struct page *p)
{
	const struct shlock_wait how = { .spins = 16, .look_ms = 20, .limit_ms = LIMIT_MS };

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		CHECK(shlock_lock(&p->lock, &how) == 0);
		atomic_store(&p->lock.word, garbage[i]);
		shlock_unlock(&p->lock);
		CHECK(atomic_load(&p->lock.word) == SHLOCK_FREE);
	}
	/* Freed under us: the unlock frees it again, no more. */
	CHECK(shlock_lock(&p->lock, &how) == 0);
	atomic_store(&p->lock.word, SHLOCK_FREE);
	shlock_unlock(&p->lock);
	CHECK(shlock_lock(&p->lock, &how) == 0);
	shlock_unlock(&p->lock);
	printf("# while held: garbage stored under us, our unlock freed the word\n");
}

#define THREADS 3
#define ROUNDS 20000

static void *count_main(void *arg)
{
	struct page *p = arg;
	const struct shlock_wait how = { .spins = 64, .look_ms = 50, .limit_ms = 60000 };

	for (int i = 0; i < ROUNDS; i++) {
		CHECK(shlock_lock(&p->lock, &how) == 0);
		p->count++;
		shlock_unlock(&p->lock);
	}
	return NULL;
}

static void count_in(struct page *p)
{
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, count_main, p) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
}

static void threads_count(struct page *p)
{
	pid_t pid;

	p->count = 0;
	pid = fork_peer();
	if (pid == 0) {
		count_in(p);
		_exit(0);
	}
	count_in(p);
	expect_exit(pid, 0);
	CHECK(p->count == 2ull * THREADS * ROUNDS);
	CHECK(atomic_load(&p->lock.word) == SHLOCK_FREE);
	printf("# threads: %d threads in each of two processes counted %llu, none lost\n", THREADS,
	       (unsigned long long)p->count);
}

static void wake(struct page *p)
{
	struct waiter w = { .p = p, .how = { .spins = 0, .look_ms = 30000, .limit_ms = 60000 } };
	double unlocked;
	pid_t pid;

	atomic_store(&p->go, 0);
	pid = fork_peer();
	if (pid == 0) {
		CHECK(shlock_trylock(&p->lock));
		atomic_store(&p->go, 1);
		while (atomic_load(&p->go) != 2)
			sched_yield();
		shlock_unlock(&p->lock);
		_exit(0);
	}
	while (atomic_load(&p->go) != 1)
		sched_yield();
	start_waiter(&w);
	unlocked = now_ms();
	atomic_store(&p->go, 2);
	CHECK(pthread_join(w.thread, NULL) == 0);
	expect_exit(pid, 0);
	CHECK(w.ret == 0 && w.got_ms - unlocked < 5000);
	CHECK(atomic_load(&p->lock.word) == SHLOCK_FREE);
	printf("# wake: the other process's unlock woke our waiter in %.2f ms (its look: 30 s)\n",
	       w.got_ms - unlocked);
}

#define SCRIBBLE_MS 400

static void *locker_main(void *arg)
{
	struct page *p = arg;
	const struct shlock_wait how = { .spins = 32, .look_ms = 5, .limit_ms = 20 };
	unsigned got = 0, refused = 0;

	while (atomic_load(&p->go) == 1) {
		int err = shlock_lock(&p->lock, &how);

		CHECK(err == 0 || err == -EPROTO);
		if (err == 0) {
			got++;
			shlock_unlock(&p->lock);
		} else {
			refused++;
		}
	}
	return (void *)(uintptr_t)(got + refused);
}

static void scribbled(struct page *p)
{
	pthread_t t[2];
	uintptr_t calls = 0;
	pid_t pid;

	atomic_store(&p->go, 1);
	atomic_store(&p->lock.word, SHLOCK_FREE);
	pid = fork_peer();
	if (pid == 0) {
		uint32_t seed = 99;

		while (atomic_load(&p->go) == 1) {
			uint32_t r = xorshift(&seed);

			/* Mostly free or held, so that both sides take turns. */
			atomic_store(&p->lock.word, r & 4 ? r & 3 : garbage[r % 7]);
		}
		_exit(0);
	}
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, locker_main, p) == 0);
	nanosleep(&(struct timespec){ .tv_nsec = SCRIBBLE_MS * 1000000L }, NULL);
	atomic_store(&p->go, 0);
	for (int i = 0; i < 2; i++) {
		void *n;

		CHECK(pthread_join(t[i], &n) == 0);
		calls += (uintptr_t)n;
	}
	expect_exit(pid, 0);
	printf("# scribbled: %lu locks under a peer storing garbage, each 0 or EPROTO\n",
	       (unsigned long)calls);
}

int main(void)
{
	struct page *p = shared_page();

	garbage_is_held(p);
	look_ends_wait(p);
	garbage_while_held(p);
	threads_count(p);
	wake(p);
	scribbled(p);
	CHECK(munmap(p, 4096) == 0);
	return 0;
}
