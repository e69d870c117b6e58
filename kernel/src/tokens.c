/*
 * tokens.c - settling the tokens that make a connection's sockets mirror its
 * rings (tokens.h).
 */
#include "tokens.h"

#include <errno.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rb.h"

/* How long a settle waits for the other side's settle before it takes the
 * peer for a broken one. */
#define TOK_LOCK_SECONDS 2

/* More tokens than this in one queue would mean a kernel we do not understand. */
#define MAX_TOKENS 16

static pthread_once_t calibrate_once = PTHREAD_ONCE_INIT;
static int sndbuf_value;	/* what tok_socket() gives SO_SNDBUF */
static unsigned full_tokens;	/* 0 until calibrated */

static int send_token(int fd)
{
	static const char token = 1;

	/* One send, one skb: each token is charged on its own. */
	if (send(fd, &token, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
		return 0;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return -ENOBUFS;	/* the calibration leaves room: not reached */
	return errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN ? -ECONNRESET : -errno;
}

static bool writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/*
 * Measures, on a private pair, what one token costs its sender and how many
 * make it unwritable once SO_SNDBUF leaves room for two: one token (a ring
 * not empty) must leave the writer writable even beside the handshake's
 * answer, which an acceptor's socket has in flight until the caller reads
 * it. The kernel doubles what SO_SNDBUF is given, and takes a floor.
 */
static void calibrate(void)
{
	int sv[2], charge = 0, value;
	unsigned n = 0;
	char buf[MAX_TOKENS];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (send_token(sv[0]) == 0 && ioctl(sv[0], SIOCOUTQ, &charge) == 0 && charge > 0 &&
	    recv(sv[1], buf, 1, MSG_DONTWAIT) == 1) {
		value = ((1 + 2 * charge) * 4 + 1) / 2;
		if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &value, sizeof(value)) == 0) {
			while (n < MAX_TOKENS && writable(sv[0]) && send_token(sv[0]) == 0)
				n++;
			if (n >= 2 && n < MAX_TOKENS) {
				sndbuf_value = value;
				full_tokens = n;
			}
		}
	}
	close(sv[0]);
	close(sv[1]);
}

unsigned tok_full(void)
{
	pthread_once(&calibrate_once, calibrate);
	return full_tokens;
}

int tok_socket(int fd)
{
	if (!tok_full())
		return -ENOBUFS;
	return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf_value, sizeof(sndbuf_value)) < 0 ?
	       -errno : 0;
}

void tok_init(struct qp_tokens *t)
{
	atomic_init(&t->lock.word, SHLOCK_FREE);
	atomic_init(&t->count, 0);
	atomic_init(&t->full, 0);
}

/* Tries before sleeping: a holder keeps the lock for one token's send or
 * receive, a microsecond or two. The two sides meet here mostly when a
 * reader that spins on the ring (busy polling) sees the bytes before their
 * writer has finished settling, and sleeping in the futex then costs both
 * sides a wake-up, tens of microseconds, per message. */
#define TOK_LOCK_TRIES 256

/* How often a waiter looks whether the peer is gone: a peer that died
 * holding the lock never releases it, and only its socket tells. */
#define TOK_LOOK_MS 50

/* While we wait: -ECONNRESET once our socket says the peer hung up (it
 * died or closed, maybe holding the lock; or the connection was reset). */
static int peer_hung_up(void *arg)
{
	struct pollfd p = { .fd = *(const int *)arg, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) ? -ECONNRESET : 0;
}

/* 0 with the lock held; -ECONNRESET (not held) when the peer is gone - it
 * may have died in the middle of a settle, so the count means nothing now;
 * or -EPROTO when the peer kept it for seconds. A settle holds the lock
 * for a few system calls. A peer that keeps it longer is stopped or
 * hostile: rather than wait for ever (on an event loop's thread, say), the
 * connection is given up. */
static int tok_lock(struct qp_tokens *t, int fd)
{
	const struct shlock_wait how = {
		.spins = TOK_LOCK_TRIES, .look_ms = TOK_LOOK_MS,
		.limit_ms = TOK_LOCK_SECONDS * 1000, .look = peer_hung_up, .arg = &fd,
	};

	return shlock_lock(&t->lock, &how);
}

