/*
 * busy.c - scif_net_rx_ready(): whether the peer left something to receive,
 * answered from the shared ring alone. An event loop that has just been
 * answered expects the next message soon; spinning on this for a few
 * microseconds before it sleeps saves the doorbell's trip through the
 * scheduler (tens of microseconds), at no system call per look.
 */
#include <pthread.h>

#include "endpoint.h"
#include "scif_net.h"

int scif_net_rx_ready(scif_epd_t epd)
{
	struct endpoint *ep = ep_get(epd);
	int ready = 0;

	if (!ep)
		return -1;
	pthread_mutex_lock(&ep->lock);
	if (ep->state == EP_DISCONNECTED)
		ready = 1;
	else if (ep->state == EP_CONNECTED)
		ready = rb_shared_used(ep->qp.rx.sh) > 0 || ep_peer_gone(ep);
	pthread_mutex_unlock(&ep->lock);
	ep_put(ep);
	return ready;
}
