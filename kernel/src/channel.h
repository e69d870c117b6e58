/*
 * channel.h - a connection's RMA channel, made when it is first needed.
 *
 * RMA needs more than the connection's socket: the control channel, where
 * windows are announced with their memfds (ctl.h), and the RMA bell, which
 * wakes a thread waiting for the other side's RMAs (track.h) - two socket
 * pairs, a descriptor each a side. A connection is made without them (one
 * descriptor a side, as a connection that only sends and receives needs)
 * and gets them the first time either side calls scif_register or any RMA,
 * mapping or fence call, which all ask rma_verify() first.
 *
 * The side that needs them first makes both pairs and sends the other
 * side's ends to its process's inbox (inbox.h), named in the queue pair's
 * header with the connection's number and the other side's descriptor; it
 * keeps its own ends and goes on at once. Messages it sends meanwhile wait
 * in the other end's socket, which the inbox's queue holds: the other side
 * needs to have done nothing for our scif_register to return, as the
 * driver's does not wait for the peer process. The other side attaches its
 * ends when its service thread reads the inbox (at once, as an interrupt
 * would be handled) or when one of its own calls needs the channel first,
 * whichever comes first.
 *
 * One side makes it: the header's chan_lock (a word both processes share,
 * shlock.h) and chan state decide. A side that finds the state made by the
 * other reads its own inbox under the process's inbox lock, so once it has
 * the lock its ends - sent before the state was published - were attached,
 * by it or by whoever read the inbox before. Death: a peer that dies
 * holding chan_lock never lets go of it; its hang-up, looked for every
 * 50 ms while we wait, ends the wait (ECONNRESET). One that dies before
 * reading its inbox takes its ends with it (our ends see end of file); one
 * with no inbox any more is gone. A peer that is stopped makes us wait only
 * if it stopped holding chan_lock, which it holds for a few system calls -
 * and then no longer than it stays stopped, our own close, its death, or
 * 5 s: a lock held that long is a broken or hostile peer's, and the
 * connection is reset (EPROTO).
 *
 * A caller's ends may come before its connect is finished (the acceptor may
 * register at once): they wait in the endpoint (chan_early) until the queue
 * pair they belong to is attached.
 *
 * The endpoint's RMA state (window tables, the control channel's lock and
 * count, the RMA waiters' condition: endpoint.h) is made with the channel,
 * never before: an idle connection carries none. The side calling makes it
 * first of all (its lack fails the call with ENOMEM, nothing sent); a side
 * attaching ends the peer sent makes it as it attaches them, so that it is
 * there before the channel's first message can be read - without memory
 * for it, the connection is hung up, as when ends are lost.
 *
 * SCIF_NET_CHAN_DELAY_US (microseconds, default 0): the side making a
 * channel waits this long holding chan_lock, before it sends the other side
 * its ends - tests use it to meet a channel being made, and to die, or be
 * stopped, half-way.
 */
#ifndef SCIF_NET_CHANNEL_H
#define SCIF_NET_CHANNEL_H

#include <stdint.h>

struct endpoint;
struct fabric;

/* This process's inbox in fabric f, opened and watched by the service
 * thread on first use (before the process's first connection there names
 * it): 0 with *id, or -errno. */
int chan_inbox(struct fabric *f, uint32_t *id);

/* A connected endpoint's RMA channel, made or attached if it has none yet,
 * with the endpoint's RMA state (endpoint.h's ep_rma), made first: 0;
 * -ECONNRESET (the peer is gone, or died making it), -EINTR (closing),
 * -EPROTO (the peer held the channel's lock for 5 s: the connection is
 * reset), -ENOMEM (no memory for the state, or no descriptors for the
 * channel), -errno. Call without ep->lock. */
int chan_ensure(struct endpoint *ep);

/* A caller whose queue pair was just attached, with ep->lock held: takes
 * the channel ends that came for it before. */
void chan_take_early_locked(struct endpoint *ep);

/* Closes the channel's descriptors and any that came early, at the end. */
void chan_release(struct endpoint *ep);

#endif
