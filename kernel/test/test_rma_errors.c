/*
 * SCIF's errno for bad offsets, lengths, protections and flags in RMA,
 * remote mapping and fences: EINVAL (flags, lengths, alignment), ENXIO
 * (ranges that are not registered, negative offsets, gaps between windows,
 * a signal across two windows), EACCES (a window's protection), EFAULT (no
 * local memory), EBADF, ENOTCONN before connecting, and ECONNRESET once
 * the connection's node was lost (a card reset) or the peer closed. A
 * refused call moves no byte. Both ends live in this process.
 */
#include <sys/mman.h>

#include "check.h"

#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)

static size_t P;

/* The peer's (s's) windows, fixed: RW at A (2 pages) and B (right after, 1
 * page), read-only at RO, write-only at WO, none at NONE; a gap after B. */
#define A (1 * 1024 * 1024)
#define B (A + 2 * (off_t)P)
#define RO (8 * 1024 * 1024)
#define WO (9 * 1024 * 1024)
#define NONE (10 * 1024 * 1024)
/* Ours (c's): RW at LA (3 pages), read-only at LRO, write-only at LWO. */
#define LA (1 * 1024 * 1024)
#define LRO (2 * 1024 * 1024)
#define LWO (3 * 1024 * 1024)

static uint8_t *peer_mem, *my_mem;

static void reg(int epd, void *p, size_t len, off_t off, int prot)
{
	CHECK(scif_register(epd, p, len, off, prot, SCIF_MAP_FIXED) == off);
}

static void setup(int c, int s)
{
	CHECK(posix_memalign((void **)&peer_mem, P, 8 * P) == 0);
	CHECK(posix_memalign((void **)&my_mem, P, 8 * P) == 0);
	memset(peer_mem, 0x11, 8 * P);
	memset(my_mem, 0x22, 8 * P);
	reg(s, peer_mem, 2 * P, A, RW);
	reg(s, peer_mem + 2 * P, P, B, RW);
	reg(s, peer_mem + 3 * P, P, RO, SCIF_PROT_READ);
	reg(s, peer_mem + 4 * P, P, WO, SCIF_PROT_WRITE);
	reg(s, peer_mem + 5 * P, P, NONE, 0);
	reg(c, my_mem, 3 * P, LA, RW);
	reg(c, my_mem + 3 * P, P, LRO, SCIF_PROT_READ);
	reg(c, my_mem + 4 * P, P, LWO, SCIF_PROT_WRITE);
}

static void expect_untouched(void)
{
	for (size_t i = 0; i < 6 * P; i++)
		CHECK(peer_mem[i] == 0x11);
	for (size_t i = 0; i < 5 * P; i++)
		CHECK(my_mem[i] == 0x22);
}

