/*
 * Ordering with fences, between two processes on different nodes:
 *  (a) the peer writes data with scif_writeto, then scif_fence_signal
 *      (INIT_SELF, SIGNAL_REMOTE) stores a value into our window; we spin
 *      on it through our own pointer, and once it shows, the data is there;
 *  (b) the peer reads our data with scif_readfrom and signals its own
 *      window (SIGNAL_LOCAL), or marks and waits (INIT_SELF);
 *  (c) SCIF_RMA_ORDERED: we spin on the last bytes the peer's RMA writes,
 *      and once they show, all the rest is there (a functional check: on
 *      x86 even an unordered copy rarely lets the last line overtake);
 *  (d) INIT_PEER: while the peer's big RMA into our window is under way
 *      (some of it has landed), scif_fence_mark/scif_fence_wait and
 *      scif_fence_signal(SIGNAL_LOCAL) return only once all of it has;
 *  (e) INIT_SELF across threads: while one thread's big RMA is under way,
 *      another thread's mark and wait return only once it is complete.
 * (d) and (e) mark as soon as the RMA is seen landing; how often some of it
 * was still missing then is printed. Either way the data must be complete
 * once the wait returns.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

#define PORT 3800
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define DMAX (1u << 20)
#define ROUNDS 40
#define BIG_ROUNDS 4

enum op { SIGNALS = 1, PULL, ORDERED, BIG, QUIT };

struct req {
	uint32_t op, arg;
	uint64_t seed;
};

static size_t P, BIGN;

/* Offsets in a "small" window: the data, then a page of 8-byte flags. */
#define FLAG(i) ((off_t)DMAX + 64 * (i))

static void send_all(int epd, const void *p, int len)
{
	CHECK(scif_send(epd, (void *)p, len, SCIF_SEND_BLOCK) == len);
}

static void recv_all(int epd, void *p, int len)
{
	CHECK(scif_recv(epd, p, len, SCIF_RECV_BLOCK) == len);
}

static uint64_t load64(const uint8_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_acquire);
}

static uint64_t sum_of_fill(size_t n, uint64_t seed)
{
	uint8_t *tmp = malloc(n);
	uint64_t h;

	CHECK(tmp != NULL);
	fill64(tmp, n, seed);
	h = sum64(tmp, n);
	free(tmp);
	return h;
}

static size_t round_len(uint32_t k)
{
	return 8 + (size_t)(k * 2654435761u) % (DMAX - 8);
}

/* ---- the peer (node 1) ---- */

struct peer {
	int s;
	uint8_t *w, *big;
	off_t wo, bigo;		/* its windows */
	off_t ro, rbig;		/* ours */
};

static void peer_signals(struct peer *p)
{
	for (uint32_t k = 1; k <= ROUNDS; k++) {
		size_t n = round_len(k);
		char ack;

		fill64(p->w, n, k);
		/* Not SYNC: the signal is what orders it. */
		CHECK(scif_writeto(p->s, p->wo, n, p->ro, 0) == 0);
		CHECK(scif_fence_signal(p->s, 0, 0, p->ro + FLAG(0), k,
					SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE) == 0);
		recv_all(p->s, &ack, 1);
	}
}

