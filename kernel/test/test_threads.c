/*
 * Threads sharing one endpoint. A sender blocked in SCIF_SEND_BLOCK, a
 * receiver blocked in SCIF_RECV_BLOCK and a third thread in scif_poll, all at
 * once on the same endpoint, move 64 MiB each way through 4 KiB rings: they
 * all sleep in poll(2) on the one descriptor, which is level-triggered, so
 * none may take from another what it waits for - a lost wake-up hangs the
 * test. The same with a scif_poll asleep for a minute beside them. Then
 * scif_close from another thread wakes threads blocked in recv, send,
 * scif_accept and scif_connect with EINTR (SCIF: "closed meanwhile"), and one
 * in scif_poll with POLLHUP (its socket is shut down).
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "check.h"

/* Bytes each way: SCIF_TEST_MIB, or 64 MiB (valgrind runs use less). */
static uint64_t total = 64u << 20;

struct side {
	int epd;
	uint32_t seed;
	pthread_t sender, receiver, poller;
	bool with_poller;
	atomic_bool done;
	unsigned long polls, ready;
};

static void *sender_main(void *arg)
{
	struct side *s = arg;
	uint8_t *buf = malloc(65536);
	uint32_t seed = s->seed;
	uint64_t sent = 0;

	CHECK(buf != NULL);
	while (sent < total) {
		size_t len = 1 + xorshift(&seed) % 65536;

		if (len > total - sent)
			len = total - sent;
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern_byte(sent + i);
		CHECK(scif_send(s->epd, buf, (int)len, SCIF_SEND_BLOCK) == (int)len);
		sent += len;
	}
	free(buf);
	return NULL;
}

static void *receiver_main(void *arg)
{
	struct side *s = arg;
	uint8_t *buf = malloc(65536);
	uint32_t seed = s->seed * 7 + 1;
	uint64_t got = 0;

	CHECK(buf != NULL);
	while (got < total) {
		size_t len = 1 + xorshift(&seed) % 65536;

		if (len > total - got)
			len = total - got;
		CHECK(scif_recv(s->epd, buf, (int)len, SCIF_RECV_BLOCK) == (int)len);
		for (size_t i = 0; i < len; i++)
			if (buf[i] != pattern_byte(got + i)) {
				fprintf(stderr, "byte %llu differs\n", (unsigned long long)(got + i));
				exit(1);
			}
		got += len;
	}
	free(buf);
	return NULL;
}

/* Takes the poller role again and again - sometimes asking for nothing, so
 * that it holds the role for its whole timeout and the sender and receiver
 * can only follow. */
static void *poller_main(void *arg)
{
	static const short asks[] = { 0, POLLIN, 0, POLLOUT, POLLIN | POLLOUT };
	struct side *s = arg;

	for (unsigned i = 0; !atomic_load(&s->done); i++) {
		struct scif_pollepd pe = { .epd = s->epd, .events = asks[i % 5] };
		int n = scif_poll(&pe, 1, 1 + i % 4);

		CHECK(n == 0 || n == 1);
		/* The peer stays until both sides are done. */
		CHECK((pe.revents & ~pe.events) == 0);
		s->polls++;
		s->ready += (unsigned long)n;
	}
	return NULL;
}

static void start_side(struct side *s, int epd, uint32_t seed, bool poller)
{
	s->epd = epd;
	s->seed = seed;
	s->with_poller = poller;
	atomic_init(&s->done, false);
	s->polls = s->ready = 0;
	CHECK(pthread_create(&s->sender, NULL, sender_main, s) == 0);
	CHECK(pthread_create(&s->receiver, NULL, receiver_main, s) == 0);
	if (poller)
		CHECK(pthread_create(&s->poller, NULL, poller_main, s) == 0);
}

static void join_side(struct side *s)
{
	CHECK(pthread_join(s->sender, NULL) == 0);
	CHECK(pthread_join(s->receiver, NULL) == 0);
	atomic_store(&s->done, true);
	if (s->with_poller)
		CHECK(pthread_join(s->poller, NULL) == 0);
}