static void check_rma(int c)
{
	uint8_t buf[64] = { 0 };

	/* Flags and lengths. */
	CHECK_ERR(scif_writeto(c, LA, 8, A, 0x10), EINVAL);
	CHECK_ERR(scif_readfrom(c, LA, 8, A, -1), EINVAL);
	CHECK_ERR(scif_vwriteto(c, buf, 8, A, 0x100), EINVAL);
	CHECK_ERR(scif_vreadfrom(c, buf, 8, A, 1 << 20), EINVAL);
	CHECK_ERR(scif_writeto(c, LA, 0, A, 0), EINVAL);
	CHECK_ERR(scif_vreadfrom(c, buf, 0, A, 0), EINVAL);
	/* No local memory. */
	CHECK_ERR(scif_vwriteto(c, NULL, 8, A, 0), EFAULT);
	CHECK_ERR(scif_vreadfrom(c, NULL, 8, A, 0), EFAULT);
	/* Ranges of the peer's space that are not (all) registered. */
	CHECK_ERR(scif_writeto(c, LA, 8, A - 8, 0), ENXIO);		/* starts before A */
	CHECK_ERR(scif_writeto(c, LA, 8, B + (off_t)P - 4, 0), ENXIO);	/* runs past B */
	CHECK_ERR(scif_vwriteto(c, buf, 8, 0, 0), ENXIO);
	CHECK_ERR(scif_vwriteto(c, buf, 8, -(off_t)P, 0), ENXIO);
	CHECK_ERR(scif_readfrom(c, LA, 8, -8, 0), ENXIO);
	CHECK_ERR(scif_vreadfrom(c, buf, 8, INT64_MAX - 4, 0), ENXIO);
	CHECK_ERR(scif_writeto(c, LA, 3 * P, A + 1, 0), ENXIO);	/* across A, B, the gap */
	/* ... and of ours. */
	CHECK_ERR(scif_writeto(c, LA - 8, 8, A, 0), ENXIO);
	CHECK_ERR(scif_readfrom(c, LA + 3 * (off_t)P - 4, 8, A, 0), ENXIO);
	CHECK_ERR(scif_writeto(c, -8, 8, A, 0), ENXIO);
	CHECK_ERR(scif_readfrom(c, 0, 8, A, 0), ENXIO);
	/* Protections: write to the peer's needs its WRITE, read its READ... */
	CHECK_ERR(scif_writeto(c, LA, 8, RO, 0), EACCES);
	CHECK_ERR(scif_vwriteto(c, buf, 8, RO, 0), EACCES);
	CHECK_ERR(scif_readfrom(c, LA, 8, WO, 0), EACCES);
	CHECK_ERR(scif_vreadfrom(c, buf, 8, WO, 0), EACCES);
	CHECK_ERR(scif_vreadfrom(c, buf, 8, NONE, 0), EACCES);
	CHECK_ERR(scif_vwriteto(c, buf, 8, NONE, 0), EACCES);
	/* ... and ours the other way round. */
	CHECK_ERR(scif_writeto(c, LWO, 8, A, 0), EACCES);
	CHECK_ERR(scif_readfrom(c, LRO, 8, A, 0), EACCES);
	/* A protection error beyond a gap is still a gap. */
	CHECK_ERR(scif_vwriteto(c, buf, 2 * P, B, 0), ENXIO);
	expect_untouched();
	/* What is allowed works, across A and B too. */
	CHECK(scif_writeto(c, LRO, 8, WO, 0) == 0);
	CHECK(scif_readfrom(c, LWO, 8, RO, 0) == 0);
	CHECK(scif_writeto(c, LA, 2 * P, A + (off_t)P, SCIF_RMA_SYNC) == 0);
	CHECK(peer_mem[P] == 0x22 && peer_mem[3 * P - 1] == 0x22 && peer_mem[P - 1] == 0x11);
}

