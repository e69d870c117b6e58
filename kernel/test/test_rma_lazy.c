/*
 * The endpoint's RMA state made lazily (endpoint.h's ep_rma): a connection
 * carries none until it first needs RMA - its own call of the family, or the
 * peer's RMA channel arriving - and every path that meets a connection
 * without it means "no windows, no RMAs, nothing seen". Both ends in this
 * process; the test looks at the state through the fabric's internals.
 *
 *   idle      send, receive, poll, refused arguments, a stream-only
 *             connection's EOPNOTSUPP, a departed peer's ECONNRESET: no
 *             state on either side; scif_close of such endpoints
 *   passive   one side registers, the other never calls the family: its
 *             service thread makes the state as it attaches the channel,
 *             and handles the window message; its RMA from the window
 *             works, and closing it without a call releases the view
 *   race      on fresh connections, threads of both sides at once:
 *             register, fence, unregister, RMA, signal and mmap, all the
 *             first of their connection; then RMA both ways
 *   no memory the state cannot be allocated: each call of the family fails
 *             with ENOMEM, nothing made, nothing sent, and works later; the
 *             service thread without it hangs the connection up
 *
 * Allocation failure is injected with the linker (-Wl,--wrap=calloc, the
 * Makefile's TEST_LDFLAGS_rma_lazy): the fabric's calloc of the state's
 * size fails once, when armed.
 */
#include <sys/mman.h>

#include "check.h"
#include "endpoint.h"

#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define ROUNDS 30
#define RACERS 8
#define PORT 7600		/* and up: one port per pair */
#define OFF_MINE ((off_t)1 << 20)	/* c's window in the race */
#define OFF_THEIRS ((off_t)4 << 20)	/* s's */
#define OFF_NONE ((off_t)8 << 20)	/* nobody's */

static size_t P;
static uint16_t next_port = PORT;

/* ---- allocation failure ---- */

void *__real_calloc(size_t n, size_t size);

static pthread_t main_thread;
static _Thread_local bool fail_here;	/* this thread's next calloc of the state fails */
static atomic_bool fail_elsewhere;	/* so does another thread's (the service thread's) */
static atomic_int failed;		/* how many were made to fail */

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
	if (n == 1 && size == sizeof(struct ep_rma)) {
		bool fail = false;

		if (fail_here) {
			fail_here = false;
			fail = true;
		} else if (!pthread_equal(pthread_self(), main_thread) &&
			   atomic_exchange_explicit(&fail_elsewhere, false, memory_order_acq_rel)) {
			fail = true;
		}
		if (fail) {
			atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
			errno = ENOMEM;
			return NULL;
		}
	}
	return __real_calloc(n, size);
}

/* ---- looking inside ---- */

/* Whether epd's endpoint has made its RMA state. */
static bool has_state(int epd)
{
	struct endpoint *ep = ep_find(epd);
	bool made;

	CHECK(ep != NULL);
	made = ep_rma(ep) != NULL;
	ep_put(ep);
	return made;
}

/* The peer's windows epd knows of (under the state's lock), or -1 without
 * the state. */
static int peer_windows(int epd)
{
	struct endpoint *ep = ep_find(epd);
	struct ep_rma *r;
	int n = -1;

	CHECK(ep != NULL);
	r = ep_rma(ep);
	if (r) {
		CHECK(pthread_mutex_lock(&r->lock) == 0);
		n = (int)r->peer.n;
		CHECK(pthread_mutex_unlock(&r->lock) == 0);
	}
	ep_put(ep);
	return n;
}

