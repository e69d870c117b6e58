/*
 * The descriptor's readiness, as the driver's __scif_pollfd reports it, on
 * the raw descriptor (scif_get_fd) under plain poll(2) and under epoll (what
 * libuv uses), and through scif_poll, which must agree with both:
 *  - connected: POLLIN exactly while the inbound ring holds data, POLLOUT
 *    exactly while the outbound ring has room (4095 bytes of a 4 KiB ring),
 *    level-triggered - looking any number of times takes nothing - and after
 *    every call the state of both ends follows the rings; POLLHUP once the
 *    peer is gone;
 *  - a listener: POLLIN while a connection request waits, never POLLOUT;
 *  - a non-blocking connect: POLLOUT only once accepted;
 *  - sleepers wake: a reader in poll, epoll and scif_poll when data comes, a
 *    writer (scif_send with SCIF_SEND_BLOCK, poll, epoll) when the reader
 *    makes room; and POLLNVAL, timeouts, many endpoints at once.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>

#include "check.h"

#define ROOM 4095	/* what a 4 KiB ring holds */

/* What each way of looking reports for events now, without waiting. */
static short raw_now(int epd, short events)
{
	struct pollfd p = { .fd = scif_get_fd(epd), .events = events };

	CHECK(poll(&p, 1, 0) >= 0);
	return p.revents;
}

static short scif_now(int epd, short events)
{
	struct scif_pollepd pe = { .epd = epd, .events = events, .revents = 0x7fff };
	int n = scif_poll(&pe, 1, 0);

	CHECK(n == (pe.revents != 0));
	return pe.revents;
}

/* A level-triggered epoll set watching one endpoint, as an event loop's. */
static int epoll_watching(int epd, uint32_t events)
{
	struct epoll_event e = { .events = events, .data.fd = epd };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	CHECK(ep >= 0);
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, scif_get_fd(epd), &e) == 0);
	return ep;
}

static uint32_t epoll_now(int ep, int timeout_ms)
{
	struct epoll_event e = { 0 };
	int n = epoll_wait(ep, &e, 1, timeout_ms);

	CHECK(n >= 0);
	return n ? e.events : 0;
}

/* All three agree that epd shows exactly want of events. */
static void expect(int line, int epd, short events, short want)
{
	short raw = raw_now(epd, events), scif = scif_now(epd, events);
	int ep = epoll_watching(epd, (uint32_t)events);
	uint32_t ev = epoll_now(ep, 0);

	CHECK(close(ep) == 0);
	if (raw != want || scif != want || ev != (uint32_t)want) {
		fprintf(stderr, "line %d: endpoint %d, events %#x: poll %#x, scif_poll %#x, epoll %#x; wanted %#x\n",
			line, epd, events, raw, scif, ev, want);
		exit(1);
	}
}
#define EXPECT(epd, events, want) expect(__LINE__, epd, events, want)

static void send_one(int epd)
{
	CHECK(scif_send(epd, "z", 1, 0) == 1);
}

static void recv_one(int epd)
{
	char c;

	CHECK(scif_recv(epd, &c, 1, 0) == 1);
}

/* Fills epd's outbound ring: a non-blocking send moves 4095 bytes at most. */
static void fill(int epd)
{
	char buf[ROOM + 100] = { 0 };

	CHECK(scif_send(epd, buf, sizeof(buf), 0) == ROOM);
	CHECK(scif_send(epd, buf, 1, 0) == 0);
}

