/*
 * Stream-only endpoints (scif_net_set_stream_only): their connections never
 * get a control channel and an RMA bell, so the RMA family fails on them.
 * Every connection holds one descriptor a side until an RMA call on either
 * side gives it the other two (channel.h); a stream-only one stays at one,
 * as counted in /proc/self/fd before and after.
 *
 * A role on node 1 listens on two ports, one stream-only and one full, and
 * accepts the connections this process (node 0) makes in a fixed order:
 *   1. stream-only caller (non-blocking connect) to the stream-only listener
 *   2. stream-only caller to the full listener
 *   3. full caller to the stream-only listener
 *   4. full caller to the full listener: one descriptor, then three once the
 *      role registers a window; RMA both ways
 *   5. a caller whose first connect failed, made stream-only afterwards, to
 *      the full listener; then the role is killed: ECONNRESET as ever
 * Each stream-only connection moves data both ways, and every call of the RMA
 * family fails with EOPNOTSUPP on both sides without moving a page.
 */
#include <fcntl.h>
#include <poll.h>

#include "check.h"

#define STREAM_PORT 3700
#define FULL_PORT 3701
#define ABSENT_PORT 3799
#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)
#define DATA (2u << 20)		/* twice the default ring, each way */

enum mode { STREAM, FULL };

/* Listener and expected connection of each case, as both processes see them. */
static const struct {
	uint16_t port;
	enum mode conn;
} cases[] = {
	{ STREAM_PORT, STREAM },
	{ FULL_PORT, STREAM },
	{ STREAM_PORT, STREAM },
	{ FULL_PORT, FULL },
	{ FULL_PORT, STREAM },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static size_t P;

/* Descriptors one side of a connection holds: one, until an RMA call on
 * either side of a full connection gives it its RMA channel. */
static int fds_per_conn(enum mode m, bool rma)
{
	return m == FULL && rma ? 3 : 1;
}

static void send_all(int epd, const void *p, size_t len)
{
	CHECK(scif_send(epd, (void *)p, (int)len, SCIF_SEND_BLOCK) == (int)len);
}

static void recv_all(int epd, void *p, size_t len)
{
	CHECK(scif_recv(epd, p, (int)len, SCIF_RECV_BLOCK) == (int)len);
}

/* Every call of the RMA family, with arguments that are otherwise valid. */
static void no_rma(int epd)
{
	uint8_t *page = NULL;
	int mark = 0;

	CHECK(posix_memalign((void **)&page, P, P) == 0);
	memset(page, 7, P);
	CHECK_ERR(scif_register(epd, page, P, 0, RW, 0), EOPNOTSUPP);
	CHECK_ERR(scif_register(epd, page, P, 0, RW, SCIF_MAP_FIXED), EOPNOTSUPP);
	CHECK_ERR(scif_unregister(epd, 0, P), EOPNOTSUPP);
	CHECK_ERR(scif_readfrom(epd, 0, P, 0, 0), EOPNOTSUPP);
	CHECK_ERR(scif_writeto(epd, 0, P, 0, SCIF_RMA_SYNC), EOPNOTSUPP);
	CHECK_ERR(scif_vreadfrom(epd, page, P, 0, 0), EOPNOTSUPP);
	CHECK_ERR(scif_vwriteto(epd, page, P, 0, SCIF_RMA_ORDERED), EOPNOTSUPP);
	CHECK_ERR(scif_mmap(NULL, P, SCIF_PROT_READ, 0, epd, 0), EOPNOTSUPP);
	CHECK_ERR(scif_fence_mark(epd, SCIF_FENCE_INIT_SELF, &mark), EOPNOTSUPP);
	CHECK_ERR(scif_fence_mark(epd, SCIF_FENCE_INIT_PEER, &mark), EOPNOTSUPP);
	CHECK_ERR(scif_fence_wait(epd, 0), EOPNOTSUPP);
	CHECK_ERR(scif_fence_signal(epd, 0, 1, 0, 1, SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_LOCAL),
		  EOPNOTSUPP);
	CHECK_ERR(scif_fence_signal(epd, 0, 1, 0, 1, SCIF_FENCE_INIT_PEER | SCIF_SIGNAL_REMOTE),
		  EOPNOTSUPP);
	/* Nothing was moved or announced: the page is the process's own still. */
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(page[0] == 7 && page[P - 1] == 7);
	free(page);
}

/* DATA bytes of fill64(seed) one way, checked by the receiver. */
static void stream_out(int epd, uint64_t seed, uint8_t *buf)
{
	fill64(buf, DATA, seed);
	send_all(epd, buf, DATA);
}

static void stream_in(int epd, uint64_t seed, uint8_t *buf)
{
	uint64_t want;

	fill64(buf, DATA, seed);
	want = sum64(buf, DATA);
	memset(buf, 0, DATA);
	recv_all(epd, buf, DATA);
	CHECK(sum64(buf, DATA) == want);
}

/* ---- what both sides do on a connection ---- */

/* The role's side of the full case: a window of two pages, the first
 * written by the caller's RMAs, the second holding its fence_signal value. */
static void serve_full(int s, int before)
{
	uint8_t *win = NULL, ok = 1, done;
	off_t off;

	CHECK(posix_memalign((void **)&win, P, 2 * P) == 0);
	memset(win, 0, 2 * P);
	off = scif_register(s, win, 2 * P, 0, RW, 0);
	CHECK(off >= 0);
	CHECK(count_connection_fds() - before == fds_per_conn(FULL, true));
	send_all(s, &off, sizeof(off));
	recv_all(s, &done, 1);
	for (size_t i = 0; i < P; i++)
		if (win[i] != pattern_byte(i))
			ok = 0;
	if (*(volatile uint64_t *)(win + P) != 0xfeedull)
		ok = 0;
	CHECK(scif_unregister(s, off, 2 * P) == 0);
	send_all(s, &ok, 1);
	free(win);
}

/* The caller's side of the full case: windows, RMA both ways, a remote
 * mapping and fences. */
static void drive_full(int c, int before)
{
	uint8_t *mine = NULL, *plain = malloc(P), *map, ok = 0;
	off_t lo, roff;
	int mark;

	CHECK(plain != NULL && posix_memalign((void **)&mine, P, P) == 0);
	recv_all(c, &roff, sizeof(roff));
	lo = scif_register(c, mine, P, 0, RW, 0);
	CHECK(lo >= 0);
	/* The role made the channel: ours was sent to our inbox. */
	CHECK(count_connection_fds() - before == fds_per_conn(FULL, true));
	for (size_t i = 0; i < P; i++)
		mine[i] = (uint8_t)~pattern_byte(i);
	CHECK(scif_writeto(c, lo, P, roff, 0) == 0);
	CHECK(scif_vreadfrom(c, plain, P, roff, SCIF_RMA_SYNC) == 0);
	CHECK(memcmp(plain, mine, P) == 0);
	for (size_t i = 0; i < P; i++)
		plain[i] = pattern_byte(i);
	CHECK(scif_vwriteto(c, plain, P, roff, 0) == 0);
	CHECK(scif_readfrom(c, lo, P, roff, 0) == 0);
	/* Asynchronous, and in order: done once a fence says so. */
	CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(c, mark) == 0);
	CHECK(memcmp(mine, plain, P) == 0);
	map = scif_mmap(NULL, P, SCIF_PROT_READ, 0, c, roff);
	CHECK(map != SCIF_MMAP_FAILED && memcmp(map, plain, P) == 0);
	CHECK(scif_munmap(map, P) == 0);
	CHECK(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark) == 0);
	CHECK(scif_fence_wait(c, mark) == 0);
	CHECK(scif_fence_signal(c, 0, 0, roff + (off_t)P, 0xfeed,
				SCIF_FENCE_INIT_SELF | SCIF_SIGNAL_REMOTE) == 0);
	send_all(c, "", 1);
	recv_all(c, &ok, 1);
	CHECK(ok == 1);
	CHECK(scif_unregister(c, lo, P) == 0);
	free(mine);
	free(plain);
}

