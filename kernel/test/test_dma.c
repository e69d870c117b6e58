/*
 * RMA is asynchronous, as the driver's DMA: scif_writeto and its kin return
 * before the copy, which the DMA engine makes later, in order; SCIF_RMA_SYNC,
 * a fence (mark and wait) or scif_fence_signal wait for it. With the engine
 * held back before each copy (SCIF_NET_DMA_DELAY_US), a program that forgets
 * its fence is caught every time:
 *  (a) the four calls: nothing has landed when each returns; after a mark
 *      and a wait, all of it has;
 *  (b) SCIF_RMA_SYNC: landed when the call returns;
 *  (c) in order: two writes to one place, fenced: the second one's bytes;
 *  (d) vwriteto copies from the caller's memory when the engine gets to it
 *      (so it must stay valid until a fence): bytes changed after the call
 *      are what lands;
 *  (e) scif_fence_signal: once its value shows, the data is there;
 *  (f) the peer's fence (INIT_PEER) waits for our RMA too;
 *  (g) unregistering a window an RMA of ours is still to copy into returns
 *      once it has, with the pages private again and holding it;
 *  (h) scif_close with RMAs queued returns once they are done; nothing
 *      leaks.
 * Both ends of the connection live in this process (one engine for both).
 */
#include <stdatomic.h>

#include "check.h"

#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define DELAY_US "100000"	/* long beside anything the test does meanwhile */

static size_t P;

struct conn {
	int c, s;
	uint8_t *cbuf, *sbuf;	/* c's window memory, s's: 4 pages each */
	off_t co, so;		/* their offsets */
};

static void open_conn(struct conn *k, uint16_t port)
{
	connect_pair(port, &k->c, &k->s);
	CHECK(posix_memalign((void **)&k->cbuf, P, 4 * P) == 0);
	CHECK(posix_memalign((void **)&k->sbuf, P, 4 * P) == 0);
	memset(k->cbuf, 0, 4 * P);
	memset(k->sbuf, 0, 4 * P);
	k->co = scif_register(k->c, k->cbuf, 4 * P, 0, RW, 0);
	k->so = scif_register(k->s, k->sbuf, 4 * P, 0, RW, 0);
	CHECK(k->co >= 0 && k->so >= 0);
}

