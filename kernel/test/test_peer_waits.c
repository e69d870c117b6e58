/*
 * Threads waiting for the peer's RMAs leave the descriptor to the event loop.
 *
 * An event loop watches scif_get_fd() for readability; meanwhile a thread of
 * the same process waits in the fabric for an RMA of the peer's:
 * scif_fence_wait (INIT_PEER), scif_fence_signal (INIT_PEER) or
 * scif_unregister. The byte the peer sends is the loop's wake-up, and the
 * waiting thread must not take it. Each waiter, on a connection of its own
 * to a peer on node 1, in these rounds:
 *  (a) kept: the thread blocks; the peer sends a byte, then completes its
 *      RMA; the thread returns - and the descriptor still shows the byte
 *      (POLLIN, deterministic, no race);
 *  (b) woken: as (a), but the loop sleeps in poll(2) on the descriptor
 *      while the thread still waits and the peer holds its RMA: the byte
 *      alone wakes the loop; then the RMA completes and the thread
 *      returns;
 *  (c) crowd: all three waiters at once (one sleeps on the channel, the
 *      others follow it), woken together by one completion;
 *  (d) death: the peer is killed with its RMA under way: fences fail with
 *      ECONNRESET, unregister completes.
 * and finally (e) close: waiters blocked when our own scif_close() comes
 * return EINTR (unregister: 0) and the close completes.
 *
 * The peer's RMA "under way" is held open by the peer role itself, with the
 * fabric's own numbering (track.h), so it begins and ends exactly when this
 * test says so.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "endpoint.h"
#include "track.h"

#define PORT 4100
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define DEADLINE_MS 10000	/* a hang is a failure, not a wait */

static size_t P;

enum kind { FENCE_WAIT, FENCE_SIGNAL, UNREGISTER, NKINDS };

static const char *const kind_name[NKINDS] = {
	"scif_fence_wait", "scif_fence_signal", "scif_unregister",
};

/* ---- the peer (node 1), driven one command at a time over a pipe ---- */