static void check_in(void)
{
	int c, s;
	char buf[8];

	connect_pair(4000, &c, &s);
	EXPECT(s, POLLIN, 0);
	EXPECT(s, POLLIN | POLLOUT, POLLOUT);	/* its own ring is empty */
	CHECK(scif_send(c, "abc", 3, 0) == 3);
	EXPECT(s, POLLIN, POLLIN);
	EXPECT(s, POLLIN | POLLOUT, POLLIN | POLLOUT);
	EXPECT(c, POLLIN | POLLOUT, POLLOUT);	/* data goes one way */
	/* Level-triggered: looking again and again takes nothing. */
	for (int i = 0; i < 3; i++)
		EXPECT(s, POLLIN, POLLIN);
	CHECK(scif_recv(s, buf, 2, 0) == 2);
	EXPECT(s, POLLIN, POLLIN);		/* one byte left */
	CHECK(scif_recv(s, buf, 8, 0) == 1);
	EXPECT(s, POLLIN, 0);			/* drained: no longer readable */
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_out(void)
{
	int c, s;
	char buf[ROOM];

	connect_pair(4010, &c, &s);
	EXPECT(c, POLLOUT, POLLOUT);
	fill(c);
	EXPECT(c, POLLOUT, 0);
	EXPECT(c, POLLIN | POLLOUT, 0);
	EXPECT(s, POLLIN | POLLOUT, POLLIN | POLLOUT);
	recv_one(s);
	EXPECT(c, POLLOUT, POLLOUT);		/* one byte of room is room */
	send_one(c);
	EXPECT(c, POLLOUT, 0);
	/* The reader empties the ring in one go: room, and nothing to read. */
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == ROOM);
	EXPECT(c, POLLOUT, POLLOUT);
	EXPECT(s, POLLIN, 0);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

/* Sleepers of every kind on one endpoint, woken by what the peer does. */
struct sleeper {
	pthread_t thread;
	_Atomic pid_t tid;
	int epd, how;		/* 0 poll, 1 epoll, 2 scif_poll, 3 a blocking scif_send/recv */
	short events;
	short got;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *z = arg;
	char buf[1] = { 0 };

	z->tid = gettid();
	switch (z->how) {
	case 0: {
		struct pollfd p = { .fd = scif_get_fd(z->epd), .events = z->events };

		CHECK(poll(&p, 1, -1) == 1);
		z->got = p.revents;
		break;
	}
	case 1: {
		int ep = epoll_watching(z->epd, (uint32_t)z->events);

		z->got = (short)epoll_now(ep, -1);
		CHECK(close(ep) == 0);
		break;
	}
	case 2: {
		struct scif_pollepd pe = { .epd = z->epd, .events = z->events };

		CHECK(scif_poll(&pe, 1, -1) == 1);
		z->got = pe.revents;
		break;
	}
	default:
		if (z->events == POLLOUT)
			CHECK(scif_send(z->epd, buf, 1, SCIF_SEND_BLOCK) == 1);
		else
			CHECK(scif_recv(z->epd, buf, 1, SCIF_RECV_BLOCK) == 1);
		z->got = z->events;
		break;
	}
	return NULL;
}

/* n sleepers, of kinds first to first + n - 1. */
static void sleep_all(struct sleeper *z, int first, int n, int epd, short events)
{
	for (int i = 0; i < n; i++) {
		z[i] = (struct sleeper){ .epd = epd, .how = first + i, .events = events };
		CHECK(pthread_create(&z[i].thread, NULL, sleeper_main, &z[i]) == 0);
	}
	for (int i = 0; i < n; i++) {
		while (!z[i].tid)
			sched_yield();
		wait_blocked(z[i].tid);
	}
}

static void woke_all(struct sleeper *z, int n, short events)
{
	for (int i = 0; i < n; i++) {
		CHECK(pthread_join(z[i].thread, NULL) == 0);
		CHECK(z[i].got == events);
	}
}

static void check_sleepers(void)
{
	struct sleeper z[4];
	int c, s;
	char buf[ROOM];

	connect_pair(4020, &c, &s);
	/* Lookers: one send wakes them all, and each sees the byte. */
	sleep_all(z, 0, 3, s, POLLIN);
	send_one(c);
	woke_all(z, 3, POLLIN);
	EXPECT(s, POLLIN, POLLIN);
	recv_one(s);
	/* A blocking reader. */
	sleep_all(z, 3, 1, s, POLLIN);
	send_one(c);
	woke_all(z, 1, POLLIN);
	EXPECT(s, POLLIN, 0);
	/* Writers on a full ring: the reader making room wakes them all (the
	 * blocking one takes one byte of it). */
	fill(c);
	sleep_all(z, 0, 4, c, POLLOUT);
	CHECK(scif_recv(s, buf, 100, 0) == 100);
	woke_all(z, 4, POLLOUT);
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == ROOM - 100 + 1);
	EXPECT(s, POLLIN, 0);
	EXPECT(c, POLLOUT, POLLOUT);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_hangup(void)
{
	int c, s;
	char buf[8];

	connect_pair(4030, &c, &s);
	CHECK(scif_send(c, "ab", 2, 0) == 2);
	CHECK(scif_close(c) == 0);
	/* Gone, with data left: as the driver's POLLHUP | POLLIN | POLLOUT,
	 * save that a socket also says POLLIN once the data is read. */
	EXPECT(s, POLLIN | POLLOUT, POLLIN | POLLOUT | POLLHUP);
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == 2);
	CHECK_ERR(scif_recv(s, buf, sizeof(buf), 0), ECONNRESET);
	EXPECT(s, POLLIN | POLLOUT, POLLIN | POLLOUT | POLLHUP);
	CHECK(scif_close(s) == 0);
}