/* Waits up to 10 s for peer_windows(epd) == want. */
static bool peer_windows_reach(int epd, int want)
{
	double until = now_ms() + 10000;

	while (peer_windows(epd) != want) {
		if (now_ms() > until)
			return false;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return true;
}

static void pair(int *c, int *s)
{
	connect_pair(next_port++, c, s);
	CHECK(!has_state(*c) && !has_state(*s));
}

static uint8_t *page(void)
{
	uint8_t *p;

	CHECK(posix_memalign((void **)&p, P, P) == 0);
	memset(p, 0, P);
	return p;
}

/* ---- idle ---- */

static void idle(void)
{
	struct scif_pollepd pe[2];
	int c, s, st_c, st_s, mark, base = count_connection_fds();
	uint8_t *buf = page();
	char x[64];

	pair(&c, &s);
	for (int i = 0; i < 100; i++) {
		CHECK(scif_send(c, "hello", 5, SCIF_SEND_BLOCK) == 5);
		CHECK(scif_recv(s, x, 5, SCIF_RECV_BLOCK) == 5);
		CHECK(scif_send(s, x, 5, SCIF_SEND_BLOCK) == 5);
		CHECK(scif_recv(c, x, 5, SCIF_RECV_BLOCK) == 5);
	}
	pe[0] = (struct scif_pollepd){ .epd = c, .events = POLLIN | POLLOUT };
	pe[1] = (struct scif_pollepd){ .epd = s, .events = POLLIN | POLLOUT };
	CHECK(scif_poll(pe, 2, 0) == 2);
	/* Refused before the family's checks of the connection. */
	CHECK(scif_register(c, buf, P, 0, RW, 0x40) == SCIF_REGISTER_FAILED && errno == EINVAL);
	CHECK_ERR(scif_unregister(c, 0, 1), EINVAL);
	CHECK(scif_mmap(NULL, 1, RW, 0, c, 0) == SCIF_MMAP_FAILED && errno == EINVAL);
	CHECK(!has_state(c) && !has_state(s));
	CHECK(count_connection_fds() - base == 2);

	/* A stream-only connection never has the family. */
	{
		struct scif_portID to = { .node = 0, .port = next_port }, who;
		int l = listen_on(next_port++, 1), flags;
		struct scif_pollepd pc;

		st_c = scif_open();
		CHECK(st_c >= 0 && scif_net_set_stream_only(st_c) == 0);
		flags = fcntl(st_c, F_GETFL);
		CHECK(flags >= 0 && fcntl(st_c, F_SETFL, flags | O_NONBLOCK) == 0);
		CHECK_ERR(scif_connect(st_c, &to), EINPROGRESS);
		CHECK(scif_accept(l, &who, &st_s, SCIF_ACCEPT_SYNC) == 0);
		pc = (struct scif_pollepd){ .epd = st_c, .events = POLLOUT };
		CHECK(scif_poll(&pc, 1, -1) == 1 && pc.revents == POLLOUT);
		CHECK(scif_connect(st_c, &to) == who.port);
		CHECK(fcntl(st_c, F_SETFL, flags) == 0);
		CHECK(scif_close(l) == 0);
	}
	CHECK(scif_register(st_c, buf, P, 0, RW, 0) == SCIF_REGISTER_FAILED && errno == EOPNOTSUPP);
	CHECK_ERR(scif_fence_mark(st_s, SCIF_FENCE_INIT_SELF, &mark), EOPNOTSUPP);
	CHECK(!has_state(st_c) && !has_state(st_s));
	CHECK(scif_close(st_c) == 0 && scif_close(st_s) == 0);

	/* The peer is gone before either side needed RMA: the family says so,
	 * and nothing is made for a connection that died idle. */
	CHECK(scif_close(s) == 0);
	CHECK(scif_register(c, buf, P, 0, RW, 0) == SCIF_REGISTER_FAILED && errno == ECONNRESET);
	CHECK_ERR(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark), ECONNRESET);
	CHECK_ERR(scif_vreadfrom(c, buf, P, 0, 0), ECONNRESET);
	CHECK(!has_state(c));
	CHECK(scif_close(c) == 0);
	CHECK(count_connection_fds() == base);
	free(buf);
	printf("# idle: sends, polls, refusals, stream-only, a departed peer: no RMA state made\n");
}

