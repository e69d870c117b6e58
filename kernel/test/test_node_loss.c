/*
 * A node taken off line (a card reset) resets every connection with an end
 * on it, in every process of the fabric, idle ones included: threads asleep
 * in scif_recv, scif_poll or poll(2) on the descriptor wake up on both ends,
 * with ECONNRESET and POLLHUP, and nothing else is touched.
 *
 * Processes: this one (node 0), role "one" (node 1), role "two" (node 2),
 * and "down", a process of node 3 that takes node 1 off line and exits.
 * Connections, idle, with a thread asleep on each end:
 *   0-1: scif_recv here; poll(2) on the descriptor and scif_poll in one
 *   1-2: scif_recv in one; scif_poll in two
 *   0-2: nothing here; scif_recv in two, which must sleep on
 * Node 1 goes down: 0-1 and 1-2 reset on both ends, 0-2 still moves data,
 * connecting to node 1 fails with ENODEV until it is back; then one's
 * listener, which stayed, answers again. Last, a new 0-1 connection with
 * bytes in both rings, and node 1 down again: node 0 (the survivor) reads
 * what node 1 sent, then ECONNRESET; node 1 reads nothing of what node 0
 * sent (its rings went with it): ECONNRESET at once.
 */
#include "check.h"

#define ONE_PORT 4100
#define TWO_PORT 4200
#define LEFT 1000	/* bytes left in each ring of the last connection */

/* The thread woke because its connection was reset. */
static void woke_reset(struct blocked *b)
{
	switch (b->call) {
	case CALL_POLL:
		CHECK(woke_polled(b) == (POLLIN | POLLHUP));
		break;
	case CALL_FD_POLL:
		CHECK(woke_polled(b) & POLLIN);
		break;
	default:
		woke_failing(b, ECONNRESET);
		break;
	}
}

static void send_pattern(int epd, int len)
{
	uint8_t buf[LEFT];

	for (int i = 0; i < len; i++)
		buf[i] = pattern_byte((uint64_t)i);
	CHECK(scif_send(epd, buf, len, SCIF_SEND_BLOCK) == len);
}

static void recv_pattern(int epd, int len)
{
	uint8_t buf[LEFT];

	CHECK(scif_recv(epd, buf, len, 0) == len);	/* all there: no waiting */
	for (int i = 0; i < len; i++)
		CHECK(buf[i] == pattern_byte((uint64_t)i));
}

/* ---- roles ---- */

/* Node 1: listens; sleeps on its ends of 0-1 and 1-2 until they reset; answers
 * again once back; then loses the rings of a connection with bytes in them. */
static int role_one(const char *arg)
{
	struct blocked loop = { 0 }, poller = { 0 }, recver = { .len = 1 };
	struct scif_portID peer;
	int go = atoi(arg), l = listen_on(ONE_PORT, 4), s01 = -1, s12 = -1, s;
	char buf[8], c;

	report_ready(ONE_PORT);
	for (int i = 0; i < 2; i++) {
		CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
		if (peer.node == 0)
			s01 = s;
		else if (peer.node == 2)
			s12 = s;
	}
	CHECK(s01 >= 0 && s12 >= 0);
	block_in(&loop, CALL_FD_POLL, s01);
	block_in(&poller, CALL_POLL, s01);
	block_in(&recver, CALL_RECV, s12);
	report_ready(1);
	woke_reset(&loop);
	woke_reset(&poller);
	woke_reset(&recver);
	expect_reset(s01);
	expect_reset(s12);
	report_ready(2);

	/* Back on line: the listener stayed. */
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0 && peer.node == 0);
	CHECK(scif_recv(s, buf, 5, SCIF_RECV_BLOCK) == 5);
	CHECK(scif_send(s, buf, 5, SCIF_SEND_BLOCK) == 5);
	send_pattern(s, LEFT);
	report_ready(3);
	CHECK(read(go, &c, 1) == 1);	/* node 1 went down again */
	/* What node 0 sent is in our ring, but our rings went with our node:
	 * not a byte of it is read. */
	expect_reset(s);
	CHECK(scif_close(l) == 0);
	report_ready(4);
	CHECK(read(go, &c, 1) == 0);
	return 0;
}

/* Node 2: accepts 0-2 and connects 1-2; sleeps on both; 1-2 resets, 0-2
 * delivers what node 0 sends afterwards, and echoes it. */
static int role_two(const char *arg)
{
	struct blocked poller = { 0 }, recver = { .len = 6 };
	struct scif_portID peer;
	int go = atoi(arg), l = listen_on(TWO_PORT, 4), s02, c12;
	char c;

	report_ready(TWO_PORT);
	CHECK(scif_accept(l, &peer, &s02, SCIF_ACCEPT_SYNC) == 0 && peer.node == 0);
	c12 = connect_to(1, ONE_PORT);
	block_in(&poller, CALL_POLL, c12);
	block_in(&recver, CALL_RECV, s02);
	report_ready(1);
	woke_reset(&poller);
	expect_reset(c12);
	report_ready(2);
	CHECK(pthread_join(recver.thread, NULL) == 0);
	CHECK(recver.ret == 6 && memcmp(recver.buf, "still!", 6) == 0);
	CHECK(scif_send(s02, recver.buf, 6, SCIF_SEND_BLOCK) == 6);
	CHECK(read(go, &c, 1) == 0);
	CHECK(scif_close(s02) == 0 && scif_close(l) == 0);
	return 0;
}