static void check_mmap(int c)
{
	void *fixed = mmap(NULL, 2 * P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *m;

	CHECK(fixed != MAP_FAILED);
	CHECK(scif_mmap(NULL, P, RW, 0x1, c, A) == SCIF_MMAP_FAILED && errno == EINVAL);
	CHECK(scif_mmap(NULL, P, RW | 8, 0, c, A) == SCIF_MMAP_FAILED && errno == EINVAL);
	CHECK(scif_mmap(NULL, 0, RW, 0, c, A) == SCIF_MMAP_FAILED && errno == EINVAL);
	CHECK(scif_mmap(NULL, P + 1, RW, 0, c, A) == SCIF_MMAP_FAILED && errno == EINVAL);
	CHECK(scif_mmap(NULL, P, RW, 0, c, A + 8) == SCIF_MMAP_FAILED && errno == EINVAL);
	CHECK(scif_mmap((uint8_t *)fixed + 1, P, RW, SCIF_MAP_FIXED, c, A) == SCIF_MMAP_FAILED &&
	      errno == EINVAL);
	CHECK(scif_mmap(NULL, P, RW, 0, c, -(off_t)P) == SCIF_MMAP_FAILED && errno == ENXIO);
	CHECK(scif_mmap(NULL, P, RW, 0, c, 0) == SCIF_MMAP_FAILED && errno == ENXIO);
	CHECK(scif_mmap(NULL, 4 * P, RW, 0, c, A) == SCIF_MMAP_FAILED && errno == ENXIO);
	CHECK(scif_mmap(NULL, P, RW, 0, c, RO) == SCIF_MMAP_FAILED && errno == EACCES);
	CHECK(scif_mmap(NULL, P, SCIF_PROT_READ, 0, c, WO) == SCIF_MMAP_FAILED && errno == EACCES);
	CHECK(scif_mmap(NULL, P, SCIF_PROT_READ, 0, c, NONE) == SCIF_MMAP_FAILED && errno == EACCES);
	CHECK(scif_mmap(NULL, P, RW, 0, -1, A) == SCIF_MMAP_FAILED && errno == EBADF);
	CHECK_ERR(scif_munmap((uint8_t *)fixed + 1, P), EINVAL);
	CHECK_ERR(scif_munmap(fixed, P - 1), EINVAL);
	/* Allowed: read-only as read-only, a fixed address, across A and B. */
	m = scif_mmap(NULL, P, SCIF_PROT_READ, 0, c, RO);
	CHECK(m != SCIF_MMAP_FAILED && m[0] == 0x11 && scif_munmap(m, P) == 0);
	m = scif_mmap(fixed, 2 * P, RW, SCIF_MAP_FIXED, c, A + (off_t)P);
	CHECK(m == fixed && m[0] == peer_mem[P] && m[P] == peer_mem[2 * P]);
	m[P] = 0x33;
	CHECK(peer_mem[2 * P] == 0x33);
	CHECK(scif_munmap(m, 2 * P) == 0);
}

static void check_fences(int c)
{
	int mark;

	/* Exactly one INIT flag, and nothing else, for marks. */
	CHECK_ERR(scif_fence_mark(c, 0, &mark), EINVAL);
	CHECK_ERR(scif_fence_mark(c, SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER, &mark), EINVAL);
	CHECK_ERR(scif_fence_mark(c, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL, &mark), EINVAL);
	CHECK_ERR(scif_fence_mark(c, SCIF_FENCE_RAS_SELF, &mark), EINVAL);
	/* Every int is a mark: bit 31 (a negative one) says the peer's, as in
	 * MPSS 4; one never issued waits for nothing. */
	CHECK(scif_fence_wait(c, -1) == 0 && scif_fence_wait(c, INT32_MAX) == 0);
	/* Signals: one INIT flag, at least one SIGNAL flag, dword offsets. */
	CHECK_ERR(scif_fence_signal(c, LA, 1, A, 1, SCIF_SIGNAL_LOCAL), EINVAL);
	CHECK_ERR(scif_fence_signal(c, LA, 1, A, 1, SCIF_FENCE_INIT_SELF), EINVAL);
	CHECK_ERR(scif_fence_signal(c, LA, 1, A, 1, SCIF_FENCE_INIT_SELF | SCIF_FENCE_INIT_PEER |
				    SCIF_SIGNAL_LOCAL), EINVAL);
	CHECK_ERR(scif_fence_signal(c, LA, 1, A, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL | 0x100),
		  EINVAL);
	CHECK_ERR(scif_fence_signal(c, LA + 2, 1, A, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL),
		  EINVAL);
	CHECK_ERR(scif_fence_signal(c, LA, 1, A + 6, 1, SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_REMOTE),
		  EINVAL);
	/* An unaligned offset that is not signalled does not matter. */
	CHECK(scif_fence_signal(c, LA + 2, 1, A + 8, 0x44, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE)
	      == 0);
	CHECK(peer_mem[8] == 0x44 && peer_mem[9] == 0);
	/* Eight bytes inside one registered window that allows writing. */
	CHECK_ERR(scif_fence_signal(c, 0, 1, A, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL), ENXIO);
	CHECK_ERR(scif_fence_signal(c, LA, 1, -8, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE), ENXIO);
	CHECK_ERR(scif_fence_signal(c, LA, 1, B - 4, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE),
		  ENXIO);	/* half in A, half in B */
	CHECK_ERR(scif_fence_signal(c, LA, 1, RO, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE),
		  EACCES);
	CHECK_ERR(scif_fence_signal(c, LRO, 1, A, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL), EACCES);
	CHECK(scif_fence_signal(c, LA + 4, 0x0102030405060708ull, A + 12, 0x55,
				SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_LOCAL | SCIF_SIGNAL_REMOTE) == 0);
	CHECK(my_mem[4] == 8 && my_mem[11] == 1 && peer_mem[12] == 0x55);
	/* A mark taken before any RMA, and marks of both kinds, return. */
	CHECK(scif_fence_wait(c, 0) == 0);
	CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark) == 0 && mark >= 0);
	CHECK(scif_fence_wait(c, mark) == 0);
	CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_PEER, &mark) == 0 && mark < 0);	/* bit 31 */
	CHECK(scif_fence_wait(c, mark) == 0);
}