/* Both sides of connection i, once made: its descriptors, then RMA (full)
 * or bytes both ways (stream-only), the caller's first. */
static void use_conn(int epd, size_t i, int before, bool caller, uint8_t *buf)
{
	uint8_t counted;

	CHECK(count_connection_fds() - before == fds_per_conn(cases[i].conn, false));
	CHECK_ERR(scif_net_set_stream_only(epd), EISCONN);
	if (cases[i].conn == FULL) {
		/* Both have counted before the role's registration makes the
		 * channel (and the service thread attaches the caller's ends). */
		if (caller) {
			send_all(epd, "", 1);
			drive_full(epd, before);
		} else {
			recv_all(epd, &counted, 1);
			serve_full(epd, before);
		}
		return;
	}
	no_rma(epd);
	CHECK(count_connection_fds() - before == fds_per_conn(cases[i].conn, true));
	if (caller) {
		stream_out(epd, 10 * i, buf);
		stream_in(epd, 10 * i + 1, buf);
	} else {
		stream_in(epd, 10 * i, buf);
		stream_out(epd, 10 * i + 1, buf);
	}
}

/* ---- the role on node 1 ---- */

static int role_listen(void)
{
	int ls = scif_open(), lf = scif_open();
	uint8_t *buf = malloc(DATA);
	char c;

	CHECK(buf != NULL && ls >= 0 && lf >= 0);
	CHECK(scif_net_set_stream_only(ls) == 0);
	CHECK(scif_net_set_stream_only(ls) == 0);	/* again: harmless */
	CHECK(scif_bind(ls, STREAM_PORT) == STREAM_PORT && scif_listen(ls, 4) == 0);
	CHECK(scif_bind(lf, FULL_PORT) == FULL_PORT && scif_listen(lf, 4) == 0);
	CHECK_ERR(scif_net_set_stream_only(ls), EINVAL);	/* listening now */
	report_ready(1);
	for (size_t i = 0; i < NCASES; i++) {
		int before = count_connection_fds(), s;
		struct scif_portID who;

		CHECK(scif_accept(cases[i].port == STREAM_PORT ? ls : lf, &who, &s,
				  SCIF_ACCEPT_SYNC) == 0);
		CHECK(who.node == 0);
		use_conn(s, i, before, false, buf);
		if (i == NCASES - 1) {
			/* Something to read after our death; then wait to be killed. */
			send_all(s, "last", 4);
			for (;;)
				pause();
		}
		/* The caller closes: its bytes were read, then ECONNRESET. */
		CHECK_ERR(scif_recv(s, &c, 1, SCIF_RECV_BLOCK), ECONNRESET);
		if (cases[i].conn == STREAM)
			no_rma(s);	/* still EOPNOTSUPP, not ECONNRESET */
		CHECK(scif_close(s) == 0);
		CHECK(count_connection_fds() == before);
	}
	return 0;
}

