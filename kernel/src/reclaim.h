/*
 * reclaim.h - idle rings give their pages back.
 *
 * A ring's pages are shared memory (the queue pair's memfd): once a burst
 * has touched them they stay resident, in the file and in both processes'
 * RSS, for the life of the connection - 128 MiB for an idle connection whose
 * 64 MiB rings once carried a burst each way. So each process's service
 * thread sweeps, every SCIF_NET_RECLAIM_MS (1 s by default; 0: never), over
 * the rings this process *writes*: a ring written since its pages last went
 * back, not written since the previous sweep, and drained by its reader has
 * a hole punched over it (madvise(MADV_REMOVE) on our shared mapping: the
 * memfd's seals forbid shrinking and growing it, not punching). The pages
 * leave the file and every mapping of it, both processes'; the next byte
 * through faults in a zeroed page. A ring goes back after one to two periods
 * without a write; one that drains thousands of times a second, written in
 * between, is never punched, so nothing refaults while a connection talks.
 *
 * Why no byte is lost, with no handshake between the two processes: only
 * the ring's writer ever punches it, and only while it holds the endpoint's
 * send lock, which every write into the ring holds from its copy to its
 * publication (message.c). Under that lock:
 *  - no copy of ours into the ring is under way, and every byte we copied
 *    is published;
 *  - the reader's published offset equals our write offset (rb_drained, an
 *    acquire load): the reader stored it with release after its copies out
 *    (rb_consume), so it is done with every byte of the ring, and it reads
 *    none again until we publish more;
 *  - we publish more only after the punch: madvise has taken the pages out
 *    of the file and out of every mapping before it returns, and the next
 *    writer takes the lock after we let go of it.
 * So a punch destroys only bytes that were read and will not be read again.
 * The range is our own ring, from the ring size checked when the queue pair
 * was made or attached: nothing outside our mapping.
 *
 * The peer can write anything in the header, and it changes none of that.
 * Publishing our write offset as its read offset before it has read makes
 * us punch early: it reads zeros where its own unread bytes were, as if it
 * had scribbled on its ring, and loses nothing of ours. Never publishing
 * keeps the pages, as a slow reader does. There is no flag for it to hold:
 * the data path and the sweep read nothing of the peer's but the offset,
 * and the sweep never waits (it tries our own locks and moves on). The peer
 * may punch its own mapping of the file whenever it likes: it loses what it
 * had not read, and our writes never fault, the file's size being sealed.
 *
 * The same sweep gives back the pages of connections closed on both sides
 * whose arena (arena.h) is still in use by others.
 *
 * The data path pays nothing for this: no atomic, no system call. The sweep
 * takes each endpoint's locks with trylock (a writer holding the lock is not
 * idle), and looks at the header only for a ring written since its last
 * give-back, so an idle connection never used still maps no page.
 */
#ifndef SCIF_NET_RECLAIM_H
#define SCIF_NET_RECLAIM_H

#include <stdbool.h>
#include <stdint.h>

/* One sweep over this process's connections (the service thread's, every
 * period): false once the process maps no queue pair, so that the thread
 * may stop sweeping until it has a connection again. */
bool reclaim_sweep(void);

/* For the tests: sweeps made, and rings given back, by this process. */
uint64_t reclaim_sweeps(void);
uint64_t reclaim_given(void);

#endif