static void fence(int epd, int init)
{
	int mark;

	CHECK(scif_fence_mark(epd, init, &mark) == 0);
	CHECK(scif_fence_wait(epd, mark) == 0);
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* (a), (b), (c) */
static void check_fences(struct conn *k)
{
	uint8_t *plain = malloc(P);

	CHECK(plain != NULL);
	/* writeto: c's first page into s's. */
	memset(k->cbuf, 0xa1, P);
	CHECK(scif_writeto(k->c, k->co, P, k->so, 0) == 0);
	CHECK(all(k->sbuf, P, 0));		/* a program that looks now races */
	fence(k->c, SCIF_FENCE_INIT_SELF);
	CHECK(all(k->sbuf, P, 0xa1));
	/* readfrom: s's second page into c's. */
	memset(k->sbuf + P, 0xa2, P);
	CHECK(scif_readfrom(k->c, k->co + (off_t)P, P, k->so + (off_t)P, 0) == 0);
	CHECK(all(k->cbuf + P, P, 0));
	fence(k->c, SCIF_FENCE_INIT_SELF);
	CHECK(all(k->cbuf + P, P, 0xa2));
	/* vwriteto and vreadfrom, with plain memory. */
	memset(plain, 0xa3, P);
	CHECK(scif_vwriteto(k->c, plain, P, k->so + 2 * (off_t)P, 0) == 0);
	CHECK(all(k->sbuf + 2 * P, P, 0));
	fence(k->c, SCIF_FENCE_INIT_SELF);
	CHECK(all(k->sbuf + 2 * P, P, 0xa3));
	memset(plain, 0, P);
	CHECK(scif_vreadfrom(k->c, plain, P, k->so + 2 * (off_t)P, 0) == 0);
	CHECK(all(plain, P, 0));
	fence(k->c, SCIF_FENCE_INIT_SELF);
	CHECK(all(plain, P, 0xa3));
	/* (b) */
	memset(k->cbuf + 3 * P, 0xb1, P);
	CHECK(scif_writeto(k->c, k->co + 3 * (off_t)P, P, k->so + 3 * (off_t)P, SCIF_RMA_SYNC) == 0);
	CHECK(all(k->sbuf + 3 * P, P, 0xb1));
	/* (c) */
	memset(plain, 0xc1, P);
	CHECK(scif_vwriteto(k->c, plain, P, k->so, 0) == 0);
	CHECK(scif_writeto(k->c, k->co + 3 * (off_t)P, P, k->so, 0) == 0);
	fence(k->c, SCIF_FENCE_INIT_SELF);
	CHECK(all(k->sbuf, P, 0xb1));
	free(plain);
}

/* (d) */
static void check_later_copy(struct conn *k)
{
	uint8_t *plain = malloc(P);

	CHECK(plain != NULL);
	memset(plain, 0xd1, P);
	CHECK(scif_vwriteto(k->c, plain, P, k->so, 0) == 0);
	memset(plain, 0xd2, P);			/* before the engine got to it */
	fence(k->c, SCIF_FENCE_INIT_SELF);
	CHECK(all(k->sbuf, P, 0xd2));
	free(plain);
}

/* (e) */
static void check_signal(struct conn *k)
{
	_Atomic uint64_t *flag = (_Atomic uint64_t *)(k->sbuf + 3 * P);

	atomic_store(flag, 0);
	memset(k->cbuf, 0xe1, P);
	CHECK(scif_writeto(k->c, k->co, P, k->so, 0) == 0);
	CHECK(scif_fence_signal(k->c, 0, 0, k->so + 3 * (off_t)P, 0xe1e1,
				SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE) == 0);
	/* Spun on by the peer, in a real program. */
	CHECK(atomic_load_explicit(flag, memory_order_acquire) == 0xe1e1);
	CHECK(all(k->sbuf, P, 0xe1));
}

/* (f) */
static void check_peer_fence(struct conn *k)
{
	memset(k->cbuf + P, 0xf1, P);
	CHECK(scif_writeto(k->c, k->co + (off_t)P, P, k->so + (off_t)P, 0) == 0);
	CHECK(all(k->sbuf + P, P, 0xa2));	/* still what (a) left there */
	fence(k->s, SCIF_FENCE_INIT_PEER);
	CHECK(all(k->sbuf + P, P, 0xf1));
}

/* (g) */
static void check_unregister_waits(void)
{
	struct conn k;

	open_conn(&k, 7501);
	memset(k.sbuf, 0x9a, 4 * P);
	CHECK(scif_readfrom(k.c, k.co, 4 * P, k.so, 0) == 0);
	CHECK(all(k.cbuf, 4 * P, 0));
	CHECK(scif_unregister(k.c, k.co, 4 * P) == 0);
	CHECK(window_inode(k.cbuf) == 0);	/* private again */
	CHECK(all(k.cbuf, 4 * P, 0x9a));
	CHECK(scif_unregister(k.s, k.so, 4 * P) == 0);
	CHECK(scif_close(k.c) == 0 && scif_close(k.s) == 0);
	free(k.cbuf);
	free(k.sbuf);
}

/* (h) */
static void check_close_waits(void)
{
	struct conn k;

	open_conn(&k, 7502);
	memset(k.cbuf, 0x8b, 4 * P);
	CHECK(scif_writeto(k.c, k.co, 2 * P, k.so, 0) == 0);
	CHECK(scif_writeto(k.c, k.co + 2 * (off_t)P, 2 * P, k.so + 2 * (off_t)P, 0) == 0);
	CHECK(all(k.sbuf, 4 * P, 0));
	CHECK(scif_close(k.c) == 0);
	/* The peer's pages hold it all: the copies were made before the close
	 * let go of the windows. */
	CHECK(all(k.sbuf, 4 * P, 0x8b));
	CHECK(scif_close(k.s) == 0);
	CHECK(window_inode(k.cbuf) == 0 && window_inode(k.sbuf) == 0);
	free(k.cbuf);
	free(k.sbuf);
}

int main(void)
{
	struct conn k;

	P = page_size();
	/* Read when the engine starts: before the first RMA. */
	CHECK(setenv("SCIF_NET_DMA_DELAY_US", DELAY_US, 1) == 0);
	open_conn(&k, 7500);
	check_fences(&k);
	check_later_copy(&k);
	check_signal(&k);
	check_peer_fence(&k);
	CHECK(scif_close(k.c) == 0 && scif_close(k.s) == 0);
	free(k.cbuf);
	free(k.sbuf);
	check_unregister_waits();
	check_close_waits();
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	return 0;
}
