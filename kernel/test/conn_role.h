/*
 * conn_role.h - a role process serving connections: it accepts and serves
 * each connection in a thread of its own, doing what the test asks over the
 * connection itself - so that the test decides which side makes a
 * connection's RMA channel, and when (test_lazy, test_lazy_death), and can
 * ask which process accepted it (test_share).
 *
 * Commands (one byte, then arguments), each answered:
 *   'p'         its pid: int
 *   'a'         the arenas of queue pairs it maps (arena.h): int
 *   'c'         its connections' descriptors (count_connection_fds(), less
 *               what it held once listening): int
 *   'w' int n   the same, once it is n (or after 10 s): int
 *   'r'         registers a page of zeros: its offset, off_t
 *   'R'         registers one in a thread of its own, and answers (int 0)
 *               once that thread sleeps: in SCIF_NET_CHAN_DELAY_US making
 *               the channel, holding its lock
 *   'N'         takes every descriptor it may still open, answers (int 0),
 *               and waits for the connection to be reset: ends the thread
 *   'v' u64 s   whether the page now holds fill64(s): uint8_t
 *   'e' int n   echoes n bytes
 *   'q'         unregisters, answers a byte, closes, ends the thread
 */
#ifndef CONN_ROLE_H
#define CONN_ROLE_H

#include "arena.h"
#include "check.h"

static int role_base;	/* descriptors once listening */

static inline void send_all(int epd, const void *p, size_t len)
{
	CHECK(scif_send(epd, (void *)p, (int)len, SCIF_SEND_BLOCK) == (int)len);
}

static inline void recv_all(int epd, void *p, size_t len)
{
	CHECK(scif_recv(epd, p, (int)len, SCIF_RECV_BLOCK) == (int)len);
}

/* Connection descriptors, less base: once they are want, or after 10 s. */
static inline int conn_fds_reach(int base, int want)
{
	double until = now_ms() + 10000;
	int n;

	while ((n = count_connection_fds() - base) != want && now_ms() < until)
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	return n;
}

struct slow_register {
	int epd;
	void *page;
	_Atomic pid_t tid;
};

static inline void *slow_register_main(void *arg)
{
	struct slow_register *r = arg;

	r->tid = gettid();
	/* Whatever it says: the test kills us, or closes, meanwhile. */
	(void)scif_register(r->epd, r->page, page_size(), 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0);
	return NULL;
}

