/*
 * Byte streams between two processes on different nodes (this one is node 0,
 * the server a role on node 1): 32 MiB each way through the driver's 4 KiB
 * rings, in random pieces from 1 byte to 1 MiB, (a) with blocking calls, (b)
 * with non-blocking calls driven by scif_poll, where partial sends must
 * happen and be finished, and (c) in both directions at once from two
 * threads per side, which catches one direction's wake-ups lost to the
 * other. After its data each sender sends the FNV-1a of what it sent; each
 * receiver compares it with its own.
 *
 * SCIF_TEST_MIB sets the megabytes per direction (valgrind runs use less).
 */
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>

#include "check.h"

#define PORT 3000
#define MAX_CHUNK (1u << 20)
#define POOL (4u << 20)

enum mode { BLOCKING, NONBLOCKING, DUPLEX, MODES };
static const char *const mode_name[MODES] = { "blocking", "non-blocking", "full-duplex" };

static uint64_t total;
/* Random bytes to send from: every piece starts somewhere in it. */
static uint8_t *pool;

/* Piece sizes spread over every power of two up to 1 MiB, so that tiny and
 * ring-sized pieces both happen often. */
static size_t piece(uint32_t *seed, uint64_t left)
{
	size_t len = 1 + xorshift(seed) % (1u << (xorshift(seed) % 21));

	return len < left ? len : (size_t)left;
}

static void make_pool(uint32_t seed)
{
	pool = malloc(POOL + MAX_CHUNK);
	CHECK(pool != NULL);
	for (size_t i = 0; i < POOL + MAX_CHUNK; i++)
		pool[i] = (uint8_t)xorshift(&seed);
}

/* ---- blocking ---- */

static void send_all(int epd, uint32_t seed)
{
	uint64_t h = FNV_START, sent = 0;

	while (sent < total) {
		size_t len = piece(&seed, total - sent);
		uint8_t *p = pool + xorshift(&seed) % POOL;

		h = fnv1a(h, p, len);
		/* Blocking: all of it, whatever the ring's size. */
		CHECK(scif_send(epd, p, (int)len, SCIF_SEND_BLOCK) == (int)len);
		sent += len;
	}
	CHECK(scif_send(epd, &h, sizeof(h), SCIF_SEND_BLOCK) == (int)sizeof(h));
}

static void recv_all(int epd, uint32_t seed)
{
	uint8_t *buf = malloc(MAX_CHUNK);
	uint64_t h = FNV_START, theirs, got = 0;

	CHECK(buf != NULL);
	while (got < total) {
		size_t len = piece(&seed, total - got);

		CHECK(scif_recv(epd, buf, (int)len, SCIF_RECV_BLOCK) == (int)len);
		h = fnv1a(h, buf, len);
		got += len;
	}
	CHECK(scif_recv(epd, &theirs, sizeof(theirs), SCIF_RECV_BLOCK) == (int)sizeof(theirs));
	if (theirs != h) {
		fprintf(stderr, "node %d: FNV of %llu bytes received %016llx, sender's %016llx\n",
			scif_net_self_node(), (unsigned long long)total,
			(unsigned long long)h, (unsigned long long)theirs);
		exit(1);
	}
	free(buf);
}

/* ---- non-blocking, one thread driving both directions with scif_poll ---- */

struct tx {
	uint32_t seed;
	uint64_t sent, h;
	uint8_t *p;		/* the piece being sent */
	size_t len, done;
	bool trailer, finished;
	uint64_t partial;	/* sends that took less than asked */
};

struct rx {
	uint32_t seed;
	uint64_t got, h, theirs;
	size_t trailer_got;
	bool finished;
	uint8_t *buf;
};

static void tx_next(struct tx *t)
{
	t->done = 0;
	if (t->sent < total) {
		t->len = piece(&t->seed, total - t->sent);
		t->p = pool + xorshift(&t->seed) % POOL;
		t->h = fnv1a(t->h, t->p, t->len);
	} else if (!t->trailer) {
		t->trailer = true;
		t->p = (uint8_t *)&t->h;
		t->len = sizeof(t->h);
	} else {
		t->finished = true;
	}
}

static void tx_ready(int epd, struct tx *t)
{
	int n = scif_send(epd, t->p + t->done, (int)(t->len - t->done), 0);

	/* POLLOUT said there is space, and only this thread writes. */
	CHECK(n > 0);
	if ((size_t)n < t->len - t->done)
		t->partial++;
	t->done += (size_t)n;
	if (!t->trailer)
		t->sent += (uint64_t)n;
	if (t->done == t->len)
		tx_next(t);
}

