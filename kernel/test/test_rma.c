/*
 * RMA between two processes on different nodes: scif_writeto, scif_readfrom,
 * scif_vwriteto and scif_vreadfrom of one page up to 256 MiB (SCIF_TEST_MIB
 * caps it for valgrind), each checked by a checksum computed on both sides.
 * Every size also goes unaligned: odd byte offsets and lengths, across the
 * boundary of two contiguous windows of the peer. The flags take turns
 * (none, SYNC, ORDERED, all of them).
 *
 * The peer is a role on node 1 that registers its memory (posix_memalign'd)
 * as two windows side by side, sends their offset over SCIF as a real
 * program would, and answers requests on the same connection: fill a range
 * with a pattern, or checksum a range.
 */
#include "check.h"

#define PORT 3600
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)

enum op { FILL = 1, SUM, QUIT };

struct req {
	uint32_t op;
	uint32_t pad;
	uint64_t off, len, seed;
};

static size_t P, S;	/* page size; bytes of each side's memory */

static void send_all(int epd, const void *p, int len)
{
	CHECK(scif_send(epd, (void *)p, len, SCIF_SEND_BLOCK) == len);
}

static void recv_all(int epd, void *p, int len)
{
	CHECK(scif_recv(epd, p, len, SCIF_RECV_BLOCK) == len);
}

/* ---- the peer (node 1) ---- */