/* Node 3: takes node arg off line and exits. */
static int role_down(const char *arg)
{
	CHECK(scif_net_set_node_online((uint16_t)atoi(arg), 0) == 0);
	return 0;
}

/* ---- node 0 ---- */

static pid_t spawn(int node, const char *role, int *ready, int *go)
{
	char arg[16];
	int rd;
	pid_t pid;

	*go = go_pipe(arg, sizeof(arg), &rd);
	pid = spawn_role(node, role, arg, ready);
	CHECK(close(rd) == 0);
	return pid;
}

/* Node 1 goes down, taken off line by another process (of node 3). */
static void node_1_down(void)
{
	int ready;
	pid_t pid = spawn_role(3, "down", "1", &ready);

	expect_exit(pid, 0);
	CHECK(close(ready) == 0);
}

int main(int argc, char **argv)
{
	struct scif_portID one_port = { .node = 1, .port = ONE_PORT };
	struct blocked recver = { .len = 1 };
	struct scif_pollepd pe;
	int one_ready, one_go, two_ready, two_go, c01, c02, e;
	pid_t one, two;
	uint16_t nodes[4], self;
	char buf[8];
	double t0;

	if (argc > 2) {
		if (strcmp(argv[1], "one") == 0)
			return role_one(argv[2]);
		if (strcmp(argv[1], "two") == 0)
			return role_two(argv[2]);
		if (strcmp(argv[1], "down") == 0)
			return role_down(argv[2]);
		return 2;
	}
	one = spawn(1, "one", &one_ready, &one_go);
	CHECK(await_ready(one_ready) == ONE_PORT);
	two = spawn(2, "two", &two_ready, &two_go);
	CHECK(await_ready(two_ready) == TWO_PORT);
	c01 = connect_to(1, ONE_PORT);
	c02 = connect_to(2, TWO_PORT);
	block_in(&recver, CALL_RECV, c01);
	CHECK(await_ready(one_ready) == 1 && await_ready(two_ready) == 1);

	/* Every thread of every end is asleep. */
	t0 = now_ms();
	node_1_down();
	woke_reset(&recver);
	printf("# node 1 down: a scif_recv asleep on node 0 woke %.2f ms after the process taking it down started\n",
	       recver.returned_ms - t0);
	expect_reset(c01);
	CHECK(scif_get_nodeIDs(nodes, 4, &self) == 3 && nodes[1] == 2);
	CHECK(await_ready(one_ready) == 2 && await_ready(two_ready) == 2);

	/* 0-2 never noticed. */
	pe = (struct scif_pollepd){ .epd = c02, .events = POLLIN | POLLOUT };
	CHECK(scif_poll(&pe, 1, 0) == 1 && pe.revents == POLLOUT);
	CHECK(scif_send(c02, "still!", 6, SCIF_SEND_BLOCK) == 6);
	CHECK(scif_recv(c02, buf, 6, SCIF_RECV_BLOCK) == 6 && memcmp(buf, "still!", 6) == 0);

	/* Off line: no connecting to it; back: its listener answers. */
	e = scif_open();
	CHECK(e >= 0);
	CHECK_ERR(scif_connect(e, &one_port), ENODEV);
	CHECK_ERR(scif_connect(e, &one_port), ENODEV);
	CHECK(scif_net_set_node_online(1, 1) == 0);
	CHECK(scif_connect(e, &one_port) >= SCIF_PORT_RSVD);
	CHECK(scif_send(e, "again", 5, SCIF_SEND_BLOCK) == 5);
	CHECK(scif_recv(e, buf, 5, SCIF_RECV_BLOCK) == 5 && memcmp(buf, "again", 5) == 0);

	/* Bytes in both rings, and node 1 down again. */
	send_pattern(e, LEFT);
	CHECK(await_ready(one_ready) == 3);
	node_1_down();
	/* Another process took the node down: our watcher resets the
	 * connection a moment later, and its hang-up wakes a poll that asks
	 * for nothing. */
	pe = (struct scif_pollepd){ .epd = e, .events = 0 };
	CHECK(scif_poll(&pe, 1, 10000) == 1 && pe.revents == POLLHUP);
	/* As the driver's: hung up, data to read, and room in our ring. */
	pe.events = POLLIN | POLLOUT;
	CHECK(scif_poll(&pe, 1, 0) == 1 && pe.revents == (POLLIN | POLLOUT | POLLHUP));
	CHECK_ERR(scif_send(e, "x", 1, 0), ECONNRESET);
	recv_pattern(e, LEFT);	/* the survivor drains, as after a death */
	expect_reset(e);
	CHECK(write(one_go, "g", 1) == 1);
	CHECK(await_ready(one_ready) == 4);
	CHECK(scif_net_set_node_online(1, 1) == 0);

	CHECK(close(one_go) == 0 && close(two_go) == 0);
	expect_exit(one, 0);
	expect_exit(two, 0);
	CHECK(scif_close(c02) == 0);
	CHECK(close(one_ready) == 0 && close(two_ready) == 0);
	return 0;
}