static inline void *role_conn(void *arg)
{
	int epd = (int)(intptr_t)arg, n;
	size_t P = page_size();
	uint8_t *win = NULL, *buf = NULL, ok;
	off_t off = -1;
	uint64_t seed;
	char cmd;

	CHECK(posix_memalign((void **)&win, P, P) == 0);
	for (;;) {
		recv_all(epd, &cmd, 1);
		switch (cmd) {
		case 'p':
			n = (int)getpid();
			send_all(epd, &n, sizeof(n));
			break;
		case 'a':
			n = (int)arena_count();
			send_all(epd, &n, sizeof(n));
			break;
		case 'c':
			n = count_connection_fds() - role_base;
			send_all(epd, &n, sizeof(n));
			break;
		case 'w':
			recv_all(epd, &n, sizeof(n));
			n = conn_fds_reach(role_base, n);
			send_all(epd, &n, sizeof(n));
			break;
		case 'r':
			memset(win, 0, P);
			off = scif_register(epd, win, P, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0);
			CHECK(off >= 0);
			send_all(epd, &off, sizeof(off));
			break;
		case 'R': {
			static struct slow_register r;
			pthread_t t;

			r = (struct slow_register){ .epd = epd, .page = win };
			CHECK(pthread_create(&t, NULL, slow_register_main, &r) == 0);
			CHECK(pthread_detach(t) == 0);
			while (!r.tid)
				sched_yield();
			wait_delayed(r.tid);
			n = 0;
			send_all(epd, &n, sizeof(n));
			break;
		}
		case 'N': {
			struct rlimit rl;
			int top = 0;

			/* At the limit: no hole below it, none above. */
			for (int fd; (fd = dup(0)) >= 0; top = fd)
				if (fd >= 4096) {
					close(fd);
					break;
				}
			CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
			rl.rlim_cur = (rlim_t)top + 1;
			CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0 && dup(0) == -1 && errno == EMFILE);
			n = 0;
			send_all(epd, &n, sizeof(n));
			/* Until the reset: the test's last send, racing with the
			 * hang-up, may have reached the ring first. */
			while (scif_recv(epd, &cmd, 1, SCIF_RECV_BLOCK) == 1)
				;
			CHECK(errno == ECONNRESET);
			return NULL;
		}
		case 'v':
			recv_all(epd, &seed, sizeof(seed));
			buf = realloc(buf, P);
			CHECK(buf != NULL);
			fill64(buf, P, seed);
			ok = memcmp(buf, win, P) == 0;
			send_all(epd, &ok, 1);
			break;
		case 'e':
			recv_all(epd, &n, sizeof(n));
			buf = realloc(buf, (size_t)n);
			CHECK(buf != NULL);
			recv_all(epd, buf, (size_t)n);
			send_all(epd, buf, (size_t)n);
			break;
		case 'q':
			if (off >= 0)
				CHECK(scif_unregister(epd, off, P) == 0);
			send_all(epd, "q", 1);
			CHECK(scif_close(epd) == 0);
			free(win);
			free(buf);
			return NULL;
		default:
			CHECK(!"a command of ours");
		}
	}
}

/* Accepts on listener l and serves each connection in a thread of its own,
 * until scif_accept fails: its errno. */
static inline int serve_listener(int l)
{
	for (;;) {
		struct scif_portID who;
		pthread_t t;
		int s;

		if (scif_accept(l, &who, &s, SCIF_ACCEPT_SYNC) < 0)
			return errno;
		CHECK(pthread_create(&t, NULL, role_conn, (void *)(intptr_t)s) == 0);
		CHECK(pthread_detach(t) == 0);
	}
}

/* The role: listens on port (its argument), reports ready, serves. */
static inline int role_serve(const char *arg)
{
	int l = listen_on((uint16_t)atoi(arg), 64);

	role_base = count_connection_fds();
	report_ready(1);
	return serve_listener(l);
}

/* ---- the test's side ---- */

static inline int ask(int epd, char cmd)
{
	int n;

	send_all(epd, &cmd, 1);
	recv_all(epd, &n, sizeof(n));
	return n;
}

/* The role's descriptors, once they are want (its service thread attaches
 * channels the test made without the role calling anything). */
static inline int role_fds_reach(int epd, int want)
{
	char cmd = 'w';
	int n;

	send_all(epd, &cmd, 1);
	send_all(epd, &want, sizeof(want));
	recv_all(epd, &n, sizeof(n));
	return n;
}

static inline off_t role_register(int epd)
{
	off_t off;

	send_all(epd, "r", 1);
	recv_all(epd, &off, sizeof(off));
	return off;
}

/* Writes fill64(seed) into the role's page at roff by RMA, fenced, and asks
 * the role whether it is there. */
static inline void write_and_verify(int epd, off_t roff, uint64_t seed)
{
	size_t P = page_size();
	uint8_t *page = malloc(P), ok = 0;
	int mark;

	CHECK(page != NULL);
	fill64(page, P, seed);
	CHECK(scif_vwriteto(epd, page, P, roff, 0) == 0);
	CHECK(scif_fence_mark(epd, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(epd, mark) == 0);
	send_all(epd, "v", 1);
	send_all(epd, &seed, sizeof(seed));
	recv_all(epd, &ok, 1);
	CHECK(ok == 1);
	free(page);
}

static inline void role_quit(int epd)
{
	char done;

	send_all(epd, "q", 1);
	recv_all(epd, &done, 1);
}

#endif
