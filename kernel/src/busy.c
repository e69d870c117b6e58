/*
 * busy.c - scif_net_rx_ready(): whether the peer left something to receive,
 * answered from the shared ring alone. An event loop that has just been
 * answered expects the next message soon; spinning on this for a few
 * microseconds before it sleeps saves the doorbell's trip through the
 * scheduler (tens of microseconds), at no system call per look. While it
 * spins it may lower its waiting flag (SCIF_NET_RX_QUIET), so the writer rings
 * no doorbell either, and raise it again (SCIF_NET_RX_ARM) before it sleeps.
 */
#include <errno.h>
#include <pthread.h>

#include "endpoint.h"
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
	if (ep->state == EP_DISCONNECTED) {
		ready = 1;
	} else if (ep->state == EP_CONNECTED) {
		struct rb_shared *sh = ep->qp.rx.sh;

		/* The flag is the reader's to raise and the writer's to take:
		 * lowering it only spares the writer a doorbell. */
		if (flags & SCIF_NET_RX_QUIET)
			atomic_store_explicit(&sh->reader_waiting, 0, memory_order_relaxed);
		if (flags & SCIF_NET_RX_ARM)
			ready = rb_reader_arm(&ep->qp.rx);
		else
			ready = rb_shared_used(sh) > 0;
		ready = ready || ep_peer_gone(ep);
	}
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return ready;
}
