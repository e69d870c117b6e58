/*
 * rb.c - the SPSC byte ring (see rb.h for the design).
 */
#include "rb.h"

#include <string.h>

void rb_init_shared(struct rb_shared *sh)
{
	atomic_init(&sh->write, 0);
	atomic_init(&sh->read, 0);
}

void rb_attach(struct rb *rb, struct rb_shared *sh, void *data, uint64_t size)
{
	/* A new connection's ring: our own offset is still 0, as only we move
	 * it; 0 for the other side's understates it, which the cache may. The
	 * shared page is not touched until the ring is used. */
	rb->sh = sh;
	rb->data = data;
	rb->size = size;
	rb->local = 0;
	rb->peer = 0;
	rb->broken = false;
}

static void copy_in(struct rb *rb, uint64_t at, const uint8_t *src, size_t len)
{
	size_t off = at & (rb->size - 1);
	size_t first = len < rb->size - off ? len : rb->size - off;

	memcpy(rb->data + off, src, first);
	memcpy(rb->data, src + first, len - first);
}

static void copy_out(struct rb *rb, uint64_t at, uint8_t *dst, size_t len)
{
	size_t off = at & (rb->size - 1);
	size_t first = len < rb->size - off ? len : rb->size - off;

	memcpy(dst, rb->data + off, first);
	memcpy(dst + first, rb->data, len - first);
}

/* ---- writer half ---- */

size_t rb_space(struct rb *rb)
{
	uint64_t r;

	if (rb->broken)
		return 0;
	/* Pairs with the release in rb_consume(): the reader is done with those bytes. */
	r = atomic_load_explicit(&rb->sh->read, memory_order_acquire);
	/* The reader only moves forward, and never past what we wrote. */
	if (r - rb->peer > rb->local - rb->peer) {
		rb->broken = true;
		return 0;
	}
	rb->peer = r;
	return rb->size - 1 - (rb->local - rb->peer);
}

/* Copies what fits; nothing is visible to the reader until rb_commit(). */
size_t rb_write(struct rb *rb, const void *src, size_t len)
{
	size_t space = rb->size - 1 - (rb->local - rb->peer);
	size_t n;

	if (rb->broken)
		return 0;
	if (space < len)
		space = rb_space(rb);	/* the cache only ever understates the space */
	n = len < space ? len : space;
	if (n == 0)
		return 0;	/* src may be NULL then, and memcpy must not see it */
	copy_in(rb, rb->local, src, n);
	rb->local += n;
	return n;
}

/* Publishes what was written. */
void rb_commit(struct rb *rb)
{
	/* Pairs with the acquire in rb_used(): the bytes are in place before the offset moves. */
	atomic_store_explicit(&rb->sh->write, rb->local, memory_order_release);
}

bool rb_drained(const struct rb *rb)
{
	/* Pairs with the release in rb_consume(), as rb_space()'s load. */
	return !rb->broken &&
	       atomic_load_explicit(&rb->sh->read, memory_order_acquire) == rb->local;
}

bool rb_taken(struct rb *rb, uint64_t at)
{
	(void)rb_space(rb);	/* the offset afresh, checked */
	return !rb->broken && rb->peer > at;
}

/* ---- reader half ---- */

size_t rb_used(struct rb *rb)
{
	uint64_t w;

	if (rb->broken)
		return 0;
	/* Pairs with the release in rb_commit(). */
	w = atomic_load_explicit(&rb->sh->write, memory_order_acquire);
	/* The writer only moves forward, and never more than a full ring
	 * past what we read. */
	if (w - rb->peer > rb->local + (rb->size - 1) - rb->peer) {
		rb->broken = true;
		return 0;
	}
	rb->peer = w;
	return rb->peer - rb->local;
}

/* Copies what is there; the writer may not reuse the space until rb_consume(). */
size_t rb_read(struct rb *rb, void *dst, size_t len)
{
	size_t used = rb->peer - rb->local;
	size_t n;

	if (rb->broken)
		return 0;
	if (used < len)
		used = rb_used(rb);	/* the cache only ever understates what is there */
	n = len < used ? len : used;
	if (n == 0)
		return 0;	/* dst may be NULL then, and memcpy must not see it */
	copy_out(rb, rb->local, dst, n);
	rb->local += n;
	return n;
}

/* Hands the consumed space back. */
void rb_consume(struct rb *rb)
{
	/* Pairs with the acquire in rb_space(): our copies out are done. */
	atomic_store_explicit(&rb->sh->read, rb->local, memory_order_release);
}

uint64_t rb_shared_used(const struct rb_shared *sh)
{
	/* Each pairs with the release of the side that publishes it. */
	uint64_t r = atomic_load_explicit(&sh->read, memory_order_acquire);
	uint64_t w = atomic_load_explicit(&sh->write, memory_order_acquire);

	return w - r;
}
