/*
 * poll.c - scif_poll: exact readiness from the rings, sleeping on the
 * endpoints' sockets.
 *
 * Looking at an endpoint swallows its pending doorbells and arms every
 * requested condition that is not met yet, so after scif_poll() returns the
 * descriptor becomes readable again only when something new happens. That is
 * what lets an event loop watch the raw descriptor and call scif_poll() with
 * a zero timeout on each wake-up.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "endpoint.h"
#include "scif.h"

#define FAIL(err) (errno = -(err), -1)

int scif_get_fd(scif_epd_t epd)
{
	return epd;
}

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

static short connected_revents(struct endpoint *ep, short events)
{
	const struct rb *rx = &ep->qp.rx, *tx = &ep->qp.tx;
	bool gone = ep_peer_gone(ep);
	bool in = rb_shared_used(rx->sh) > 0;
	bool out = rb_shared_used(tx->sh) < tx->size;
	short revents = 0;

	if ((events & POLLIN) && !in && !gone)
		in = rb_reader_arm(rx);
	if ((events & POLLOUT) && !out && !gone)
		out = rb_writer_arm(tx);
	if (gone) {
		/* A receive returns at once: with data, or with ECONNRESET. */
		revents |= POLLHUP;
		in = true;
		out = false;
	}
	if ((events & POLLIN) && in)
		revents |= POLLIN;
	if ((events & POLLOUT) && out)
		revents |= POLLOUT;
	return revents;
}

/* The events of one endpoint now; as_poller: this thread holds its poller role. */
static short endpoint_revents(struct endpoint *ep, short events, bool as_poller)
{
	enum ep_state state;

	pthread_mutex_lock(&ep->lock);
	if (ep->closing) {
		/* Closed by another thread meanwhile: no longer a descriptor, and
		 * draining would mistake our own shutdown for the peer's POLLHUP. */
		pthread_mutex_unlock(&ep->lock);
		return POLLNVAL;
	}
	ep_drain_locked(ep, as_poller);
	state = ep->state;
	pthread_mutex_unlock(&ep->lock);

	switch (state) {
	case EP_LISTENING:
		return (events & POLLIN) && fd_readable(ep->fd) ? POLLIN : 0;
	case EP_CONNECTING:
		/* The acceptor's answer (or the listener's departure) is waiting. */
		return (events & POLLOUT) && fd_readable(ep->fd) ? POLLOUT : 0;
	case EP_CONNECTED:
	case EP_DISCONNECTED:
		return connected_revents(ep, events);
	case EP_UNBOUND:
	case EP_BOUND:
		break;
	}
	return POLLERR;
}

static bool take_poller(struct endpoint *ep)
{
	bool mine;

	pthread_mutex_lock(&ep->lock);
	mine = !ep->poller;
	ep->poller = true;
	pthread_mutex_unlock(&ep->lock);
	return mine;
}

static void wake_followers(struct endpoint *ep, bool release)
{
	pthread_mutex_lock(&ep->lock);
	ep_drain_locked(ep, true);
	if (release)
		ep->poller = false;
	pthread_mutex_unlock(&ep->lock);
}

static long ms_left(const struct timespec *until)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(until->tv_sec - now.tv_sec) * 1000000000LL + (until->tv_nsec - now.tv_nsec);
	/* Rounded up, as poll(2) does: truncating would end the wait up to a
	 * millisecond before the timeout. */
	return ns <= 0 ? 0 : (long)((ns + 999999) / 1000000);
}

int scif_poll(struct scif_pollepd *epds, unsigned int nepds, long timeout)
{
	struct endpoint **eps;
	struct pollfd *pfds;
	bool *mine;
	struct timespec until;
	int ready = 0, err = 0;

	if (nepds == 0) {
		/* Nothing to watch: a plain sleep, as poll(2) does. */
		return poll(NULL, 0, timeout < 0 ? -1 : (int)timeout) < 0 ? -1 : 0;
	}
	if (!epds)
		return FAIL(-EFAULT);
	eps = calloc(nepds, sizeof(*eps));
	pfds = calloc(nepds, sizeof(*pfds));
	mine = calloc(nepds, sizeof(*mine));
	if (!eps || !pfds || !mine) {
		free(eps);
		free(pfds);
		free(mine);
		return FAIL(-ENOMEM);
	}
	for (unsigned i = 0; i < nepds; i++) {
		eps[i] = ep_get(epds[i].epd);
		pfds[i].fd = eps[i] ? eps[i]->fd : -1;
		pfds[i].events = POLLIN;
		/* While we may sleep, no other thread swallows these doorbells. */
		if (eps[i] && timeout != 0)
			mine[i] = take_poller(eps[i]);
	}
	if (timeout > 0) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += timeout / 1000;
		until.tv_nsec += (timeout % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	for (;;) {
		long wait;

		ready = 0;
		for (unsigned i = 0; i < nepds; i++) {
			epds[i].revents = eps[i] ? endpoint_revents(eps[i], epds[i].events, mine[i])
						 : POLLNVAL;
			if (epds[i].revents)
				ready++;
		}
		if (ready || timeout == 0)
			break;
		wait = timeout < 0 ? -1 : ms_left(&until);
		if (timeout > 0 && wait <= 0)
			break;
		if (poll(pfds, nepds, wait > 0x7fffffffL ? 0x7fffffff : (int)wait) < 0) {
			err = -errno;
			break;
		}
		/* Threads blocked in send/recv on these endpoints re-check too. */
		for (unsigned i = 0; i < nepds; i++)
			if (mine[i])
				wake_followers(eps[i], false);
	}
	for (unsigned i = 0; i < nepds; i++) {
		if (mine[i])
			wake_followers(eps[i], true);
		if (eps[i])
			ep_put(eps[i]);
	}
	free(eps);
	free(pfds);
	free(mine);
	return err ? FAIL(err) : ready;
}