static void peer_pull(struct peer *p, uint32_t k)
{
	size_t n = round_len(k);
	int mark;
	uint64_t h;

	CHECK(scif_readfrom(p->s, p->wo, n, p->ro, 0) == 0);
	CHECK(scif_fence_signal(p->s, p->wo + FLAG(1), k, 0, 0,
				SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL) == 0);
	CHECK(load64(p->w + FLAG(1)) == k);
	h = sum64(p->w, n);
	CHECK(scif_vreadfrom(p->s, p->w, n, p->ro, 0) == 0);
	CHECK(scif_fence_mark(p->s, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(p->s, mark) == 0);
	CHECK(sum64(p->w, n) == h);
	send_all(p->s, &h, sizeof(h));
}

static void peer_ordered(struct peer *p)
{
	for (uint32_t k = 1; k <= ROUNDS; k++) {
		size_t n = round_len(k) & ~(size_t)7;
		uint64_t mark = 0xab00000000ull + k;
		char ack;

		fill64(p->w, n, k);
		memcpy(p->w + n - 8, &mark, 8);
		CHECK(scif_writeto(p->s, p->wo, n, p->ro, SCIF_RMA_ORDERED) == 0);
		recv_all(p->s, &ack, 1);
	}
}

static int role_peer(void)
{
	struct peer p;
	struct scif_portID who;
	int l = scif_open();
	struct req r;

	CHECK(l >= 0 && scif_bind(l, PORT) == PORT && scif_listen(l, 1) == 0);
	report_ready(1);
	CHECK(scif_accept(l, &who, &p.s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	CHECK(posix_memalign((void **)&p.w, P, DMAX + P) == 0);
	CHECK(posix_memalign((void **)&p.big, P, BIGN) == 0);
	p.wo = scif_register(p.s, p.w, DMAX + P, 0, RW, 0);
	p.bigo = scif_register(p.s, p.big, BIGN, 0, RW, 0);
	CHECK(p.wo >= 0 && p.bigo >= 0);
	recv_all(p.s, &p.ro, sizeof(p.ro));
	recv_all(p.s, &p.rbig, sizeof(p.rbig));
	send_all(p.s, &p.bigo, sizeof(p.bigo));
	for (;;) {
		recv_all(p.s, &r, sizeof(r));
		if (r.op == SIGNALS) {
			peer_signals(&p);
		} else if (r.op == PULL) {
			peer_pull(&p, r.arg);
		} else if (r.op == ORDERED) {
			peer_ordered(&p);
		} else if (r.op == BIG) {
			fill64(p.big, BIGN, r.seed);
			send_all(p.s, "g", 1);
			CHECK(scif_writeto(p.s, p.bigo, BIGN, p.rbig, 0) == 0);
			send_all(p.s, "d", 1);
		} else {
			break;
		}
	}
	CHECK(scif_close(p.s) == 0);
	free(p.w);
	free(p.big);
	return 0;
}

/* ---- this process (node 0) ---- */

struct me {
	int c;
	uint8_t *r, *big;
	off_t ro, bigo;
};

static void ask(struct me *m, enum op op, uint32_t arg, uint64_t seed)
{
	struct req r = { .op = op, .arg = arg, .seed = seed };

	send_all(m->c, &r, sizeof(r));
}

static void check_signals(struct me *m)
{
	ask(m, SIGNALS, 0, 0);
	for (uint32_t k = 1; k <= ROUNDS; k++) {
		while (load64(m->r + FLAG(0)) != k)
			sched_yield();
		CHECK(sum64(m->r, round_len(k)) == sum_of_fill(round_len(k), k));
		send_all(m->c, "a", 1);
	}
}

static void check_pull(struct me *m)
{
	for (uint32_t k = 1; k <= 8; k++) {
		uint64_t h;

		fill64(m->r, round_len(k), 100 + k);
		ask(m, PULL, k, 0);
		recv_all(m->c, &h, sizeof(h));
		CHECK(h == sum64(m->r, round_len(k)));
	}
}

static void check_ordered(struct me *m)
{
	ask(m, ORDERED, 0, 0);
	for (uint32_t k = 1; k <= ROUNDS; k++) {
		size_t n = round_len(k) & ~(size_t)7;
		uint8_t *want = malloc(n);

		CHECK(want != NULL);
		fill64(want, n, k);
		memcpy(want + n - 8, &(uint64_t){ 0xab00000000ull + k }, 8);
		while (load64(m->r + n - 8) != 0xab00000000ull + k)
			sched_yield();
		CHECK(memcmp(m->r, want, n) == 0);
		free(want);
		send_all(m->c, "a", 1);
	}
}

/* Spins until some of the words sampled across buf no longer hold old[]. */
#define SAMPLES 64
static void sample(const uint8_t *buf, size_t n, uint64_t *old)
{
	for (int i = 0; i < SAMPLES; i++)
		old[i] = atomic_load_explicit((_Atomic uint64_t *)(buf + (n / SAMPLES) * (size_t)i),
					      memory_order_relaxed);
}

/* How many sampled words no longer hold old[]. */
static int landed(const uint8_t *buf, size_t n, const uint64_t *old)
{
	int k = 0;

	for (int i = 0; i < SAMPLES; i++)
		k += atomic_load_explicit((_Atomic uint64_t *)(buf + (n / SAMPLES) * (size_t)i),
					  memory_order_relaxed) != old[i];
	return k;
}

/* Spins until the RMA into buf has begun to land; true if it has not all
 * landed yet (judged by the samples: cheap, so the RMA is still under way
 * when the caller goes on to mark it). */
static bool wait_landing(const uint8_t *buf, size_t n, const uint64_t *old)
{
	int k;

	while ((k = landed(buf, n, old)) == 0)
		;
	atomic_thread_fence(memory_order_acquire);
	return k < SAMPLES;
}

static bool complete(const uint8_t *buf, size_t n, uint64_t seed)
{
	return sum64(buf, n) == sum_of_fill(n, seed);
}

static void check_init_peer(struct me *m)
{
	uint64_t old[SAMPLES];
	int caught = 0, mark;
	char c;

	for (uint32_t k = 1; k <= BIG_ROUNDS; k++) {
		sample(m->big, BIGN, old);
		ask(m, BIG, 0, 1000 + k);
		recv_all(m->c, &c, 1);		/* it is about to start */
		/* It has begun: mark it at once, while (likely) under way. */
		caught += wait_landing(m->big, BIGN, old);
		if (k % 2) {
			CHECK(scif_fence_mark(m->c, SCIF_FENCE_INIT_PEER, &mark) == 0);
			/* MPSS 4's remote marks have bit 31 set: negative, and valid. */
			CHECK(mark < 0);
			CHECK(scif_fence_wait(m->c, mark) == 0);
		} else {
			CHECK(scif_fence_signal(m->c, m->ro + FLAG(2), k, 0, 0,
						SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL) == 0);
			CHECK(load64(m->r + FLAG(2)) == k);
		}
		CHECK(complete(m->big, BIGN, 1000 + k));
		recv_all(m->c, &c, 1);
	}
	printf("# INIT_PEER: the peer's RMA was in flight at %d of %d marks\n", caught, BIG_ROUNDS);
}

struct mover {
	struct me *m;
	uint8_t *src;
	off_t dst;
	pthread_t t;
};

static void *mover_main(void *arg)
{
	struct mover *mv = arg;

	CHECK(scif_vwriteto(mv->m->c, mv->src, BIGN, mv->dst, 0) == 0);
	return NULL;
}

/* Our own threads: one moves, the other marks and waits. The destination
 * is the peer's big window, watched through a mapping of it. */
static void check_init_self(struct me *m, off_t peer_big)
{
	uint8_t *src = malloc(BIGN), *view;
	uint64_t old[SAMPLES];
	int caught = 0, mark;

	CHECK(src != NULL);
	view = scif_mmap(NULL, BIGN, SCIF_PROT_READ, 0, m->c, peer_big);
	CHECK(view != SCIF_MMAP_FAILED);
	for (uint32_t k = 1; k <= BIG_ROUNDS; k++) {
		struct mover mv = { .m = m, .src = src, .dst = peer_big };

		fill64(src, BIGN, 2000 + k);
		sample(view, BIGN, old);
		CHECK(pthread_create(&mv.t, NULL, mover_main, &mv) == 0);
		caught += wait_landing(view, BIGN, old);
		CHECK(scif_fence_mark(m->c, SCIF_FENCE_INIT_SELF, &mark) == 0 && mark >= 0);
		CHECK(scif_fence_wait(m->c, mark) == 0);
		CHECK(complete(view, BIGN, 2000 + k));
		CHECK(pthread_join(mv.t, NULL) == 0);
	}
	printf("# INIT_SELF: another thread's RMA was in flight at %d of %d marks\n", caught,
	       BIG_ROUNDS);
	CHECK(scif_munmap(view, BIGN) == 0);
	free(src);
}

int main(int argc, char **argv)
{
	struct scif_portID to = { .node = 1, .port = PORT };
	struct me m;
	off_t peer_big;
	int ready;
	pid_t pid;

	P = page_size();
	BIGN = test_mib(64) << 20;
	if (argc > 2 && strcmp(argv[1], "peer") == 0)
		return role_peer();
	pid = spawn_role(1, "peer", NULL, &ready);
	CHECK(await_ready(ready) == 1);
	m.c = scif_open();
	CHECK(m.c >= 0 && scif_connect(m.c, &to) >= 0);
	CHECK(posix_memalign((void **)&m.r, P, DMAX + P) == 0);
	CHECK(posix_memalign((void **)&m.big, P, BIGN) == 0);
	memset(m.r, 0, DMAX + P);
	memset(m.big, 0, BIGN);
	m.ro = scif_register(m.c, m.r, DMAX + P, 0, RW, 0);
	m.bigo = scif_register(m.c, m.big, BIGN, 0, RW, 0);
	CHECK(m.ro >= 0 && m.bigo >= 0);
	send_all(m.c, &m.ro, sizeof(m.ro));
	send_all(m.c, &m.bigo, sizeof(m.bigo));
	recv_all(m.c, &peer_big, sizeof(peer_big));
	check_signals(&m);
	check_pull(&m);
	check_ordered(&m);
	check_init_peer(&m);
	check_init_self(&m, peer_big);
	ask(&m, QUIT, 0, 0);
	expect_exit(pid, 0);
	CHECK(scif_close(m.c) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(close(ready) == 0);
	free(m.r);
	free(m.big);
	return 0;
}
