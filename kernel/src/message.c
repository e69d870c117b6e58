/*
 * message.c - scif_send and scif_recv: byte streams over the queue pair.
 *
 * Each call that publishes settles the ring's tokens afterwards (tokens.h),
 * so when it returns the descriptors of both ends say what the rings hold.
 * A blocking call that can do nothing sleeps in poll(2) on its descriptor,
 * which is level-triggered: it wakes once the condition holds, whoever else
 * looks at it meanwhile.
 */
#include <errno.h>
#include <poll.h>

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

/* The peer wrote an impossible offset or count into the queue pair: nothing
 * more moves on the connection, the peer sees it hung up. */
static int broken(struct endpoint *ep)
{
	conn_break(ep);
	return -EPROTO;
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
		if (conn_gone(ep))
			err = conn_gone_err(ep);
		while (!err) {
			uint64_t from = ep->qp.tx.local;
			size_t n = rb_write(&ep->qp.tx, src + sent, (size_t)(len - sent));

			if (rb_broken(&ep->qp.tx)) {
				err = broken(ep);
				break;
			}
			if (n) {
				rb_commit(&ep->qp.tx);
				err = qp_settle_tx(&ep->qp, ep->fd);
				if (err == -EPROTO || err == -ENOBUFS) {
					/* Token counts no settle of the peer's could make. */
					err = broken(ep);
					break;
				}
				if (err) {
					/* The peer is gone. Bytes of these it took were
					 * sent, as the driver counts them: it was there
					 * after they went in (it may have read them,
					 * answered and closed before this settle). None
					 * taken reach nobody. */
					atomic_store_explicit(&ep->peer_gone, true, memory_order_release);
					if (rb_taken(&ep->qp.tx, from))
						sent += (int)n;
					break;
				}
			}
			sent += (int)n;
			if (sent == len || (!(flags & SCIF_SEND_BLOCK) && sent > 0))
				break;
			/* The ring is full: is the peer gone (a system call, but
			 * only now)? */
			if (ep_closing(ep))
				err = -EINTR;
			else if (ep_hung_up(ep) || conn_gone(ep))
				err = conn_gone_err(ep);
			else if (!(flags & SCIF_SEND_BLOCK))
				break;
			else
				err = ep_wait(ep, POLLOUT);
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

			/* Our node was lost (a card reset): our rings went with it. */
			unsigned reset = reset_check(ep);

			if (reset & (RESET_SELF | RESET_PROTO)) {
				err = reset & RESET_PROTO ? -EPROTO : -ECONNRESET;
				break;
			}
			n = rb_read(&ep->qp.rx, dst + got, (size_t)(len - got));
			if (rb_broken(&ep->qp.rx)) {
				err = broken(ep);
				break;
			}
			got += (int)n;
			if (n) {
				rb_consume(&ep->qp.rx);
				/* A peer gone needs no tokens taken: its bytes are ours still. */
				if (qp_settle_rx(&ep->qp, ep->fd) == -EPROTO) {
					err = broken(ep);
					break;
				}
			}
			if (got == len || (!(flags & SCIF_RECV_BLOCK) && got > 0))
				break;
			/* The ring is empty: is the peer gone (a system call, but
			 * only now)? Look once more if so - what it sent before
			 * leaving is still ours to read. */
			if (ep_closing(ep)) {
				err = -EINTR;
			} else if (ep_hung_up(ep) || conn_gone(ep)) {
				/* rb_used() checks what the peer left; a ring it
				 * broke is broken above, on the next turn. */
				if (rb_used(&ep->qp.rx) == 0 && !rb_broken(&ep->qp.rx))
					err = conn_gone_err(ep);
			} else if (qp_check_rx(&ep->qp, ep->fd) == -EPROTO) {
				/* Readable with nothing to read: a flood. */
				err = broken(ep);
			} else if (!(flags & SCIF_RECV_BLOCK)) {
				break;
			} else {
				err = ep_wait(ep, POLLIN);
			}
		}
		pthread_mutex_unlock(&ep->recv_lock);
	}
	ep_put(ep);
	return got > 0 || len == 0 || !err ? got : FAIL(err);
}

bool ep_rx_stray(int epd)
{
	struct endpoint *ep = ep_get(epd);
	bool stray = false;

	if (!ep)
		return false;
	/* A thread reading meanwhile settles for itself; a connection that
	 * is gone or broken keeps its POLLIN, for the read that says so. */
	if (connected(ep) == 0 && !atomic_load_explicit(&ep->peer_gone, memory_order_acquire) &&
	    pthread_mutex_trylock(&ep->recv_lock) == 0) {
		stray = rb_used(&ep->qp.rx) == 0 && !rb_broken(&ep->qp.rx) &&
			qp_check_rx(&ep->qp, ep->fd) == 0;
		pthread_mutex_unlock(&ep->recv_lock);
	}
	ep_put(ep);
	errno = 0;
	return stray;
}
