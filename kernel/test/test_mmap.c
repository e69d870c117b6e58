/*
 * Remote mapping between two processes on different nodes, seen by both
 * sides: the owner (a role on node 1) registers posix_memalign'd memory and
 * spins on a flag in it through its own pointer while this process stores
 * data and the flag through scif_mmap; then the other way round; then a
 * ping-pong through one flag (its round trip is printed). The mapping stays
 * the owner's pages after this process's scif_close, and valid memory after
 * the owner closes and exits, until scif_munmap; a read-only window maps
 * only read-only; SCIF_MAP_FIXED places the mapping exactly.
 */
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "check.h"

#define PORT 3700
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define ROUNDS 2000

static size_t P;

/* Page 0 holds the flags, one per cache line; pages 1 and 2 data. */
static _Atomic uint32_t *flag(uint8_t *base, int i)
{
	return (_Atomic uint32_t *)(base + 64 * i);
}

static void wait_for(uint8_t *base, int i, uint32_t v)
{
	while (atomic_load_explicit(flag(base, i), memory_order_acquire) != v)
		sched_yield();
}

static void set(uint8_t *base, int i, uint32_t v)
{
	atomic_store_explicit(flag(base, i), v, memory_order_release);
}

/* The checksum of n bytes of fill64(seed). */
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

/* ---- the owner (node 1) ---- */

static int role_owner(void)
{
	int l = scif_open(), s;
	struct scif_portID who;
	uint8_t *buf, *ro;
	off_t off[2];

	CHECK(posix_memalign((void **)&buf, P, 4 * P) == 0);
	CHECK(posix_memalign((void **)&ro, P, P) == 0);
	memset(buf, 0, 4 * P);
	memset(ro, 0x5e, P);
	CHECK(l >= 0 && scif_bind(l, PORT) == PORT && scif_listen(l, 1) == 0);
	report_ready(1);
	CHECK(scif_accept(l, &who, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	off[0] = scif_register(s, buf, 4 * P, 0, RW, 0);
	off[1] = scif_register(s, ro, P, 0, SCIF_PROT_READ, 0);
	CHECK(off[0] >= 0 && off[1] >= 0);
	CHECK(scif_send(s, off, sizeof(off), SCIF_SEND_BLOCK) == sizeof(off));

	/* The peer's stores, seen through our own pointer. */
	wait_for(buf, 0, 1);
	CHECK(sum64(buf + P, P) == sum_of_fill(P, 1));
	/* Ours, for the peer to see through its mapping. */
	fill64(buf + 2 * P, P, 2);
	set(buf, 1, 1);
	/* Ping-pong: odd values are the peer's, even ones ours. */
	for (uint32_t v = 1; v < 2 * ROUNDS; v += 2) {
		wait_for(buf, 2, v);
		set(buf, 2, v + 1);
	}
	/* Written after the peer closed its endpoint: still our pages. */
	wait_for(buf, 3, 7);
	report_ready(2);
	/* The peer is gone: our windows go with our endpoint, and the
	 * peer's mapping outlives that and our exit. */
	CHECK_ERR(scif_unregister(s, off[0], 4 * P), ECONNRESET);
	CHECK(scif_close(s) == 0);
	CHECK(sum64(buf + P, P) == sum_of_fill(P, 1));
	free(buf);
	free(ro);
	return 0;
}

/* ---- this process (node 0) ---- */

int main(int argc, char **argv)
{
	struct scif_portID to = { .node = 1, .port = PORT };
	uint8_t *m, *r, *spot;
	int ready, c;
	off_t off[2];
	pid_t pid;
	double t0;

	P = page_size();
	if (argc > 2 && strcmp(argv[1], "owner") == 0)
		return role_owner();
	pid = spawn_role(1, "owner", NULL, &ready);
	CHECK(await_ready(ready) == 1);
	c = scif_open();
	CHECK(c >= 0 && scif_connect(c, &to) >= 0);
	CHECK(scif_recv(c, off, sizeof(off), SCIF_RECV_BLOCK) == sizeof(off));

	/* Read-only maps read-only, and only so; SCIF_MAP_FIXED goes exactly there. */
	CHECK(scif_mmap(NULL, P, RW, 0, c, off[1]) == SCIF_MMAP_FAILED && errno == EACCES);
	spot = mmap(NULL, P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(spot != MAP_FAILED);
	r = scif_mmap(spot, P, SCIF_PROT_READ, SCIF_MAP_FIXED, c, off[1]);
	CHECK(r == spot && r[0] == 0x5e && r[P - 1] == 0x5e);

	m = scif_mmap(NULL, 4 * P, RW, 0, c, off[0]);
	CHECK(m != SCIF_MMAP_FAILED);
	fill64(m + P, P, 1);
	set(m, 0, 1);
	wait_for(m, 1, 1);
	CHECK(sum64(m + 2 * P, P) == sum_of_fill(P, 2));
	t0 = now_ms();
	for (uint32_t v = 1; v < 2 * ROUNDS; v += 2) {
		set(m, 2, v);
		wait_for(m, 2, v + 1);
	}
	printf("# remote mmap round trip: %.2f us\n", (now_ms() - t0) * 1e3 / ROUNDS);

	/* Closing the endpoint leaves the mapping alone. */
	CHECK(scif_close(c) == 0);
	set(m, 3, 7);
	CHECK(await_ready(ready) == 2);
	expect_exit(pid, 0);
	/* The owner is gone: its pages live on in our mapping. */
	CHECK(sum64(m + 2 * P, P) == sum_of_fill(P, 2) && r[0] == 0x5e);
	m[0] = 1;
	CHECK(count_window_maps() == 2);
	CHECK(scif_munmap(m, 4 * P) == 0 && scif_munmap(r, P) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(close(ready) == 0);
	return 0;
}