/* ---- passive ---- */

static void passive(void)
{
	uint8_t *mine = page(), *back = page();
	int c, s, base = count_connection_fds();
	off_t o;

	/* s never calls the family: its service thread attaches the channel
	 * (making the state) and takes the window message. */
	pair(&c, &s);
	fill64(mine, P, 11);
	o = scif_register(c, mine, P, 0, RW, 0);
	CHECK(o >= 0);
	CHECK(peer_windows_reach(s, 1));
	CHECK(has_state(s) && count_connection_fds() - base == 6);
	CHECK(scif_vreadfrom(s, back, P, o, SCIF_RMA_SYNC) == 0);
	CHECK(memcmp(back, mine, P) == 0);
	CHECK(scif_unregister(c, o, P) == 0);
	CHECK(peer_windows(s) == 0);	/* the unregister waited for s to handle it */
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);

	/* Again, and s closes having called nothing: its view goes with it. */
	pair(&c, &s);
	o = scif_register(c, mine, P, 0, RW, 0);
	CHECK(o >= 0);
	CHECK(peer_windows_reach(s, 1));
	CHECK(scif_close(s) == 0);
	CHECK(scif_close(c) == 0);	/* its window goes with it */
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(count_connection_fds() == base);
	free(mine);
	free(back);
	printf("# passive: the side that never called the family made its state as the channel came, "
	       "took the window, read from it, and closed clean\n");
}

/* ---- race ---- */

struct race {
	int c, s;
	pthread_barrier_t go;
	uint8_t *mine, *theirs;
};

static void *racer(void *arg)
{
	struct race *r = ((struct race **)arg)[0];
	int which = (int)(intptr_t)((void **)arg)[1];
	uint8_t *tmp = page();
	int mark, ret;
	off_t o;
	void *m;

	pthread_barrier_wait(&r->go);
	switch (which) {
	case 0:		/* the first registration of c */
		o = scif_register(r->c, r->mine, P, OFF_MINE, RW, SCIF_MAP_FIXED);
		CHECK(o == OFF_MINE);
		break;
	case 1:		/* a fence on c, whose RMA state may be in the making */
		CHECK(scif_fence_mark(r->c, SCIF_FENCE_INIT_SELF, &mark) == 0);
		CHECK(scif_fence_wait(r->c, mark) == 0);
		CHECK(scif_fence_mark(r->c, SCIF_FENCE_INIT_PEER, &mark) == 0);
		CHECK(scif_fence_wait(r->c, mark) == 0);
		break;
	case 2:		/* an unregister of nothing */
		CHECK_ERR(scif_unregister(r->c, OFF_NONE, P), ENXIO);
		break;
	case 3:		/* an RMA to nothing of the peer's */
		CHECK_ERR(scif_vreadfrom(r->c, tmp, P, OFF_NONE, SCIF_RMA_SYNC), ENXIO);
		break;
	case 4:		/* a signal into c's window: there yet or not */
		errno = 0;
		ret = scif_fence_signal(r->c, OFF_MINE, 1, 0, 0,
					SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL);
		CHECK(ret == 0 || errno == ENXIO);
		break;
	case 5:		/* a mapping of s's window: announced yet or not */
		errno = 0;
		m = scif_mmap(NULL, P, RW, 0, r->c, OFF_THEIRS);
		CHECK(m != SCIF_MMAP_FAILED || errno == ENXIO);
		if (m != SCIF_MMAP_FAILED)
			CHECK(scif_munmap(m, P) == 0);
		break;
	case 6:		/* the peer's first registration, at once */
		o = scif_register(r->s, r->theirs, P, OFF_THEIRS, RW, SCIF_MAP_FIXED);
		CHECK(o == OFF_THEIRS);
		break;
	case 7:		/* and its first RMA: to c's window, there yet or not */
		errno = 0;
		ret = scif_vwriteto(r->s, tmp, P, OFF_MINE, SCIF_RMA_SYNC);
		CHECK(ret == 0 || errno == ENXIO);
		break;
	}
	free(tmp);
	return NULL;
}

