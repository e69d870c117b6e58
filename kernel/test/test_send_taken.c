/*
 * test_send_taken - what scif_send says when its peer goes between putting
 * the bytes in the ring and the settle after it (message.c).
 *
 * The driver's scif_send counts bytes once they are in the ring: its notice
 * to the peer cannot fail for the peer's sake, and a peer's close cannot
 * come between (both hold the endpoint's lock). Here the settle's token is
 * a send on the connection's socket after the bytes are in, so a reader
 * that takes them from the ring without waiting for the token (one already
 * in its loop, or spinning) can answer and close before it - and the send
 * took its peer's close for a loss: ECONNRESET for bytes that had arrived
 * (test_share met it under valgrind). A peer that took none, gone by then,
 * still makes it ECONNRESET: those bytes reach nobody.
 *
 * The moment is made with the linker (-Wl,--wrap=send, the Makefile's
 * TEST_LDFLAGS_send_taken): the fabric's token send on an armed descriptor
 * first runs what the peer does in that window.
 */
#include <sys/socket.h>

#include "check.h"

#define PORT 4700

ssize_t __real_send(int fd, const void *buf, size_t len, int flags);

/* In the window: the peer reads take bytes (none: 0), then closes. */
static _Thread_local int armed_fd = -1, armed_peer, armed_take;
static _Thread_local bool ran;

ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	if (fd == armed_fd) {
		char got[64];

		armed_fd = -1;
		ran = true;
		if (armed_take)
			CHECK(scif_recv(armed_peer, got, armed_take, 0) == armed_take);
		CHECK(scif_close(armed_peer) == 0);
	}
	return __real_send(fd, buf, len, flags);
}

/* Sends len bytes from c while its peer s takes take of them, then closes:
 * what the send returned, errno then. */
static int send_as_peer_leaves(uint16_t port, int len, int take, int *err)
{
	char msg[64] = "0123456789abcdefghijklmnopqrstuvwxyz";
	int c, s, r;

	connect_pair(port, &c, &s);
	armed_fd = c;
	armed_peer = s;
	armed_take = take;
	ran = false;
	errno = 0;
	r = scif_send(c, msg, len, SCIF_SEND_BLOCK);
	*err = errno;
	CHECK(ran);	/* the window came: a token was sent after the bytes */
	/* Whatever this one said, the next knows the peer is gone. */
	CHECK_ERR(scif_send(c, "x", 1, 0), ECONNRESET);
	CHECK(scif_close(c) == 0);
	return r;
}

int main(void)
{
	int err;

	/* It read them all, answered (nothing to answer here) and closed. */
	CHECK(send_as_peer_leaves(PORT, 10, 10, &err) == 10);
	/* It read some: it was there after they went in, all were sent. */
	CHECK(send_as_peer_leaves(PORT + 1, 10, 1, &err) == 10);
	printf("# a peer that took the bytes and closed before the settle: sent\n");
	/* It took none and went: they reach nobody. */
	CHECK(send_as_peer_leaves(PORT + 2, 10, 0, &err) == -1 && err == ECONNRESET);
	printf("# a peer gone with none of them taken: ECONNRESET\n");
	return 0;
}
