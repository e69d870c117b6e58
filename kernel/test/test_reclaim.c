/*
 * test_reclaim - idle rings give their pages back (src/reclaim.h), and no
 * byte is lost to it.
 *
 * give-back: a connection with 1 MiB rings carries 4 MiB each way; once
 * both sides have been idle a while, neither ring has a page in the memfd
 * (mincore) nor in either process (smaps Rss of the mapping: the header's
 * page alone), and the connection carries the next round's streams intact.
 * Three rounds. Then the process's last connection is closed, which stops
 * the sweeps, and a new one's rings must go back too (its connect wakes the
 * sweeper).
 *
 * race: six connections (4 KiB and 64 KiB rings) carry small pieces both
 * ways with pauses around the sweep's period (1 ms here), so rings drain,
 * go idle and are punched between pieces thousands of times while writers
 * start again: every byte is checked where it lands, and both processes
 * must have given rings back many times.
 *
 * Each case runs in a process of its own (node 0), as SCIF_NET_RECLAIM_MS
 * is read once per process; its peer is a role on node 1.
 */
#include "reclaim_test.h"

#define PORT 4300

struct plan {
	int conns, rounds;
	uint64_t total;
	size_t max;
	unsigned gap_us;
};

static uint32_t seed_of(int conn, int round, int from_acceptor)
{
	return (uint32_t)((conn * 64 + round) * 2 + from_acceptor + 1);
}

static void parse_plan(const char *arg, int *port, struct plan *p)
{
	unsigned long long total;

	CHECK(sscanf(arg, "%d:%d:%d:%llu:%zu:%u", port, &p->conns, &p->rounds, &total, &p->max,
		     &p->gap_us) == 6);
	p->total = total;
}

struct peer_conn {
	int epd, k;
	const struct plan *p;
};

/* The acceptor's side of one connection: each round its streams, then how
 * many rings its process gave back so far, then a byte to go on. */
static void *peer_conn_main(void *arg)
{
	struct peer_conn *c = arg;
	char go;

	for (int r = 0; r < c->p->rounds; r++) {
		uint64_t given;

		stream_both(c->epd, seed_of(c->k, r, 1), seed_of(c->k, r, 0), c->p->total, c->p->max,
			    c->p->gap_us);
		given = reclaim_given();
		CHECK(scif_send(c->epd, &given, sizeof(given), SCIF_SEND_BLOCK) == sizeof(given));
		CHECK(scif_recv(c->epd, &go, 1, SCIF_RECV_BLOCK) == 1);
	}
	CHECK(scif_close(c->epd) == 0);
	return NULL;
}

/* Role on node 1: accepts the plan's connections and serves each. */
static int role_peer(const char *arg)
{
	struct plan p;
	struct peer_conn c[16];
	pthread_t t[16];
	int port, l;

	parse_plan(arg, &port, &p);
	CHECK(p.conns <= 16);
	l = listen_on((uint16_t)port, 16);
	report_ready(port);
	for (int k = 0; k < p.conns; k++) {
		struct scif_portID who;

		c[k] = (struct peer_conn){ .k = k, .p = &p };
		CHECK(scif_accept(l, &who, &c[k].epd, SCIF_ACCEPT_SYNC) == 0);
		CHECK(pthread_create(&t[k], NULL, peer_conn_main, &c[k]) == 0);
	}
	for (int k = 0; k < p.conns; k++)
		CHECK(pthread_join(t[k], NULL) == 0);
	CHECK(scif_close(l) == 0);
	return 0;
}

static pid_t spawn_peer(int port, const struct plan *p, const char *ring)
{
	char arg[128];
	int ready;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%d:%d:%d:%llu:%zu:%u", port, p->conns, p->rounds,
		 (unsigned long long)p->total, p->max, p->gap_us);
	/* The acceptor's SCIF_NET_RING sizes the connection's rings. */
	CHECK(setenv("SCIF_NET_RING", ring, 1) == 0);
	pid = spawn_role(1, "peer", arg, &ready);
	CHECK(unsetenv("SCIF_NET_RING") == 0);
	CHECK(await_ready(ready) == port);
	close(ready);
	return pid;
}

