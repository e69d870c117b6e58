/*
 * Queue pairs carved from arenas (arena.h): the connections between two
 * processes share one memfd, each with rings of its own, and the memory goes
 * with the last of them.
 *
 *   shared    100 connections to the role: two arenas a side (64 queue pairs
 *             in each), every connection's bytes intact while all carry
 *             them at once; closed, no arena left here, and the role keeps
 *             only the one its next caller's connection is in
 *   apart     a forked child's connection to the same role is in an arena of
 *             its own, not in its parent's
 *   forked    a forked acceptor does not carve from the arenas it inherited
 *             (its parent goes on carving them): the child's queue pair is
 *             in a new arena, the parent's next in the old one, and all
 *             three connections carry bytes
 *   retired   a connection closed on both sides, in an arena another keeps:
 *             the idle sweep gives its pages back, not the other's
 *   swept     an arena's last close while a sweep punches its retired
 *             pages: unmapped when that close returns, all the same
 *
 * The role (conn_role.h) plays node 1. Which arena a connection is in is
 * read through the fabric's internals.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "conn_role.h"
#include "endpoint.h"
#include "reclaim.h"

#define PORT 3950
#define LOCAL_PORT 3951
#define RETIRE_PORT 3952
#define SWEPT_PORT 3953
#define N 100
#define LEN 3000

static struct scif_portID role_at = { .node = 1, .port = PORT };

static int dial(struct scif_portID *to)
{
	int epd = scif_open();

	CHECK(epd >= 0 && scif_connect(epd, to) > 0);
	return epd;
}

static const struct arena *arena_of(int epd)
{
	struct endpoint *ep = ep_find(epd);
	const struct arena *a;

	CHECK(ep != NULL);
	a = ep->qp.arena;
	ep_put(ep);
	CHECK(a != NULL);
	return a;
}

static void shared(void)
{
	static uint8_t out[N][LEN], back[LEN];
	int c[N], n = LEN, role_arenas;

	for (int i = 0; i < N; i++)
		c[i] = dial(&role_at);
	CHECK(arena_count() == 2 && count_maps_of(ARENA_MEMFD) == 2);
	CHECK(arena_of(c[0]) == arena_of(c[ARENA_MAX_QPS - 1]));
	CHECK(arena_of(c[ARENA_MAX_QPS]) != arena_of(c[0]));
	CHECK(arena_of(c[N - 1]) == arena_of(c[ARENA_MAX_QPS]));
	CHECK(ask(c[0], 'a') == 2);
	/* All in flight at once: a ring written into another's would show. */
	for (int i = 0; i < N; i++) {
		fill64(out[i], LEN, (uint64_t)i + 1);
		send_all(c[i], "e", 1);
		send_all(c[i], &n, sizeof(n));
		send_all(c[i], out[i], LEN);
	}
	for (int i = N - 1; i >= 0; i--) {
		recv_all(c[i], back, LEN);
		CHECK(memcmp(back, out[i], LEN) == 0);
	}
	for (int i = 0; i < N; i++) {
		role_quit(c[i]);
		CHECK(scif_close(c[i]) == 0);
	}
	CHECK(arena_count() == 0 && count_maps_of(ARENA_MEMFD) == 0);
	/* The role's last close may come after our last: ask until it is done. */
	c[0] = dial(&role_at);
	for (double until = now_ms() + 10000; (role_arenas = ask(c[0], 'a')) != 1 && now_ms() < until;)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	CHECK(role_arenas == 1);
	role_quit(c[0]);
	CHECK(scif_close(c[0]) == 0);
	printf("# shared: %d connections in 2 arenas a side, bytes intact; all unmapped once closed\n", N);
}

static void apart(void)
{
	int c = dial(&role_at), p[2];
	const struct arena *mine = arena_of(c);
	pid_t pid;

	CHECK(pipe(p) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int k = dial(&role_at);
		uint8_t arenas = (uint8_t)ask(k, 'a');

		/* Its own, beside the one inherited from us. */
		CHECK(arena_of(k) != mine && arena_count() == 2);
		role_quit(k);
		CHECK(scif_close(k) == 0);
		CHECK(write(p[1], &arenas, 1) == 1);
		_exit(0);
	}
	{
		uint8_t arenas;

		CHECK(read(p[0], &arenas, 1) == 1);
		CHECK(arenas == 2);	/* the role's: ours and the child's */
	}
	expect_exit(pid, 0);
	close(p[0]);
	close(p[1]);
	role_quit(c);
	CHECK(scif_close(c) == 0);
	printf("# apart: a forked child's connection is in an arena of its own\n");
}

