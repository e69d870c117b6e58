/*
 * poll.c - scif_get_fd and scif_poll: readiness is the descriptor's own.
 *
 * As in MPSS's libscif, the endpoint descriptor is the file to poll, and
 * scif_poll() is poll(2) on the descriptors (having looked each up, which
 * takes no system call for an endpoint of ours): the fabric keeps each one's
 * readiness level-triggered, as the driver's __scif_pollfd reports it
 * (tokens.h): a listener is readable while connection requests wait; a
 * connect in progress turns writable once accepted or refused; a connected
 * endpoint is readable while its inbound ring holds data, writable while its
 * outbound ring has room, and hung up (POLLHUP) once the peer is gone.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <time.h>

#include "endpoint.h"
#include "scif.h"

_Static_assert(sizeof(struct scif_pollepd) == sizeof(struct pollfd) &&
	       offsetof(struct scif_pollepd, epd) == offsetof(struct pollfd, fd) &&
	       offsetof(struct scif_pollepd, events) == offsetof(struct pollfd, events) &&
	       offsetof(struct scif_pollepd, revents) == offsetof(struct pollfd, revents),
	       "scif_pollepd is a struct pollfd, as MPSS's scif_poll relies on");

/* A listener's descriptor from another process is adopted by the first call
 * that meets it (listener.c), these two included (scif_poll as it returns):
 * from then on this process holds the listener. Nothing changes for the
 * descriptor itself. */
static void adopt(int epd)
{
	struct endpoint *ep = epd >= 0 ? ep_get(epd) : NULL;

	if (ep)
		ep_put(ep);
}

int scif_get_fd(scif_epd_t epd)
{
	adopt(epd);
	return epd;
}

/* Clears the POLLIN that only tokens still in flight at the reader's last
 * settle raised (tokens.h), so that poll() says readable only over a ring
 * holding data, as the driver's does: how many descriptors it left with
 * nothing to report. */
static int strays(struct scif_pollepd *epds, unsigned int nepds)
{
	int cleared = 0;

	for (unsigned i = 0; i < nepds; i++) {
		if (!(epds[i].revents & POLLIN) || (epds[i].revents & (POLLHUP | POLLERR)) ||
		    !ep_rx_stray(epds[i].epd))
			continue;
		epds[i].revents &= (short)~POLLIN;
		if (!epds[i].revents)
			cleared++;
	}
	return cleared;
}

int scif_poll(struct scif_pollepd *epds, unsigned int nepds, long timeout)
{
	int n, saved;

	if (nepds && !epds) {
		errno = EFAULT;	/* poll(2) would say so too */
		return -1;
	}
	if (timeout > INT_MAX)
		timeout = INT_MAX;
	else if (timeout < 0)
		timeout = -1;
	for (;;) {
		struct timespec t0, t1;
		long spent;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		n = poll((struct pollfd *)epds, nepds, (int)timeout);
		saved = errno;
		if (n <= 0 || (n -= strays(epds, nepds)) > 0 || timeout == 0)
			break;
		/* Only strays: sleep again for what is left of the timeout. */
		if (timeout > 0) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
			timeout = spent >= timeout ? 0 : timeout - spent;
		}
	}
	/* After the poll, not before: a thread on its way to sleep takes no
	 * lock, so one that closes the descriptor meanwhile finds it asleep. */
	for (unsigned i = 0; i < nepds; i++)
		adopt(epds[i].epd);
	errno = saved;
	return n;
}