static void check_nval(void)
{
	int unbound = scif_open(), p[2], c, s, closed;
	struct scif_pollepd pe[5];

	CHECK(unbound >= 0);
	CHECK(pipe(p) == 0);
	CHECK(close(p[1]) == 0);
	connect_pair(4040, &c, &s);
	closed = scif_open();		/* last, so that nothing reuses its number */
	CHECK(closed >= 0 && scif_close(closed) == 0);
	pe[0] = (struct scif_pollepd){ .epd = -1, .events = POLLIN };	/* skipped, as poll(2) does */
	pe[1] = (struct scif_pollepd){ .epd = 1 << 20, .events = POLLIN };
	pe[2] = (struct scif_pollepd){ .epd = closed, .events = POLLOUT };
	pe[3] = (struct scif_pollepd){ .epd = p[0], .events = POLLIN };	/* a descriptor, polled as one */
	pe[4] = (struct scif_pollepd){ .epd = s, .events = POLLIN };	/* quiet */
	/* Reported whatever was asked, at once, even with an endless timeout. */
	CHECK(scif_poll(pe, 5, -1) == 3);
	CHECK(pe[0].revents == 0 && pe[1].revents == POLLNVAL && pe[2].revents == POLLNVAL);
	CHECK(pe[3].revents == POLLHUP && pe[4].revents == 0);
	/* Neither connected nor listening: the driver says POLLERR; a socket
	 * that is neither says POLLHUP (kernel/README.md). */
	CHECK(raw_now(unbound, POLLIN) == POLLHUP);
	CHECK(close(p[0]) == 0);
	CHECK(scif_close(unbound) == 0);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_timeout(void)
{
	int c, s;
	struct scif_pollepd pe;
	double t0, ms;

	connect_pair(4050, &c, &s);
	pe = (struct scif_pollepd){ .epd = s, .events = POLLIN };
	t0 = now_ms();
	CHECK(scif_poll(&pe, 1, 200) == 0 && pe.revents == 0);
	ms = now_ms() - t0;
	printf("# a 200 ms scif_poll timeout took %.1f ms\n", ms);
	CHECK(ms >= 200 && ms < 5000);
	/* No endpoints: a plain sleep, as poll(2) does. */
	t0 = now_ms();
	CHECK(scif_poll(NULL, 0, 100) == 0);
	ms = now_ms() - t0;
	CHECK(ms >= 100 && ms < 5000);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_several(void)
{
	int c[3], s[3];
	struct scif_pollepd pe[3];

	for (int i = 0; i < 3; i++)
		connect_pair((uint16_t)(4060 + i), &c[i], &s[i]);
	for (int i = 0; i < 3; i++)
		pe[i] = (struct scif_pollepd){ .epd = s[i], .events = POLLIN };
	CHECK(scif_poll(pe, 3, 0) == 0);
	send_one(c[1]);
	CHECK(scif_poll(pe, 3, 0) == 1);
	CHECK(pe[0].revents == 0 && pe[1].revents == POLLIN && pe[2].revents == 0);
	recv_one(s[1]);
	/* Two ready at once are both reported. */
	send_one(c[0]);
	send_one(c[2]);
	pe[1].events = POLLOUT;
	CHECK(scif_poll(pe, 3, -1) == 3);
	CHECK(pe[0].revents == POLLIN && pe[1].revents == POLLOUT && pe[2].revents == POLLIN);
	for (int i = 0; i < 3; i++)
		CHECK(scif_close(c[i]) == 0 && scif_close(s[i]) == 0);
}

static void check_listener_and_connect(void)
{
	int l = scif_open(), s, c = scif_open(), ep;
	struct scif_portID to = { .node = 0, .port = 4070 }, peer;

	CHECK(l >= 0 && c >= 0 && scif_bind(l, 4070) == 4070 && scif_listen(l, 4) == 0);
	EXPECT(l, POLLIN | POLLOUT, 0);
	CHECK(fcntl(c, F_SETFL, O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	EXPECT(l, POLLIN | POLLOUT, POLLIN);	/* pending; never POLLOUT */
	EXPECT(l, POLLIN, POLLIN);		/* and looking takes nothing */
	/* The caller: not writable, nor anything else, until accepted. */
	EXPECT(c, POLLOUT, 0);
	ep = epoll_watching(c, EPOLLOUT);
	CHECK(epoll_now(ep, 50) == 0);
	CHECK(scif_accept(l, &peer, &s, 0) == 0);
	EXPECT(l, POLLIN, 0);
	CHECK_ERR(scif_accept(l, &peer, &s, 0), EAGAIN);
	/* Accepted: writable, and the connect completes. */
	CHECK(epoll_now(ep, 10000) == EPOLLOUT);
	CHECK(close(ep) == 0);
	EXPECT(c, POLLOUT, POLLOUT);
	CHECK(scif_connect(c, &to) == peer.port);
	EXPECT(c, POLLIN | POLLOUT, POLLOUT);
	EXPECT(s, POLLIN | POLLOUT, POLLOUT);
	CHECK(scif_close(s) == 0 && scif_close(c) == 0 && scif_close(l) == 0);
}

/* scif_net_rx_ready (scif_net.h): a look at the inbound ring, no system
 * call; its flags are accepted and change nothing now. */
static void check_rx_ready(void)
{
	int c, s, e;
	char buf[8];

	CHECK_ERR(scif_net_rx_ready(-1, 0), EBADF);
	e = scif_open();
	CHECK(e >= 0);
	CHECK(scif_net_rx_ready(e, 0) == 0);	/* not connected */
	CHECK(scif_close(e) == 0);
	connect_pair(4080, &c, &s);
	CHECK_ERR(scif_net_rx_ready(s, 0x4), EINVAL);
	CHECK_ERR(scif_net_rx_ready(s, SCIF_NET_RX_QUIET | SCIF_NET_RX_ARM), EINVAL);
	for (int flags = 0; flags <= SCIF_NET_RX_ARM; flags++) {
		CHECK(scif_net_rx_ready(s, flags) == 0);
		send_one(c);
		CHECK(scif_net_rx_ready(s, flags) == 1);
		EXPECT(s, POLLIN, POLLIN);		/* it took nothing */
		CHECK(scif_recv(s, buf, sizeof(buf), 0) == 1);
		EXPECT(s, POLLIN, 0);
	}
	/* A peer that is gone is something to receive. */
	CHECK(scif_close(c) == 0);
	CHECK(scif_net_rx_ready(s, SCIF_NET_RX_QUIET) == 1);
	CHECK(scif_close(s) == 0);
}

int main(void)
{
	check_in();
	check_out();
	check_sleepers();
	check_hangup();
	check_nval();
	check_timeout();
	check_several();
	check_listener_and_connect();
	check_rx_ready();
	return 0;
}
