/*
 * listener.h - what listener.c (listen, the callers waiting, listeners
 * several processes hold) gives connection.c (close) and handshake.c
 * (accept).
 */
#ifndef SCIF_NET_LISTENER_H
#define SCIF_NET_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"
#include "fabric.h"

/* How long an acceptor waits for a caller's tokens, which it sends right
 * after connecting (tokens.h): only a caller stopped half-way makes it
 * wait this long. */
#define CONN_TAKE_TIMEOUT_MS 2000

/* Takes one caller from listener lep's queue: its socket and its request
 * (caller->flags 0 if not one of ours); 1, or 0 if none is waiting, or
 * -errno. */
int conn_take_caller(struct endpoint *lep, int *fd, struct fabric_caller *caller);
/* Says no to a caller (status: the errno its scif_connect returns) and takes
 * the tokens it sent ahead, so that once its socket is closed it sees a
 * hang-up and no error. conn_refuse() closes the socket too. */
void conn_answer_no(int fd, int status, uint32_t request);
void conn_refuse(int fd, int status, uint32_t request);
/* scif_accept with SCIF_ACCEPT_SYNC and nobody waiting: sleeps, lep->lock let
 * go meanwhile, until a caller comes (0) or lep closes (-EINTR). */
int listener_wait_locked(struct endpoint *lep);
/* scif_close of a listener, with its lock held: lets go of this endpoint's
 * hold; the last holder in the fabric takes the listener down (its waiting
 * callers refused, as SCIF does; its name gone) and keeps the port, which
 * conn_destroy() then releases. */
void listener_leave_locked(struct endpoint *ep);
/* scif_accept, with lep->lock held: -EINTR once our own scif_close let go
 * of lep, -ENODEV (and a sentence) once lep's fabric directory went
 * (lost.h), else 0. idle: nothing was waiting, so its socket is looked at
 * too (a poll), in case another holder shut it. */
int listener_lost_locked(struct endpoint *lep, bool idle);

#endif
