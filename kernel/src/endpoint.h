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
	EP_CONNECTED,		/* also once the peer is gone (peer_gone): what it sent can still be read */
};

struct endpoint {
	int fd;			/* the descriptor: a Unix stream socket */
	/* The RMA channel (channel.h): the control channel (ctl.h) and the RMA
	 * bell (track.h), -1 until has_channel. Set once, under lock. */
	int ctl;
	int bell;
	_Atomic bool has_channel;
	struct fabric *fabric;

	pthread_mutex_t lock;	/* guards everything below but the rings */
	pthread_cond_t bell_wake;	/* followers of the bell's poller (track.c) */
	enum ep_state state;
	uint16_t port;		/* local port, 0 if none */
	bool owns_port;		/* bound, or a hold on a listener's (listener.c); accepted endpoints share their listener's */
	bool named;		/* the socket carries its fabric address */
	int accept_wake;	/* a listener's: wakes its scif_accept sleepers at close (eventfd), or -1 */
	bool left;		/* a listener whose scif_close has let go of its hold */
	/* A caller's channel ends that came before its connect was finished
	 * (channel.h): taken once the queue pair is there. */
	struct {
		uint64_t conn;
		int ctl, bell;
		bool lost;	/* they came, but we had no descriptors to take them */
	} chan_early;
	_Atomic bool closing;	/* scif_close has begun: every wait ends with EINTR */
	/* Before connecting or listening: asked for by scif_net_set_stream_only().
	 * Connected: the connection has no control channel and no RMA bell
	 * (ctl and bell stay -1), so the RMA family fails with EOPNOTSUPP. */
	bool stream_only;
	struct scif_portID peer;
	struct qp qp;

	/* Threads waiting for the peer's RMAs take turns on the RMA bell: one
	 * polls it, the others wait for it to report (track.c). */
	bool bell_poller;
	uint64_t bell_gen;

	pthread_mutex_t send_lock;	/* one writer per ring */
	pthread_mutex_t recv_lock;	/* one reader per ring */
	/* The idle sweep's (reclaim.h), under send_lock: our write offset at
	 * the last sweep, and when our ring's pages last went back. */
	uint64_t tx_swept, tx_given;
	_Atomic bool peer_gone;
	_Atomic bool hangup_taken;	/* the descriptor showed the hang-up; its error was taken */

	/* Node-loss resets (reset.h): from connect or accept on, the epochs of
	 * our node and the peer's when the connection was made (under lock;
	 * fixed once connected), and RESET_* once reset. */
	bool linked;
	uint32_t epoch_self, epoch_peer;
	_Atomic unsigned reset;

	/* Windows and RMA accounting (window.h, track.h): NULL until the
	 * connection first needs them - an idle connection never does, and
	 * carries a pointer rather than the 192 bytes (x86-64) of two mutexes, a
	 * condition variable and two tables. Made under lock (ep_rma_make_locked),
	 * published with release before the RMA channel is attached, and never
	 * taken away before ep_free(): once seen it stays. So has_channel
	 * (acquire) implies it is there, and so does any call past rma_verify(). */
	_Atomic(struct ep_rma *) rma;
	_Atomic uint32_t watch;	/* the service thread's number for the connection (service.h), or 0 */

	unsigned refs;		/* guarded by the table lock */
};

/* A new endpoint owning fd, entered in the table. */
int ep_create(struct fabric *f, int fd, struct endpoint **out);
/* Takes a reference: NULL with errno EBADF if epd is not an open endpoint.
 * For the libscif calls: a descriptor of a listener this process did not
 * open here (received from another process, or dup()ed) is adopted
 * (listener.c's listener_adopt). */
struct endpoint *ep_get(int epd);
/* The same without adopting anything: for the fabric's own threads. */
struct endpoint *ep_find(int epd);
/* Enters a listener being adopted under epd: -EBADF if an endpoint holds it. */
int ep_create_adopted(struct fabric *f, int fd, struct endpoint **out);
/* After conn_destroy() closed the descriptor of an endpoint ep_remove()d:
 * until then its number is nobody's to adopt. */
void ep_forget(int epd);
/* Another reference to an endpoint the caller holds one to. */
void ep_hold(struct endpoint *ep);
void ep_put(struct endpoint *ep);
/* Removes epd from the table, marks it closing, wakes its sleeping threads
 * (shutting its sockets down) and waits for them to leave: the endpoint,
 * now nobody's but the caller's to tear down and ep_free(), or NULL. */
struct endpoint *ep_remove(int epd);
void ep_free(struct endpoint *ep);
/* Calls fn on every endpoint in the table, holding a reference to it (to
 * that one only) and no lock; endpoints opened meanwhile may be missed. */
void ep_for_each(void (*fn)(struct endpoint *ep));

/* 0 for an endpoint that is connected (even if its peer is gone: what it sent
 * may still be read), -EINTR while it closes, -ENOTCONN otherwise. Call with
 * ep->lock held. */
int ep_connected_locked(const struct endpoint *ep);
bool ep_closing(const struct endpoint *ep);

/* Whether the connection's RMA channel is attached (channel.h): ctl and bell
 * may be used once this said so. */
static inline bool ep_has_channel(const struct endpoint *ep)
{
	/* Pairs with the store in channel.c's attach_locked(). */
	return atomic_load_explicit(&ep->has_channel, memory_order_acquire);
}

/* The endpoint's RMA state, or NULL if the connection never needed it: no
 * window of ours or the peer's, no RMA of ours numbered, no control message
 * seen. Pairs with the release in ep_rma_make_locked(): a pointer seen here
 * is to a struct fully initialised. */
static inline struct ep_rma *ep_rma(const struct endpoint *ep)
{
	return atomic_load_explicit(&ep->rma, memory_order_acquire);
}

/* Makes the RMA state if the endpoint has none, with ep->lock held (the one
 * lock its makers share, and ep->lock comes before rma->lock): 0, or -ENOMEM
 * (as the driver says it for an allocation an RMA call needs). */
int ep_rma_make_locked(struct endpoint *ep);

/* Whether a connected endpoint's POLLIN was only tokens in flight when its
 * reader settled (tokens.h): its ring is empty, and they are taken now. */
bool ep_rx_stray(int epd);

/* Sleeps in poll(2) on the descriptor until it shows one of events, or the
 * peer leaves (POLLHUP): 0; -EINTR once the endpoint is closing. The
 * descriptor is level-triggered (tokens.h): threads sleeping here take
 * nothing from each other, nor from an event loop watching it. */
int ep_wait(struct endpoint *ep, short events);
/* Whether the descriptor shows the connection hung up (the peer's process
 * closed or died, or a reset shut it down): a system call. Notes it in
 * peer_gone, and takes the error a killed peer leaves on the socket, which
 * the driver's descriptor never shows (POLLERR). */
bool ep_take_hangup(struct endpoint *ep);
/* Whether the peer is known gone, or the descriptor says so now: for calls
 * that found nothing to do. */
bool ep_hung_up(struct endpoint *ep);

#endif