static void rx_ready(int epd, struct rx *r)
{
	int n;

	if (r->got < total) {
		size_t want = piece(&r->seed, total - r->got);

		n = scif_recv(epd, r->buf, (int)want, 0);
		/* POLLIN said there is data, and only this thread reads. */
		CHECK(n > 0 && (size_t)n <= want);
		r->h = fnv1a(r->h, r->buf, (size_t)n);
		r->got += (uint64_t)n;
		return;
	}
	n = scif_recv(epd, (uint8_t *)&r->theirs + r->trailer_got,
		      (int)(sizeof(r->theirs) - r->trailer_got), 0);
	CHECK(n > 0);
	r->trailer_got += (size_t)n;
	if (r->trailer_got == sizeof(r->theirs)) {
		CHECK(r->theirs == r->h);
		r->finished = true;
	}
}

static void nonblocking(int epd, uint32_t tx_seed, uint32_t rx_seed)
{
	struct tx t = { .seed = tx_seed, .h = FNV_START };
	struct rx r = { .seed = rx_seed, .h = FNV_START, .buf = malloc(MAX_CHUNK) };

	CHECK(r.buf != NULL);
	tx_next(&t);
	while (!t.finished || !r.finished) {
		struct scif_pollepd pe = {
			.epd = epd,
			.events = (short)((t.finished ? 0 : POLLOUT) | (r.finished ? 0 : POLLIN)),
		};

		CHECK(scif_poll(&pe, 1, -1) == 1);
		/* The peer closes only after the handshake below. */
		CHECK((pe.revents & ~pe.events) == 0);
		if (pe.revents & POLLOUT)
			tx_ready(epd, &t);
		if (pe.revents & POLLIN)
			rx_ready(epd, &r);
	}
	/* 1 MiB pieces through a 256 KiB ring cannot all go in one call. */
	CHECK(t.partial > 0);
	free(r.buf);
}

/* ---- full duplex, blocking, a sender thread and a receiver thread ---- */

struct sender {
	int epd;
	uint32_t seed;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	send_all(s->epd, s->seed);
	return NULL;
}

static void duplex(int epd, uint32_t tx_seed, uint32_t rx_seed)
{
	struct sender s = { .epd = epd, .seed = tx_seed };
	pthread_t th;

	CHECK(pthread_create(&th, NULL, sender_main, &s) == 0);
	recv_all(epd, rx_seed);
	CHECK(pthread_join(th, NULL) == 0);
}

/* Each side runs this on its endpoint; client says which side this is. */
static void run_mode(int epd, enum mode m, bool client)
{
	/* Different seeds for each side's sending and each side's receiving. */
	uint32_t mine = client ? 0x1234567u + m : 0x7654321u + m;
	uint32_t rxs = client ? 0x2468aceu + m : 0x13579bdu + m;
	char ok = 'k', theirs;

	switch (m) {
	case BLOCKING:
		/* One direction after the other. */
		if (client) {
			send_all(epd, mine);
			recv_all(epd, rxs);
		} else {
			recv_all(epd, rxs);
			send_all(epd, mine);
		}
		break;
	case NONBLOCKING:
		nonblocking(epd, mine, rxs);
		break;
	case DUPLEX:
		duplex(epd, mine, rxs);
		break;
	case MODES:
		break;
	}
	/* Neither side closes before both have checked what they received. */
	CHECK(scif_send(epd, &ok, 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_recv(epd, &theirs, 1, SCIF_RECV_BLOCK) == 1 && theirs == 'k');
}

/* Role on node 1: accepts one connection per mode. */
static int server(void)
{
	int l = scif_open();
	struct scif_portID peer;

	CHECK(l >= 0);
	CHECK(scif_bind(l, PORT) == PORT);
	CHECK(scif_listen(l, 1) == 0);
	report_ready(PORT);
	for (int m = 0; m < MODES; m++) {
		int s;

		CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
		CHECK(peer.node == 0);
		run_mode(s, (enum mode)m, false);
		CHECK(scif_close(s) == 0);
	}
	CHECK(scif_close(l) == 0);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mib = getenv("SCIF_TEST_MIB");
	struct scif_portID to = { .node = 1, .port = PORT };
	int ready;
	pid_t pid;

	total = (uint64_t)(mib && *mib ? atoi(mib) : 32) << 20;
	CHECK(total > 0);
	make_pool(argc > 1 ? 99 : 42);
	if (argc > 1 && strcmp(argv[1], "server") == 0)
		return server();

	pid = spawn_role(1, "server", NULL, &ready);
	CHECK(await_ready(ready) == PORT);
	for (int m = 0; m < MODES; m++) {
		int c = scif_open();
		double t0 = now_ms(), ms;

		CHECK(c >= 0);
		CHECK(scif_connect(c, &to) >= SCIF_PORT_RSVD);
		run_mode(c, (enum mode)m, true);
		CHECK(scif_close(c) == 0);
		ms = now_ms() - t0;
		printf("# %s: %llu MiB each way in %.0f ms (%.0f MiB/s both ways together)\n",
		       mode_name[m], (unsigned long long)(total >> 20), ms,
		       2.0 * (double)(total >> 20) / (ms / 1e3));
	}
	expect_exit(pid, 0);
	free(pool);
	return 0;
}