/* A byte each way: ping on the caller's side, pong on the acceptor's. */
static void ping(int c)
{
	char x = 0;

	CHECK(scif_send(c, "x", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_recv(c, &x, 1, SCIF_RECV_BLOCK) == 1 && x == 'y');
}

static void pong(int s)
{
	char x = 0;

	CHECK(scif_recv(s, &x, 1, SCIF_RECV_BLOCK) == 1 && x == 'x');
	CHECK(scif_send(s, "y", 1, SCIF_SEND_BLOCK) == 1);
}

static void ping_pong(int c, int s)
{
	char x = 0;

	CHECK(scif_send(c, "x", 1, SCIF_SEND_BLOCK) == 1);
	pong(s);
	CHECK(scif_recv(c, &x, 1, SCIF_RECV_BLOCK) == 1 && x == 'y');
}

/* A connection to ourselves through listener l: c the caller, s the accepted. */
static void pair(int l, struct scif_portID *to, int *c, int *s)
{
	struct scif_pollepd pe = { .events = POLLOUT };
	struct scif_portID who;
	int flags;

	*c = scif_open();
	CHECK(*c >= 0);
	flags = fcntl(*c, F_GETFL);
	CHECK(flags >= 0 && fcntl(*c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(*c, to), EINPROGRESS);
	CHECK(scif_accept(l, &who, s, SCIF_ACCEPT_SYNC) == 0);
	pe.epd = *c;
	CHECK(scif_poll(&pe, 1, -1) == 1 && pe.revents == POLLOUT);
	CHECK(scif_connect(*c, to) > 0);
	CHECK(fcntl(*c, F_SETFL, flags) == 0);
}

static void forked(void)
{
	struct scif_portID self = { .node = 0, .port = LOCAL_PORT }, who;
	int l = listen_on(LOCAL_PORT, 4), c[3], s[3];
	pid_t pid;

	pair(l, &self, &c[0], &s[0]);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The parent's arena for this caller is in our table too. */
		CHECK(scif_accept(l, &who, &s[1], SCIF_ACCEPT_SYNC) == 0);
		pong(s[1]);
		_exit(0);
	}
	c[1] = dial(&self);
	ping(c[1]);
	expect_exit(pid, 0);
	pair(l, &self, &c[2], &s[2]);
	CHECK(arena_of(c[1]) != arena_of(c[0]));
	CHECK(arena_of(c[2]) == arena_of(c[0]));
	ping_pong(c[0], s[0]);
	ping_pong(c[2], s[2]);
	for (int i = 0; i < 3; i++)
		CHECK(scif_close(c[i]) == 0);
	CHECK(scif_close(s[0]) == 0 && scif_close(s[2]) == 0 && scif_close(l) == 0);
	CHECK(arena_count() == 0);
	printf("# forked: the child acceptor carved a new arena; the parent went on with its own\n");
}

/* Resident pages of the queue pair of epd (its mapping here). */
static int resident(uint8_t *hdr, size_t len)
{
	unsigned char vec[64];
	size_t pages = len / page_size();
	int n = 0;

	CHECK(pages <= sizeof(vec) && mincore(hdr, len, vec) == 0);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static void qp_of(int epd, uint8_t **hdr, size_t *len)
{
	struct endpoint *ep = ep_find(epd);

	CHECK(ep != NULL && ep->qp.hdr != NULL);
	*hdr = (uint8_t *)ep->qp.hdr;
	*len = ep->qp.map_len;
	ep_put(ep);
}

static void retired(void)
{
	struct scif_portID self = { .node = 0, .port = RETIRE_PORT };
	int l = listen_on(RETIRE_PORT, 4), kc, ks, c, s;
	uint8_t *kept, *gone;
	size_t len;
	uint64_t sweeps;

	pair(l, &self, &kc, &ks);
	pair(l, &self, &c, &s);
	CHECK(arena_of(c) == arena_of(kc));
	ping_pong(kc, ks);
	ping_pong(c, s);
	qp_of(kc, &kept, &len);
	qp_of(c, &gone, &len);
	/* The header and a page of each ring, written. */
	CHECK(resident(gone, len) == 3 && resident(kept, len) == 3);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	sweeps = reclaim_sweeps();
	while (reclaim_sweeps() < sweeps + 2)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	CHECK(resident(gone, len) == 0);
	/* The other's rings, idle as long, are its writers' to give (the
	 * sweep of idle rings): its header stays. */
	CHECK(resident(kept, len) >= 1);
	ping_pong(kc, ks);
	CHECK(scif_close(kc) == 0 && scif_close(ks) == 0 && scif_close(l) == 0);
	CHECK(arena_count() == 0);
	printf("# retired: a connection closed on both sides gave its pages back; its neighbour kept its own\n");
}

static _Atomic bool sweeping;

static void *sweeper(void *arg)
{
	(void)arg;
	/* Yielding, or under valgrind, which runs one thread at a time, it
	 * would leave the test's thread little time. */
	while (sweeping) {
		CHECK(arena_sweep() == 0);
		sched_yield();
	}
	return NULL;
}

static void swept(void)
{
	struct scif_portID self = { .node = 0, .port = SWEPT_PORT };
	int l = listen_on(SWEPT_PORT, 4), rounds = 300;
	pthread_t t;

	sweeping = true;
	CHECK(pthread_create(&t, NULL, sweeper, NULL) == 0);
	for (int i = 0; i < rounds; i++) {
		int kc, ks, c, s;

		pair(l, &self, &kc, &ks);
		pair(l, &self, &c, &s);
		ping_pong(c, s);
		/* Retired on one side or the other, by turns: there is something
		 * to punch in the arena whose last close comes next. */
		if (i % 2)
			CHECK(scif_close(c) == 0 && scif_close(s) == 0);
		else
			CHECK(scif_close(s) == 0 && scif_close(c) == 0);
		CHECK(scif_close(kc) == 0 && scif_close(ks) == 0);
		CHECK(arena_count() == 0 && count_maps_of(ARENA_MEMFD) == 0);
	}
	sweeping = false;
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(scif_close(l) == 0);
	printf("# swept: %d last closes beside a sweeping thread, each left no arena mapped\n", rounds);
}

int main(int argc, char **argv)
{
	char port[16];
	int ready;
	pid_t pid;

	/* Sweeps come quickly ('retired'). */
	setenv("SCIF_NET_RECLAIM_MS", "20", 1);
	if (argc > 2 && strcmp(argv[1], "serve") == 0)
		return role_serve(argv[2]);
	snprintf(port, sizeof(port), "%d", PORT);
	pid = spawn_role(1, "serve", port, &ready);
	CHECK(await_ready(ready) == 1);
	shared();
	apart();
	forked();
	retired();
	swept();
	CHECK(kill(pid, SIGKILL) == 0);
	expect_signal(pid, SIGKILL);
	CHECK(close(ready) == 0);
	return 0;
}
