/*
 * test_lock_death - a peer killed holding one of the queue pair's locks
 * (src/shlock.h) while a thread of ours sleeps on it: a receive settling
 * the ring's tokens, a registration making the RMA channel. A dead holder
 * never lets go; the wait ends with the peer's hang-up, which the waiter
 * looks for every 50 ms - ECONNRESET, long before the locks' bounds (2 s,
 * 5 s: EPROTO, for a peer alive and lying), and not EPROTO: the peer is
 * gone, not lying. (test_lazy_death has a peer killed half-way through
 * making the channel, holding the lock as it does.)
 */
#include "hostile.h"

#define PORT 4190

/* Connects to the victim's port and takes one of the queue pair's locks: 't'
 * the token lock of the ring it writes, with a byte in that ring for the
 * victim's receive to settle; 'c' the RMA channel's. Then waits to be
 * killed holding it. */
static int role_hold(const char *arg)
{
	struct endpoint *ep;
	char which;
	int port;

	CHECK(sscanf(arg, "%c:%d", &which, &port) == 2);
	ep = ep_get(connect_to(0, (uint16_t)port));
	CHECK(ep != NULL);
	if (which == 't') {
		char byte = 'x';

		CHECK(shlock_trylock(&ep->qp.hdr->tokens[ep->qp.side].lock));
		CHECK(rb_write(&ep->qp.tx, &byte, 1) == 1);
		rb_commit(&ep->qp.tx);
		ring_victim(ep);
	} else {
		chan_lock(ep);
	}
	report_ready(1);
	for (;;)
		pause();
}

static void *register_main(void *arg)
{
	struct blocked *b = arg;
	static void *page;

	CHECK(page || posix_memalign(&page, 4096, 4096) == 0);
	b->tid = gettid();
	b->ret = scif_register(b->epd, page, 4096, 0, SCIF_PROT_READ, 0) < 0 ? -1 : 0;
	b->err = errno;
	b->returned_ms = now_ms();
	return NULL;
}

/* A peer killed holding a lock our thread sleeps on: the wait ends with the
 * peer's hang-up, well before the lock's bound - a receive gets the byte
 * that was there and the next one ECONNRESET; a registration ECONNRESET.
 * Not EPROTO: the peer is gone, not lying. */
static void holder_killed(char which, uint16_t port)
{
	struct blocked b = { .call = CALL_RECV, .len = 1 };
	struct scif_portID peer;
	char arg[32];
	int l = listen_on(port, 1), ready;
	double t0, killed;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%c:%u", which, port);
	pid = spawn_role(1, "hold", arg, &ready);
	CHECK(scif_accept(l, &peer, &b.epd, SCIF_ACCEPT_SYNC) == 0);
	CHECK(await_ready(ready) == 1);
	CHECK(pthread_create(&b.thread, NULL, which == 't' ? blocked_main : register_main, &b) == 0);
	while (!b.tid)
		sched_yield();
	/* Asleep on the lock's futex, not on its way there. */
	t0 = now_ms();
	while (!sleeps_in(b.tid, SYS_futex)) {
		CHECK(now_ms() - t0 < 10000);
		sched_yield();
	}
	CHECK(kill(pid, SIGKILL) == 0);
	killed = now_ms();
	CHECK(pthread_join(b.thread, NULL) == 0);
	CHECK(b.returned_ms - killed < 1000);
	if (which == 't') {
		CHECK(b.ret == 1 && b.buf[0] == 'x');
		CHECK_ERR(scif_recv(b.epd, b.buf, 1, SCIF_RECV_BLOCK), ECONNRESET);
	} else {
		CHECK(b.ret == -1 && b.err == ECONNRESET);
	}
	CHECK_ERR(scif_send(b.epd, "x", 1, SCIF_SEND_BLOCK), ECONNRESET);
	expect_signal(pid, SIGKILL);
	close(ready);
	CHECK(scif_close(b.epd) == 0);
	CHECK(scif_close(l) == 0);
	printf("# %s lock's holder killed: our %s woke %.2f ms after, ECONNRESET\n",
	       which == 't' ? "token" : "RMA channel", which == 't' ? "receive" : "registration",
	       b.returned_ms - killed);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "hold") == 0)
		return role_hold(argv[2]);
	holder_killed('t', PORT);
	holder_killed('c', PORT + 1);
	return 0;
}
