/*
 * qp.h - a queue pair: the two rings of one connection, in a memfd that the
 * accepting side creates and hands to the connecting side over the
 * connection's socket. Side 0 is the connecting endpoint, side 1 the accepted
 * one; ring i carries what side i writes.
 *
 * The same socket is the endpoint's descriptor: its readiness follows the
 * rings through the tokens each side keeps in the other's end (tokens.h),
 * and when a process dies the kernel closes its end, which is how the
 * survivor (and whatever polls its descriptor) learns of it.
 *
 * A second socket, the control channel (ctl.h), travels in the handshake with
 * the memfd: registered windows are announced there, with their memfds. The
 * header also counts each side's RMAs, which is what fences wait on (track.h).
 * A third socket, the RMA bell, travels with them: it carries one-byte
 * wake-ups for threads waiting for the other side's RMAs.
 *
 * A stream-only connection (QP_STREAM_ONLY: either side asked for it with
 * scif_net_set_stream_only()) has neither: only the memfd travels, and the
 * connection's socket is the one descriptor each side holds. The caller asks
 * in its request, which is the abstract name it binds before connecting
 * (fabric_caller_addr): the acceptor reads it with the connection itself, so
 * scif_accept still never waits for a message. The answer says what was made.
 */
#ifndef SCIF_NET_QP_H
#define SCIF_NET_QP_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rb.h"
#include "tokens.h"

#define QP_MAGIC 0x53435150u	/* "SCQP" */
/* 2: control channel and RMA counters; 3: the RMA bell; 4: request and
 * answer flags (stream-only connections carry only the memfd); 5: tokens
 * instead of doorbells, the request's prefill */
#define QP_VERSION 5
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

struct qp_header {
	uint32_t magic;
	uint32_t version;
	uint32_t ring_size;
	uint32_t reserved;
	_Atomic uint32_t closed[2];	/* side i called scif_close() */
	struct rb_shared ring[2];
	struct qp_tokens tokens[2];	/* tokens[i]: ring i's, kept by side i in side 1 - i's socket */
	struct qp_rma rma[2];		/* rma[i]: what side i began and completed */
};

_Static_assert(sizeof(struct qp_header) <= QP_HEADER_BYTES, "qp header outgrew its page");

struct qp {
	struct qp_header *hdr;
	size_t map_len;
	int side;
	struct rb tx, rx;
};

/* Flags of a connection: in the caller's request (its name) and in the answer. */
#define QP_STREAM_ONLY 0x1u	/* no control channel, no RMA bell */
#define QP_FLAGS_KNOWN QP_STREAM_ONLY
/* The request also says how many tokens the caller sent ahead of it, which
 * the acceptor takes once it has answered (tokens.h). */
#define QP_PREFILL_SHIFT 8
#define QP_PREFILL(flags) (((flags) >> QP_PREFILL_SHIFT) & 0xffu)

/* The handshake's answer from acceptor to caller, sent with the memfd, the
 * control channel and the RMA bell (only the memfd if QP_STREAM_ONLY). */
struct qp_accept_msg {
	uint32_t magic;
	uint32_t version;
	int32_t status;		/* 0, or the errno the caller's scif_connect() returns */
	uint32_t ring_size;
	uint32_t flags;		/* QP_STREAM_ONLY: what the acceptor made */
	uint32_t reserved;
};

/* Acceptor: a new queue pair; *memfd is to be sent, then closed. */
int qp_create(struct qp *qp, uint32_t ring_size, int *memfd);
/* Acceptor: the control channel, a SOCK_SEQPACKET pair: *mine is kept,
 * *theirs is sent with the memfd, then closed. */
int qp_create_ctl(int *mine, int *theirs);
/* Acceptor: the RMA bell, a stream pair carrying one-byte wake-ups like the
 * endpoint's own socket; *mine is kept, *theirs is sent, then closed. */
int qp_create_bell(int *mine, int *theirs);
/* Caller: maps the queue pair received in the handshake. */
int qp_attach(struct qp *qp, int memfd, uint32_t ring_size);
void qp_detach(struct qp *qp);

/* After our writes (tx) or reads (rx) are published: settles that ring's
 * tokens, on our socket fd (tokens.h). 0 or -ECONNRESET. */
int qp_settle_tx(struct qp *qp, int fd);
int qp_settle_rx(struct qp *qp, int fd);

/* Bells: one-byte wake-ups on the RMA bell (track.h). */
int qp_ring_bell(int fd);
/* After we made progress the peer may wait for (an RMA of ours completed,
 * its control messages handled): rings its bell, on our end bell, if it
 * raised our waiting flag. */
void qp_notify_peer(struct qp *qp, int bell);
/* Attaches nfds descriptors (SCM_RIGHTS) to mh; buf is cmsg-aligned and holds
 * at least CMSG_SPACE(nfds * sizeof(int)) bytes. Nothing when nfds is 0. */
void qp_attach_fds(struct msghdr *mh, void *buf, const int *fds, int nfds);
/* Swallows pending bells: 1 if the peer is gone, 0 if not, -errno. */
int qp_drain_bells(int fd);

/* The handshake's answer: on success it carries the memfd and, unless flags
 * has QP_STREAM_ONLY (then ctl and bell are -1), the caller's ends of the
 * control channel and the RMA bell. */
int qp_send_accept(int fd, int status, uint32_t ring_size, uint32_t flags, int memfd, int ctl,
		   int bell);
/* 0 with *ring_size, *flags, *memfd, *ctl and *bell set (-1 for the last two
 * of a stream-only answer); -EAGAIN if nothing arrived yet; -ECONNREFUSED if
 * the listener went away or refused; -EPROTO for a malformed answer. */
int qp_recv_accept(int fd, uint32_t *ring_size, uint32_t *flags, int *memfd, int *ctl,
		   int *bell);

#endif
