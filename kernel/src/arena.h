/*
 * arena.h - the memory of the queue pairs between one pair of processes: one
 * memfd, carved into queue pairs (qp.h) in the order their connections are
 * made.
 *
 * A memfd of its own per connection - made, sealed and mapped by the
 * acceptor, checked and mapped by the caller, unmapped by both at close -
 * was the largest share of a connection's cost: about ten system calls, and
 * each unmap of touched pages a TLB shoot-down on every CPU the process ran
 * on. Connections between the same two processes share an arena instead:
 * the acceptor makes one (for the caller's process, as SO_PEERCRED names it)
 * and hands out its queue pairs one after the other; the caller maps it once,
 * and finds it again by its inode.
 *
 * A queue pair's place is never handed out twice: an arena goes (each side
 * unmaps it, the acceptor closes its memfd) once the last of its queue pairs
 * on that side is closed, and the next connection starts a new one. So no
 * two connections ever share rings, and a peer still writing into a closed
 * connection's rings reaches nobody. Until then the pages a closed queue
 * pair touched go back by the idle sweep (reclaim.h), once both sides have
 * closed it: at the close itself, the punch's TLB shoot-down would be what
 * the shared mapping spared. An arena holds only its caller's
 * connections with one acceptor process: a caller, however hostile, sees
 * only rings it is an end of.
 */
#ifndef SCIF_NET_ARENA_H
#define SCIF_NET_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The size arenas are made at, at most (fewer queue pairs of larger rings),
 * and the most queue pairs one holds. */
#define ARENA_BYTES (1u << 20)
#define ARENA_MAX_QPS 64

struct arena;

/* Acceptor: a queue pair's len bytes for a caller, the process pid (0: one
 * we cannot tell from others, which gets an arena of its own) whose inbox
 * (inbox.h) it is: 0 with *a and *off (a multiple of 4096), or -errno. The
 * bytes read as zeros. */
int arena_carve(pid_t pid, uint32_t inbox, size_t len, struct arena **a, uint64_t *off);
/* The acceptor's memfd of an arena, to send; the arena's to close. */
int arena_fd(const struct arena *a);

/* Caller: the arena memfd is, mapped now or found mapped already, holding
 * len bytes at off: 0 with *a, -EPROTO if memfd is no arena an acceptor of
 * ours made (its size could change, or off and len are not inside it), or
 * -errno. memfd stays the caller's to close. */
int arena_attach(int memfd, size_t len, uint64_t off, struct arena **a);

/* Where the arena is mapped in this process. */
uint8_t *arena_base(const struct arena *a);
/* One of its queue pairs closed on this side: the last unmaps the arena. */
void arena_put(struct arena *a);

/* The queue pair at off, len bytes, is closed on both sides: nobody reads
 * or writes its pages again, and the next sweep gives them back. Called by
 * the side that closed second (qp.c), before its arena_put(). */
void arena_retire(struct arena *a, uint64_t off, size_t len);
/* Gives back the pages of the queue pairs retired since the last sweep
 * (madvise(MADV_REMOVE): the memfd's pages, in both processes): 0, or the
 * -errno of the first punch refused (the service thread's, reclaim.c). */
int arena_sweep(void);

/* Whether a memfd from a peer can never change size under a mapping of it
 * (F_SEAL_SHRINK | F_SEAL_GROW, and F_SEAL_SEAL): arenas and windows alike. */
bool memfd_sealed(int memfd);

/* Arenas this process maps now (the tests'). */
unsigned arena_count(void);

#endif
