/*
 * Threads sharing one connection's RMA machinery, both ends in this process:
 *  (a) 80 threads - more than the 64 completion slots, so some wait for a
 *      slot - copy to and from their own slices of the peer's window, while
 *      one more thread marks and waits (INIT_SELF) and another registers
 *      and unregisters windows on the same endpoint; every slice is checked;
 *  (b) an unregister while the peer's RMA into the window is under way
 *      returns only once that RMA has completed, so the pages the owner gets
 *      back hold all of it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define THREADS 80
#define SLICE (16 * 1024)	/* both ends here: twice 80 of them under an 8 MiB RLIMIT_MEMLOCK */
#define ROUNDS 25

static size_t P;
static int c, s;
static uint8_t *mine, *theirs;	/* c's window memory; s's */
static off_t mo, to;		/* their offsets */
static pthread_barrier_t start;
static atomic_int working;

/* Every RMA this process began on c has completed: ours among them. */
static void fence(int epd)
{
	int mark;

	CHECK(scif_fence_mark(epd, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(epd, mark) == 0);
}

static void *worker(void *arg)
{
	size_t i = (size_t)(uintptr_t)arg;
	uint8_t *back = malloc(SLICE);

	CHECK(back != NULL);
	pthread_barrier_wait(&start);
	for (uint64_t r = 0; r < ROUNDS; r++) {
		off_t at = (off_t)(i * SLICE);
		uint64_t seed = i * 1000 + r;

		fill64(mine + at, SLICE, seed);
		CHECK(scif_writeto(c, mo + at, SLICE, to + at, r % 2 ? SCIF_RMA_SYNC : 0) == 0);
		if (r % 2 == 0)
			fence(c);	/* RMA is asynchronous: known done only so */
		CHECK(sum64(theirs + at, SLICE) == sum64(mine + at, SLICE));
		fill64(theirs + at, SLICE, seed + 1);
		CHECK(scif_vreadfrom(c, back, SLICE, to + at, 0) == 0);
		CHECK(scif_readfrom(c, mo + at, SLICE, to + at, SCIF_RMA_ORDERED) == 0);
		fence(c);
		CHECK(memcmp(back, theirs + at, SLICE) == 0 && memcmp(back, mine + at, SLICE) == 0);
	}
	free(back);
	atomic_fetch_sub_explicit(&working, 1, memory_order_release);
	return NULL;
}

static void *fencer(void *arg)
{
	unsigned long *rounds = arg;
	int mark;

	pthread_barrier_wait(&start);
	while (atomic_load_explicit(&working, memory_order_acquire) > 0) {
		CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark) == 0);
		CHECK(scif_fence_wait(c, mark) == 0);
		++*rounds;
	}
	return NULL;
}

static void *churner(void *arg)
{
	unsigned long *rounds = arg;
	uint8_t *buf;

	CHECK(posix_memalign((void **)&buf, P, 4 * P) == 0);
	memset(buf, 0, 4 * P);
	pthread_barrier_wait(&start);
	while (atomic_load_explicit(&working, memory_order_acquire) > 0) {
		off_t o = scif_register(c, buf, 4 * P, 0, RW, 0);

		CHECK(o >= 0);
		CHECK(scif_unregister(c, o, 4 * P) == 0);
		++*rounds;
	}
	free(buf);
	return NULL;
}

static void check_many_threads(void)
{
	pthread_t t[THREADS + 2];
	unsigned long fences = 0, churns = 0;
	double t0;

	CHECK(posix_memalign((void **)&mine, P, THREADS * SLICE) == 0);
	CHECK(posix_memalign((void **)&theirs, P, THREADS * SLICE) == 0);
	mo = scif_register(c, mine, THREADS * SLICE, 0, RW, 0);
	to = scif_register(s, theirs, THREADS * SLICE, 0, RW, 0);
	CHECK(mo >= 0 && to >= 0);
	atomic_init(&working, THREADS);
	CHECK(pthread_barrier_init(&start, NULL, THREADS + 3) == 0);
	for (size_t i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
	CHECK(pthread_create(&t[THREADS], NULL, fencer, &fences) == 0);
	CHECK(pthread_create(&t[THREADS + 1], NULL, churner, &churns) == 0);
	t0 = now_ms();
	pthread_barrier_wait(&start);
	for (size_t i = 0; i < THREADS + 2; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	printf("# %d threads x %d rounds of 3 RMAs in %.0f ms, %lu fences, %lu registrations meanwhile\n",
	       THREADS, ROUNDS, now_ms() - t0, fences, churns);
	CHECK(pthread_barrier_destroy(&start) == 0);
	CHECK(scif_unregister(c, mo, THREADS * SLICE) == 0);
	CHECK(scif_unregister(s, to, THREADS * SLICE) == 0);
	free(mine);
	free(theirs);
}

struct mover {
	uint8_t *src;
	size_t n;
	off_t dst;
	pthread_t t;
};

static void *mover_main(void *arg)
{
	struct mover *mv = arg;

	/* s's RMA into c's window. */
	CHECK(scif_vwriteto(s, mv->src, mv->n, mv->dst, 0) == 0);
	return NULL;
}

#define SAMPLES 64

/* How many of SAMPLES words spread over buf (all zero before) are not. */
static int landed(const uint8_t *buf, size_t n)
{
	int k = 0;

	for (int i = 0; i < SAMPLES; i++)
		k += atomic_load_explicit((_Atomic uint64_t *)(buf + P + (n - 2 * P) / SAMPLES * (size_t)i),
					  memory_order_relaxed) != 0;
	return k;
}

static void check_unregister_waits(void)
{
	struct mover mv = { .n = test_mib(64) << 20 };
	uint8_t *buf;
	off_t o;
	int caught = 0;

	mv.src = malloc(mv.n);
	CHECK(mv.src != NULL);
	CHECK(posix_memalign((void **)&buf, P, mv.n) == 0);
	for (int k = 1; k <= 3; k++) {
		memset(buf, 0, mv.n);
		fill64(mv.src, mv.n, (uint64_t)k);
		o = scif_register(c, buf, mv.n, 0, RW, 0);
		CHECK(o >= 0);
		/* s must know the window before its RMA: it reads its channel
		 * when it starts one, after we announced it. */
		mv.dst = o;
		CHECK(pthread_create(&mv.t, NULL, mover_main, &mv) == 0);
		/* Landing somewhere (memmove stores the first and last bytes
		 * last); some of it still missing means under way. */
		while (landed(buf, mv.n) == 0)
			sched_yield();
		caught += landed(buf, mv.n) < SAMPLES;
		CHECK(scif_unregister(c, o, mv.n) == 0);
		/* Private again, and all of the RMA is in it. */
		CHECK(window_inode(buf) == 0);
		CHECK(sum64(buf, mv.n) == sum64(mv.src, mv.n));
		CHECK(pthread_join(mv.t, NULL) == 0);
	}
	printf("# an unregister met the peer's RMA under way %d of 3 times\n", caught);
	free(buf);
	free(mv.src);
}

int main(void)
{
	P = page_size();
	connect_pair(7400, &c, &s);
	check_many_threads();
	check_unregister_waits();
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	return 0;
}
