/*
 * A peer that dies (SIGKILL) or closes: the survivor first reads everything
 * the peer sent, then gets ECONNRESET; threads blocked in recv, send or
 * scif_poll wake up instead of hanging; a dead listener's port and a dead
 * process's endpoints' ports are free again, and connecting to the dead
 * listener is refused.
 *
 * Peers are roles on node 1; this process is node 0. A role that must be
 * told when to act reads a "go" pipe whose descriptor is its argument.
 */
#include "check.h"

#define RING 65536	/* set in SCIF_NET_RING for every process of the test */
#define ROOM (RING - 1)	/* what it holds */
#define LEAD 1000	/* sent and read first, so the ring's contents wrap */

/* ---- roles (node 1) ---- */

static int accept_one(uint16_t port, int ready_value)
{
	int l = scif_open(), s;
	struct scif_portID peer;

	CHECK(l >= 0);
	CHECK(scif_bind(l, port) == port);
	CHECK(scif_listen(l, 1) == 0);
	report_ready(ready_value);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(scif_close(l) == 0);
	return s;
}

static void send_pattern(int epd, uint64_t from, int len)
{
	uint8_t *buf = malloc((size_t)len);

	CHECK(buf != NULL);
	for (int i = 0; i < len; i++)
		buf[i] = pattern_byte(from + (uint64_t)i);
	CHECK(scif_send(epd, buf, len, SCIF_SEND_BLOCK) == len);
	free(buf);
}

/* Fills the survivor's receive ring (LEAD bytes first, which the survivor
 * reads, so the rest wraps around), then waits to be killed or told to close. */
static int role_fill(const char *arg)
{
	int s = accept_one(3100, 0), go = atoi(arg);
	char c;

	send_pattern(s, 0, LEAD);
	report_ready(LEAD);
	send_pattern(s, LEAD, ROOM);	/* completes once the survivor took LEAD */
	report_ready(ROOM);
	if (go <= 0)
		for (;;)
			pause();
	/* Graceful: close with the ring full, stay alive while the survivor drains. */
	CHECK(scif_close(s) == 0);
	report_ready(1);
	CHECK(read(go, &c, 1) == 0);
	return 0;
}

/* Connects and idles until killed, or until told to close. */
static int role_idle(const char *arg)
{
	int s = accept_one(3200, 0), go = atoi(arg);
	char c;

	report_ready(1);
	if (go <= 0)
		for (;;)
			pause();
	CHECK(read(go, &c, 1) == 1 && c == 'c');
	CHECK(scif_close(s) == 0);
	CHECK(read(go, &c, 1) == 0);
	return 0;
}

/* Listens on port arg, accepting and closing connections, or never accepting. */
static int role_listen(const char *arg, bool accepting)
{
	uint16_t port = (uint16_t)atoi(arg);
	int l = scif_open(), s;
	struct scif_portID peer;

	CHECK(l >= 0);
	CHECK(scif_bind(l, port) == port);
	CHECK(scif_listen(l, 4) == 0);
	report_ready(port);
	for (;;) {
		if (!accepting)
			pause();
		else if (scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0)
			CHECK(scif_close(s) == 0);
	}
}

/* Binds port arg, reports the result (the port or -errno) and idles. */
static int role_bind(const char *arg)
{
	int e = scif_open(), r;

	CHECK(e >= 0);
	r = scif_bind(e, (uint16_t)atoi(arg));
	report_ready(r < 0 ? -errno : r);
	for (;;)
		pause();
}

/* Connects to node 0's port arg and idles: its own port is an ephemeral one. */
static int role_connect(const char *arg)
{
	struct scif_portID to = { .node = 0, .port = (uint16_t)atoi(arg) };
	int e = scif_open();

	CHECK(e >= 0);
	CHECK(scif_connect(e, &to) >= SCIF_PORT_RSVD);
	report_ready(1);
	for (;;)
		pause();
}

/* ---- the survivor (node 0) ---- */

static pid_t spawn(const char *role, const char *arg, int *ready)
{
	return spawn_role(1, role, arg, ready);
}

