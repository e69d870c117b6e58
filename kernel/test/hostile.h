/*
 * hostile.h - a hostile peer: a process of the fabric that writes into the
 * queue pair (and the control channel) what no peer of ours would, through
 * the fabric's internals. test_hostile plays it against the fabric itself;
 * hostile_peer against scif-net's Node sockets and scif endpoints.
 *
 * Each case corrupts one thing a peer can reach, on a connected endpoint of
 * the hostile process, and leaves the victim to find it on its next call:
 * the victim's send or receive (or RMA) must fail with EPROTO, the hostile
 * side must then see the connection reset (ECONNRESET), and the victim's
 * process must go on serving others.
 */
#ifndef SCIF_NET_HOSTILE_H
#define SCIF_NET_HOSTILE_H

#include <sys/mman.h>

#include "check.h"
#include "ctl.h"
#include "endpoint.h"
#include "qp.h"

/* What the victim is to do to meet the corruption. */
enum hostile_meet {
	MEET_SEND,	/* a send (4 MiB, blocking): the corrupted read offset */
	MEET_RECV,	/* a receive: the corrupted write offset, or tokens */
	MEET_RMA,	/* an RMA to the window at HOSTILE_WINDOW_OFF */
	MEET_ECHO,	/* an exchange the hostile side echoes: it works, or ends in
			 * a clean error (EPROTO, ECONNRESET) */
};

#define HOSTILE_WINDOW_OFF 0x100000ll

struct hostile_case {
	const char *name;
	enum hostile_meet meet;
	/* Corrupts; ep is the hostile side's connected endpoint. */
	void (*act)(struct endpoint *ep);
	bool exits;	/* the hostile process exits right after acting */
	bool racing;	/* the victim is told to go before the act, to race it */
};

static inline struct rb_shared *victim_ring(struct endpoint *ep)
{
	return &ep->qp.hdr->ring[1 - ep->qp.side];
}

static inline struct rb_shared *own_ring(struct endpoint *ep)
{
	return &ep->qp.hdr->ring[ep->qp.side];
}

