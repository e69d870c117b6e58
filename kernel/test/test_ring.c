/*
 * The ring on its own: a writer thread and a reader thread move 64 MiB in
 * random pieces through small rings and must agree on every byte; each side
 * sleeps on a pipe only after arming, so a lost wake-up hangs the test (and
 * the runner's time limit fails it).
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
	int data_bell[2];	/* writer -> reader */
	int space_bell[2];	/* reader -> writer */
	uint64_t rings;		/* doorbells the writer rang */
};

static void sleep_on(int fd)
{
	char c;

	CHECK(read(fd, &c, 1) == 1);
}

static void *writer(void *arg)
{
	struct pair *p = arg;
	struct rb rb;
	uint8_t buf[9000];
	uint32_t seed = 12345;
	uint64_t sent = 0;

	rb_attach(&rb, &p->sh, p->data, p->size, true);
	while (sent < TOTAL) {
		size_t len = 1 + xorshift(&seed) % sizeof(buf), done = 0;

		if (len > TOTAL - sent)
			len = TOTAL - sent;
		for (size_t i = 0; i < len; i++)
			buf[i] = pattern_byte(sent + i);
		while (done < len) {
			size_t n = rb_write(&rb, buf + done, len - done);

			done += n;
			if (n && rb_commit(&rb)) {
				p->rings++;
				CHECK(write(p->data_bell[1], "d", 1) == 1);
			}
			if (done < len && !rb_writer_arm(&rb))
				sleep_on(p->space_bell[0]);
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

	rb_attach(&rb, &p->sh, p->data, p->size, false);
	while (got < TOTAL) {
		size_t want = 1 + xorshift(&seed) % sizeof(buf);
		size_t n = rb_read(&rb, buf, want);

		for (size_t i = 0; i < n; i++)
			if (buf[i] != pattern_byte(got + i)) {
				fprintf(stderr, "byte %llu differs\n", (unsigned long long)(got + i));
				exit(1);
			}
		got += n;
		if (n && rb_consume(&rb))
			CHECK(write(p->space_bell[1], "s", 1) == 1);
		if (n == 0 && !rb_reader_arm(&rb))
			sleep_on(p->data_bell[0]);
	}
	return NULL;
}

static void run(uint64_t size)
{
	struct pair p = { .size = size };
	pthread_t w, r;

	CHECK(posix_memalign((void **)&p.data, 4096, size) == 0);
	CHECK(pipe(p.data_bell) == 0 && pipe(p.space_bell) == 0);
	rb_init_shared(&p.sh);
	CHECK(pthread_create(&w, NULL, writer, &p) == 0);
	CHECK(pthread_create(&r, NULL, reader, &p) == 0);
	CHECK(pthread_join(w, NULL) == 0);
	CHECK(pthread_join(r, NULL) == 0);
	/* Extra doorbells are harmless, but each one left unread must be one rung. */
	for (int i = 0; i < 2; i++) {
		close(p.data_bell[i]);
		close(p.space_bell[i]);
	}
	free(p.data);
	printf("# ring %llu: %llu doorbells for %u bytes\n", (unsigned long long)size,
	       (unsigned long long)p.rings, TOTAL);
}

static void check_offsets(void)
{
	struct rb_shared sh;
	uint8_t data[4096], out[4096];
	struct rb w, r;

	rb_init_shared(&sh);
	rb_attach(&w, &sh, data, sizeof(data), true);
	rb_attach(&r, &sh, data, sizeof(data), false);
	/* Nothing is readable before commit; space is not returned before consume. */
	CHECK(rb_write(&w, "abc", 3) == 3);
	CHECK(rb_read(&r, out, sizeof(out)) == 0);
	CHECK(rb_commit(&w));		/* a new reader waits: the first commit rings */
	CHECK(!rb_commit(&w));		/* and only the first */
	CHECK(rb_read(&r, out, 2) == 2 && memcmp(out, "ab", 2) == 0);
	CHECK(rb_space(&w) == sizeof(data) - 3);
	CHECK(!rb_consume(&r));
	CHECK(rb_space(&w) == sizeof(data) - 1);
	/* A full ring takes nothing more, and the writer's arm says so. (The
	 * source is not the ring's own memory: memcpy must not overlap.) */
	memset(out, 'f', sizeof(out));
	CHECK(rb_write(&w, out, sizeof(out)) == sizeof(data) - 1);
	rb_commit(&w);
	CHECK(rb_write(&w, "x", 1) == 0);
	CHECK(!rb_writer_arm(&w));
	CHECK(rb_read(&r, out, 10) == 10);
	CHECK(rb_consume(&r));		/* the armed writer gets its doorbell */
	CHECK(rb_writer_arm(&w));
}

int main(void)
{
	check_offsets();
	run(4096);
	run(65536);
	return 0;
}
