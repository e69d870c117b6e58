/*
 * endpoint.h - a SCIF endpoint of this process: its state, its queue pair and
 * the table that maps descriptors (which are its socket's file descriptors)
 * to endpoints.
 *
 * Inside the fabric, functions return 0 or a negative errno; the libscif
 * entry points turn that into -1 and errno at the boundary.
 */
#ifndef SCIF_NET_ENDPOINT_H
#define SCIF_NET_ENDPOINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fabric.h"
#include "qp.h"
#include "window.h"

enum ep_state {
	EP_UNBOUND,
	EP_BOUND,
	EP_LISTENING,
	EP_CONNECTING,
	EP_CONNECTED,
	EP_DISCONNECTED,	/* the peer is gone; what it sent can still be read */
};

struct endpoint {
	int fd;			/* the descriptor: a Unix stream socket */
	int ctl;		/* the control channel once connected (ctl.h), else -1 */
	int bell;		/* the RMA bell once connected (track.h), else -1 */
	struct fabric *fabric;

	pthread_mutex_t lock;	/* guards everything below but the rings */
	pthread_cond_t wake;	/* followers waiting for the poller (see ep_wait) */
	pthread_cond_t bell_wake;	/* ...for the bell's poller (track.c) */
	enum ep_state state;
	uint16_t port;		/* local port, 0 if none */
	bool owns_port;		/* bound or listening; accepted endpoints share their listener's */
	bool named;		/* the socket carries its fabric address */
	bool closing;
	/* Before connecting or listening: asked for by scif_net_set_stream_only().
	 * Connected: the connection has no control channel and no RMA bell
	 * (ctl and bell stay -1), so the RMA family fails with EOPNOTSUPP. */
	bool stream_only;
	struct scif_portID peer;
	struct qp qp;

	/* One thread at a time polls the socket and swallows its doorbells; other
	 * blocked threads wait for it to bump wake_gen (leader/follower), so no
	 * thread can swallow a wake-up another one is sleeping on. */
	bool poller;
	uint64_t wake_gen;

	/* Threads waiting for the peer's RMAs take turns the same way on the
	 * RMA bell, and never look at the socket above: an event loop watching
	 * the descriptor would lose the doorbells they swallowed. */
	bool bell_poller;
	uint64_t bell_gen;

	pthread_mutex_t send_lock;	/* one writer per ring */
	pthread_mutex_t recv_lock;	/* one reader per ring */
	_Atomic bool peer_gone;

	/* Node-loss resets (reset.h): from connect or accept on, the epochs of
	 * our node and the peer's when the connection was made (under lock;
	 * fixed once connected), and RESET_* once reset. */
	bool linked;
	uint32_t epoch_self, epoch_peer;
	_Atomic unsigned reset;

	struct ep_rma rma;	/* windows and RMA accounting (window.h, track.h) */

	unsigned refs;		/* guarded by the table lock */
};

/* A new endpoint owning fd, entered in the table. */
int ep_create(struct fabric *f, int fd, struct endpoint **out);
/* Takes a reference: NULL with errno EBADF if epd is not an open endpoint. */
struct endpoint *ep_get(int epd);
void ep_put(struct endpoint *ep);
/* Removes epd from the table, wakes its blocked threads, waits for them to
 * leave, and frees it. */
int ep_destroy(int epd);
/* Calls fn on every endpoint in the table, holding a reference to it (to
 * that one only) and no lock; endpoints opened meanwhile may be missed. */
void ep_for_each(void (*fn)(struct endpoint *ep));

/* Reads waiting control messages (ctl.h), whoever the poller is; swallows
 * pending doorbells, unless another thread is the poller (as_poller: we are),
 * notes a departed peer and wakes followers. Call with ep->lock held. */
void ep_drain_locked(struct endpoint *ep, bool as_poller);
uint64_t ep_wake_gen(struct endpoint *ep);
/* Before sleeping on a condition: swallows doorbells (unless another thread
 * is the poller) and returns the wake generation to pass to ep_wait(). Arm
 * the condition and look again after this, then sleep. */
uint64_t ep_prepare_to_sleep(struct endpoint *ep);
/* Sleeps until the socket shows a doorbell, the peer leaves, the endpoint
 * closes (-EINTR) or timeout_ms passes (-ETIMEDOUT; <0 waits for ever) -
 * unless wake_gen has moved past gen already. */
int ep_wait(struct endpoint *ep, uint64_t gen, int timeout_ms);

/* Whether the connected peer is gone: closed, dead, or reset by a node's
 * loss (reset.h), which this also notices. */
/* 0 for an endpoint that is connected (or whose peer is gone: what it sent may
 * still be read), -EINTR while it closes, -ENOTCONN otherwise. Call with
 * ep->lock held. */
int ep_connected_locked(const struct endpoint *ep);

bool ep_peer_gone(struct endpoint *ep);

#endif
