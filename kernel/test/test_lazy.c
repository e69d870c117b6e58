/*
 * The RMA channel made lazily (channel.h): a connection holds one descriptor
 * a side until an RMA call on either side, and then three on both sides; RMA
 * works whichever side made the channel.
 *
 *   idle      connections that only send and receive stay at one a side
 *   grows     one registers here: three here, and three in the role without
 *             the role calling anything (its service thread attaches them);
 *             RMA into a window the role registers afterwards
 *   both      both sides register at once, each side first in turn (every
 *             channel is made slowly: SCIF_NET_CHAN_DELAY_US)
 *   threads   many connections, both sides, from many threads at once
 *   early     an acceptor makes the channel before its caller has finished
 *             connecting: the caller's ends wait for it
 *
 * The role (conn_role.h) plays node 1.
 */
#include <fcntl.h>

#include "conn_role.h"

#define PORT 3900
#define PAIR_PORT 3901
#define BOTH 8
#define THREADS 8
#define PER_THREAD 6
#define CHAN_DELAY_US "3000"

static size_t P;
static struct scif_portID role_at = { .node = 1, .port = PORT };

static int dial(void)
{
	int epd = scif_open();

	CHECK(epd >= 0 && scif_connect(epd, &role_at) > 0);
	return epd;
}

/* A page of ours registered on epd. */
static off_t register_page(int epd, uint8_t **page)
{
	off_t off;

	CHECK(posix_memalign((void **)page, P, P) == 0);
	memset(*page, 0, P);
	off = scif_register(epd, *page, P, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0);
	CHECK(off >= 0);
	return off;
}

static void unregister_page(int epd, off_t off, uint8_t *page)
{
	CHECK(scif_unregister(epd, off, P) == 0);
	free(page);
}

static void echo(int epd, size_t len, uint64_t seed)
{
	uint8_t *out = malloc(len), *back = malloc(len);
	int n = (int)len;

	CHECK(out && back);
	fill64(out, len, seed);
	send_all(epd, "e", 1);
	send_all(epd, &n, sizeof(n));
	send_all(epd, out, len);
	recv_all(epd, back, len);
	CHECK(memcmp(out, back, len) == 0);
	free(out);
	free(back);
}

static void idle_and_grows(void)
{
	int base = count_connection_fds(), c[4];
	uint8_t *mine;
	off_t lo, roff;

	for (int i = 0; i < 4; i++) {
		c[i] = dial();
		echo(c[i], 256 << 10, (uint64_t)i);
	}
	CHECK(count_connection_fds() - base == 4);
	CHECK(ask(c[0], 'c') == 4);
	printf("# idle: 4 connections moved 256 KiB each way, 1 descriptor a side each\n");

	lo = register_page(c[0], &mine);
	CHECK(count_connection_fds() - base == 6);
	CHECK(role_fds_reach(c[0], 6) == 6);
	roff = role_register(c[0]);
	write_and_verify(c[0], roff, 42);
	CHECK(scif_readfrom(c[0], lo, P, roff, SCIF_RMA_SYNC) == 0);
	{
		uint8_t *want = malloc(P);

		CHECK(want != NULL);
		fill64(want, P, 42);
		CHECK(memcmp(mine, want, P) == 0);
		free(want);
	}
	CHECK(count_connection_fds() - base == 6 && ask(c[1], 'c') == 6);
	printf("# grows: a registration made 3 descriptors a side, the role's attached by its service thread\n");
	unregister_page(c[0], lo, mine);
	for (int i = 0; i < 4; i++) {
		role_quit(c[i]);
		CHECK(scif_close(c[i]) == 0);
	}
	CHECK(count_connection_fds() == base);
}

