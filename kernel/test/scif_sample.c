/*
 * scif_sample.c - a SCIF program written the way MPSS's samples are: it
 * includes <scif.h> and nothing else of scif-net's, and is linked with
 * -lscif. test_libscif runs two of it as two nodes:
 *
 *   scif_sample server PORT          (prints "listening" once it is)
 *   scif_sample client NODE PORT
 *
 * Both register a posix_memalign'd buffer and swap its offset over
 * scif_send/scif_recv. The client writes a pattern into the server's window
 * (scif_writeto), then raises a flag there with scif_fence_signal; the
 * server spins on that flag in its own buffer and checks the data. The
 * server answers with scif_writeto into the client's window, a fence
 * (mark and wait), and a second flag in its own buffer, on which the client
 * spins through scif_mmap of the server's page; the client checks the data
 * and reads the server's back with scif_vreadfrom. Exit status 0 is success.
 */
#define _POSIX_C_SOURCE 200809L

#include <scif.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
#define LEN (64 * PAGE)
#define DONE 0xC0FFEEull
#define ANSWER 0xFEEDull
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "scif_sample %s: line %d: %s (errno %d)\n", \
				role, __LINE__, #cond, errno);                 \
			exit(1);                                               \
		}                                                              \
	} while (0)

static const char *role = "?";

static unsigned char pattern(int who, size_t i)
{
	return (unsigned char)(who * 31 + i * 7 + (i >> 12));
}

/* Flags live in registered memory, one per cache line of the last page. */
static _Atomic uint64_t *flag_at(void *page, int i)
{
	return (_Atomic uint64_t *)((char *)page + 64 * i);
}

static int server(uint16_t port)
{
	struct scif_portID peer;
	scif_epd_t epd, conn;
	unsigned char *buf;
	off_t mine, theirs;
	int mark;

	epd = scif_open();
	CHECK(epd != SCIF_OPEN_FAILED);
	CHECK(scif_bind(epd, port) == port);
	CHECK(scif_listen(epd, 1) == 0);
	printf("listening\n");
	fflush(stdout);
	CHECK(scif_accept(epd, &peer, &conn, SCIF_ACCEPT_SYNC) == 0);
	CHECK(posix_memalign((void **)&buf, PAGE, LEN + PAGE) == 0);
	memset(buf, 0, LEN + PAGE);
	mine = scif_register(conn, buf, LEN + PAGE, 0, RW, 0);
	CHECK(mine != SCIF_REGISTER_FAILED);
	CHECK(scif_send(conn, &mine, sizeof(mine), SCIF_SEND_BLOCK) == sizeof(mine));
	CHECK(scif_recv(conn, &theirs, sizeof(theirs), SCIF_RECV_BLOCK) == sizeof(theirs));

	/* The client's data, then its signal. */
	while (atomic_load_explicit(flag_at(buf + LEN, 0), memory_order_acquire) != DONE)
		;
	for (size_t i = 0; i < LEN; i++)
		CHECK(buf[i] == pattern(1, i));

	/* Our answer, into its window, fenced before the flag goes up. */
	for (size_t i = 0; i < LEN; i++)
		buf[i] = pattern(2, i);
	CHECK(scif_writeto(conn, mine, LEN, theirs, 0) == 0);
	CHECK(scif_fence_mark(conn, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(conn, mark) == 0);
	atomic_store_explicit(flag_at(buf + LEN, 1), ANSWER, memory_order_release);

	/* Both unregister while still connected, then part. */
	CHECK(scif_recv(conn, &mark, 1, SCIF_RECV_BLOCK) == 1);
	CHECK(scif_unregister(conn, mine, LEN + PAGE) == 0);
	CHECK(scif_send(conn, "b", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_close(conn) == 0);
	CHECK(scif_close(epd) == 0);
	free(buf);
	return 0;
}

static int client(uint16_t node, uint16_t port)
{
	struct scif_portID dst = { .node = node, .port = port };
	uint16_t nodes[16], self;
	unsigned char *buf, *copy;
	void *flags;
	scif_epd_t epd;
	off_t mine, theirs;
	int n;

	n = scif_get_nodeIDs(nodes, 16, &self);
	CHECK(n >= 2 && self != node);
	epd = scif_open();
	CHECK(epd != SCIF_OPEN_FAILED);
	CHECK(scif_connect(epd, &dst) >= 0);
	CHECK(posix_memalign((void **)&buf, PAGE, LEN) == 0);
	for (size_t i = 0; i < LEN; i++)
		buf[i] = pattern(1, i);
	mine = scif_register(epd, buf, LEN, 0, RW, 0);
	CHECK(mine != SCIF_REGISTER_FAILED);
	CHECK(scif_recv(epd, &theirs, sizeof(theirs), SCIF_RECV_BLOCK) == sizeof(theirs));
	CHECK(scif_send(epd, &mine, sizeof(mine), SCIF_SEND_BLOCK) == sizeof(mine));

	CHECK(scif_writeto(epd, mine, LEN, theirs, 0) == 0);
	CHECK(scif_fence_signal(epd, 0, 0, theirs + LEN, DONE,
				SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE) == 0);

	/* The server's flag page, mapped here; spin until it answers. */
	flags = scif_mmap(NULL, PAGE, SCIF_PROT_READ, 0, epd, theirs + LEN);
	CHECK(flags != SCIF_MMAP_FAILED);
	while (atomic_load_explicit(flag_at(flags, 1), memory_order_acquire) != ANSWER)
		;
	for (size_t i = 0; i < LEN; i++)
		CHECK(buf[i] == pattern(2, i));
	copy = malloc(LEN);
	CHECK(copy != NULL);
	CHECK(scif_vreadfrom(epd, copy, LEN, theirs, SCIF_RMA_SYNC) == 0);
	CHECK(memcmp(copy, buf, LEN) == 0);

	CHECK(scif_munmap(flags, PAGE) == 0);
	CHECK(scif_unregister(epd, mine, LEN) == 0);
	CHECK(scif_send(epd, "b", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_recv(epd, &n, 1, SCIF_RECV_BLOCK) == 1);
	CHECK(scif_close(epd) == 0);
	free(copy);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "server") == 0) {
		role = "server";
		return server((uint16_t)atoi(argv[2]));
	}
	if (argc == 4 && strcmp(argv[1], "client") == 0) {
		role = "client";
		return client((uint16_t)atoi(argv[2]), (uint16_t)atoi(argv[3]));
	}
	fprintf(stderr, "usage: scif_sample server PORT | client NODE PORT\n");
	return 2;
}
