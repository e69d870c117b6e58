/*
 * qp.h - a queue pair: the two rings of one connection, in a memfd that the
 * accepting side hands to the connecting side over the connection's socket:
 * a place in the arena (arena.h) of the two processes' connections. Side 0
 * is the connecting endpoint, side 1 the accepted one; ring i carries what
 * side i writes.
 *
 * The same socket is the endpoint's descriptor: its readiness follows the
 * rings through the tokens each side keeps in the other's end (tokens.h),
 * and when a process dies the kernel closes its end, which is how the
 * survivor (and whatever polls its descriptor) learns of it. It is the one
 * descriptor each side holds while the connection moves bytes only.
 *
 * The header also counts each side's RMAs, which is what fences wait on
 * (track.h), and says who the two ends are - the connection's number, each
 * side's descriptor and its process's inbox - so that the RMA channel (the
 * control channel and the RMA bell, channel.h) can be made later, by
 * whichever side first needs it, and reach the other side without a message
 * on the connection's socket.
 *
 * The caller's request is the abstract name it binds before connecting
 * (fabric_caller_addr): the flags it asks for (QP_STREAM_ONLY: either side
 * asked with scif_net_set_stream_only(), and the connection never gets an
 * RMA channel), its descriptor and its inbox. The acceptor reads it with the
 * connection itself, so scif_accept still never waits for a message. The
 * answer says what was made and carries the memfd.
 */
#ifndef SCIF_NET_QP_H
#define SCIF_NET_QP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rb.h"
#include "tokens.h"

#define QP_MAGIC 0x53435150u	/* "SCQP" */
/* 2: control channel and RMA counters; 3: the RMA bell; 4: request and
 * answer flags (stream-only connections carry only the memfd); 5: tokens
 * instead of doorbells, the request's prefill; 6: the RMA channel made
 * lazily (the answer carries the memfd alone; the header names the ends);
 * 7: the channel's and the tokens' locks are words of our own (shlock.h),
 * not pthread mutexes; 8: queue pairs in arenas (the answer says where) */
#define QP_VERSION 8
#define QP_HEADER_BYTES 4096

/* Slots of RMA accounting per side: RMA number s completes into slot s % N. */
#define QP_RMA_SLOTS 64

/* One side's RMAs and control messages, as the other side sees them
 * (track.h, ctl.h have the rules). */
struct qp_rma {
	_Alignas(RB_CACHELINE) _Atomic uint64_t started;	/* RMAs begun, numbered from 1 */
	_Alignas(RB_CACHELINE) _Atomic uint32_t waiting;	/* raised by the other side's waiters; rings its bell */
	_Alignas(RB_CACHELINE) _Atomic uint32_t ctl_sent;	/* control messages sent */
	_Alignas(RB_CACHELINE) _Atomic uint32_t ctl_done;	/* the other side's, handled */
	_Alignas(RB_CACHELINE) _Atomic uint64_t done[QP_RMA_SLOTS];	/* the last RMA completed in slot i */
};

/* Who the two ends of a connection are: fixed by the acceptor when it makes
 * the queue pair, from the caller's request and itself. */
struct qp_ends {
	uint64_t conn;		/* the connection's number, unique in the fabric while it lives */
	uint32_t inbox[2];	/* inbox[i]: side i's process's inbox (inbox.h) */
	int32_t epd[2];		/* epd[i]: side i's descriptor in its process */
};

/* The RMA channel's state (channel.h). */
#define QP_CHAN_NONE 0u
#define QP_CHAN_MADE(side) (1u + (unsigned)(side))	/* side made it and sent the other's ends */

struct qp_header {
	uint32_t magic;
	uint32_t version;
	uint32_t ring_size;
	uint32_t reserved;
	_Atomic uint32_t closed[2];	/* side i called scif_close() */
	struct qp_ends ends;
	/* The RMA channel: made once, by the side that first takes this lock
	 * and finds it QP_CHAN_NONE (channel.c: a peer that dies holding it
	 * shows as its hang-up). */
	struct shlock chan_lock;
	_Atomic uint32_t chan;
	struct rb_shared ring[2];
	struct qp_tokens tokens[2];	/* tokens[i]: ring i's, kept by side i in side 1 - i's socket */
	struct qp_rma rma[2];		/* rma[i]: what side i began and completed */
};

