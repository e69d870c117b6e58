/*
 * scif_net.h - what the virtual fabric offers beyond libscif: its place, its
 * nodes, stream-only endpoints, and why the last call failed. Programs
 * written for MPSS never need this header; tools, tests and the addon do.
 */
#ifndef SCIF_NET_H
#define SCIF_NET_H

#include <stdint.h>

#include "scif.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SCIF_NET_MAX_NODES 64

/* The fabric directory this process uses (opening it on first use); NULL on failure. */
const char *scif_net_fabric_path(void);

/* This process's node (SCIF_NET_NODE), or -1 with errno when the fabric is unusable. */
int scif_net_self_node(void);

/* How many nodes the fabric has (online or not), or -1 with errno. */
int scif_net_node_count(void);

/*
 * Takes a node off line (a card reset or removal) or brings it back: 0, or -1
 * with errno (ENODEV: no such node). Taking it off line resets every
 * connection with an end on it, in every process of the fabric: once this
 * returns, send fails with ECONNRESET on both ends, poll reports POLLHUP, and
 * recv fails with ECONNRESET - at once on the lost node (its rings are lost
 * with it), after what was already in its ring on the other end. Threads
 * asleep on such connections wake, and their descriptors turn readable, a
 * moment later. Connecting to or from the node fails with ENODEV while it is
 * off line; its listeners stay, and answer again once it is back. Bringing it
 * back revives no connection.
 */
int scif_net_set_node_online(uint16_t node, int online);

/*
 * Makes an endpoint stream-only, before it connects or listens: its
 * connections (a connect from it, every accept on it as a listener) carry
 * bytes only, and never get an RMA channel. A connection is stream-only when
 * either side asked: a full caller reaching a stream-only listener gets one
 * too, and so does a full listener accepting a stream-only caller.
 *
 * This is no longer needed to save descriptors: every connection holds one
 * descriptor a side (the endpoint's own) until the first RMA, mapping,
 * registration or fence call on either side gives it its RMA channel (two
 * more a side, from then on). A stream-only connection stays at one for
 * good, and refuses the calls instead.
 *
 * On a stream-only connection scif_register, scif_unregister, scif_readfrom,
 * scif_writeto, scif_vreadfrom, scif_vwriteto, scif_mmap, scif_fence_mark,
 * scif_fence_wait and scif_fence_signal fail with EOPNOTSUPP (after the
 * argument checks each does first; also once the peer is gone). send, recv,
 * poll, close and the peer's departure behave as on any connection.
 *
 * 0, or -1 with errno: EBADF (not an endpoint), EISCONN (connecting or
 * connected), EINVAL (listening). Calling it again is harmless. MPSS's
 * libscif has no such call; the addon looks it up and goes without.
 */
int scif_net_set_stream_only(scif_epd_t epd);

/*
 * A sentence saying why the last failing call in this thread failed, when errno
 * alone does not say it (a fabric that cannot be opened, a bad SCIF_NET_NODE);
 * "" otherwise.
 */
const char *scif_net_last_error(void);

/*
 * Whether a connected endpoint has something to receive (bytes, or a peer
 * that is known to be gone), looked up in shared memory alone: no system
 * call. For a receiving thread that spins briefly before it sleeps on the
 * descriptor. The flags once lowered and raised a waiting flag that spared
 * the writer its doorbells; the descriptor is level-triggered now (the
 * writer keeps it readable while there is data, whatever the reader does),
 * so SCIF_NET_RX_QUIET and SCIF_NET_RX_ARM are accepted and change nothing.
 * 1 or 0, or -1 with errno: EBADF, EINVAL (unknown flags, or both). 0 when
 * not connected.
 */
#define SCIF_NET_RX_QUIET 0x1
#define SCIF_NET_RX_ARM 0x2
int scif_net_rx_ready(scif_epd_t epd, int flags);

/*
 * The fabric's endpoints, as `ss` lists sockets (`scif-net ports`): every
 * listener and every connected end, in every process of the user, read from
 * the kernel's socket tables and /proc without touching the fabric. A
 * connection shows twice, once per end (the connecting end
 * SCIF_NET_EP_CONNECTED, the accepted one SCIF_NET_EP_ACCEPTED). Traffic is
 * the end's queue pair as its process maps it: bytes its sends put into the
 * ring and its peer's sends put into the other one (a socket's framing
 * included), and RMAs it began; SCIF_NET_UNKNOWN where the process's memory
 * cannot be read. A listener's pid is one of its holders. Reading a
 * connection's header maps its page in, in the process holding it (an idle
 * connection otherwise keeps none): one page per connection looked at.
 *
 * Fills out[0..max) and returns how many there are (more than max when out
 * was too small), or -1 with errno.
 */
#define SCIF_NET_EP_LISTENING 1
#define SCIF_NET_EP_CONNECTED 2
#define SCIF_NET_EP_ACCEPTED 3
#define SCIF_NET_NO_PEER 0xffffu
#define SCIF_NET_UNKNOWN UINT64_MAX
struct scif_net_endpoint_info {
	uint32_t state;			/* SCIF_NET_EP_* */
	int32_t pid, fd;		/* who holds it (pid 0 and fd -1: unknown) */
	uint16_t node, port;
	uint16_t peer_node, peer_port;	/* SCIF_NET_NO_PEER for a listener */
	uint64_t conn;			/* the connection's number in the fabric, 0 unknown */
	uint64_t bytes_sent, bytes_received, rmas;
};
int scif_net_census(struct scif_net_endpoint_info *out, int max);

#ifdef __cplusplus
}
#endif

#endif /* SCIF_NET_H */