static void race(void)
{
	int base = count_connection_fds(), mark;
	double t0 = now_ms();
	struct race r;

	for (int round = 0; round < ROUNDS; round++) {
		pthread_t t[RACERS];
		void *args[RACERS][2];

		pair(&r.c, &r.s);
		r.mine = page();
		r.theirs = page();
		CHECK(pthread_barrier_init(&r.go, NULL, RACERS) == 0);
		for (int i = 0; i < RACERS; i++) {
			/* The threads start in another order each round. */
			int which = (i + round) % RACERS;

			args[i][0] = &r;
			args[i][1] = (void *)(intptr_t)which;
			CHECK(pthread_create(&t[i], NULL, racer, args[i]) == 0);
		}
		for (int i = 0; i < RACERS; i++)
			CHECK(pthread_join(t[i], NULL) == 0);
		CHECK(pthread_barrier_destroy(&r.go) == 0);
		CHECK(has_state(r.c) && has_state(r.s));
		/* One channel, one state a side, both windows known both ways. */
		CHECK(count_connection_fds() - base == 6);
		fill64(r.mine, P, (uint64_t)round);
		CHECK(scif_writeto(r.c, OFF_MINE, P, OFF_THEIRS, 0) == 0);
		CHECK(scif_fence_mark(r.c, SCIF_FENCE_INIT_SELF, &mark) == 0);
		CHECK(scif_fence_wait(r.c, mark) == 0);
		CHECK(memcmp(r.mine, r.theirs, P) == 0);
		fill64(r.theirs, P, (uint64_t)round + 1000);
		CHECK(scif_readfrom(r.s, OFF_THEIRS, P, OFF_MINE, SCIF_RMA_SYNC) == 0);
		CHECK(sum64(r.theirs, P) == sum64(r.mine, P));
		CHECK(scif_unregister(r.s, OFF_THEIRS, P) == 0);
		CHECK(scif_unregister(r.c, OFF_MINE, P) == 0);
		CHECK(scif_close(r.c) == 0 && scif_close(r.s) == 0);
		free(r.mine);
		free(r.theirs);
	}
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(count_connection_fds() == base);
	printf("# race: %d fresh connections, %d first calls of the family at once on both sides, "
	       "in %.0f ms\n", ROUNDS, RACERS, now_ms() - t0);
}

/* ---- no memory ---- */

enum family { REGISTER, UNREGISTER, FENCE_MARK, FENCE_WAIT, FENCE_SIGNAL, RMA, VRMA, MMAP, CALLS };

static const char *const call_names[CALLS] = {
	"scif_register", "scif_unregister", "scif_fence_mark", "scif_fence_wait",
	"scif_fence_signal", "scif_readfrom", "scif_vwriteto", "scif_mmap",
};

/* The call on epd, once, with its failure: errno, or 0 if it succeeded. */
static int call_once(enum family call, int epd, uint8_t *buf)
{
	int mark = 0, ret = 0;

	errno = 0;
	switch (call) {
	case REGISTER:
		ret = scif_register(epd, buf, P, 0, RW, 0) == SCIF_REGISTER_FAILED ? -1 : 0;
		break;
	case UNREGISTER:
		ret = scif_unregister(epd, 0, P);
		break;
	case FENCE_MARK:
		ret = scif_fence_mark(epd, SCIF_FENCE_INIT_SELF, &mark);
		break;
	case FENCE_WAIT:
		ret = scif_fence_wait(epd, 0);
		break;
	case FENCE_SIGNAL:
		ret = scif_fence_signal(epd, 0, 1, 0, 0, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL);
		break;
	case RMA:
		ret = scif_readfrom(epd, 0, P, 0, 0);
		break;
	case VRMA:
		ret = scif_vwriteto(epd, buf, P, 0, 0);
		break;
	case MMAP:
		ret = scif_mmap(NULL, P, RW, 0, epd, 0) == SCIF_MMAP_FAILED ? -1 : 0;
		break;
	case CALLS:
		break;
	}
	return ret == 0 ? 0 : errno;
}