static bool under_valgrind(void)
{
	const char *w = getenv("SCIF_TEST_WRAP");

	return w && strstr(w, "valgrind");
}

/* ---- give-back ---- */

/* The process's last connection closed, the sweeps stop; a new connection
 * must wake the service thread to start them again, or its rings would
 * keep their pages. */
static void after_last_close(void)
{
	struct plan p = { .conns = 1, .rounds = 1, .total = 1u << 20, .max = 64u << 10 };
	struct scif_portID to = { .node = 1, .port = PORT + 5 };
	uint64_t given = reclaim_given();
	struct endpoint *ep;
	pid_t peer;
	int c;

	/* The next sweep finds nothing mapped (or the one after, if it
	 * looked before the close) and stops the sweeps. */
	await_sweeps(1);
	peer = spawn_peer(PORT + 5, &p, "1048576");
	c = scif_open();
	CHECK(c >= 0 && scif_connect(c, &to) >= SCIF_PORT_RSVD);
	ep = ep_get(c);
	CHECK(ep != NULL);
	stream_both(c, seed_of(0, 0, 0), seed_of(0, 0, 1), p.total, p.max, 0);
	CHECK(scif_recv(c, &given, sizeof(given), SCIF_RECV_BLOCK) == sizeof(given));
	CHECK(wait_for(rings_given_back, ep, 10000));
	printf("# after the last connection closed, a new one's rings went back too\n");
	CHECK(scif_send(c, "q", 1, SCIF_SEND_BLOCK) == 1);
	ep_put(ep);
	CHECK(scif_close(c) == 0);
	expect_exit(peer, 0);
}

static bool given_since(void *arg)
{
	return reclaim_given() > *(const uint64_t *)arg;
}

static int case_give_back(void)
{
	struct plan p = { .conns = 1, .rounds = 3, .total = 4u << 20, .max = 256u << 10 };
	struct scif_portID to = { .node = 1, .port = PORT };
	pid_t peer = spawn_peer(PORT, &p, "1048576");
	int c = scif_open();
	struct endpoint *ep;
	unsigned long ino;
	uint64_t theirs = 0;

	CHECK(c >= 0 && scif_connect(c, &to) >= SCIF_PORT_RSVD);
	ep = ep_get(c);
	CHECK(ep != NULL && ep->qp.tx.size == 1u << 20);
	ino = mapped_inode(ep->qp.hdr);
	for (int r = 0; r < p.rounds; r++) {
		size_t tx0, rx0;
		long ours0, peer0;
		uint64_t ours_given = reclaim_given(), given;
		double t0;

		stream_both(c, seed_of(0, r, 0), seed_of(0, r, 1), p.total, p.max, 0);
		tx0 = ring_resident(&ep->qp.tx);
		rx0 = ring_resident(&ep->qp.rx);
		ours0 = rss_kb(getpid(), ino);
		peer0 = rss_kb(peer, ino);
		CHECK(scif_recv(c, &given, sizeof(given), SCIF_RECV_BLOCK) == sizeof(given));
		/* Just used: 4 MiB went through every page of both rings, and
		 * 300 ms without a write must pass before one goes (valgrind
		 * may take that long to get here). */
		if (!under_valgrind())
			CHECK(tx0 == 256 && rx0 == 256 && ours0 >= 2048 && peer0 >= 2048);
		t0 = now_ms();
		CHECK(wait_for(rings_given_back, ep, 10000));
		/* The header's page is all either process keeps. */
		CHECK(rss_kb(getpid(), ino) <= (long)page_size() / 1024);
		CHECK(rss_kb(peer, ino) <= (long)page_size() / 1024);
		/* Counted just after the punch that emptied the rings. */
		CHECK(wait_for(given_since, &ours_given, 10000));
		theirs = given;
		printf("# round %d: rings %zu+%zu pages resident after 4 MiB each way, 0 after %.0f ms;"
		       " mapping's Rss here %ld kB -> %ld, in the peer %ld -> %ld\n", r, tx0, rx0,
		       now_ms() - t0, ours0, rss_kb(getpid(), ino), peer0, rss_kb(peer, ino));
		CHECK(scif_send(c, "g", 1, SCIF_SEND_BLOCK) == 1);
	}
	/* The peer gave its ring back in every round but the last, which it
	 * counted before the punch (ours saw it go: its pages are the file's). */
	CHECK(theirs >= (uint64_t)p.rounds - 1);
	ep_put(ep);
	CHECK(scif_close(c) == 0);
	expect_exit(peer, 0);
	after_last_close();
	return 0;
}

