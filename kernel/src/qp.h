/*
 * qp.h - a queue pair: the two rings of one connection, in a memfd that the
 * accepting side creates and hands to the connecting side over the
 * connection's socket. Side 0 is the connecting endpoint, side 1 the accepted
 * one; ring i carries what side i writes.
 *
 * The same socket carries doorbells (one byte: "look at the rings again"),
 * which is what makes the endpoint descriptor pollable; and when a process
 * dies the kernel closes its end, which is how the survivor learns of it.
 */
#ifndef SCIF_NET_QP_H
#define SCIF_NET_QP_H

#include <stdatomic.h>
#include <stdint.h>

#include "rb.h"

#define QP_MAGIC 0x53435150u	/* "SCQP" */
#define QP_VERSION 1
#define QP_HEADER_BYTES 4096

struct qp_header {
	uint32_t magic;
	uint32_t version;
	uint32_t ring_size;
	uint32_t reserved;
	_Atomic uint32_t closed[2];	/* side i called scif_close() */
	struct rb_shared ring[2];
};

struct qp {
	struct qp_header *hdr;
	size_t map_len;
	int side;
	struct rb tx, rx;
};

/* The handshake's answer from acceptor to caller, sent with the memfd. */
struct qp_accept_msg {
	uint32_t magic;
	uint32_t version;
	int32_t status;		/* 0, or the errno the caller's scif_connect() returns */
	uint32_t ring_size;
};

/* Acceptor: a new queue pair; *memfd is to be sent, then closed. */
int qp_create(struct qp *qp, uint32_t ring_size, int *memfd);
/* Caller: maps the queue pair received in the handshake. */
int qp_attach(struct qp *qp, int memfd, uint32_t ring_size);
void qp_detach(struct qp *qp);

/* Doorbells on the connection's socket. */
int qp_ring_doorbell(int fd);
/* Swallows pending doorbells: 1 if the peer is gone, 0 if not, -errno. */
int qp_drain_doorbells(int fd);

/* The handshake messages. */
int qp_send_accept(int fd, int status, uint32_t ring_size, int memfd);
/* 0 with *memfd set; -EAGAIN if nothing arrived yet; -ECONNREFUSED if the
 * listener went away or refused. */
int qp_recv_accept(int fd, uint32_t *ring_size, int *memfd);

#endif
