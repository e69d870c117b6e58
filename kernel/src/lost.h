/*
 * lost.h - a fabric directory removed (or renamed) under running processes.
 *
 * Connections need nothing of the directory once made (their sockets and
 * shared memory are open), so they go on until they close. Listeners do:
 * their names are files there, so once it is gone nobody can reach them.
 * The process notices (lost.c): its listeners are taken down - their
 * descriptors turn readable and hung up, scif_accept fails with ENODEV -
 * and the fabric is *lost*: the next endpoint opened makes the directory
 * anew (fabric_get), with a new node table and port registry, and joins
 * that one. The lost fabric stays, for the endpoints that hold it.
 */
#ifndef SCIF_NET_LOST_H
#define SCIF_NET_LOST_H

#include <stdbool.h>
#include <stdint.h>

struct fabric;

/* Whether f is lost: known to be, or its directory is no longer at f->dir
 * (one lstat) - removed, renamed, or another in its place. Once lost, for
 * good. */
bool fabric_check(struct fabric *f);

/* The fabric a new endpoint joins (scif_open): fabric_get(), its directory
 * checked first; a lost one's listeners are taken down on the way. NULL
 * with errno when none can be opened. */
struct fabric *fabric_fresh(void);

/* Watches f's directory, for the process's listeners there (the service
 * thread takes them down as soon as it goes): 0, or -errno when it cannot
 * be watched (no inotify), and then nobody tells them. */
int fabric_watch_dir(struct fabric *f);

/* Takes down this process's listeners in lost fabrics. Call holding no
 * endpoint's lock. */
void fabric_take_down_lost(void);

/* A connect from f to (node, port) found no listener: says why, when the
 * directory going is why (a sentence for scif_net_last_error()). */
void fabric_refused_error(const struct fabric *f, uint16_t node, uint16_t port);

#endif