static void recv_pattern(int epd, uint64_t from, int len)
{
	uint8_t buf[7001];
	uint32_t seed = 99;
	int got = 0;

	while (got < len) {
		int want = 1 + (int)(xorshift(&seed) % sizeof(buf)), n;

		if (want > len - got)
			want = len - got;
		n = scif_recv(epd, buf, want, 0);	/* no waiting: it is all there */
		CHECK(n == want);
		for (int i = 0; i < n; i++)
			CHECK(buf[i] == pattern_byte(from + (uint64_t)(got + i)));
		got += n;
	}
}

/* (a) killed, (d) poll, (e) closed: the bytes in the ring come first. */
static void check_drain(bool graceful)
{
	char arg[16] = "0";
	int ready, rd = -1, go = graceful ? go_pipe(arg, sizeof(arg), &rd) : -1, c;
	pid_t pid = spawn("fill", arg, &ready);
	struct scif_pollepd pe;

	if (rd >= 0)
		CHECK(close(rd) == 0);
	CHECK(await_ready(ready) == 0);
	c = connect_to(1, 3100);
	CHECK(await_ready(ready) == LEAD);
	recv_pattern(c, 0, LEAD);
	CHECK(await_ready(ready) == ROOM);
	if (graceful) {
		CHECK(await_ready(ready) == 1);	/* closed, and alive */
	} else {
		CHECK(kill(pid, SIGKILL) == 0);
		expect_signal(pid, SIGKILL);
	}
	/* (d) at once, even with tokens queued in front of the EOF: as the
	 * driver's, POLLOUT too, for our ring has room; but writing is
	 * refused, reading is not. */
	pe = (struct scif_pollepd){ .epd = c, .events = POLLIN | POLLOUT };
	CHECK(scif_poll(&pe, 1, 0) == 1 && pe.revents == (POLLIN | POLLOUT | POLLHUP));
	CHECK_ERR(scif_send(c, "x", 1, 0), ECONNRESET);
	recv_pattern(c, LEAD, ROOM);
	expect_reset(c);
	if (graceful) {
		CHECK(close(go) == 0);
		expect_exit(pid, 0);
	}
	CHECK(close(ready) == 0);
}

static void fill_ring(int epd)
{
	char buf[4096] = { 0 };
	int n;

	do {
		n = scif_send(epd, buf, sizeof(buf), 0);
		CHECK(n >= 0);
	} while (n > 0);
}

/* (b), (c), (d): recv, send and scif_poll blocked when the peer is killed or
 * closes wake with ECONNRESET (POLLHUP). How long that took is printed, not
 * asserted: a wake-up that never comes is the runner's time limit's job. */
static void check_wake(enum call call, bool graceful)
{
	char arg[16] = "0";
	int ready, rd = -1, go = graceful ? go_pipe(arg, sizeof(arg), &rd) : -1, c;
	pid_t pid = spawn("idle", arg, &ready);
	struct blocked b = { 0 };
	double t0;

	if (rd >= 0)
		CHECK(close(rd) == 0);
	CHECK(await_ready(ready) == 0);
	c = connect_to(1, 3200);
	CHECK(await_ready(ready) == 1);
	if (call == CALL_SEND)
		fill_ring(c);	/* the peer never reads: the next send sleeps */
	block_in(&b, call, c);
	t0 = now_ms();
	if (graceful) {
		CHECK(write(go, "c", 1) == 1);
	} else {
		CHECK(kill(pid, SIGKILL) == 0);
	}
	if (call == CALL_POLL)
		CHECK(woke_polled(&b) == (POLLIN | POLLHUP));
	else
		woke_failing(&b, ECONNRESET);
	printf("# a thread blocked in %s woke %.2f ms after the peer %s\n",
	       call_name(call), b.returned_ms - t0, graceful ? "closed" : "was killed");
	expect_reset(c);
	if (graceful) {
		CHECK(close(go) == 0);
		expect_exit(pid, 0);
	} else {
		expect_signal(pid, SIGKILL);
	}
	CHECK(close(ready) == 0);
}

/* A killed listener: its port is free, and connecting is refused - also for
 * a caller that was waiting to be accepted when it died. */