static void no_memory(void)
{
	struct scif_pollepd pe[2];
	uint8_t *buf = page();
	int c, s, base = count_connection_fds(), n = 0;
	off_t o;

	/* The calling thread's allocation: the call fails with ENOMEM, as the
	 * driver's do without memory, before anything is made or sent. */
	pair(&c, &s);
	for (enum family call = 0; call < CALLS; call++) {
		int err;

		fail_here = true;
		err = call_once(call, call % 2 ? s : c, buf);
		if (err != ENOMEM || fail_here) {
			fprintf(stderr, "%s without memory: %s, %s\n", call_names[call],
				strerrorname_np(err), fail_here ? "no allocation met" : "one failed");
			exit(1);
		}
		n++;
	}
	CHECK(atomic_load_explicit(&failed, memory_order_relaxed) == n);
	CHECK(!has_state(c) && !has_state(s) && count_connection_fds() - base == 2);
	/* And later, with memory, all is as if nothing had happened. */
	fill64(buf, P, 5);
	o = scif_register(c, buf, P, 0, RW, 0);
	CHECK(o >= 0 && has_state(c) && count_connection_fds() - base == 6);
	CHECK(peer_windows_reach(s, 1));
	{
		uint8_t *back = page();

		CHECK(scif_vreadfrom(s, back, P, o, SCIF_RMA_SYNC) == 0);
		CHECK(memcmp(back, buf, P) == 0);
		free(back);
	}
	CHECK(scif_unregister(c, o, P) == 0);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);

	/* The service thread's: s cannot keep the channel c sent it, and
	 * hangs the connection up, as when its ends are lost. */
	pair(&c, &s);
	atomic_store_explicit(&fail_elsewhere, true, memory_order_release);
	errno = 0;
	o = scif_register(c, buf, P, 0, RW, 0);
	CHECK(o >= 0 || errno == ECONNRESET);
	pe[0] = (struct scif_pollepd){ .epd = c, .events = POLLIN };
	pe[1] = (struct scif_pollepd){ .epd = s, .events = POLLIN };
	CHECK(scif_poll(&pe[0], 1, 10000) == 1 && (pe[0].revents & POLLHUP));
	CHECK(scif_poll(&pe[1], 1, 10000) == 1 && (pe[1].revents & POLLHUP));
	CHECK(!atomic_load_explicit(&fail_elsewhere, memory_order_acquire) &&
	      atomic_load_explicit(&failed, memory_order_relaxed) == n + 1);
	CHECK(has_state(c) && !has_state(s));
	CHECK_ERR(scif_send(c, "x", 1, 0), ECONNRESET);
	CHECK_ERR(scif_send(s, "x", 1, 0), ECONNRESET);
	CHECK_ERR(scif_fence_mark(s, SCIF_FENCE_INIT_SELF, &(int){ 0 }), ECONNRESET);
	CHECK(!has_state(s));
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);	/* c's window, if made, goes */
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(count_connection_fds() == base);
	free(buf);
	printf("# no memory: %d calls failed with ENOMEM and made nothing; the service thread's "
	       "lack hung the connection up\n", n);
}

int main(void)
{
	main_thread = pthread_self();
	P = page_size();
	CHECK(scif_net_self_node() == 0);	/* the fabric's own descriptors, opened */
	{
		/* And what a first connection opens once per process (the port
		 * registry, the inbox), so the cases count only theirs. */
		int c, s;

		pair(&c, &s);
		CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	}
	idle();
	passive();
	race();
	no_memory();
	return 0;
}