/* ---- race ---- */

struct our_conn {
	int epd, k;
	const struct plan *p;
	uint64_t peer_given;
};

static void *our_conn_main(void *arg)
{
	struct our_conn *c = arg;

	stream_both(c->epd, seed_of(c->k, 0, 0), seed_of(c->k, 0, 1), c->p->total, c->p->max,
		    c->p->gap_us);
	CHECK(scif_recv(c->epd, &c->peer_given, 8, SCIF_RECV_BLOCK) == 8);
	CHECK(scif_send(c->epd, "q", 1, SCIF_SEND_BLOCK) == 1);
	return NULL;
}

static int case_race(void)
{
	/* Small pieces, pauses of 0 to 2 ms around a 1 ms sweep. */
	struct plan p = { .conns = 3, .rounds = 1, .total = 1u << 20, .max = 3000,
			  .gap_us = 2000 };
	const char *rings[2] = { "4096", "65536" };
	struct our_conn c[6];
	pthread_t t[6];
	pid_t peers[2];
	uint64_t given0 = reclaim_given(), peer_given[2] = { 0, 0 };
	double t0 = now_ms();

	for (int i = 0; i < 2; i++) {
		struct scif_portID to = { .node = 1, .port = (uint16_t)(PORT + 1 + i) };

		peers[i] = spawn_peer(PORT + 1 + i, &p, rings[i]);
		for (int k = 0; k < p.conns; k++) {
			struct our_conn *o = &c[i * p.conns + k];

			*o = (struct our_conn){ .epd = scif_open(), .k = k, .p = &p };
			CHECK(o->epd >= 0 && scif_connect(o->epd, &to) >= SCIF_PORT_RSVD);
		}
	}
	for (int j = 0; j < 6; j++)
		CHECK(pthread_create(&t[j], NULL, our_conn_main, &c[j]) == 0);
	for (int j = 0; j < 6; j++) {
		CHECK(pthread_join(t[j], NULL) == 0);
		if (c[j].peer_given > peer_given[j / p.conns])
			peer_given[j / p.conns] = c[j].peer_given;
		CHECK(scif_close(c[j].epd) == 0);
	}
	for (int i = 0; i < 2; i++)
		expect_exit(peers[i], 0);
	printf("# 6 connections, 1 MiB each way in pieces up to 3000 bytes, every byte checked,"
	       " in %.0f ms: rings given back %llu times here, %llu and %llu in the peers\n",
	       now_ms() - t0, (unsigned long long)(reclaim_given() - given0),
	       (unsigned long long)peer_given[0], (unsigned long long)peer_given[1]);
	/* The window was there to hit, on both sides. */
	CHECK(reclaim_given() - given0 >= 100);
	CHECK(peer_given[0] >= 50 && peer_given[1] >= 50);
	return 0;
}

static void run_case(const char *name, const char *period)
{
	int ready;

	CHECK(setenv("SCIF_NET_RECLAIM_MS", period, 1) == 0);
	expect_exit(spawn_role(0, name, NULL, &ready), 0);
	close(ready);
}

int main(int argc, char **argv)
{
	if (argc > 2) {
		if (strcmp(argv[1], "peer") == 0)
			return role_peer(argv[2]);
		if (strcmp(argv[1], "give-back") == 0)
			return case_give_back();
		if (strcmp(argv[1], "race") == 0)
			return case_race();
		return 2;
	}
	run_case("give-back", "300");
	run_case("race", "1");
	return 0;
}
