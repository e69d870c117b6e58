/*
 * rb.h - one direction of a queue pair: a single-producer single-consumer
 * byte ring in memory shared by two processes.
 *
 * Design (after the SCIF driver's scif_rb): the size is a power of two and the
 * offsets run freely (64-bit, never wrapped), so used = write - read. As the
 * driver's ring, it holds at most size - 1 bytes: a 4 KiB ring moves 4095
 * bytes at most before its reader makes room. The writer only ever reads the
 * reader's published offset and the reader only the writer's; each offset
 * sits alone on a cache line. Writing and publishing are separate steps, so
 * several writes cost one publication.
 *
 * The other side's offset is shared memory, which a broken or hostile peer may
 * write anything into: every load of it is checked before use (the reader's
 * offset lies between the last one seen and our write offset, the writer's
 * between the last one seen and a full ring past our read offset). A value
 * out of range breaks the ring for good - it moves no byte more, and its
 * owner resets the connection (EPROTO) - so no copy ever runs past the ring.
 *
 * Wake-ups are not the ring's business: after publishing, each side settles
 * the tokens that make the descriptors' readiness follow the ring (tokens.h).
 */
#ifndef SCIF_NET_RB_H
#define SCIF_NET_RB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RB_CACHELINE 64

/* The shared part of one ring; lives at the head of the queue pair. */
struct rb_shared {
	_Alignas(RB_CACHELINE) _Atomic uint64_t write;	/* published by the writer */
	_Alignas(RB_CACHELINE) _Atomic uint64_t read;	/* published by the reader */
};

/* One process's view of a ring: its own offset and a cache of the peer's. */
struct rb {
	struct rb_shared *sh;
	uint8_t *data;
	uint64_t size;		/* power of two; holds size - 1 bytes */
	uint64_t local;		/* writer: next write offset; reader: next read offset */
	uint64_t peer;		/* cached copy of the other side's published offset */
	bool broken;		/* the peer published an offset out of range */
};

void rb_init_shared(struct rb_shared *sh);
/* One side's view of a new connection's ring (nothing read or written yet). */
void rb_attach(struct rb *rb, struct rb_shared *sh, void *data, uint64_t size);

/* Whether the peer published an impossible offset: the ring then moves
 * nothing (its calls return 0), and the connection is to be reset. */
static inline bool rb_broken(const struct rb *rb)
{
	return rb->broken;
}

/* Writer half. rb_space() looks at the reader's offset afresh. */
size_t rb_space(struct rb *rb);
size_t rb_write(struct rb *rb, const void *src, size_t len);
void rb_commit(struct rb *rb);
/* Whether the reader has consumed all we wrote, its copies out done: the
 * ring's bytes are nobody's until we write again (reclaim.h). No check of
 * the offset is needed - only equality counts - and nothing is cached. */
bool rb_drained(const struct rb *rb);
/* Whether the reader has consumed past offset at (a value of rb->local):
 * once the reader is gone its offset is final, and says whether bytes
 * written from there reached it. */
bool rb_taken(struct rb *rb, uint64_t at);

/* Reader half. rb_used() looks at the writer's offset afresh. */
size_t rb_used(struct rb *rb);
size_t rb_read(struct rb *rb, void *dst, size_t len);
void rb_consume(struct rb *rb);

/* Either side, any thread: bytes published and not yet consumed, as the two
 * offsets say - a hostile peer's may say anything, so this only ever decides
 * whether to look (readiness), never how much to copy. */
uint64_t rb_shared_used(const struct rb_shared *sh);

#endif
