/*
 * reclaim_test.h - what test_reclaim and test_reclaim_hostile share: how
 * many of a ring's pages are resident (in the memfd: mincore; in a process:
 * its smaps), bounded waits, and checked streams whose every byte says
 * where it belongs, so that a page punched under unread bytes (zeros) is
 * caught at the byte.
 */
#ifndef SCIF_NET_RECLAIM_TEST_H
#define SCIF_NET_RECLAIM_TEST_H

#include <sys/mman.h>

#include "check.h"
#include "endpoint.h"
#include "reclaim.h"

/* Pages of the ring resident in the queue pair's memfd: the file's, so
 * the same from both processes. */
static inline size_t ring_resident(const struct rb *rb)
{
	size_t P = page_size(), n = rb->size / P, r = 0;
	unsigned char *v = malloc(n ? n : 1);

	CHECK(v != NULL);
	CHECK(mincore(rb->data, rb->size, v) == 0);
	for (size_t i = 0; i < n; i++)
		r += v[i] & 1;
	free(v);
	return r;
}

/* The inode of the file mapped at p (the queue pair's memfd). */
static inline unsigned long mapped_inode(const void *p)
{
	unsigned long ino = inode_mapped_at(p, NULL);

	CHECK(ino != 0);
	return ino;
}

/* Resident kB of process pid's mappings of inode ino (its smaps' Rss). */
static inline long rss_kb(pid_t pid, unsigned long ino)
{
	char path[64], line[4096];
	long kb = 0, v;
	bool in = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		unsigned long i;

		if (sscanf(line, "%llx-%llx %*s %*s %*s %lu", &lo, &hi, &i) == 3)
			in = i == ino;
		else if (in && sscanf(line, "Rss: %ld kB", &v) == 1)
			kb += v;
	}
	fclose(f);
	return kb;
}

/* Waits until cond(arg) holds, looking every millisecond, at most ms:
 * whether it held. */
static inline bool wait_for(bool (*cond)(void *), void *arg, double ms)
{
	double until = now_ms() + ms;

	while (!cond(arg)) {
		if (now_ms() > until)
			return cond(arg);
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	return true;
}

static inline bool rings_given_back(void *arg)
{
	struct endpoint *ep = arg;

	return ring_resident(&ep->qp.tx) == 0 && ring_resident(&ep->qp.rx) == 0;
}

/* Waits for n more sweeps of this process's service thread. */
static inline void await_sweeps(uint64_t n)
{
	uint64_t until = reclaim_sweeps() + n;
	double deadline = now_ms() + 10000;

	while (reclaim_sweeps() < until) {
		CHECK(now_ms() < deadline);
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

/* Byte i of stream seed: anything else where it should be - zeros from a
 * page punched too early - is found where it lands. */
static inline uint8_t stream_byte(uint32_t seed, uint64_t i)
{
	return pattern_byte(i + ((uint64_t)seed << 36)) ^ (uint8_t)(seed * 131u + 7u);
}

static inline void stream_fill(uint8_t *buf, size_t len, uint32_t seed, uint64_t at)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = stream_byte(seed, at + i);
}

/* len bytes received from epd must be stream seed's from at on. */
static inline void stream_check(const uint8_t *buf, size_t len, uint32_t seed, uint64_t at)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != stream_byte(seed, at + i)) {
			fprintf(stderr, "stream %u: byte %llu is %#x, sent %#x\n", seed,
				(unsigned long long)(at + i), buf[i], stream_byte(seed, at + i));
			exit(1);
		}
}

/* A stream's half: total bytes of stream seed, in pieces of 1 to max. */
struct stream {
	int epd;
	uint32_t seed;
	uint64_t total;
	size_t max;
	unsigned gap_us;	/* a pause of up to this before each piece, 0 none */
};

static inline void *stream_send(void *arg)
{
	struct stream *s = arg;
	uint8_t *buf = malloc(s->max);
	uint32_t r = s->seed * 2654435761u + 1;

	CHECK(buf != NULL);
	for (uint64_t at = 0; at < s->total;) {
		size_t len = 1 + xorshift(&r) % s->max;

		if (len > s->total - at)
			len = (size_t)(s->total - at);
		if (s->gap_us)
			nanosleep(&(struct timespec){ .tv_nsec = 1000L * (xorshift(&r) % s->gap_us) },
				  NULL);
		stream_fill(buf, len, s->seed, at);
		CHECK(scif_send(s->epd, buf, (int)len, SCIF_SEND_BLOCK) == (int)len);
		at += len;
	}
	free(buf);
	return NULL;
}

static inline void *stream_recv(void *arg)
{
	struct stream *s = arg;
	uint8_t *buf = malloc(s->max);

	CHECK(buf != NULL);
	for (uint64_t at = 0; at < s->total;) {
		size_t want = s->total - at < s->max ? (size_t)(s->total - at) : s->max;
		int n = scif_recv(s->epd, buf, (int)want, SCIF_RECV_BLOCK);

		CHECK(n > 0);
		stream_check(buf, (size_t)n, s->seed, at);
		at += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

/* Both halves at once on epd: ours out (seed tx), the peer's in (seed rx). */
static inline void stream_both(int epd, uint32_t tx, uint32_t rx, uint64_t total, size_t max,
			       unsigned gap_us)
{
	struct stream out = { epd, tx, total, max, gap_us }, in = { epd, rx, total, max, 0 };
	pthread_t t;

	CHECK(pthread_create(&t, NULL, stream_send, &out) == 0);
	stream_recv(&in);
	CHECK(pthread_join(t, NULL) == 0);
}

#endif
