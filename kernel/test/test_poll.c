/*
 * scif_poll: POLLIN exactly when there is data, POLLOUT exactly when the ring
 * has space, POLLNVAL for what is not an endpoint, POLLERR for an endpoint
 * that is not connected, 0 after the timeout, many endpoints at once, a
 * listener's pending connection; each also while scif_poll sleeps. And the
 * contract of scif.h and poll.c: after scif_poll() armed a condition, the raw
 * descriptor (scif_get_fd) turns readable under plain poll(2) when it is met,
 * and not before.
 */
#include <poll.h>
#include <pthread.h>

#include "check.h"

#define RING 4096	/* SCIF_NET_RING: small, so filling it is quick */

static int poll1(int epd, short events, long timeout, short *revents)
{
	struct scif_pollepd pe = { .epd = epd, .events = events, .revents = 0x7fff };
	int n = scif_poll(&pe, 1, timeout);

	CHECK(n >= 0);
	*revents = pe.revents;
	return n;
}

/* scif_poll must say exactly this, without waiting. */
static void expect_now(int epd, short events, short want)
{
	short rev;
	int n = poll1(epd, events, 0, &rev);

	if (n != (want != 0) || rev != want) {
		fprintf(stderr, "scif_poll(%d, %#x): %d with %#x, wanted %#x\n",
			epd, events, n, rev, want);
		exit(1);
	}
}

/* The raw descriptor, under poll(2), readable within timeout_ms? */
static bool raw_readable(int epd, int timeout_ms)
{
	struct pollfd p = { .fd = scif_get_fd(epd), .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);

	CHECK(n >= 0);
	return n == 1 && (p.revents & POLLIN);
}

/* Something another thread does once this one sleeps in scif_poll. */
struct later {
	pthread_t thread;
	pid_t sleeper;
	void (*act)(int epd);
	int epd;
};

static void *later_main(void *arg)
{
	struct later *l = arg;

	wait_blocked(l->sleeper);
	l->act(l->epd);
	return NULL;
}

static void start_later(struct later *l, void (*act)(int), int epd)
{
	l->sleeper = gettid();
	l->act = act;
	l->epd = epd;
	CHECK(pthread_create(&l->thread, NULL, later_main, l) == 0);
}

static void join_later(struct later *l)
{
	CHECK(pthread_join(l->thread, NULL) == 0);
}

static void send_one(int epd)
{
	CHECK(scif_send(epd, "z", 1, 0) == 1);
}

static void recv_one(int epd)
{
	char c;

	CHECK(scif_recv(epd, &c, 1, 0) == 1);
}

static void fill(int epd)
{
	char buf[RING + 100] = { 0 };

	CHECK(scif_send(epd, buf, sizeof(buf), 0) == RING);
	CHECK(scif_send(epd, buf, 1, 0) == 0);
}

