/*
 * endpoint.c - the descriptor table, endpoint lifetime, and waiting.
 */
#include "endpoint.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t table_idle = PTHREAD_COND_INITIALIZER;
static struct endpoint **table;
static size_t table_len;

/* The slot of an endpoint removed whose descriptor is not closed yet: no
 * endpoint, but nothing to adopt either (ep_forget). */
static char closing_mark;
#define CLOSING_SLOT ((struct endpoint *)&closing_mark)

/* adopted: only into a free slot (a descriptor the kernel gave us cannot
 * be an endpoint's; one being adopted may be, or may be closing). */
static int table_insert(struct endpoint *ep, bool adopted)
{
	int err = 0;

	pthread_mutex_lock(&table_lock);
	if ((size_t)ep->fd >= table_len) {
		size_t len = table_len ? table_len : 256;
		struct endpoint **grown;

		while (len <= (size_t)ep->fd)
			len *= 2;
		grown = realloc(table, len * sizeof(*table));
		if (!grown) {
			err = -ENOMEM;
			goto out;
		}
		memset(grown + table_len, 0, (len - table_len) * sizeof(*table));
		table = grown;
		table_len = len;
	}
	if (adopted && table[ep->fd])
		err = -EBADF;
	else
		table[ep->fd] = ep;
out:
	pthread_mutex_unlock(&table_lock);
	return err;
}

static int create(struct fabric *f, int fd, bool adopted, struct endpoint **out)
{
	struct endpoint *ep = calloc(1, sizeof(*ep));
	int err;

	if (!ep)
		return -ENOMEM;
	ep->fd = fd;
	ep->ctl = -1;
	ep->bell = -1;
	ep->accept_wake = -1;
	ep->chan_early.ctl = -1;
	ep->chan_early.bell = -1;
	atomic_init(&ep->has_channel, false);
	ep->fabric = f;
	ep->state = EP_UNBOUND;
	if (pthread_cond_init(&ep->bell_wake, NULL)) {
		free(ep);
		return -ENOMEM;
	}
	pthread_mutex_init(&ep->lock, NULL);
	pthread_mutex_init(&ep->send_lock, NULL);
	pthread_mutex_init(&ep->recv_lock, NULL);
	atomic_init(&ep->closing, false);
	atomic_init(&ep->peer_gone, false);
	atomic_init(&ep->hangup_taken, false);
	atomic_init(&ep->reset, 0);
	atomic_init(&ep->rma, NULL);	/* made by the connection's first need (ep_rma_make_locked) */
	err = table_insert(ep, adopted);
	if (err) {
		ep_free(ep);
		return err;
	}
	*out = ep;
	return 0;
}

int ep_create(struct fabric *f, int fd, struct endpoint **out)
{
	return create(f, fd, false, out);
}

int ep_create_adopted(struct fabric *f, int fd, struct endpoint **out)
{
	return create(f, fd, true, out);
}

struct endpoint *ep_find(int epd)
{
	struct endpoint *ep = NULL;

	pthread_mutex_lock(&table_lock);
	if (epd >= 0 && (size_t)epd < table_len && table[epd] && table[epd] != CLOSING_SLOT) {
		ep = table[epd];
		ep->refs++;
	}
	pthread_mutex_unlock(&table_lock);
	if (!ep)
		errno = EBADF;
	return ep;
}

void ep_forget(int epd)
{
	pthread_mutex_lock(&table_lock);
	/* A new endpoint may have its number already: only the mark goes. */
	if (epd >= 0 && (size_t)epd < table_len && table[epd] == CLOSING_SLOT)
		table[epd] = NULL;
	pthread_mutex_unlock(&table_lock);
}

void ep_hold(struct endpoint *ep)
{
	pthread_mutex_lock(&table_lock);
	ep->refs++;
	pthread_mutex_unlock(&table_lock);
}

void ep_put(struct endpoint *ep)
{
	pthread_mutex_lock(&table_lock);
	if (--ep->refs == 0 && ep_closing(ep))
		pthread_cond_broadcast(&table_idle);
	pthread_mutex_unlock(&table_lock);
}

int ep_rma_make_locked(struct endpoint *ep)
{
	struct ep_rma *r;
	int err;

	/* Relaxed: only holders of ep->lock store it, and we hold it. */
	if (atomic_load_explicit(&ep->rma, memory_order_relaxed))
		return 0;
	r = calloc(1, sizeof(*r));	/* empty tables, nothing seen, no end of file */
	if (!r)
		return -ENOMEM;
	err = pthread_mutex_init(&r->lock, NULL);
	if (err)
		goto no_lock;
	err = pthread_mutex_init(&r->slot_lock, NULL);
	if (err)
		goto no_slot_lock;
	err = pthread_cond_init(&r->slot_cond, NULL);
	if (err)
		goto no_slot_cond;
	atomic_init(&r->ctl_missed, false);
	atomic_init(&r->slot_waiters, 0);
	/* Pairs with the acquire in ep_rma(): whoever sees the pointer sees
	 * the mutexes and tables initialised - threads that do not hold
	 * ep->lock included (the service thread, the DMA engine). */
	atomic_store_explicit(&ep->rma, r, memory_order_release);
	return 0;

no_slot_cond:
	pthread_mutex_destroy(&r->slot_lock);
no_slot_lock:
	pthread_mutex_destroy(&r->lock);
no_lock:
	free(r);
	/* The mutexes' and condition's own failures (EAGAIN, ENOMEM) are all
	 * a lack of resources: the driver's word for it is ENOMEM. */
	return -ENOMEM;
}