static void check_listener_death(void)
{
	int ready, ready2, c;
	pid_t pid = spawn("listen", "3300", &ready), pid2;
	struct scif_portID to = { .node = 1, .port = 3300 };
	struct blocked k = { .to = { .node = 1, .port = 3301 } };
	int waiting = scif_open();

	CHECK(await_ready(ready) == 3300);
	c = connect_to(1, 3300);		/* it works while the listener lives */
	CHECK(scif_close(c) == 0);
	CHECK(kill(pid, SIGKILL) == 0);
	expect_signal(pid, SIGKILL);
	c = scif_open();
	CHECK(c >= 0);
	CHECK_ERR(scif_connect(c, &to), ECONNREFUSED);
	/* Another process of node 1 takes the port over. */
	pid2 = spawn("listen", "3300", &ready2);
	CHECK(await_ready(ready2) == 3300);
	CHECK(scif_connect(c, &to) >= SCIF_PORT_RSVD);	/* refused once, still usable */
	CHECK(scif_close(c) == 0);
	CHECK(kill(pid2, SIGKILL) == 0);
	expect_signal(pid2, SIGKILL);
	CHECK(close(ready) == 0 && close(ready2) == 0);

	/* A caller waiting in scif_connect for a listener that dies. */
	pid = spawn("listen-idle", "3301", &ready);
	CHECK(await_ready(ready) == 3301);
	CHECK(waiting >= 0);
	block_in(&k, CALL_CONNECT, waiting);
	CHECK(kill(pid, SIGKILL) == 0);
	woke_failing(&k, ECONNREFUSED);
	expect_signal(pid, SIGKILL);
	CHECK(scif_close(waiting) == 0);
	CHECK(close(ready) == 0);
}

static int bind_in_other_process(uint16_t port, pid_t *pid)
{
	char arg[16];
	int ready, r;

	snprintf(arg, sizeof(arg), "%u", port);
	*pid = spawn("bind", arg, &ready);
	r = await_ready(ready);
	CHECK(close(ready) == 0);
	return r;
}

static void kill_and_reap(pid_t pid)
{
	CHECK(kill(pid, SIGKILL) == 0);
	expect_signal(pid, SIGKILL);

}

/* Ports of a process that dies come back: bound ones and connected ones. */
static void check_port_release(void)
{
	pid_t a, b;
	int l, s, ready;
	struct scif_portID peer;
	char arg[16];
	pid_t pid;

	CHECK(bind_in_other_process(3400, &a) == 3400);
	CHECK(bind_in_other_process(3400, &b) == -EINVAL);	/* held while a lives */
	kill_and_reap(b);
	kill_and_reap(a);
	CHECK(bind_in_other_process(3400, &b) == 3400);
	kill_and_reap(b);

	/* A connected endpoint's ephemeral port, on the calling node. */
	l = scif_open();
	CHECK(l >= 0 && scif_bind(l, 3500) == 3500 && scif_listen(l, 1) == 0);
	snprintf(arg, sizeof(arg), "%d", 3500);
	pid = spawn("connect", arg, &ready);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(peer.node == 1 && peer.port >= SCIF_PORT_RSVD);
	CHECK(await_ready(ready) == 1);
	CHECK(bind_in_other_process(peer.port, &b) == -EINVAL);
	kill_and_reap(b);
	kill_and_reap(pid);
	CHECK(bind_in_other_process(peer.port, &b) == peer.port);
	kill_and_reap(b);
	expect_reset(s);
	CHECK(scif_close(l) == 0);
	CHECK(close(ready) == 0);
}

int main(int argc, char **argv)
{
	/* Small rings, the same in every process (roles inherit it). */
	CHECK(setenv("SCIF_NET_RING", "65536", 1) == 0);
	if (argc > 2) {
		if (strcmp(argv[1], "fill") == 0)
			return role_fill(argv[2]);
		if (strcmp(argv[1], "idle") == 0)
			return role_idle(argv[2]);
		if (strcmp(argv[1], "listen") == 0)
			return role_listen(argv[2], true);
		if (strcmp(argv[1], "listen-idle") == 0)
			return role_listen(argv[2], false);
		if (strcmp(argv[1], "bind") == 0)
			return role_bind(argv[2]);
		if (strcmp(argv[1], "connect") == 0)
			return role_connect(argv[2]);
		return 2;
	}
	check_drain(false);
	check_drain(true);
	for (int graceful = 0; graceful < 2; graceful++) {
		check_wake(CALL_RECV, graceful);
		check_wake(CALL_SEND, graceful);
		check_wake(CALL_POLL, graceful);
	}
	check_listener_death();
	check_port_release();
	return 0;
}