static int role_peer(const char *arg)
{
	int go = atoi(arg), l = scif_open(), s, mark;
	struct scif_portID who;
	struct endpoint *ep;
	uint64_t seq = 0;

	CHECK(l >= 0 && scif_bind(l, PORT) == PORT && scif_listen(l, 1) == 0);
	report_ready(1);
	CHECK(scif_accept(l, &who, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	/* The connection's RMA channel, which rma_end() rings the bell of:
	 * libscif's calls make it (channel.h), the fabric's numbering below
	 * does not. */
	CHECK(scif_fence_mark(s, SCIF_FENCE_INIT_SELF, &mark) == 0);
	ep = ep_get(s);
	CHECK(ep != NULL);
	for (;;) {
		char cmd;

		CHECK(read(go, &cmd, 1) == 1);
		switch (cmd) {
		case 'b':	/* an RMA of ours begins, and stays under way */
			seq = rma_begin(ep);
			CHECK(seq > 0);
			report_ready((int)seq);
			break;
		case 's':	/* a byte for the other side's event loop */
			CHECK(scif_send(s, "x", 1, SCIF_SEND_BLOCK) == 1);
			report_ready(0);
			break;
		case 'e':	/* the RMA completes */
			rma_end(ep, seq);
			report_ready(0);
			break;
		case 'q':
			ep_put(ep);
			CHECK(scif_close(s) == 0);
			return 0;
		default:
			CHECK(!"a command");
		}
	}
}

/* ---- this process (node 0) ---- */

struct conn {
	pid_t pid;
	int ready, go, c;
	uint8_t *mem;		/* a page of ours for signals */
	off_t sig;		/* its window */
};

static void open_conn(struct conn *k)
{
	struct scif_portID to = { .node = 1, .port = PORT };
	char arg[16];
	int rd;

	k->go = go_pipe(arg, sizeof(arg), &rd);
	k->pid = spawn_role(1, "peer", arg, &k->ready);
	CHECK(close(rd) == 0);
	CHECK(await_ready(k->ready) == 1);
	k->c = scif_open();
	CHECK(k->c >= 0 && scif_connect(k->c, &to) >= 0);
	CHECK(posix_memalign((void **)&k->mem, P, P) == 0);
	memset(k->mem, 0, P);
	k->sig = scif_register(k->c, k->mem, P, 0, RW, 0);
	CHECK(k->sig >= 0);
}

/* Tells the peer to act and waits until it has. */
static int peer_do(struct conn *k, char cmd)
{
	CHECK(write(k->go, &cmd, 1) == 1);
	return await_ready(k->ready);
}

struct waiter {
	struct conn *k;
	enum kind kind;
	uint64_t value;		/* FENCE_SIGNAL: what it stores */
	uint8_t *page;		/* UNREGISTER: the window's memory */
	off_t off;		/* ...and offset */
	pthread_t t;
	_Atomic pid_t tid;
	_Atomic bool returned;
	int ret, err;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	int c = w->k->c, mark;

	atomic_store_explicit(&w->tid, (pid_t)syscall(SYS_gettid), memory_order_release);
	switch (w->kind) {
	case FENCE_WAIT:
		w->ret = scif_fence_mark(c, SCIF_FENCE_INIT_PEER, &mark);
		if (w->ret == 0)
			w->ret = scif_fence_wait(c, mark);
		break;
	case FENCE_SIGNAL:
		w->ret = scif_fence_signal(c, w->k->sig, w->value, 0, 0,
					   SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL);
		break;
	case UNREGISTER:
		w->ret = scif_unregister(c, w->off, P);
		break;
	case NKINDS:
		break;
	}
	w->err = w->ret ? errno : 0;
	atomic_store_explicit(&w->returned, true, memory_order_release);
	return NULL;
}

/* Starts a waiter and returns once it sleeps in the fabric. */
static void start_waiter(struct waiter *w, struct conn *k, enum kind kind, uint64_t value)
{
	pid_t tid;

	*w = (struct waiter){ .k = k, .kind = kind, .value = value };
	if (kind == UNREGISTER) {
		CHECK(posix_memalign((void **)&w->page, P, P) == 0);
		memset(w->page, 7, P);
		w->off = scif_register(k->c, w->page, P, 0, RW, 0);
		CHECK(w->off >= 0);
	}
	CHECK(pthread_create(&w->t, NULL, waiter_main, w) == 0);
	while ((tid = atomic_load_explicit(&w->tid, memory_order_acquire)) == 0)
		sched_yield();
	wait_blocked(tid);
	CHECK(!atomic_load_explicit(&w->returned, memory_order_acquire));
}

/* Joins a waiter that must have succeeded. */
static void join_ok(struct waiter *w)
{
	CHECK(pthread_join(w->t, NULL) == 0);
	if (w->ret != 0) {
		fprintf(stderr, "%s returned %d (%s)\n", kind_name[w->kind], w->ret,
			strerrorname_np(w->err));
		exit(1);
	}
	if (w->kind == FENCE_SIGNAL)
		CHECK(atomic_load_explicit((_Atomic uint64_t *)w->k->mem, memory_order_acquire) ==
		      w->value);
	if (w->kind == UNREGISTER) {
		CHECK(w->page[0] == 7 && w->page[P - 1] == 7);	/* ours again */
		free(w->page);
	}
}

/* Joins a waiter that must have failed with err (0: unregister's success). */
static void join_err(struct waiter *w, int err)
{
	CHECK(pthread_join(w->t, NULL) == 0);
	if (w->kind == UNREGISTER) {
		CHECK(w->ret == 0);
		free(w->page);
		return;
	}
	if (w->ret != -1 || w->err != err) {
		fprintf(stderr, "%s returned %d (%s), wanted -1 (%s)\n", kind_name[w->kind], w->ret,
			strerrorname_np(w->err), strerrorname_np(err));
		exit(1);
	}
}

/* The loop's look: nothing to read yet, and POLLIN armed. */
static void loop_arm(struct conn *k)
{
	struct scif_pollepd pe = { .epd = k->c, .events = POLLIN };

	CHECK(scif_poll(&pe, 1, 0) == 0 && pe.revents == 0);
}

/* The descriptor, as an event loop sees it: readable within ms? */
static bool fd_readable(struct conn *k, int ms)
{
	struct pollfd p = { .fd = scif_get_fd(k->c), .events = POLLIN };
	int n = poll(&p, 1, ms);

	CHECK(n >= 0);
	return n == 1 && (p.revents & POLLIN);
}

/* The loop's next look finds the byte and takes it. */
static void loop_take(struct conn *k)
{
	struct scif_pollepd pe = { .epd = k->c, .events = POLLIN };
	char b;

	CHECK(scif_poll(&pe, 1, 0) == 1 && pe.revents == POLLIN);
	CHECK(scif_recv(k->c, &b, 1, 0) == 1 && b == 'x');
	CHECK(!fd_readable(k, 0));
}

static void round_kept(struct conn *k, enum kind kind, uint64_t value)
{
	struct waiter w;

	CHECK(peer_do(k, 'b') > 0);
	loop_arm(k);
	CHECK(!fd_readable(k, 0));
	start_waiter(&w, k, kind, value);
	peer_do(k, 's');
	peer_do(k, 'e');
	join_ok(&w);
	if (!fd_readable(k, 0)) {
		fprintf(stderr, "(a) %s took the readiness of the loop's data\n",
			kind_name[kind]);
		exit(1);
	}
	loop_take(k);
}

static void round_woken(struct conn *k, enum kind kind, uint64_t value)
{
	struct waiter w;
	double t0;

	CHECK(peer_do(k, 'b') > 0);
	loop_arm(k);
	start_waiter(&w, k, kind, value);
	peer_do(k, 's');
	t0 = now_ms();
	if (!fd_readable(k, DEADLINE_MS)) {
		fprintf(stderr, "(b) the loop slept %.0f ms: %s took its wake-up\n",
			now_ms() - t0, kind_name[kind]);
		exit(1);
	}
	CHECK(!atomic_load_explicit(&w.returned, memory_order_acquire));
	loop_take(k);
	peer_do(k, 'e');
	join_ok(&w);
}

static void round_crowd(struct conn *k, uint64_t value)
{
	struct waiter w[NKINDS];

	CHECK(peer_do(k, 'b') > 0);
	loop_arm(k);
	for (int i = 0; i < NKINDS; i++)
		start_waiter(&w[i], k, (enum kind)i, value);
	peer_do(k, 's');
	CHECK(fd_readable(k, DEADLINE_MS));
	for (int i = 0; i < NKINDS; i++)
		CHECK(!atomic_load_explicit(&w[i].returned, memory_order_acquire));
	peer_do(k, 'e');
	for (int i = 0; i < NKINDS; i++)
		join_ok(&w[i]);
	loop_take(k);
}

int main(int argc, char **argv)
{
	struct conn k;
	struct waiter w[NKINDS];
	uint64_t value = 100;

	P = page_size();
	if (argc > 2 && strcmp(argv[1], "peer") == 0)
		return role_peer(argv[2]);

	for (int i = 0; i < NKINDS; i++) {
		enum kind kind = (enum kind)i;
		struct waiter d;

		open_conn(&k);
		for (int r = 0; r < 3; r++)
			round_kept(&k, kind, ++value);
		for (int r = 0; r < 3; r++)
			round_woken(&k, kind, ++value);
		printf("# %s: the loop's data reached it (a, b)\n", kind_name[kind]);
		/* (d) */
		CHECK(peer_do(&k, 'b') > 0);
		start_waiter(&d, &k, kind, ++value);
		CHECK(kill(k.pid, SIGKILL) == 0);
		join_err(&d, ECONNRESET);
		expect_signal(k.pid, SIGKILL);
		CHECK(scif_close(k.c) == 0);
		CHECK(close(k.ready) == 0 && close(k.go) == 0);
		free(k.mem);
	}
	printf("# a peer killed mid-RMA woke each waiter (d)\n");

	open_conn(&k);
	for (int r = 0; r < 3; r++)
		round_crowd(&k, ++value);
	printf("# three waiters at once, woken by one completion (c)\n");
	/* (e) */
	CHECK(peer_do(&k, 'b') > 0);
	for (int i = 0; i < NKINDS; i++)
		start_waiter(&w[i], &k, (enum kind)i, ++value);
	CHECK(scif_close(k.c) == 0);
	for (int i = 0; i < NKINDS; i++)
		join_err(&w[i], EINTR);
	printf("# our close woke every waiter (e)\n");
	CHECK(write(k.go, "q", 1) == 1);
	expect_exit(k.pid, 0);
	CHECK(close(k.ready) == 0 && close(k.go) == 0);
	free(k.mem);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	return 0;
}
