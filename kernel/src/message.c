/*
 * message.c - scif_send and scif_recv: byte streams over the queue pair.
 *
 * Before sleeping on a condition a thread swallows pending doorbells, arms the
 * condition, and looks again (rb.h): a doorbell swallowed there was rung for
 * an earlier arming, which the second look covers.
 */
#include <errno.h>

#include "endpoint.h"
#include "reset.h"
#include "scif.h"

#define FAIL(err) (errno = -(err), -1)

static int connected(struct endpoint *ep)
{
	int err = 0;

	pthread_mutex_lock(&ep->lock);
	err = ep_connected_locked(ep);
	pthread_mutex_unlock(&ep->lock);
	return err;
}

int scif_send(scif_epd_t epd, void *msg, int len, int flags)
{
	struct endpoint *ep;
	const char *src = msg;
	int sent = 0, err;

	if (len < 0 || (flags & ~SCIF_SEND_BLOCK))
		return FAIL(-EINVAL);
	if (!msg && len > 0)
		return FAIL(-EFAULT);
	ep = ep_get(epd);
	if (!ep)
		return -1;
	err = connected(ep);
	if (!err) {
		pthread_mutex_lock(&ep->send_lock);
		if (ep_peer_gone(ep))
			err = -ECONNRESET;
		while (!err) {
			size_t n = rb_write(&ep->qp.tx, src + sent, (size_t)(len - sent));
			uint64_t gen;

			sent += (int)n;
			if (n && rb_commit(&ep->qp.tx)) {
				err = qp_ring_doorbell(ep->fd);
				if (err) {
					atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
					break;
				}
			}
			if (sent == len)
				break;
			if (!(flags & SCIF_SEND_BLOCK) && sent > 0) {
				/* Progress, and no waiting: arm for space and go. Pending
				 * doorbells are left to the next look (scif_poll, or a
				 * send that moves nothing), which saves system calls on
				 * the hot path without losing a wake-up. */
				if (rb_writer_arm(&ep->qp.tx))
					continue;
				break;
			}
			gen = ep_prepare_to_sleep(ep);
			if (ep_peer_gone(ep))
				err = -ECONNRESET;
			else if (rb_writer_arm(&ep->qp.tx))
				continue;
			else if (!(flags & SCIF_SEND_BLOCK))
				break;
			else
				err = ep_wait(ep, gen, -1);
		}
		pthread_mutex_unlock(&ep->send_lock);
	}
	ep_put(ep);
	/* Bytes that made it into the ring were sent, whatever happened next. */
	return sent > 0 || len == 0 || !err ? sent : FAIL(err);
}

int scif_recv(scif_epd_t epd, void *msg, int len, int flags)
{
	struct endpoint *ep;
	char *dst = msg;
	int got = 0, err;

	if (len < 0 || (flags & ~SCIF_RECV_BLOCK))
		return FAIL(-EINVAL);
	if (!msg && len > 0)
		return FAIL(-EFAULT);
	ep = ep_get(epd);
	if (!ep)
		return -1;
	err = connected(ep);
	if (!err) {
		pthread_mutex_lock(&ep->recv_lock);
		while (!err) {
			size_t n;
			uint64_t gen;

			/* Our node was lost (a card reset): our rings went with it. */
			if (reset_check(ep) & RESET_SELF) {
				err = -ECONNRESET;
				break;
			}
			n = rb_read(&ep->qp.rx, dst + got, (size_t)(len - got));
			got += (int)n;
			/* A failed doorbell means the writer is gone and needs no space. */
			if (n && rb_consume(&ep->qp.rx))
				qp_ring_doorbell(ep->fd);
			if (got == len)
				break;
			if (!(flags & SCIF_RECV_BLOCK) && got > 0) {
				/* As in scif_send: arm, and leave doorbells to the next look. */
				if (rb_reader_arm(&ep->qp.rx))
					continue;
				break;
			}
			gen = ep_prepare_to_sleep(ep);
			if (rb_reader_arm(&ep->qp.rx))
				continue;
			if (ep_peer_gone(ep)) {
				/* Look once more now that the peer is known to be gone:
				 * what it sent before leaving is still ours to read. */
				if (rb_shared_used(ep->qp.rx.sh) > 0)
					continue;
				err = -ECONNRESET;
			} else if (!(flags & SCIF_RECV_BLOCK))
				break;
			else
				err = ep_wait(ep, gen, -1);
		}
		pthread_mutex_unlock(&ep->recv_lock);
	}
	ep_put(ep);
	return got > 0 || len == 0 || !err ? got : FAIL(err);
}
