/*
 * busy.c - scif_net_rx_ready(): whether the peer left something to receive,
 * answered from the shared ring alone. An event loop that has just been
 * answered expects the next message soon; spinning on this for a few
 * microseconds before it sleeps saves the wake-up's trip through the
 * scheduler (tens of microseconds), at no system call per look.
 *
 * Its flags once lowered and raised a waiting flag that spared the writer its
 * doorbells; the descriptor is level-triggered now (tokens.h) and the writer
 * keeps it so whatever the reader does, so both are accepted and change
 * nothing.
 */
#include <errno.h>
#include <pthread.h>

#include "endpoint.h"
#include "reset.h"
#include "scif_net.h"

int scif_net_rx_ready(scif_epd_t epd, int flags)
{
	struct endpoint *ep;
	int ready = 0;

	if ((flags & ~(SCIF_NET_RX_QUIET | SCIF_NET_RX_ARM)) ||
	    ((flags & SCIF_NET_RX_QUIET) && (flags & SCIF_NET_RX_ARM))) {
		errno = EINVAL;
		return -1;
	}
	ep = ep_get(epd);
	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	if (ep->state == EP_CONNECTED)
		ready = rb_shared_used(ep->qp.rx.sh) > 0 || conn_gone(ep);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return ready;
}
