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
	n = poll((struct pollfd *)epds, nepds, (int)timeout);
	saved = errno;
	/* After the poll, not before: a thread on its way to sleep takes no
	 * lock, so one that closes the descriptor meanwhile finds it asleep. */
	for (unsigned i = 0; i < nepds; i++)
		adopt(epds[i].epd);
	errno = saved;
	return n;
}