static int role_peer(void)
{
	int l = scif_open(), s;
	struct scif_portID who;
	uint8_t *buf = NULL;
	off_t base;
	struct req r;

	CHECK(l >= 0 && scif_bind(l, PORT) == PORT && scif_listen(l, 1) == 0);
	report_ready(1);
	CHECK(scif_accept(l, &who, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	CHECK(posix_memalign((void **)&buf, P, S) == 0);
	/* Two windows, the second right after the first. */
	base = scif_register(s, buf, S / 2, 1 << 20, RW, SCIF_MAP_FIXED);
	CHECK(base == 1 << 20);
	CHECK(scif_register(s, buf + S / 2, S / 2, base + (off_t)(S / 2), RW, SCIF_MAP_FIXED) ==
	      base + (off_t)(S / 2));
	send_all(s, &base, sizeof(base));
	for (;;) {
		uint64_t h;

		recv_all(s, &r, sizeof(r));
		if (r.op == QUIT)
			break;
		CHECK(r.off + r.len <= S);
		if (r.op == FILL)
			fill64(buf + r.off, r.len, r.seed);
		h = sum64(buf + r.off, r.len);
		send_all(s, &h, sizeof(h));
	}
	CHECK(scif_unregister(s, base, S) == 0);
	CHECK(scif_close(s) == 0);
	free(buf);
	return 0;
}

/* ---- this process (node 0) ---- */

static uint64_t ask(int c, enum op op, uint64_t off, uint64_t len, uint64_t seed)
{
	struct req r = { .op = op, .off = off, .len = len, .seed = seed };
	uint64_t h;

	send_all(c, &r, sizeof(r));
	recv_all(c, &h, sizeof(h));
	return h;
}

struct place {
	off_t lo, base;		/* our window's offset; the peer's first window's */
	uint8_t *lbuf, *plain;
};

static const int flag_sets[] = {
	0, SCIF_RMA_SYNC, SCIF_RMA_ORDERED,
	SCIF_RMA_USECPU | SCIF_RMA_SYNC | SCIF_RMA_ORDERED | SCIF_RMA_USECACHE,
};

static double mib_s(size_t n, double ms)
{
	return ms > 0 ? (double)n / (1 << 20) / (ms / 1e3) : 0;
}

/* Done, as a program must know before it tells the peer to look (RMA is
 * asynchronous): by SCIF_RMA_SYNC, or else by a fence. */
static void complete(int c, int flags)
{
	int mark;

	if (flags & SCIF_RMA_SYNC)
		return;
	CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(c, mark) == 0);
}

/*
 * The four calls for n bytes at byte lskew of our window and roff of the
 * peer's registered space (rel: the same, from its first window's start),
 * each complete before it is checked.
 */
static void four_ways(int c, const struct place *pl, size_t n, size_t lskew, uint64_t rel,
		      int flags, uint64_t seed, bool report)
{
	off_t roff = pl->base + (off_t)rel, loff = pl->lo + (off_t)lskew;
	uint8_t *mine = pl->lbuf + lskew, *plain = pl->plain + lskew % 61;
	double t0, t[4];
	uint64_t h;

	fill64(mine, n, seed);
	h = sum64(mine, n);
	t0 = now_ms();
	CHECK(scif_writeto(c, loff, n, roff, flags) == 0);
	complete(c, flags);
	t[0] = now_ms() - t0;
	CHECK(ask(c, SUM, rel, n, 0) == h);

	h = ask(c, FILL, rel, n, seed + 1);
	t0 = now_ms();
	CHECK(scif_readfrom(c, loff, n, roff, flags) == 0);
	complete(c, flags);
	t[1] = now_ms() - t0;
	CHECK(sum64(mine, n) == h);

	fill64(plain, n, seed + 2);
	h = sum64(plain, n);
	t0 = now_ms();
	CHECK(scif_vwriteto(c, plain, n, roff, flags) == 0);
	complete(c, flags);
	t[2] = now_ms() - t0;
	CHECK(ask(c, SUM, rel, n, 0) == h);

	h = ask(c, FILL, rel, n, seed + 3);
	memset(plain, 0, n);
	t0 = now_ms();
	CHECK(scif_vreadfrom(c, plain, n, roff, flags) == 0);
	complete(c, flags);
	t[3] = now_ms() - t0;
	CHECK(sum64(plain, n) == h);
	if (report)
		printf("# %zu MiB: writeto %.0f, readfrom %.0f, vwriteto %.0f, vreadfrom %.0f MiB/s\n",
		       n >> 20, mib_s(n, t[0]), mib_s(n, t[1]), mib_s(n, t[2]), mib_s(n, t[3]));
}

int main(int argc, char **argv)
{
	struct place pl;
	struct scif_portID to = { .node = 1, .port = PORT };
	int ready, c, round = 0;
	pid_t pid;
	size_t sizes[] = { 0, 0, 1u << 20, 16u << 20, 256u << 20 };

	P = page_size();
	S = test_mib(256) << 20;
	if (S < (2u << 20))
		S = 2u << 20;
	if (argc > 2 && strcmp(argv[1], "peer") == 0)
		return role_peer();
	sizes[0] = P;
	sizes[1] = 17 * P;
	pid = spawn_role(1, "peer", NULL, &ready);
	CHECK(await_ready(ready) == 1);
	c = scif_open();
	CHECK(c >= 0 && scif_connect(c, &to) >= 0);
	recv_all(c, &pl.base, sizeof(pl.base));
	/* Ours: one window, a page longer than the peer's, for skewed copies. */
	CHECK(posix_memalign((void **)&pl.lbuf, P, S + P) == 0);
	pl.plain = malloc(S + 64);
	CHECK(pl.plain != NULL);
	pl.lo = scif_register(c, pl.lbuf, S + P, 0, RW, 0);
	CHECK(pl.lo >= 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i] < S ? sizes[i] : S, odd = n > 7 ? n - 7 : n;
		/* Across the middle, where the peer's second window begins. */
		size_t across = odd / 2 + 61 <= S / 2 ? S / 2 - odd / 2 - 61 : (S - odd) / 2;
		int flags = flag_sets[round++ % 4];

		/* Aligned: the start of both spaces; the biggest fill both windows. */
		four_ways(c, &pl, n, 0, 0, flags, 10 * i, n >= (16u << 20));
		/* Skewed: odd length and offsets, across the peer's two windows. */
		four_ways(c, &pl, odd, 5, across, flag_sets[round++ % 4], 10 * i + 5, false);
		if (sizes[i] >= S)
			break;
	}
	CHECK(scif_unregister(c, pl.lo, S + P) == 0);
	send_all(c, &(struct req){ .op = QUIT }, sizeof(struct req));
	expect_exit(pid, 0);
	CHECK(scif_close(c) == 0);
	CHECK(close(ready) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	free(pl.lbuf);
	free(pl.plain);
	return 0;
}