static void check_in(void)
{
	int c, s;
	char buf[8];
	short rev;
	struct later l;

	connect_pair(4000, &c, &s);
	expect_now(s, POLLIN, 0);
	expect_now(s, POLLIN | POLLOUT, POLLOUT);	/* its own ring is empty */
	CHECK(scif_send(c, "abc", 3, 0) == 3);
	expect_now(s, POLLIN, POLLIN);
	expect_now(s, POLLIN | POLLOUT, POLLIN | POLLOUT);
	expect_now(c, POLLIN, 0);			/* data goes one way */
	CHECK(scif_recv(s, buf, 2, 0) == 2);
	expect_now(s, POLLIN, POLLIN);			/* one byte left */
	CHECK(scif_recv(s, buf, 8, 0) == 1);
	expect_now(s, POLLIN, 0);
	/* Sleeping: woken by the data. */
	start_later(&l, send_one, c);
	CHECK(poll1(s, POLLIN, -1, &rev) == 1 && rev == POLLIN);
	join_later(&l);
	CHECK(scif_recv(s, buf, 8, 0) == 1 && buf[0] == 'z');
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_out(void)
{
	int c, s;
	short rev;
	double t0, ms;
	struct later l;

	connect_pair(4010, &c, &s);
	expect_now(c, POLLOUT, POLLOUT);
	fill(c);
	expect_now(c, POLLOUT, 0);
	expect_now(c, POLLIN | POLLOUT, 0);
	t0 = now_ms();
	CHECK(poll1(c, POLLOUT, 50, &rev) == 0 && rev == 0);
	ms = now_ms() - t0;
	CHECK(ms >= 50);
	recv_one(s);
	expect_now(c, POLLOUT, POLLOUT);		/* one byte of space is space */
	send_one(c);
	expect_now(c, POLLOUT, 0);
	/* Sleeping: woken by the reader making room. */
	start_later(&l, recv_one, s);
	CHECK(poll1(c, POLLOUT, -1, &rev) == 1 && rev == POLLOUT);
	join_later(&l);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_nval_err(void)
{
	int closed = scif_open(), unbound = scif_open(), bound = scif_open(), p[2], c, s;
	struct scif_pollepd pe[7];

	CHECK(closed >= 0 && unbound >= 0 && bound >= 0);
	CHECK(scif_close(closed) == 0);
	CHECK(scif_bind(bound, 4020) == 4020);
	CHECK(pipe(p) == 0);
	connect_pair(4021, &c, &s);
	pe[0] = (struct scif_pollepd){ .epd = -1, .events = POLLIN };
	pe[1] = (struct scif_pollepd){ .epd = 1 << 20, .events = POLLIN };
	pe[2] = (struct scif_pollepd){ .epd = closed, .events = POLLOUT };
	pe[3] = (struct scif_pollepd){ .epd = p[0], .events = 0 };	/* a descriptor, not an endpoint */
	pe[4] = (struct scif_pollepd){ .epd = unbound, .events = POLLIN };
	pe[5] = (struct scif_pollepd){ .epd = bound, .events = 0 };
	pe[6] = (struct scif_pollepd){ .epd = s, .events = POLLIN };	/* quiet */
	/* Reported whatever was asked, at once, even with an endless timeout. */
	CHECK(scif_poll(pe, 7, -1) == 6);
	for (int i = 0; i < 4; i++)
		CHECK(pe[i].revents == POLLNVAL);
	CHECK(pe[4].revents == POLLERR && pe[5].revents == POLLERR && pe[6].revents == 0);
	CHECK(close(p[0]) == 0 && close(p[1]) == 0);
	CHECK(scif_close(unbound) == 0 && scif_close(bound) == 0);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

static void check_timeout(void)
{
	int c, s;
	short rev;
	double t0, ms;

	connect_pair(4030, &c, &s);
	t0 = now_ms();
	CHECK(poll1(s, POLLIN, 200, &rev) == 0 && rev == 0);
	ms = now_ms() - t0;
	printf("# a 200 ms scif_poll timeout took %.1f ms\n", ms);
	CHECK(ms >= 200 && ms < 5000);
	t0 = now_ms();
	CHECK(poll1(s, POLLIN, 0, &rev) == 0);
	CHECK(now_ms() - t0 < 1000);
	/* No endpoints: a plain sleep. */
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
	struct later l;

	for (int i = 0; i < 3; i++)
		connect_pair((uint16_t)(4040 + i), &c[i], &s[i]);
	for (int i = 0; i < 3; i++)
		pe[i] = (struct scif_pollepd){ .epd = s[i], .events = POLLIN };
	CHECK(scif_poll(pe, 3, 0) == 0);
	send_one(c[1]);
	CHECK(scif_poll(pe, 3, 0) == 1);
	CHECK(pe[0].revents == 0 && pe[1].revents == POLLIN && pe[2].revents == 0);
	recv_one(s[1]);
	/* Sleeping on all three: woken by the last one. */
	start_later(&l, send_one, c[2]);
	CHECK(scif_poll(pe, 3, -1) == 1);
	join_later(&l);
	CHECK(pe[0].revents == 0 && pe[1].revents == 0 && pe[2].revents == POLLIN);
	/* Two ready at once are both reported. */
	send_one(c[0]);
	pe[1].events = POLLOUT;
	CHECK(scif_poll(pe, 3, -1) == 3);
	CHECK(pe[0].revents == POLLIN && pe[1].revents == POLLOUT && pe[2].revents == POLLIN);
	for (int i = 0; i < 3; i++)
		CHECK(scif_close(c[i]) == 0 && scif_close(s[i]) == 0);
}

static void call_4050(int epd)
{
	struct scif_portID to = { .node = 0, .port = 4050 };

	CHECK(fcntl(epd, F_SETFL, O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(epd, &to), EINPROGRESS);
}

static void check_listener(void)
{
	int l = scif_open(), s, caller;
	struct scif_portID peer;
	struct later lt;
	short rev;

	CHECK(l >= 0 && scif_bind(l, 4050) == 4050 && scif_listen(l, 4) == 0);
	expect_now(l, POLLIN | POLLOUT, 0);
	caller = scif_open();
	CHECK(caller >= 0);
	call_4050(caller);
	expect_now(l, POLLIN | POLLOUT, POLLIN);	/* pending; never POLLOUT */
	CHECK(scif_accept(l, &peer, &s, 0) == 0);
	expect_now(l, POLLIN, 0);
	CHECK(scif_close(s) == 0 && scif_close(caller) == 0);
	/* Sleeping: woken by a caller. */
	caller = scif_open();
	CHECK(caller >= 0);
	start_later(&lt, call_4050, caller);
	CHECK(poll1(l, POLLIN, -1, &rev) == 1 && rev == POLLIN);
	join_later(&lt);
	CHECK(scif_accept(l, &peer, &s, 0) == 0);
	CHECK(scif_close(s) == 0 && scif_close(caller) == 0 && scif_close(l) == 0);
}

/* The documented contract for event loops watching scif_get_fd(). */
static void check_raw_fd(void)
{
	int c, s;
	char buf[RING];

	connect_pair(4060, &c, &s);
	/* Data: armed by a scif_poll that found none. */
	expect_now(s, POLLIN, 0);
	CHECK(!raw_readable(s, 0));
	send_one(c);
	CHECK(raw_readable(s, 10000));
	expect_now(s, POLLIN, POLLIN);
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == 1);
	/* Looking again swallows the old wake-up and arms anew. */
	expect_now(s, POLLIN, 0);
	CHECK(!raw_readable(s, 0));
	send_one(c);
	CHECK(raw_readable(s, 10000));
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == 1);
	expect_now(s, POLLIN, 0);

	/* Space: armed by a scif_poll that found the ring full. */
	fill(c);
	expect_now(c, POLLOUT, 0);
	CHECK(!raw_readable(c, 0));
	recv_one(s);
	CHECK(raw_readable(c, 10000));
	expect_now(c, POLLOUT, POLLOUT);
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == RING - 1);
	expect_now(s, POLLIN, 0);
	CHECK(!raw_readable(s, 0));

	/* The peer leaving. */
	CHECK(scif_close(c) == 0);
	CHECK(raw_readable(s, 10000));
	expect_now(s, POLLIN | POLLOUT, POLLIN | POLLHUP);
	CHECK(scif_close(s) == 0);
}

/* scif_net_rx_ready (scif_net.h): looks without swallowing a doorbell; QUIET
 * spares the sender its doorbell, ARM brings it back and reports what came
 * while it was spared. */
static void check_rx_ready(void)
{
	int c, s, e;
	char buf[RING];

	CHECK_ERR(scif_net_rx_ready(-1, 0), EBADF);
	e = scif_open();
	CHECK(e >= 0);
	CHECK(scif_net_rx_ready(e, 0) == 0);	/* not connected */
	CHECK(scif_close(e) == 0);
	connect_pair(4070, &c, &s);
	CHECK_ERR(scif_net_rx_ready(s, 0x4), EINVAL);
	CHECK_ERR(scif_net_rx_ready(s, SCIF_NET_RX_QUIET | SCIF_NET_RX_ARM), EINVAL);

	/* Plain looks: armed by scif_poll, so the doorbell still comes. */
	expect_now(s, POLLIN, 0);
	CHECK(scif_net_rx_ready(s, 0) == 0);
	send_one(c);
	CHECK(scif_net_rx_ready(s, 0) == 1);
	CHECK(raw_readable(s, 0));
	CHECK(scif_net_rx_ready(s, 0) == 1);	/* and it swallowed nothing */
	CHECK(raw_readable(s, 0));
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == 1);
	expect_now(s, POLLIN, 0);

	/* Quiet: the send lands, no doorbell rings. */
	CHECK(scif_net_rx_ready(s, SCIF_NET_RX_QUIET) == 0);
	send_one(c);
	CHECK(!raw_readable(s, 0));
	CHECK(scif_net_rx_ready(s, SCIF_NET_RX_QUIET) == 1);
	/* Arming reports it: nobody else will. */
	CHECK(scif_net_rx_ready(s, SCIF_NET_RX_ARM) == 1);
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == 1);
	/* Armed again, the next send rings. */
	CHECK(scif_net_rx_ready(s, SCIF_NET_RX_ARM) == 0);
	send_one(c);
	CHECK(raw_readable(s, 0));
	expect_now(s, POLLIN, POLLIN);
	CHECK(scif_recv(s, buf, sizeof(buf), 0) == 1);
	expect_now(s, POLLIN, 0);

	/* A peer that is gone is something to receive. */
	CHECK(scif_close(c) == 0);
	CHECK(scif_net_rx_ready(s, SCIF_NET_RX_QUIET) == 1);
	CHECK(scif_close(s) == 0);
}

int main(void)
{
	CHECK(setenv("SCIF_NET_RING", "4096", 1) == 0);
	check_in();
	check_out();
	check_nval_err();
	check_timeout();
	check_several();
	check_listener();
	check_raw_fd();
	check_rx_ready();
	return 0;
}
