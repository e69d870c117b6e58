/*
 * endpoint.c - the descriptor table, endpoint lifetime, and waiting.
 */
#include "endpoint.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "reset.h"

/*
 * Registration, RMA and fences (window.c, ctl.c and the files using them) are
 * optional in a build: the addon's binding.gyp lists the fabric's sources
 * one by one, and a build that leaves them out must still link and run, as
 * must a program linked with libscifnet.a that never registers a window.
 * These two are all the core needs of them, so it references them weakly:
 * absent, they are NULL and there are no windows to release or announce.
 */
#pragma weak win_release_endpoint
#pragma weak ctl_poll

static void ep_free(struct endpoint *ep);

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t table_idle = PTHREAD_COND_INITIALIZER;
static struct endpoint **table;
static size_t table_len;

static int table_insert(struct endpoint *ep)
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
	/* The kernel gave us this descriptor, so no live endpoint can own it. */
	table[ep->fd] = ep;
out:
	pthread_mutex_unlock(&table_lock);
	return err;
}

int ep_create(struct fabric *f, int fd, struct endpoint **out)
{
	struct endpoint *ep = calloc(1, sizeof(*ep));
	pthread_condattr_t ca;
	int err;

	if (!ep)
		return -ENOMEM;
	ep->fd = fd;
	ep->ctl = -1;
	ep->bell = -1;
	ep->fabric = f;
	ep->state = EP_UNBOUND;
	if (pthread_condattr_init(&ca)) {
		free(ep);
		return -ENOMEM;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&ep->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (err) {
		free(ep);
		return -ENOMEM;
	}
	if (pthread_cond_init(&ep->bell_wake, NULL)) {
		pthread_cond_destroy(&ep->wake);
		free(ep);
		return -ENOMEM;
	}
	if (pthread_cond_init(&ep->rma.slot_cond, NULL)) {
		pthread_cond_destroy(&ep->bell_wake);
		pthread_cond_destroy(&ep->wake);
		free(ep);
		return -ENOMEM;
	}
	pthread_mutex_init(&ep->lock, NULL);
	pthread_mutex_init(&ep->send_lock, NULL);
	pthread_mutex_init(&ep->recv_lock, NULL);
	pthread_mutex_init(&ep->rma.lock, NULL);
	pthread_mutex_init(&ep->rma.slot_lock, NULL);
	atomic_init(&ep->peer_gone, false);
	atomic_init(&ep->reset, 0);
	atomic_init(&ep->rma.slot_waiters, 0);
	err = table_insert(ep);
	if (err) {
		ep_free(ep);
		return err;
	}
	*out = ep;
	return 0;
}

struct endpoint *ep_get(int epd)
{
	struct endpoint *ep = NULL;

	pthread_mutex_lock(&table_lock);
	if (epd >= 0 && (size_t)epd < table_len && table[epd]) {
		ep = table[epd];
		ep->refs++;
	}
	pthread_mutex_unlock(&table_lock);
	if (!ep)
		errno = EBADF;
	return ep;
}

void ep_put(struct endpoint *ep)
{
	pthread_mutex_lock(&table_lock);
	if (--ep->refs == 0 && ep->closing)
		pthread_cond_broadcast(&table_idle);
	pthread_mutex_unlock(&table_lock);
}

static void ep_free(struct endpoint *ep)
{
	pthread_cond_destroy(&ep->wake);
	pthread_cond_destroy(&ep->bell_wake);
	pthread_cond_destroy(&ep->rma.slot_cond);
	pthread_mutex_destroy(&ep->lock);
	pthread_mutex_destroy(&ep->send_lock);
	pthread_mutex_destroy(&ep->recv_lock);
	pthread_mutex_destroy(&ep->rma.lock);
	pthread_mutex_destroy(&ep->rma.slot_lock);
	free(ep);
}

static void ep_release(struct endpoint *ep)
{
	/* The peer learns of the close first (closed flag, end of file), then
	 * our windows' pages go back to being private. */
	if (ep->qp.hdr)
		qp_detach(&ep->qp);
	if (win_release_endpoint)
		win_release_endpoint(ep);
	if (ep->ctl >= 0)
		close(ep->ctl);
	if (ep->bell >= 0)
		close(ep->bell);
	if (ep->state == EP_LISTENING) {
		struct sockaddr_un sa;
		socklen_t len;

		/* Still ours: we hold the port, so nobody else can have re-created it. */
		if (fabric_listener_addr(ep->fabric, ep->fabric->self, ep->port, &sa, &len) == 0)
			unlink(sa.sun_path);
	}
	if (ep->owns_port)
		fabric_port_release(ep->fabric, ep->port);
	close(ep->fd);
	ep_free(ep);
}

int ep_destroy(int epd)
{
	struct endpoint *ep = NULL;

	pthread_mutex_lock(&table_lock);
	if (epd >= 0 && (size_t)epd < table_len) {
		ep = table[epd];
		table[epd] = NULL;
	}
	pthread_mutex_unlock(&table_lock);
	if (!ep)
		return -EBADF;

	pthread_mutex_lock(&ep->lock);
	ep->closing = true;
	pthread_cond_broadcast(&ep->wake);
	pthread_cond_broadcast(&ep->bell_wake);
	pthread_mutex_unlock(&ep->lock);
	/* Wakes any of our threads sleeping in poll() on this socket or on the
	 * RMA bell, or waiting to send on the control channel. */
	shutdown(ep->fd, SHUT_RDWR);
	if (ep->ctl >= 0)
		shutdown(ep->ctl, SHUT_RDWR);
	if (ep->bell >= 0)
		shutdown(ep->bell, SHUT_RDWR);

	pthread_mutex_lock(&table_lock);
	while (ep->refs > 0)
		pthread_cond_wait(&table_idle, &table_lock);
	pthread_mutex_unlock(&table_lock);
	ep_release(ep);
	return 0;
}

void ep_for_each(void (*fn)(struct endpoint *ep))
{
	for (size_t next = 0;; next++) {
		struct endpoint *ep = NULL;

		/* One reference at a time: fn may wait for an endpoint's lock,
		 * whose holder may be waiting for another endpoint's references
		 * to go (scif_accept destroying a connection it could not make). */
		pthread_mutex_lock(&table_lock);
		while (next < table_len && !table[next])
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

int ep_connected_locked(const struct endpoint *ep)
{
	if (ep->closing)
		return -EINTR;
	if (ep->state != EP_CONNECTED && ep->state != EP_DISCONNECTED)
		return -ENOTCONN;
	return 0;
}

bool ep_peer_gone(struct endpoint *ep)
{
	if (atomic_load_explicit(&ep->peer_gone, memory_order_acquire))
		return true;
	if (ep->qp.hdr &&
	    atomic_load_explicit(&ep->qp.hdr->closed[1 - ep->qp.side], memory_order_acquire)) {
		atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
		return true;
	}
	return reset_check(ep) != 0;
}

void ep_drain_locked(struct endpoint *ep, bool as_poller)
{
	if (ep->state != EP_CONNECTED && ep->state != EP_DISCONNECTED)
		return;
	/* Window messages wait on their own channel, whoever is the poller. */
	if (ctl_poll)
		ctl_poll(ep);
	if (ep->poller && !as_poller)
		return;
	if (qp_drain_doorbells(ep->fd) != 0) {
		/* EOF: the peer closed or died; it can send nothing more. */
		atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
		ep->state = EP_DISCONNECTED;
		if (ctl_poll)
			ctl_poll(ep);	/* releases its windows */
	}
	ep->wake_gen++;
	pthread_cond_broadcast(&ep->wake);
}

uint64_t ep_prepare_to_sleep(struct endpoint *ep)
{
	uint64_t gen;

	pthread_mutex_lock(&ep->lock);
	ep_drain_locked(ep, false);
	gen = ep->wake_gen;
	pthread_mutex_unlock(&ep->lock);
	return gen;
}

uint64_t ep_wake_gen(struct endpoint *ep)
{
	uint64_t gen;

	pthread_mutex_lock(&ep->lock);
	gen = ep->wake_gen;
	pthread_mutex_unlock(&ep->lock);
	return gen;
}

static int follow(struct endpoint *ep, uint64_t gen, int timeout_ms)
{
	struct timespec until;
	int err = 0;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	while (ep->wake_gen == gen && !ep->closing && !err) {
		if (timeout_ms < 0)
			pthread_cond_wait(&ep->wake, &ep->lock);
		else if (pthread_cond_timedwait(&ep->wake, &ep->lock, &until) == ETIMEDOUT)
			err = -ETIMEDOUT;
	}
	return ep->closing ? -EINTR : (ep->wake_gen != gen ? 0 : err);
}

int ep_wait(struct endpoint *ep, uint64_t gen, int timeout_ms)
{
	struct pollfd p = { .fd = ep->fd, .events = POLLIN };
	int n, saved, err;

	pthread_mutex_lock(&ep->lock);
	if (ep->closing || ep->wake_gen != gen || ep->poller) {
		err = ep->closing ? -EINTR : ep->wake_gen != gen ? 0 : follow(ep, gen, timeout_ms);
		pthread_mutex_unlock(&ep->lock);
		return err;
	}
	ep->poller = true;
	pthread_mutex_unlock(&ep->lock);

	n = poll(&p, 1, timeout_ms);
	saved = errno;

	pthread_mutex_lock(&ep->lock);
	ep->poller = false;
	ep_drain_locked(ep, false);
	if (ep->closing)
		err = -EINTR;
	else if (n < 0)
		err = -saved;
	else
		err = n == 0 ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&ep->lock);
	return err;
}