/* Across processes: neither closes before the other is done. */
static void finish_side(struct side *s)
{
	char c;

	join_side(s);
	CHECK(scif_send(s->epd, "k", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_recv(s->epd, &c, 1, SCIF_RECV_BLOCK) == 1 && c == 'k');
	CHECK(scif_close(s->epd) == 0);
}

/* Role on node 1: the other end of the cross-process run. */
static int peer(void)
{
	int l = scif_open(), e;
	struct scif_portID who;
	struct side s;

	CHECK(l >= 0 && scif_bind(l, 5000) == 5000 && scif_listen(l, 1) == 0);
	report_ready(5000);
	CHECK(scif_accept(l, &who, &e, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	start_side(&s, e, 0xbeef, true);
	finish_side(&s);
	return 0;
}

static void check_shared_endpoint(void)
{
	struct scif_portID to = { .node = 1, .port = 5000 };
	struct side a, b;
	int ready, c, s;
	double t0 = now_ms();
	pid_t pid = spawn_role(1, "peer", NULL, &ready);

	/* Another process at the other end... */
	CHECK(await_ready(ready) == 5000);
	c = scif_open();
	CHECK(c >= 0 && scif_connect(c, &to) >= SCIF_PORT_RSVD);
	start_side(&a, c, 0xf00d, true);
	finish_side(&a);
	expect_exit(pid, 0);
	CHECK(close(ready) == 0);
	printf("# 3 threads, other process: %llu MiB each way in %.0f ms, %lu polls (%lu ready)\n",
	       (unsigned long long)(total >> 20), now_ms() - t0, a.polls, a.ready);

	/* ...and both ends in this one, six threads. */
	t0 = now_ms();
	connect_pair(5001, &c, &s);
	start_side(&a, c, 0x1111, true);
	start_side(&b, s, 0x2222, true);
	join_side(&a);
	join_side(&b);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	printf("# 3+3 threads, one process: %llu MiB each way in %.0f ms\n",
	       (unsigned long long)(total >> 20), now_ms() - t0);
}

struct long_poll {
	pthread_t thread;
	_Atomic pid_t tid;
	int epd, ret;
	short revents;
	atomic_bool returned;
};

static void *long_poll_main(void *arg)
{
	struct long_poll *p = arg;
	struct scif_pollepd pe = { .epd = p->epd, .events = 0 };

	p->tid = gettid();
	p->ret = scif_poll(&pe, 1, 60000);
	p->revents = pe.revents;
	atomic_store(&p->returned, true);
	return NULL;
}

/* A scif_poll that asks for nothing sleeps on the descriptor for its whole
 * timeout: the sender and receiver of that endpoint, asleep on it too, must
 * be woken by what they wait for, not when it gives up. */
static void check_beside_a_long_poll(void)
{
	struct long_poll p = { 0 };
	struct side a, b;
	int c, s;
	double t0 = now_ms();

	connect_pair(5002, &c, &s);
	p.epd = c;
	atomic_init(&p.returned, false);
	CHECK(pthread_create(&p.thread, NULL, long_poll_main, &p) == 0);
	while (!p.tid)
		sched_yield();
	wait_blocked(p.tid);
	start_side(&a, c, 0x3333, false);
	start_side(&b, s, 0x4444, false);
	join_side(&a);
	join_side(&b);
	CHECK(!atomic_load(&p.returned));
	printf("# 2 threads beside a 60 s scif_poll: %llu MiB each way in %.0f ms\n",
	       (unsigned long long)(total >> 20), now_ms() - t0);
	/* The peer leaving ends the poll: nothing was asked, POLLHUP is told anyway. */
	CHECK(scif_close(s) == 0);
	CHECK(pthread_join(p.thread, NULL) == 0);
	CHECK(p.ret == 1 && p.revents == POLLHUP);
	CHECK(scif_close(c) == 0);
}

/* ---- scif_close from another thread ---- */

static void check_close_wakes(void)
{
	struct blocked r = { 0 }, w = { 0 }, p = { .events = POLLIN | POLLOUT }, a = { 0 },
		       k = { .to = { .node = 0, .port = 5101 } };
	int c, s, l, n;
	char buf[8192];

	/* Alone: the receiver sleeps in poll(2) itself. */
	connect_pair(5100, &c, &s);
	block_in(&r, CALL_RECV, c);
	CHECK(scif_close(c) == 0);
	woke_failing(&r, EINTR);
	CHECK_ERR(scif_recv(s, buf, 1, SCIF_RECV_BLOCK), ECONNRESET);
	CHECK(scif_close(s) == 0);

	/* Together: a receiver, a sender on a full ring and a poller, two of
	 * them waiting behind whichever sleeps in poll(2). */
	connect_pair(5100, &c, &s);
	do {
		n = scif_send(c, buf, sizeof(buf), 0);
		CHECK(n >= 0);
	} while (n > 0);
	block_in(&r, CALL_RECV, c);
	block_in(&w, CALL_SEND, c);
	block_in(&p, CALL_POLL, c);
	CHECK(scif_close(c) == 0);
	woke_failing(&r, EINTR);
	woke_failing(&w, EINTR);
	/* Our descriptor went away under it: its socket was shut down. A poll
	 * restarted after the close (valgrind restarts a poll its own signals
	 * interrupt) finds no descriptor at all. (Under MPSS nothing wakes a
	 * poll on a descriptor another thread closes.) */
	CHECK(woke_polled(&p) & (POLLHUP | POLLNVAL));
	/* The peer still reads what was sent, then learns of the close. */
	do {
		n = scif_recv(s, buf, sizeof(buf), 0);
	} while (n > 0);
	CHECK(n == -1 && errno == ECONNRESET);
	CHECK(scif_close(s) == 0);

	/* A listener in scif_accept(SCIF_ACCEPT_SYNC). */
	l = scif_open();
	CHECK(l >= 0 && scif_bind(l, 5101) == 5101 && scif_listen(l, 1) == 0);
	block_in(&a, CALL_ACCEPT, l);
	CHECK(scif_close(l) == 0);
	woke_failing(&a, EINTR);

	/* A caller in scif_connect, waiting for a listener that never accepts. */
	l = scif_open();
	c = scif_open();
	CHECK(l >= 0 && c >= 0 && scif_bind(l, 5101) == 5101 && scif_listen(l, 1) == 0);
	block_in(&k, CALL_CONNECT, c);
	CHECK(scif_close(c) == 0);
	woke_failing(&k, EINTR);
	CHECK(scif_close(l) == 0);
}

int main(int argc, char **argv)
{
	/* Small rings make the threads sleep and wake all the time. */
	const char *mib = getenv("SCIF_TEST_MIB");

	if (mib && *mib)
		total = (uint64_t)atoi(mib) << 20;
	CHECK(total > 0);
	CHECK(setenv("SCIF_NET_RING", "4096", 1) == 0);
	if (argc > 1 && strcmp(argv[1], "peer") == 0)
		return peer();
	check_shared_endpoint();
	check_beside_a_long_poll();
	check_close_wakes();
	return 0;
}