/* Every call on endpoints that are not, or no longer, connected. */
static void check_states(int c, int s)
{
	int unbound = scif_open(), bound = scif_open(), closed = scif_open(), mark;
	uint8_t buf[8];

	CHECK(unbound >= 0 && bound >= 0 && closed >= 0);
	CHECK(scif_bind(bound, 7300) == 7300 && scif_close(closed) == 0);
	struct {
		int epd, err;
	} cases[] = { { unbound, ENOTCONN }, { bound, ENOTCONN }, { closed, EBADF }, { s, ECONNRESET } };
	/* The node of both ends lost (a card reset): the connection is reset,
	 * for good - the node coming back does not bring it back. */
	CHECK(scif_net_set_node_online(0, 0) == 0);
	CHECK_ERR(scif_writeto(c, LA, 8, A, 0), ECONNRESET);
	CHECK(scif_mmap(NULL, P, RW, 0, c, A) == SCIF_MMAP_FAILED && errno == ECONNRESET);
	CHECK(scif_net_set_node_online(0, 1) == 0);
	CHECK_ERR(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark), ECONNRESET);
	CHECK_ERR(scif_register(c, my_mem, P, 0, RW, 0), ECONNRESET);
	CHECK(scif_close(c) == 0);	/* s's peer */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int e = cases[i].epd, err = cases[i].err;

		CHECK_ERR(scif_writeto(e, LA, 8, A, 0), err);
		CHECK_ERR(scif_readfrom(e, LA, 8, A, 0), err);
		CHECK_ERR(scif_vwriteto(e, buf, 8, A, 0), err);
		CHECK_ERR(scif_vreadfrom(e, buf, 8, A, 0), err);
		CHECK(scif_mmap(NULL, P, RW, 0, e, A) == SCIF_MMAP_FAILED && errno == err);
		CHECK_ERR(scif_fence_mark(e, SCIF_FENCE_INIT_SELF, &mark), err);
		CHECK_ERR(scif_fence_wait(e, 0), err);
		CHECK_ERR(scif_fence_signal(e, LA, 1, A, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL), err);
		CHECK_ERR(scif_register(e, my_mem, P, 0, RW, 0), err);
		CHECK_ERR(scif_unregister(e, A, P), err);
	}
	CHECK(scif_close(unbound) == 0 && scif_close(bound) == 0 && scif_close(s) == 0);
}

int main(void)
{
	int c, s;

	P = page_size();
	connect_pair(7200, &c, &s);
	setup(c, s);
	check_rma(c);
	check_mmap(c);
	check_fences(c);
	check_states(c, s);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	free(peer_mem);
	free(my_mem);
	return 0;
}