/* The reader, with the lock held: takes up to n of the tokens in its queue,
 * fewer when some are still in flight (counted, not yet sent): how many. */
static uint32_t take_tokens(int fd, uint32_t n)
{
	char buf[MAX_TOKENS];
	ssize_t got = recv(fd, buf, n < MAX_TOKENS ? n : MAX_TOKENS, MSG_DONTWAIT);

	return got > 0 ? (uint32_t)got : 0;
}

int tok_settle(struct qp_tokens *t, const struct rb_shared *sh, uint64_t size, int fd,
	       int writer)
{
	uint64_t used;
	uint32_t want, full, count;
	int err = tok_lock(t, fd);

	if (err)
		return err;
	/* Under the lock, so this settle acts on offsets no older than the
	 * other side's last one. */
	used = rb_shared_used(sh);
	/* The peer can write every word here, at any moment: each is loaded
	 * once and checked, the writer goes by its own measure, and a count
	 * no settle could have made breaks the connection instead of sizing a
	 * receive. */
	full = writer ? tok_full() : atomic_load_explicit(&t->full, memory_order_relaxed);
	count = atomic_load_explicit(&t->count, memory_order_relaxed);
	if (full > MAX_TOKENS || count > MAX_TOKENS) {
		shlock_unlock(&t->lock);
		return -EPROTO;
	}
	want = used == 0 ? 0 : used >= size - 1 ? full : 1;
	if (writer) {
		/* Counted here, sent once the lock is let go: the send wakes
		 * the reader, which comes straight here to settle and must not
		 * find the lock still held by its waker - on two CPUs it did,
		 * at nearly every message, costing each side a futex sleep or
		 * wake-up and a context switch. So the count may run ahead of
		 * the reader's queue by tokens in flight, never behind it. */
		uint32_t add = count < want ? want - count : 0;

		atomic_store_explicit(&t->count, count + add, memory_order_relaxed);
		shlock_unlock(&t->lock);
		while (!err && add--)
			err = send_token(fd);
		return err;
	}
	if (count > want)
		count -= take_tokens(fd, count - want);
	atomic_store_explicit(&t->count, count, memory_order_relaxed);
	shlock_unlock(&t->lock);
	return err;
}

int tok_check_rx(struct qp_tokens *t, const struct rb_shared *sh, int fd)
{
	int queued = 0, err = tok_lock(t, fd);

	if (err)
		return err;
	/* Under the lock every byte in our socket is a token the writer
	 * counted: more is a peer writing on the socket itself, which would
	 * keep the descriptor readable with nothing to read - a busy loop for
	 * whoever polls it. */
	if (ioctl(fd, SIOCINQ, &queued) == 0 &&
	    (uint32_t)queued > atomic_load_explicit(&t->count, memory_order_relaxed))
		err = -EPROTO;
	else if (queued > 0 && rb_shared_used(sh) == 0)
		/* Tokens that landed after the settle that should have taken
		 * them. Looked at under the lock: a writer that has put bytes
		 * in since counts its token after this. */
		atomic_store_explicit(&t->count, atomic_load_explicit(&t->count, memory_order_relaxed) -
				      take_tokens(fd, (uint32_t)queued), memory_order_relaxed);
	shlock_unlock(&t->lock);
	return err;
}

int tok_prefill(int fd, unsigned n)
{
	static const char token = 1;
	struct iovec iov = { .iov_base = (void *)&token, .iov_len = 1 };
	struct mmsghdr m[MAX_TOKENS];
	int sent;

	if (n > MAX_TOKENS)
		return -EPROTO;
	/* One system call, a message (so an skb) per token. */
	for (unsigned i = 0; i < n; i++)
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } };
	sent = sendmmsg(fd, m, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent == (int)n)
		return 0;
	return sent >= 0 ? -ENOBUFS : errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

int tok_take(int fd, unsigned n, int timeout_ms)
{
	struct timespec t0;
	char buf[MAX_TOKENS];

	if (n > MAX_TOKENS)
		return -EPROTO;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t got = recv(fd, buf, n, MSG_DONTWAIT);
		long left;

		if (got > 0) {
			n -= (unsigned)got;
			continue;
		}
		if (got == 0)
			return -ECONNRESET;	/* the caller is gone */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		left = timeout_ms - ms_since(&t0);
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}
