/*
 * tokens.h - the descriptor's readiness, level-triggered as the driver's
 * (__scif_pollfd): POLLIN while the inbound ring holds data, POLLOUT while the
 * outbound ring has room, under plain poll(2) and epoll, with nothing a
 * looker could swallow.
 *
 * The descriptor is the connection's Unix stream socket. The writer of each
 * ring keeps one-byte tokens, each its own skb, in the reader's socket so
 * that the socket's queue mirrors the ring:
 *  - one token while the ring is not empty: the reader's socket is readable;
 *  - `full` tokens while it is full: enough that the writer's own socket
 *    stops being writable. A Unix socket is writable while four times the
 *    bytes it has in flight (sk_wmem_alloc, each token charged at the skb's
 *    truesize) fit in its SO_SNDBUF; tok_socket() sets that small, and the
 *    count is measured once per process (add tokens until poll() says
 *    unwritable), not assumed, and recorded in the queue pair for the reader.
 * Only the writer can add tokens (it sends them) and only the reader can
 * take them (it receives them), so each side *settles* the count after its
 * own ring operation, recomputing what it should be from the shared offsets
 * under a small lock in the queue pair (shlock.h): whichever settles last
 * sees both operations and leaves the queue right. The writer counts its
 * tokens under the lock and sends them after it (the send wakes the reader,
 * which must not find the lock held), so the count may run ahead of the
 * queue by tokens in flight, never behind it; a token that lands after the
 * reader's settle would leave the descriptor readable over an empty ring, a
 * few microseconds' stray, which the reader's next look takes (scif_recv,
 * scif_poll: tok_check_rx) so that scif_poll() never reports it. System
 * calls happen only on
 * transitions: empty <-> not empty, full <-> not full.
 *
 * A caller's non-blocking connect stays unwritable until it is accepted: the
 * caller sends `full` tokens ahead of its request (tok_prefill), which the
 * acceptor takes (tok_take) only after its answer is in the caller's queue.
 */
#ifndef SCIF_NET_TOKENS_H
#define SCIF_NET_TOKENS_H

#include <stdatomic.h>
#include <stdint.h>

#include "shlock.h"

/* One ring's tokens, in the queue pair's shared header: the peer can store
 * anything into each word, at any time. */
struct qp_tokens {
	struct shlock lock;		/* taken by each settle, both sides */
	_Atomic uint32_t count;		/* tokens now in the reader's socket */
	_Atomic uint32_t full;		/* tokens that make the writer's socket unwritable */
};

struct rb_shared;

/* Tokens that make a socket prepared by tok_socket() unwritable, or 0 if
 * this kernel's sockets cannot be made to mirror a ring. */
unsigned tok_full(void);
/* Prepares a connection's socket (its SO_SNDBUF): 0 or -errno. */
int tok_socket(int fd);

/* A ring's tokens in a new queue pair (count 0; full: 0, for the acceptor to
 * set from each writer's tok_full()). */
void tok_init(struct qp_tokens *t);

/*
 * After a ring operation: brings the count of ring sh's tokens towards what
 * its fill level asks for, as far as this side may (writer: adds them, by
 * sending on fd; reader: takes them, by receiving from fd). 0, or
 * -ECONNRESET when the peer is gone (fd hung up: it may have died holding
 * the lock, which is then looked for every 50 ms), or -EPROTO.
 */
/* The reader, finding its ring sh empty: -EPROTO if its socket holds more
 * than the tokens counted (a peer flooding the socket); else takes the tokens
 * that landed after its last settle, and 0 (-ECONNRESET if the peer is gone).
 * Both this and tok_settle() give up on a lock the peer holds for 2 s
 * (TOK_LOCK_SECONDS): -EPROTO. */
int tok_check_rx(struct qp_tokens *t, const struct rb_shared *sh, int fd);

int tok_settle(struct qp_tokens *t, const struct rb_shared *sh, uint64_t size, int fd,
	       int writer);

/* Caller, once connected to the listener: makes itself unwritable. */
int tok_prefill(int fd, unsigned n);
/* Acceptor, after its answer: takes the caller's n tokens, waiting for them
 * at most timeout_ms (they follow the request at once): 0 or -errno. */
int tok_take(int fd, unsigned n, int timeout_ms);

#endif