/* Makes the victim's descriptor readable whatever the rings say: a token. */
static inline void ring_victim(struct endpoint *ep)
{
	static const char token = 1;

	/* A victim that already reset the connection needs no wake-up. */
	(void)send(ep->fd, &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* The read offset of the ring the victim writes, 2^40 ahead: "all of it is
 * free", which unchecked would copy past the mapping. */
static inline void read_ahead(struct endpoint *ep)
{
	atomic_store_explicit(&victim_ring(ep)->read, ep->qp.rx.local + (1ull << 40),
			      memory_order_release);
}

/* The same read offset moved back before 0: wrapping. */
static inline void read_back(struct endpoint *ep)
{
	atomic_store_explicit(&victim_ring(ep)->read, (uint64_t)-4096, memory_order_release);
}

/* Our write offset 2^62 ahead: 2^62 bytes to read, past the ring. */
static inline void write_ahead(struct endpoint *ep)
{
	atomic_store_explicit(&own_ring(ep)->write, ep->qp.tx.local + (1ull << 62),
			      memory_order_release);
	ring_victim(ep);
}

/* One byte more than a ring can hold: the bound itself. */
static inline void write_one_over(struct endpoint *ep)
{
	atomic_store_explicit(&own_ring(ep)->write, ep->qp.tx.local + ep->qp.tx.size,
			      memory_order_release);
	ring_victim(ep);
}

/* Our write offset moved back, behind what the victim read. */
static inline void write_back(struct endpoint *ep)
{
	atomic_store_explicit(&own_ring(ep)->write, (uint64_t)-1, memory_order_release);
	ring_victim(ep);
}

/* A byte in the ring with a token count no settle could make: the victim's
 * settle after reading it would receive that many bytes into its buffer.
 * The count is in place before the victim can see the byte (a settle of
 * ours would refuse the count itself). */
static inline void token_count(struct endpoint *ep)
{
	char byte = 'x';

	CHECK(rb_write(&ep->qp.tx, &byte, 1) == 1);
	ep->qp.hdr->tokens[ep->qp.side].count = 1u << 30;
	rb_commit(&ep->qp.tx);
	ring_victim(ep);
}

/* Bytes on the socket itself, beyond any token: the victim's descriptor
 * would stay readable with nothing to read, a busy loop for its poller. */
static inline void token_flood(struct endpoint *ep)
{
	char junk[64];

	memset(junk, 1, sizeof(junk));
	CHECK(send(ep->fd, junk, sizeof(junk), MSG_NOSIGNAL) == (ssize_t)sizeof(junk));
}

/* The lock the victim's settles take, held for good. */
static inline void token_lock(struct endpoint *ep)
{
	CHECK(shlock_trylock(&ep->qp.hdr->tokens[ep->qp.side].lock));
	ring_victim(ep);
}

/* The RMA channel's lock, taken and held for good: the victim's first RMA
 * call (rma_verify: channel.c's chan_ensure) meets it there. */
static inline void chan_lock(struct endpoint *ep)
{
	CHECK(shlock_trylock(&ep->qp.hdr->chan_lock));
}

/* Every class of value a lock word may hold, and some it never does. */
static const uint32_t lock_garbage[] = {
	SHLOCK_FREE, SHLOCK_HELD, SHLOCK_WAITED, 3, 0x7fffffffu, 0x80000000u, 0xffffffffu,
};

static pthread_t scribbler;
static _Atomic bool scribbling;

/* Stores garbage into the queue pair's three lock words (the channel's, each
 * ring's tokens') until told to stop, free half the time so that both sides
 * get through now and then. */
static inline void *scribble_main(void *arg)
{
	struct qp_header *h = arg;
	struct shlock *locks[] = { &h->chan_lock, &h->tokens[0].lock, &h->tokens[1].lock };
	uint32_t seed = 2463534242u;
	const size_t n = sizeof(lock_garbage) / sizeof(lock_garbage[0]);

	/* Bursts of 64 stores, a short sleep between them: a million a
	 * second, without taking a core from the victim. */
	for (unsigned i = 1; atomic_load(&scribbling); i++) {
		uint32_t r = xorshift(&seed);
		uint32_t v = r & 1 ? SHLOCK_FREE : r & 2 ? r : lock_garbage[(r >> 2) % n];

		atomic_store_explicit(&locks[(r >> 8) % 3]->word, v, memory_order_relaxed);
		if (i % 64 == 0)
			nanosleep(&(struct timespec){ .tv_nsec = 20000 }, NULL);
	}
	return NULL;
}

static inline void lock_scribble(struct endpoint *ep)
{
	atomic_store(&scribbling, true);
	CHECK(pthread_create(&scribbler, NULL, scribble_main, ep->qp.hdr) == 0);
}

static inline void scribble_stop(void)
{
	if (atomic_exchange(&scribbling, false))
		CHECK(pthread_join(scribbler, NULL) == 0);
}

/* Racing: the write offset flips between right and wrong while the victim
 * reads, and ends wrong. */
static inline void write_race(struct endpoint *ep)
{
	char buf[256];

	/* Empty frames to scif-net's sockets (zero headers), so that only the
	 * offsets can be what breaks the connection. */
	memset(buf, 0, sizeof(buf));
	CHECK(scif_send(ep->fd, buf, sizeof(buf), SCIF_SEND_BLOCK) == (int)sizeof(buf));
	for (int i = 0; i < 20000; i++) {
		uint64_t w = ep->qp.tx.local + ((i & 1) ? (1ull << 50) + (uint64_t)i : 0);

		atomic_store_explicit(&own_ring(ep)->write, w, memory_order_release);
	}
	write_ahead(ep);
}

/* A window announced on a memfd of a page for two pages: the victim's view
 * would fault (SIGBUS) on its second page. */
static inline void announce(struct endpoint *ep, int fd, uint64_t file_len, uint64_t win_len)
{
	struct ctl_msg m = {
		.op = CTL_WIN_ADD, .nseg = 1, .off = HOSTILE_WINDOW_OFF, .len = win_len,
		.prot = SCIF_PROT_READ | SCIF_PROT_WRITE,
	};
	uint32_t sent;
	void *page;

	(void)file_len;
	/* The channel first: our own registration makes it. */
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(page != MAP_FAILED);
	CHECK(scif_register(ep->fd, page, 4096, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0) >= 0);
	m.seg[0].file_off = 0;
	m.seg[0].len = win_len;
	CHECK(ctl_lock(ep) == 0);
	CHECK(ctl_send(ep, &m, &fd, 1, &sent) == 0);
	ctl_unlock(ep);
	close(fd);
}

static inline int hostile_memfd(uint64_t len, bool sealed)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)len) == 0);
	if (sealed)
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
	return fd;
}

/* A control message no peer of ours sends (an unknown operation). */
static inline void ctl_garbage(struct endpoint *ep)
{
	struct ctl_msg m = { .op = 99, .nseg = 0 };
	uint32_t sent;
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(page != MAP_FAILED);
	CHECK(scif_register(ep->fd, page, 4096, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0) >= 0);
	CHECK(ctl_lock(ep) == 0);
	CHECK(ctl_send(ep, &m, NULL, 0, &sent) == 0);
	ctl_unlock(ep);
}

static inline void window_short(struct endpoint *ep)
{
	announce(ep, hostile_memfd(4096, true), 4096, 2 * 4096);
}

