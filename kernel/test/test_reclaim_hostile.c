/*
 * test_reclaim_hostile - the idle sweep (src/reclaim.h) against peers that
 * do not play along. This process is the victim (node 0, a 10 ms sweep);
 * each peer is a role on node 1 that accepts one connection (two for
 * stuck), playing through the fabric's internals:
 *
 *  stuck  the peer never reads one connection: our writer sleeps in a
 *         blocking send holding that ring's lock, the ring full. The sweep
 *         never waits for it (our other connection's rings still go back),
 *         never punches the full ring, and the writer wakes at close.
 *  early  the peer publishes our write offset as its read offset without
 *         reading: our ring is punched under its unread bytes, which it
 *         then reads as zeros - its loss alone: the bytes it had sent us,
 *         in the other ring, are intact, and the connection goes on.
 *  wild   the peer publishes a read offset out of range on our idle ring:
 *         no punch (its pages stay), and our next send fails with EPROTO.
 *  punch  the peer punches its mapping of both rings in a loop while both
 *         sides stream: nothing faults or stops, the counts are right,
 *         and once it stops the connection carries checked streams.
 */
#include "reclaim_test.h"

#define PORT 4400
#define KIB 1024u

static struct endpoint *endpoint_of(int epd)
{
	struct endpoint *ep = ep_get(epd);

	CHECK(ep != NULL);
	return ep;
}

