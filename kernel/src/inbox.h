/*
 * inbox.h - a process's inbox: where the other end of a connection sends
 * this process its ends of the connection's RMA channel when it makes it
 * (channel.h), without a message on the connection's socket, whose queue
 * holds the readiness tokens.
 *
 * An inbox is a datagram socket bound to an abstract name of the fabric's
 * (fabric_inbox_addr) with a number in it - the process's pid, or another
 * number if that is taken - which travels in connect requests and queue
 * pair headers. Datagrams, because a message then arrives whole with its
 * descriptors (SCM_RIGHTS) or not at all: nothing to accept, no reader
 * waiting for the rest of a message whose sender stopped half-way. The
 * socket passes credentials (SO_PASSCRED), so the kernel attaches every
 * sender's to its message, where it cannot forge them: a message from
 * another user is dropped, its descriptors closed.
 *
 * Descriptors in flight are held by the inbox's queue: if the process dies
 * before reading them, they close with it, and the sender's ends of the
 * pairs see end of file - the peer's death, as anywhere else.
 */
#ifndef SCIF_NET_INBOX_H
#define SCIF_NET_INBOX_H

#include <stdint.h>

#include "fabric.h"

#define INBOX_MAGIC 0x53434942u	/* "SCIB" */

/* Which end of which connection the descriptors sent with it are for. */
struct inbox_msg {
	uint32_t magic;
	uint32_t version;	/* qp.h's QP_VERSION */
	uint64_t conn;		/* qp_ends.conn */
	int32_t epd;		/* the receiving end's descriptor in its process */
	uint32_t side;		/* and its side of the queue pair */
};

/* Descriptors a message carries: the control channel's end and the bell's. */
#define INBOX_FDS 2

/* A new inbox for this process: its socket (close-on-exec, non-blocking),
 * with *id its number; or -errno. */
int inbox_open(const struct fabric *f, uint32_t *id);

/* Sends m with fds to inbox id. When the inbox is full, waits for room, or
 * for a hang-up on hangup_fd (the connection's socket: the peer died, or our
 * own close shut it down). 0; -ECONNRESET when there is no such inbox (its
 * process is gone) or hangup_fd hung up; -errno. */
int inbox_send(const struct fabric *f, uint32_t id, const struct inbox_msg *m,
	       const int fds[INBOX_FDS], int hangup_fd);

/* Takes one message from inbox fd: 1 with *m and fds[] (to be closed by the
 * caller; both -1 if the kernel could not give them to us: we are at our
 * descriptor limit), 0 when none is waiting; messages that are not ours -
 * another user's, malformed - are dropped on the way. */
int inbox_recv(int fd, struct inbox_msg *m, int fds[INBOX_FDS]);

#endif