/* The right size, but unsealed: truncated once announced. */
static inline void window_unsealed(struct endpoint *ep)
{
	int fd = hostile_memfd(2 * 4096, false);
	int keep = dup(fd);

	CHECK(keep >= 0);
	announce(ep, fd, 2 * 4096, 2 * 4096);
	CHECK(ftruncate(keep, 0) == 0);
	close(keep);
}

static const struct hostile_case hostile_cases[] = {
	{ "read-ahead", MEET_SEND, read_ahead, false, false },
	{ "read-back", MEET_SEND, read_back, false, false },
	{ "write-ahead", MEET_RECV, write_ahead, false, false },
	{ "write-one-over", MEET_RECV, write_one_over, false, false },
	{ "write-back", MEET_RECV, write_back, false, false },
	{ "write-ahead-exit", MEET_RECV, write_ahead, true, false },
	{ "token-count", MEET_RECV, token_count, false, false },
	{ "write-race", MEET_RECV, write_race, false, true },
	{ "token-flood", MEET_RECV, token_flood, false, false },
	{ "token-lock", MEET_RECV, token_lock, false, false },
	{ "chan-lock", MEET_RMA, chan_lock, false, false },
	{ "lock-scribble", MEET_ECHO, lock_scribble, false, false },
	{ "ctl-garbage", MEET_RMA, ctl_garbage, false, false },
	{ "window-short", MEET_RMA, window_short, false, false },
	{ "window-unsealed", MEET_RMA, window_unsealed, false, false },
};

#define HOSTILE_NCASES (sizeof(hostile_cases) / sizeof(hostile_cases[0]))

static inline const struct hostile_case *hostile_find(const char *name)
{
	for (size_t i = 0; i < HOSTILE_NCASES; i++)
		if (strcmp(hostile_cases[i].name, name) == 0)
			return &hostile_cases[i];
	return NULL;
}

/* Echoes what comes on epd until the connection ends: 0 once it did with
 * ECONNRESET or EPROTO. Readiness is not to be trusted while the lock words
 * are garbage (a settle may count a token wrong, as a peer's lie would):
 * it looks at the ring every 10 ms whatever the descriptor says. */
static inline int echo_until_gone(scif_epd_t epd)
{
	char buf[4096];

	for (;;) {
		struct pollfd p = { .fd = epd, .events = POLLIN };
		int n, sent = 0;

		(void)poll(&p, 1, 10);
		n = scif_recv(epd, buf, sizeof(buf), 0);
		while (n > 0 && sent < n) {
			int k = scif_send(epd, buf + sent, n - sent, 0);

			if (k < 0) {
				n = -1;
				break;
			}
			sent += k;
			if (sent < n) {
				p = (struct pollfd){ .fd = epd, .events = POLLOUT };
				(void)poll(&p, 1, 10);
			}
		}
		if (n < 0)
			return errno == ECONNRESET || errno == EPROTO ? 0 : -1;
	}
}

/* The hostile side, connected on epd: acts once before() returns, then
 * waits for the victim's reset (echoes, for MEET_ECHO). 0 once it saw
 * ECONNRESET; exits at once for cases that exit. */
static inline int hostile_play(scif_epd_t epd, const struct hostile_case *c, void (*before)(void),
				void (*acted)(void))
{
	struct endpoint *ep = ep_get(epd);
	char buf[4096];
	int n;

	CHECK(ep != NULL);
	if (before)
		before();
	if (c->racing && acted)
		acted();
	c->act(ep);
	ep_put(ep);
	if (!c->racing && acted)
		acted();
	if (c->exits)
		_exit(0);
	if (c->meet == MEET_ECHO) {
		n = echo_until_gone(epd);
		scribble_stop();
		return n;
	}
	/* The victim resets the connection when it meets the corruption:
	 * whatever it sent before is ours to read, then ECONNRESET. */
	do
		n = scif_recv(epd, buf, sizeof(buf), SCIF_RECV_BLOCK);
	while (n > 0);
	return n < 0 && errno == ECONNRESET ? 0 : -1;
}

/* A server that answers the handshake with a ring memfd a caller must not
 * map: unsealed (then truncated), or sealed with the queue pair's place
 * off outside it. The caller's connect must fail with EPROTO. lfd is a
 * listening endpoint; returns once a caller was answered. */
static inline void hostile_answer(scif_epd_t lfd, bool sealed, uint64_t off)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int fd, memfd;

	CHECK(poll(&p, 1, -1) == 1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CHECK(fd >= 0);
	memfd = hostile_memfd(QP_HEADER_BYTES + 2 * 4096, sealed);
	CHECK(qp_send_accept(fd, 0, 4096, 0, memfd, off) == 0);
	if (!sealed)
		CHECK(ftruncate(memfd, 0) == 0);
	close(memfd);
	/* What we sent stays for the caller to read. */
	close(fd);
}

#endif