static void both_at_once(void)
{
	int base = count_connection_fds(), c[BOTH];

	for (int i = 0; i < BOTH; i++) {
		uint8_t *mine;
		off_t lo, roff;

		c[i] = dial();
		/* Even: we ask first and register at once, so we take the
		 * channel's lock first and the role waits for it, then finds
		 * its ends made. Odd: the role takes it first. */
		send_all(c[i], "r", 1);
		if (i % 2)
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
		lo = register_page(c[i], &mine);
		recv_all(c[i], &roff, sizeof(roff));
		CHECK(roff >= 0 && count_connection_fds() - base == 3 * (i + 1));
		write_and_verify(c[i], roff, 100 + (uint64_t)i);
		unregister_page(c[i], lo, mine);
	}
	CHECK(ask(c[0], 'c') == 3 * BOTH);
	for (int i = 0; i < BOTH; i++) {
		role_quit(c[i]);
		CHECK(scif_close(c[i]) == 0);
	}
	printf("# both: %d connections, both sides registering at once, 3 descriptors a side\n", BOTH);
}

static void *thread_main(void *arg)
{
	int t = (int)(intptr_t)arg, c[PER_THREAD];
	off_t roff[PER_THREAD], lo[PER_THREAD];
	uint8_t *mine[PER_THREAD];

	for (int i = 0; i < PER_THREAD; i++)
		c[i] = dial();
	/* Half made here, half by the role; every one used from both sides. */
	for (int i = 0; i < PER_THREAD; i++) {
		if ((t + i) % 2) {
			lo[i] = register_page(c[i], &mine[i]);
			roff[i] = role_register(c[i]);
		} else {
			roff[i] = role_register(c[i]);
			lo[i] = register_page(c[i], &mine[i]);
		}
	}
	for (int i = 0; i < PER_THREAD; i++) {
		write_and_verify(c[i], roff[i], (uint64_t)(t * PER_THREAD + i));
		unregister_page(c[i], lo[i], mine[i]);
		role_quit(c[i]);
		CHECK(scif_close(c[i]) == 0);
	}
	return NULL;
}

static void many_threads(void)
{
	pthread_t t[THREADS];
	double t0 = now_ms();

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)i) == 0);
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	printf("# threads: %d connections made their channels from %d threads in %.0f ms\n",
	       THREADS * PER_THREAD, THREADS, now_ms() - t0);
}

/* In this process: the acceptor registers before the caller's non-blocking
 * connect is finished. */
static void early(void)
{
	struct scif_portID to = { .node = 0, .port = PAIR_PORT }, peer;
	struct scif_pollepd pe = { .events = POLLOUT };
	int l = listen_on(PAIR_PORT, 1), c = scif_open(), s, base, flags, mark;
	uint8_t *page, *want = malloc(P);
	off_t off;

	CHECK(c >= 0 && want != NULL);
	base = count_connection_fds();
	flags = fcntl(c, F_GETFL);
	CHECK(flags >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
	off = register_page(s, &page);
	/* s's three, and c's ends held for it (its socket is in base) once
	 * the service thread has read them from our inbox. */
	CHECK(conn_fds_reach(base, 5) == 5);
	pe.epd = c;
	CHECK(scif_poll(&pe, 1, -1) == 1 && pe.revents == POLLOUT);
	CHECK(scif_connect(c, &to) == peer.port);
	CHECK(fcntl(c, F_SETFL, flags) == 0);
	fill64(want, P, 7);
	CHECK(scif_vwriteto(c, want, P, off, 0) == 0);
	CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(c, mark) == 0);
	CHECK(memcmp(page, want, P) == 0);
	CHECK(count_connection_fds() - base == 5);
	unregister_page(s, off, page);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0 && scif_close(l) == 0);
	free(want);
	printf("# early: the caller's ends came before its connect was finished, and waited\n");
}

int main(int argc, char **argv)
{
	char port[16];
	int ready;
	pid_t pid;

	P = page_size();
	/* Every channel is made slowly, here and in the role: sides meet. */
	setenv("SCIF_NET_CHAN_DELAY_US", CHAN_DELAY_US, 1);
	if (argc > 2 && strcmp(argv[1], "serve") == 0)
		return role_serve(argv[2]);
	CHECK(scif_net_self_node() == 0);	/* the fabric's own descriptors, opened */
	snprintf(port, sizeof(port), "%d", PORT);
	pid = spawn_role(1, "serve", port, &ready);
	CHECK(await_ready(ready) == 1);
	idle_and_grows();
	both_at_once();
	many_threads();
	early();
	CHECK(kill(pid, SIGKILL) == 0);
	expect_signal(pid, SIGKILL);
	CHECK(close(ready) == 0);
	return 0;
}