_Static_assert(sizeof(struct qp_header) <= QP_HEADER_BYTES, "qp header outgrew its page");

struct arena;

struct qp {
	struct arena *arena;
	struct qp_header *hdr;
	size_t map_len;
	int side;
	struct rb tx, rx;
};

/* Flags of a connection: in the caller's request (its name) and in the answer. */
#define QP_STREAM_ONLY 0x1u	/* never an RMA channel: the RMA family fails */
#define QP_FLAGS_KNOWN QP_STREAM_ONLY
/* The request also says how many tokens the caller sent ahead of it, which
 * the acceptor takes once it has answered (tokens.h). */
#define QP_PREFILL_SHIFT 8
#define QP_PREFILL(flags) (((flags) >> QP_PREFILL_SHIFT) & 0xffu)

/* The handshake's answer from acceptor to caller, sent with the memfd. */
struct qp_accept_msg {
	uint32_t magic;
	uint32_t version;
	int32_t status;		/* 0, or the errno the caller's scif_connect() returns */
	uint32_t ring_size;
	uint32_t flags;		/* QP_STREAM_ONLY: what the acceptor made */
	uint32_t offset_pages;	/* where in the memfd, in QP_HEADER_BYTES */
};

/* Queue pairs count against the process's cap (fabric.h, FABRIC_DEFAULT_RING_MEMORY). */
/* Bytes of queue pairs this process maps now (seq_cst: service.c). */
uint64_t qp_mapped(void);

/* Acceptor: a new queue pair between ends, whose caller's sockets need
 * caller_full tokens to turn unwritable (its request says: tokens.h), in
 * the arena of the caller's process (SO_PEERCRED's pid, or 0): *memfd (the
 * arena's: to be sent, not closed) at *off. */
int qp_create(struct qp *qp, uint32_t ring_size, const struct qp_ends *ends,
	      unsigned caller_full, pid_t caller, int *memfd, uint64_t *off);
/* Caller: maps the queue pair received in the handshake, at off in memfd:
 * -EPROTO if the memfd is not one the acceptor made (its seals, a place
 * outside it). */
int qp_attach(struct qp *qp, int memfd, uint32_t ring_size, uint64_t off);
void qp_detach(struct qp *qp);

/* After our writes (tx) or reads (rx) are published: settles that ring's
 * tokens, on our socket fd (tokens.h). 0, -ECONNRESET, or -EPROTO when the
 * peer's offset or token count is one no peer of ours could publish. */
int qp_settle_tx(struct qp *qp, int fd);
int qp_settle_rx(struct qp *qp, int fd);

/* Our ring to read found empty: -EPROTO if our socket holds bytes no token
 * accounts for, else takes tokens that came after our last settle, and 0
 * (tokens.h's tok_check_rx). */
int qp_check_rx(struct qp *qp, int fd);

/* Bells: one-byte wake-ups on the RMA bell (track.h). */
int qp_ring_bell(int fd);
/* After we made progress the peer may wait for (an RMA of ours completed,
 * its control messages handled): rings its bell, on our end bell, if it
 * raised our waiting flag. */
void qp_notify_peer(struct qp *qp, int bell);
/* Attaches nfds descriptors (SCM_RIGHTS) to mh; buf is cmsg-aligned and holds
 * at least CMSG_SPACE(nfds * sizeof(int)) bytes. Nothing when nfds is 0. */
void qp_attach_fds(struct msghdr *mh, void *buf, const int *fds, int nfds);
/* The descriptors a received message carried (SCM_RIGHTS), at most max of
 * them in fds (the rest closed): how many. */
int qp_take_fds(struct msghdr *mh, int *fds, int max);
/* Swallows pending bells: 1 if the peer is gone, 0 if not, -errno. */
int qp_drain_bells(int fd);

/* The handshake's answer: on success it carries the memfd and the queue
 * pair's place in it. */
int qp_send_accept(int fd, int status, uint32_t ring_size, uint32_t flags, int memfd, uint64_t off);
/* 0 with *ring_size, *flags, *memfd and *off set; -EAGAIN if nothing arrived yet;
 * -ECONNREFUSED if the listener went away or refused; -EPROTO for a
 * malformed answer. */
int qp_recv_accept(int fd, uint32_t *ring_size, uint32_t *flags, int *memfd, uint64_t *off);

#endif