/* ---- node 0 ---- */

static void connect_nonblocking(int c, struct scif_portID *to)
{
	int flags = fcntl(c, F_GETFL);
	struct scif_pollepd pe = { .epd = c, .events = POLLOUT };

	CHECK(flags >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	errno = 0;
	if (scif_connect(c, to) < 0) {
		CHECK(errno == EINPROGRESS);
		CHECK(scif_poll(&pe, 1, -1) == 1 && pe.revents == POLLOUT);
		CHECK(scif_connect(c, to) > 0);
	}
	CHECK(fcntl(c, F_SETFL, flags) == 0);
}

/* The last case: the role dies on a stream-only connection. */
static void peer_dies(int c, pid_t pid)
{
	struct scif_pollepd pe = { .epd = c, .events = POLLIN };
	char got[4];

	CHECK(scif_poll(&pe, 1, -1) == 1 && (pe.revents & POLLIN));
	CHECK(kill(pid, SIGKILL) == 0);
	expect_signal(pid, SIGKILL);
	recv_all(c, got, 4);
	CHECK(memcmp(got, "last", 4) == 0);
	CHECK_ERR(scif_recv(c, got, 1, SCIF_RECV_BLOCK), ECONNRESET);
	CHECK_ERR(scif_send(c, got, 1, SCIF_SEND_BLOCK), ECONNRESET);
	pe = (struct scif_pollepd){ .epd = c, .events = POLLIN | POLLOUT };
	CHECK(scif_poll(&pe, 1, 0) == 1 && (pe.revents & POLLHUP));
	no_rma(c);
}

/* set_stream_only's own errors, in this process alone. */
static void check_errors(void)
{
	int l = scif_open(), c, s, gone = scif_open();

	CHECK(l >= 0 && gone >= 0 && scif_close(gone) == 0);
	CHECK_ERR(scif_net_set_stream_only(gone), EBADF);
	CHECK_ERR(scif_net_set_stream_only(-1), EBADF);
	CHECK(scif_close(l) == 0);
	/* A full pair in one process: connected ends refuse. */
	connect_pair(3702, &c, &s);
	CHECK_ERR(scif_net_set_stream_only(c), EISCONN);
	CHECK_ERR(scif_net_set_stream_only(s), EISCONN);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	/* A bound endpoint may still become stream-only. */
	l = scif_open();
	CHECK(l >= 0 && scif_bind(l, 3703) == 3703);
	CHECK(scif_net_set_stream_only(l) == 0);
	CHECK(scif_close(l) == 0);
}

int main(int argc, char **argv)
{
	struct scif_portID absent = { .node = 1, .port = ABSENT_PORT };
	uint8_t *buf;
	int ready;
	pid_t pid;

	P = page_size();
	if (argc > 2 && strcmp(argv[1], "listen") == 0)
		return role_listen();
	buf = malloc(DATA);
	CHECK(buf != NULL);
	CHECK(scif_net_self_node() == 0);	/* the fabric's own descriptors, opened */
	check_errors();
	pid = spawn_role(1, "listen", NULL, &ready);
	CHECK(await_ready(ready) == 1);
	for (size_t i = 0; i < NCASES; i++) {
		struct scif_portID to = { .node = 1, .port = cases[i].port };
		int before = count_connection_fds(), c = scif_open();

		CHECK(c >= 0);
		if (i == NCASES - 1) {
			/* Named by a failed attempt before it became stream-only. */
			CHECK_ERR(scif_connect(c, &absent), ECONNREFUSED);
			CHECK(scif_net_set_stream_only(c) == 0);
		} else if (i < 2) {
			CHECK(scif_net_set_stream_only(c) == 0);
		}
		if (i == 0)
			connect_nonblocking(c, &to);
		else
			CHECK(scif_connect(c, &to) > 0);
		use_conn(c, i, before, true, buf);
		if (i == NCASES - 1)
			peer_dies(c, pid);
		CHECK(scif_close(c) == 0);
		CHECK(count_connection_fds() == before);
		printf("# case %zu: %s connection, %d descriptor%s a side after RMA calls\n", i + 1,
		       cases[i].conn == STREAM ? "stream-only" : "full",
		       fds_per_conn(cases[i].conn, true), cases[i].conn == STREAM ? "" : "s");
	}
	CHECK(close(ready) == 0);
	free(buf);
	return 0;
}
