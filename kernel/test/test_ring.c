/*
 * The ring on its own: a writer thread and a reader thread move 64 MiB in
 * random pieces through small rings and must agree on every byte (each side
 * sleeps on a condition of the test's own when it can do nothing); and the
 * offsets: nothing is seen before it is published, and a ring of size n
 * holds n - 1 bytes, as the driver's does.
 */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "rb.h"

#define TOTAL (64u << 20)

struct pair {
	struct rb_shared sh;
	uint8_t *data;
	uint64_t size;
	pthread_mutex_t lock;	/* the test's own wake-ups: after each publication */
	pthread_cond_t moved;
	uint64_t sleeps;	/* times either side found nothing to do */
};

static void published(struct pair *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->moved);
	pthread_mutex_unlock(&p->lock);
}

/* Sleeps until ready() holds, looked at under the lock the other side
 * publishes under, so no publication is missed. */
static void sleep_until(struct pair *p, bool (*ready)(struct rb *), struct rb *rb)
{
	pthread_mutex_lock(&p->lock);
	p->sleeps++;
	while (!ready(rb))
		pthread_cond_wait(&p->moved, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static bool has_space(struct rb *rb)
{
	return rb_space(rb) > 0;
}

static bool has_data(struct rb *rb)
{
	return rb_used(rb) > 0;
}

static void *writer(void *arg)
{
	struct pair *p = arg;
	struct rb rb;
	uint8_t buf[9000];
	uint32_t seed = 12345;
	uint64_t sent = 0;

	rb_attach(&rb, &p->sh, p->data, p->size);
	while (sent < TOTAL) {
		size_t len = 1 + xorshift(&seed) % sizeof(buf), done = 0;

		if (len > TOTAL - sent)
			len = TOTAL - sent;
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern_byte(sent + i);
		while (done < len) {
			size_t n = rb_write(&rb, buf + done, len - done);

			done += n;
			if (n) {
				rb_commit(&rb);
				published(p);
			} else {
				sleep_until(p, has_space, &rb);
			}
		}
		sent += len;
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct pair *p = arg;
	struct rb rb;
	uint8_t buf[7000];
	uint32_t seed = 777;
	uint64_t got = 0;

	rb_attach(&rb, &p->sh, p->data, p->size);
	while (got < TOTAL) {
		size_t want = 1 + xorshift(&seed) % sizeof(buf);
		size_t n = rb_read(&rb, buf, want);

		for (size_t i = 0; i < n; i++)
			if (buf[i] != pattern_byte(got + i)) {
				fprintf(stderr, "byte %llu differs\n", (unsigned long long)(got + i));
				exit(1);
			}
		got += n;
		if (n) {
			rb_consume(&rb);
			published(p);
		} else {
			sleep_until(p, has_data, &rb);
		}
	}
	return NULL;
}

static void run(uint64_t size)
{
	struct pair p = { .size = size };
	pthread_t w, r;

	CHECK(posix_memalign((void **)&p.data, 4096, size) == 0);
	CHECK(pthread_mutex_init(&p.lock, NULL) == 0 && pthread_cond_init(&p.moved, NULL) == 0);
	rb_init_shared(&p.sh);
	CHECK(pthread_create(&w, NULL, writer, &p) == 0);
	CHECK(pthread_create(&r, NULL, reader, &p) == 0);
	CHECK(pthread_join(w, NULL) == 0);
	CHECK(pthread_join(r, NULL) == 0);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.moved);
	free(p.data);
	printf("# ring %llu: %llu sleeps for %u bytes\n", (unsigned long long)size,
	       (unsigned long long)p.sleeps, TOTAL);
}

static void check_offsets(void)
{
	struct rb_shared sh;
	uint8_t data[4096], out[4096];
	struct rb w, r;

	rb_init_shared(&sh);
	rb_attach(&w, &sh, data, sizeof(data));
	rb_attach(&r, &sh, data, sizeof(data));
	/* Nothing is readable before commit; space is not returned before consume. */
	CHECK(rb_space(&w) == sizeof(data) - 1);	/* one byte always free */
	CHECK(rb_write(&w, "abc", 3) == 3);
	CHECK(rb_read(&r, out, sizeof(out)) == 0);
	CHECK(rb_shared_used(&sh) == 0);
	rb_commit(&w);
	CHECK(rb_shared_used(&sh) == 3);
	CHECK(rb_read(&r, out, 2) == 2 && memcmp(out, "ab", 2) == 0);
	CHECK(rb_space(&w) == sizeof(data) - 1 - 3);
	rb_consume(&r);
	CHECK(rb_space(&w) == sizeof(data) - 1 - 1);
	CHECK(rb_read(&r, out, sizeof(out)) == 1 && out[0] == 'c');
	rb_consume(&r);
	/* A full ring takes nothing more: size - 1 bytes, wrapped around. (The
	 * source is not the ring's own memory: memcpy must not overlap.) */
	memset(out, 'f', sizeof(out));
	CHECK(rb_write(&w, out, sizeof(out)) == sizeof(data) - 1);
	rb_commit(&w);
	CHECK(rb_write(&w, "x", 1) == 0 && rb_space(&w) == 0);
	CHECK(rb_shared_used(&sh) == sizeof(data) - 1);
	CHECK(rb_read(&r, out, 10) == 10);
	rb_consume(&r);
	CHECK(rb_space(&w) == 10);
}

int main(void)
{
	check_offsets();
	run(4096);
	run(65536);
	return 0;
}