/* What the peer wrote into its ring to us, at least n bytes, within 10 s. */
static void await_peer_wrote(struct endpoint *ep, uint64_t n)
{
	double until = now_ms() + 10000;

	while (atomic_load_explicit(&ep->qp.hdr->ring[1 - ep->qp.side].write,
				    memory_order_acquire) < n) {
		CHECK(now_ms() < until);
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

static void send_stream(int epd, uint32_t seed, size_t len)
{
	struct stream s = { epd, seed, len, len, 0 };

	stream_send(&s);
}

static void recv_stream(int epd, uint32_t seed, size_t len)
{
	struct stream s = { epd, seed, len, len, 0 };

	stream_recv(&s);
}

/* ---- the peers ---- */

static int accept_one(uint16_t port)
{
	int l = listen_on(port, 2), epd;
	struct scif_portID who;

	report_ready(port);
	CHECK(scif_accept(l, &who, &epd, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	return epd;
}

/* Two connections: the first never read until the victim closes it, the
 * second streams 1 MiB each way, says 'd', and closes when told. */
static int peer_stuck(uint16_t port)
{
	int l = listen_on(port, 2), a, b;
	struct scif_portID who;
	char c;

	report_ready(port);
	CHECK(scif_accept(l, &who, &a, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_accept(l, &who, &b, SCIF_ACCEPT_SYNC) == 0);
	stream_both(b, 2, 1, 1u << 20, 64 * KIB, 0);
	CHECK(scif_send(b, "d", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_recv(b, &c, 1, SCIF_RECV_BLOCK) == 1);
	/* a: the victim's close; what it sent is ours still. */
	{
		static uint8_t buf[64 * KIB];

		while (scif_recv(a, buf, sizeof(buf), SCIF_RECV_BLOCK) > 0)
			;
	}
	CHECK(errno == ECONNRESET);
	return 0;
}

static int peer_early(uint16_t port)
{
	int epd = accept_one(port);
	struct endpoint *ep = endpoint_of(epd);
	struct rb_shared *theirs = &ep->qp.hdr->ring[1 - ep->qp.side];
	uint8_t *buf = malloc(512 * KIB + 100);

	CHECK(buf != NULL);
	send_stream(epd, 7, 1000);
	await_peer_wrote(ep, 512 * KIB);
	/* The lie: all read. */
	atomic_store_explicit(&theirs->read, atomic_load(&theirs->write), memory_order_release);
	/* The victim sends 100 bytes more once its ring went back. */
	await_peer_wrote(ep, 512 * KIB + 100);
	/* One read, so that the offset we publish never moves back. */
	CHECK(scif_recv(epd, buf, 512 * KIB + 100, SCIF_RECV_BLOCK) == 512 * KIB + 100);
	for (size_t i = 0; i < 512 * KIB; i++)
		CHECK(buf[i] == 0);
	stream_check(buf + 512 * KIB, 100, 8, 0);
	free(buf);
	ep_put(ep);
	CHECK(scif_close(epd) == 0);
	return 0;
}

static int peer_wild(uint16_t port)
{
	int epd = accept_one(port);
	struct endpoint *ep = endpoint_of(epd);
	struct rb_shared *theirs = &ep->qp.hdr->ring[1 - ep->qp.side];
	struct pollfd p = { .fd = epd, .events = 0 };

	await_peer_wrote(ep, 512 * KIB);
	atomic_store_explicit(&theirs->read, atomic_load(&theirs->write) + (1ull << 40),
			      memory_order_release);
	ep_put(ep);
	/* Nothing read (which would publish a sane offset): the victim's
	 * reset hangs the connection up. */
	CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLHUP));
	return 0;
}

struct puncher {
	struct endpoint *ep;
	_Atomic bool stop;
	unsigned long punches;
};

static void *punch_main(void *arg)
{
	struct puncher *p = arg;

	while (!atomic_load(&p->stop)) {
		/* Both rings, which are contiguous after the header. */
		CHECK(madvise((uint8_t *)p->ep->qp.hdr + QP_HEADER_BYTES, 2 * p->ep->qp.tx.size,
			      MADV_REMOVE) == 0);
		p->punches++;
		sched_yield();
	}
	return NULL;
}

static void *count_main(void *arg)
{
	int epd = (int)(intptr_t)arg;
	static uint8_t buf[64 * KIB];
	uint64_t got = 0;

	while (got < (4u << 20)) {
		uint64_t left = (4u << 20) - got;
		int n = scif_recv(epd, buf, left < sizeof(buf) ? (int)left : (int)sizeof(buf),
				  SCIF_RECV_BLOCK);

		CHECK(n > 0);
		got += (uint64_t)n;
	}
	CHECK(got == 4u << 20);
	return NULL;
}

/* Punches while 4 MiB go each way (contents unchecked: the peer's punches
 * may zero what it sends and what it has not read), then stops, and the
 * two exchange checked streams. */
static int peer_punch(uint16_t port)
{
	int epd = accept_one(port);
	struct puncher p = { .ep = endpoint_of(epd) };
	pthread_t pt, rt;
	char c;

	CHECK(pthread_create(&pt, NULL, punch_main, &p) == 0);
	CHECK(pthread_create(&rt, NULL, count_main, (void *)(intptr_t)epd) == 0);
	{
		static uint8_t junk[4u << 20];

		memset(junk, 0x5a, sizeof(junk));
		CHECK(scif_send(epd, junk, sizeof(junk), SCIF_SEND_BLOCK) == (int)sizeof(junk));
	}
	CHECK(pthread_join(rt, NULL) == 0);
	atomic_store(&p.stop, true);
	CHECK(pthread_join(pt, NULL) == 0);
	CHECK(p.punches > 0);
	CHECK(scif_send(epd, "s", 1, SCIF_SEND_BLOCK) == 1);
	stream_both(epd, 11, 10, 1u << 20, 64 * KIB, 0);
	CHECK(scif_recv(epd, &c, 1, SCIF_RECV_BLOCK) == 1 && c == 'e');
	ep_put(p.ep);
	CHECK(scif_close(epd) == 0);
	return 0;
}

/* ---- the victim ---- */

static int connect_peer(const char *role, uint16_t port, const char *ring, pid_t *pid)
{
	struct scif_portID to = { .node = 1, .port = port };
	char arg[16];
	int ready, epd;

	snprintf(arg, sizeof(arg), "%u", port);
	CHECK(setenv("SCIF_NET_RING", ring, 1) == 0);
	*pid = spawn_role(1, role, arg, &ready);
	CHECK(unsetenv("SCIF_NET_RING") == 0);
	CHECK(await_ready(ready) == port);
	close(ready);
	epd = scif_open();
	CHECK(epd >= 0 && scif_connect(epd, &to) >= SCIF_PORT_RSVD);
	return epd;
}

static void stuck(uint16_t port)
{
	pid_t pid;
	int a = connect_peer("stuck", port, "65536", &pid), b = scif_open();
	struct scif_portID to = { .node = 1, .port = port };
	struct endpoint *ea = endpoint_of(a), *eb;
	struct blocked w = { .len = 0 };
	char c;

	CHECK(b >= 0 && scif_connect(b, &to) >= SCIF_PORT_RSVD);
	eb = endpoint_of(b);
	/* More than the ring holds: sleeps with the ring full. */
	w.len = (int)sizeof(w.buf);
	for (int i = 0; i < 70; i++)
		CHECK(scif_send(a, w.buf, sizeof(w.buf), 0) >= 0);
	block_in(&w, CALL_SEND, a);
	stream_both(b, 1, 2, 1u << 20, 64 * KIB, 0);
	CHECK(scif_recv(b, &c, 1, SCIF_RECV_BLOCK) == 1 && c == 'd');
	CHECK(wait_for(rings_given_back, eb, 10000));
	/* Sweeps went on past the stuck one; the full ring kept its pages. */
	await_sweeps(3);
	CHECK(ring_resident(&ea->qp.tx) == 16);
	ep_put(ea);
	ep_put(eb);
	/* The sleeping writer wakes as its endpoint closes - before the peer
	 * is told to go, whose leaving would wake it with ECONNRESET first. */
	CHECK(scif_close(a) == 0);
	CHECK(pthread_join(w.thread, NULL) == 0);
	CHECK(w.ret == -1 && w.err == EINTR);
	CHECK(scif_send(b, "q", 1, SCIF_SEND_BLOCK) == 1);
	expect_exit(pid, 0);
	CHECK(scif_close(b) == 0);
	printf("# stuck: a writer asleep on a full ring stalls no sweep; other rings went back\n");
}

static bool tx_given_back(void *arg)
{
	return ring_resident(&((struct endpoint *)arg)->qp.tx) == 0;
}

static void early(uint16_t port)
{
	pid_t pid;
	int epd = connect_peer("early", port, "1048576", &pid);
	struct endpoint *ep = endpoint_of(epd);

	send_stream(epd, 9, 512 * KIB);
	CHECK(wait_for(tx_given_back, ep, 10000));
	/* The punch took our ring's pages alone: the peer's bytes to us are
	 * where it wrote them. */
	recv_stream(epd, 7, 1000);
	send_stream(epd, 8, 100);
	ep_put(ep);
	expect_exit(pid, 0);
	CHECK(scif_close(epd) == 0);
	printf("# early: a peer claiming to have read lost its own bytes; ours and the stream went on\n");
}

static void wild(uint16_t port)
{
	pid_t pid;
	int epd = connect_peer("wild", port, "1048576", &pid);
	struct endpoint *ep = endpoint_of(epd);
	double until = now_ms() + 10000;

	send_stream(epd, 9, 512 * KIB);
	while (atomic_load(&ep->qp.hdr->ring[ep->qp.side].read) == 0) {
		CHECK(now_ms() < until);
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	await_sweeps(5);
	CHECK(ring_resident(&ep->qp.tx) == 128);
	ep_put(ep);
	CHECK_ERR(scif_send(epd, "x", 1, SCIF_SEND_BLOCK), EPROTO);
	expect_exit(pid, 0);
	CHECK(scif_close(epd) == 0);
	printf("# wild: a read offset out of range gives nothing back, and resets at the next send\n");
}

static void punch(uint16_t port)
{
	pid_t pid;
	int epd = connect_peer("punch", port, "65536", &pid);
	pthread_t rt;
	char c;

	CHECK(pthread_create(&rt, NULL, count_main, (void *)(intptr_t)epd) == 0);
	{
		static uint8_t junk[4u << 20];

		memset(junk, 0xa5, sizeof(junk));
		CHECK(scif_send(epd, junk, sizeof(junk), SCIF_SEND_BLOCK) == (int)sizeof(junk));
	}
	CHECK(pthread_join(rt, NULL) == 0);
	CHECK(scif_recv(epd, &c, 1, SCIF_RECV_BLOCK) == 1 && c == 's');
	stream_both(epd, 10, 11, 1u << 20, 64 * KIB, 0);
	CHECK(scif_send(epd, "e", 1, SCIF_SEND_BLOCK) == 1);
	expect_exit(pid, 0);
	CHECK(scif_close(epd) == 0);
	printf("# punch: a peer punching both rings under the streams costs nothing but its bytes\n");
}

int main(int argc, char **argv)
{
	if (argc > 2) {
		uint16_t port = (uint16_t)atoi(argv[2]);

		if (strcmp(argv[1], "stuck") == 0)
			return peer_stuck(port);
		if (strcmp(argv[1], "early") == 0)
			return peer_early(port);
		if (strcmp(argv[1], "wild") == 0)
			return peer_wild(port);
		if (strcmp(argv[1], "punch") == 0)
			return peer_punch(port);
		return 2;
	}
	/* Read once, when the fabric opens: before anything else. */
	CHECK(setenv("SCIF_NET_RECLAIM_MS", "10", 1) == 0);
	stuck(PORT);
	early(PORT + 1);
	wild(PORT + 2);
	punch(PORT + 3);
	return 0;
}