/* The RMA state and what it still holds, at the end. Its tables are empty
 * by now for an endpoint conn_destroy() tore down (win_release_endpoint);
 * one that never connected has none. */
static void rma_free(struct ep_rma *r)
{
	if (!r)
		return;
	free(r->self.w);
	free(r->peer.w);
	pthread_cond_destroy(&r->slot_cond);
	pthread_mutex_destroy(&r->slot_lock);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void ep_free(struct endpoint *ep)
{
	/* Relaxed: nobody else holds the endpoint any more (ep_remove). */
	rma_free(atomic_load_explicit(&ep->rma, memory_order_relaxed));
	pthread_cond_destroy(&ep->bell_wake);
	pthread_mutex_destroy(&ep->lock);
	pthread_mutex_destroy(&ep->send_lock);
	pthread_mutex_destroy(&ep->recv_lock);
	free(ep);
}

struct endpoint *ep_remove(int epd)
{
	struct endpoint *ep = NULL;

	pthread_mutex_lock(&table_lock);
	if (epd >= 0 && (size_t)epd < table_len && table[epd] != CLOSING_SLOT) {
		ep = table[epd];
		if (ep)
			table[epd] = CLOSING_SLOT;
	}
	pthread_mutex_unlock(&table_lock);
	if (!ep)
		return NULL;

	pthread_mutex_lock(&ep->lock);
	atomic_store(&ep->closing, true);
	pthread_cond_broadcast(&ep->bell_wake);
	pthread_mutex_unlock(&ep->lock);
	/* Wakes any of our threads sleeping in poll() on this socket or on the
	 * RMA bell, or waiting to send on the control channel. A listener's
	 * socket may be other processes' too (listener.c): its sleepers have
	 * a wake-up of their own, and the last holder's close shut it down. */
	if (ep->state != EP_LISTENING)
		shutdown(ep->fd, SHUT_RDWR);
	else if (ep->accept_wake >= 0)
		(void)eventfd_write(ep->accept_wake, 1);	/* a count far from its limit: never fails */
	if (ep->ctl >= 0)
		shutdown(ep->ctl, SHUT_RDWR);
	if (ep->bell >= 0)
		shutdown(ep->bell, SHUT_RDWR);

	pthread_mutex_lock(&table_lock);
	while (ep->refs > 0)
		pthread_cond_wait(&table_idle, &table_lock);
	pthread_mutex_unlock(&table_lock);
	return ep;
}

void ep_for_each(void (*fn)(struct endpoint *ep))
{
	for (size_t next = 0;; next++) {
		struct endpoint *ep = NULL;

		/* One reference at a time: fn may wait for an endpoint's lock,
		 * whose holder may be waiting for another endpoint's references
		 * to go (scif_accept destroying a connection it could not make). */
		pthread_mutex_lock(&table_lock);
		while (next < table_len && (!table[next] || table[next] == CLOSING_SLOT))
			next++;
		if (next < table_len) {
			ep = table[next];
			ep->refs++;
		}
		pthread_mutex_unlock(&table_lock);
		if (!ep)
			return;
		fn(ep);
		ep_put(ep);
	}
}

bool ep_closing(const struct endpoint *ep)
{
	return atomic_load(&ep->closing);
}

int ep_connected_locked(const struct endpoint *ep)
{
	if (ep_closing(ep))
		return -EINTR;
	if (ep->state != EP_CONNECTED)
		return -ENOTCONN;
	return 0;
}

int ep_wait(struct endpoint *ep, short events)
{
	struct pollfd p = { .fd = ep->fd, .events = events };

	if (poll(&p, 1, -1) < 0 && errno != EINTR)
		return -errno;
	/* Our own shutdown in ep_remove() shows as a hang-up too. */
	return ep_closing(ep) ? -EINTR : 0;
}

bool ep_take_hangup(struct endpoint *ep)
{
	struct pollfd p = { .fd = ep->fd, .events = 0 };
	int err;
	socklen_t len = sizeof(err);

	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLHUP))
		return false;
	/* A peer that died with our tokens in its socket left an error on
	 * ours (POLLERR), which the driver's descriptor never shows: taken
	 * here, the descriptor reports the hang-up alone. (The kernel sets
	 * it before it wakes anyone with the hang-up, so the service thread,
	 * which this wakes, always finds it.) */
	if (p.revents & POLLERR)
		(void)getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
	atomic_store_explicit(&ep->hangup_taken, true, memory_order_release);
	return true;
}

bool ep_hung_up(struct endpoint *ep)
{
	/* Looks at the descriptor until it has shown the hang-up, even when
	 * the control channel told of the death first: its error is taken at
	 * the first look that finds it. */
	if (atomic_load_explicit(&ep->hangup_taken, memory_order_acquire) || ep_take_hangup(ep))
		return true;
	return atomic_load_explicit(&ep->peer_gone, memory_order_acquire);
}
