/*
 * A peer killed (SIGKILL) in the middle of RMAs:
 *  (a) our thread copying to and from its window in a loop gets ECONNRESET
 *      from the RMA under way or the next one - no hang, no SIGBUS;
 *  (b) we wait (scif_fence_wait, INIT_PEER, in another thread) for an RMA
 *      of the peer's that is under way when it dies: the wait ends, with 0
 *      or ECONNRESET, and never hangs;
 * and afterwards every call fails with ECONNRESET, our mapping of its window
 * (scif_mmap) is still valid memory holding its last contents, its windows'
 * views are gone from this process as soon as its death is noticed, and
 * after scif_close and scif_munmap no window memfd is mapped or open here.
 *
 * The peers are roles on node 1: "passive" registers a window and waits to
 * die, "mover" copies into our window in a loop until it dies.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

#define PORT 3900
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)

static size_t P, N;

static void send_all(int epd, const void *p, int len)
{
	CHECK(scif_send(epd, (void *)p, len, SCIF_SEND_BLOCK) == len);
}

static void recv_all(int epd, void *p, int len)
{
	CHECK(scif_recv(epd, p, len, SCIF_RECV_BLOCK) == len);
}

/* ---- the peers (node 1) ---- */

static int role(bool mover)
{
	int l = scif_open(), s;
	struct scif_portID who;
	uint8_t *buf;
	off_t mine, theirs;

	CHECK(l >= 0 && scif_bind(l, PORT) == PORT && scif_listen(l, 1) == 0);
	report_ready(1);
	CHECK(scif_accept(l, &who, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	CHECK(posix_memalign((void **)&buf, P, N) == 0);
	fill64(buf, N, 77);
	mine = scif_register(s, buf, N, 0, RW, 0);
	CHECK(mine >= 0);
	send_all(s, &mine, sizeof(mine));
	recv_all(s, &theirs, sizeof(theirs));
	for (;;) {
		if (mover)
			CHECK(scif_writeto(s, mine, N, theirs, 0) == 0);
		else
			pause();
	}
}

/* ---- this process (node 0) ---- */

struct conn {
	pid_t pid;
	int ready, c;
	uint8_t *buf;
	off_t mine, theirs;
};

static void open_conn(struct conn *k, const char *role_name)
{
	struct scif_portID to = { .node = 1, .port = PORT };

	k->pid = spawn_role(1, role_name, NULL, &k->ready);
	CHECK(await_ready(k->ready) == 1);
	k->c = scif_open();
	CHECK(k->c >= 0 && scif_connect(k->c, &to) >= 0);
	CHECK(posix_memalign((void **)&k->buf, P, N) == 0);
	memset(k->buf, 0, N);
	k->mine = scif_register(k->c, k->buf, N, 0, RW, 0);
	CHECK(k->mine >= 0);
	recv_all(k->c, &k->theirs, sizeof(k->theirs));
	send_all(k->c, &k->mine, sizeof(k->mine));
}

/* Everything on a connection whose peer died fails with ECONNRESET; our own
 * window lingers until close, theirs is gone at once but for our mappings
 * (maps of them). */
static void expect_dead(struct conn *k, int maps)
{
	uint8_t b[8];
	int mark;

	CHECK_ERR(scif_writeto(k->c, k->mine, 8, k->theirs, 0), ECONNRESET);
	CHECK_ERR(scif_readfrom(k->c, k->mine, 8, k->theirs, 0), ECONNRESET);
	CHECK_ERR(scif_vwriteto(k->c, b, 8, k->theirs, 0), ECONNRESET);
	CHECK_ERR(scif_vreadfrom(k->c, b, 8, k->theirs, 0), ECONNRESET);
	CHECK_ERR(scif_fence_mark(k->c, SCIF_FENCE_INIT_PEER, &mark), ECONNRESET);
	CHECK_ERR(scif_fence_wait(k->c, 0), ECONNRESET);
	CHECK_ERR(scif_fence_signal(k->c, k->mine, 1, 0, 0, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL),
		  ECONNRESET);
	CHECK(scif_mmap(NULL, P, RW, 0, k->c, k->theirs) == SCIF_MMAP_FAILED && errno == ECONNRESET);
	CHECK_ERR(scif_register(k->c, k->buf, P, 0, RW, 0), ECONNRESET);
	CHECK_ERR(scif_unregister(k->c, k->mine, N), ECONNRESET);
	/* Ours: the owner's pages and our view of them, one memfd. */
	CHECK(count_window_maps() == 2 + maps && count_window_fds() == 1);
}

static void close_conn(struct conn *k, int maps)
{
	CHECK(scif_close(k->c) == 0);
	CHECK(count_window_maps() == maps && count_window_fds() == 0);
	CHECK(close(k->ready) == 0);
	free(k->buf);
}

struct looper {
	struct conn *k;
	pthread_t t;
	atomic_int done;
	int err;
};

static void *loop_main(void *arg)
{
	struct looper *lp = arg;
	int r;

	for (;;) {
		if (atomic_load_explicit(&lp->done, memory_order_relaxed) % 2 == 0)
			r = scif_writeto(lp->k->c, lp->k->mine, N, lp->k->theirs, 0);
		else
			r = scif_readfrom(lp->k->c, lp->k->mine, N, lp->k->theirs, 0);
		if (r != 0)
			break;
		atomic_fetch_add_explicit(&lp->done, 1, memory_order_release);
	}
	lp->err = errno;
	return NULL;
}

/* (a) */
static void check_killed_while_we_copy(void)
{
	struct looper lp = { .done = 0 };
	struct conn k;
	uint8_t *view;
	double t0;

	open_conn(&k, "passive");
	view = scif_mmap(NULL, N, SCIF_PROT_READ, 0, k.c, k.theirs);
	CHECK(view != SCIF_MMAP_FAILED);
	lp.k = &k;
	CHECK(pthread_create(&lp.t, NULL, loop_main, &lp) == 0);
	while (atomic_load_explicit(&lp.done, memory_order_acquire) < 3)
		sched_yield();
	CHECK(kill(k.pid, SIGKILL) == 0);
	t0 = now_ms();
	CHECK(pthread_join(lp.t, NULL) == 0);
	printf("# (a) RMAs stopped with %s %.2f ms after the peer was killed, after %d\n",
	       strerrorname_np(lp.err), now_ms() - t0,
	       atomic_load_explicit(&lp.done, memory_order_acquire));
	CHECK(lp.err == ECONNRESET);
	expect_signal(k.pid, SIGKILL);
	expect_dead(&k, 1);
	/* Its pages live on in our mapping: the last RMA's data is there. */
	CHECK(sum64(view, N) == sum64(k.buf, N));
	close_conn(&k, 1);
	CHECK(scif_munmap(view, N) == 0);
	CHECK(count_window_maps() == 0);
}

struct waiter {
	int c, mark, ret, err;
	pthread_t t;
	_Atomic pid_t tid;
	atomic_bool returned;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store_explicit(&w->tid, gettid(), memory_order_release);
	w->ret = scif_fence_wait(w->c, w->mark);
	w->err = errno;
	atomic_store_explicit(&w->returned, true, memory_order_release);
	return NULL;
}

/* Like wait_blocked(), for a thread that may also have returned already. */
static bool blocks(struct waiter *w)
{
	bool gone = false;

	while (!atomic_load_explicit(&w->returned, memory_order_acquire) && !gone) {
		if (thread_sleeps(w->tid, -1, &gone))
			return true;
		sched_yield();
	}
	return false;
}

/* (b) The peer is stopped (SIGSTOP) as soon as its RMA starts landing, so
 * the RMA stays under way while we mark it, wait, and kill the peer. */
static void check_killed_while_it_copies(void)
{
	struct waiter w = { 0 };
	struct conn k;
	bool blocked;
	double t0;

	open_conn(&k, "mover");
	while (atomic_load_explicit((_Atomic uint64_t *)k.buf, memory_order_relaxed) == 0)
		;
	CHECK(kill(k.pid, SIGSTOP) == 0);
	w.c = k.c;
	CHECK(scif_fence_mark(k.c, SCIF_FENCE_INIT_PEER, &w.mark) == 0);
	CHECK(pthread_create(&w.t, NULL, wait_main, &w) == 0);
	while (!atomic_load_explicit(&w.tid, memory_order_acquire))
		sched_yield();
	blocked = blocks(&w);
	CHECK(kill(k.pid, SIGKILL) == 0);
	t0 = now_ms();
	CHECK(pthread_join(w.t, NULL) == 0);
	printf("# (b) a fence wait for the peer's RMAs %s, returned %s %.2f ms after the kill\n",
	       blocked ? "was blocked" : "had returned", w.ret == 0 ? "0" : strerrorname_np(w.err),
	       now_ms() - t0);
	/* Blocked: what it waited for never completed. */
	CHECK(blocked ? w.ret == -1 && w.err == ECONNRESET : w.ret == 0 || w.err == ECONNRESET);
	expect_signal(k.pid, SIGKILL);
	expect_dead(&k, 0);
	close_conn(&k, 0);
}

int main(int argc, char **argv)
{
	/* A line at a time: a run killed for hanging keeps what it told of
	 * the cases before, so its log says which case hung. */
	CHECK(setvbuf(stdout, NULL, _IOLBF, 0) == 0);
	P = page_size();
	N = test_mib(64) << 20;
	if (argc > 2)
		return role(strcmp(argv[1], "mover") == 0);
	check_killed_while_we_copy();
	check_killed_while_it_copies();
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	return 0;
}
