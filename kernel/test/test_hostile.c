/*
 * test_hostile - a peer that writes what no peer of ours would into the
 * queue pair (ring offsets out of range, wrapping, moving back, racing;
 * token counts; windows on short or unsealed memfds; an unsealed ring in
 * the handshake, or a queue pair placed outside its memfd) costs the victim that connection and nothing more: the
 * victim's call fails with EPROTO, the hostile side sees ECONNRESET, nothing
 * is copied past a mapping (ASan: make test-asan), and the victim goes on
 * serving. The queue pair's locks: one the peer keeps (the token lock 2 s,
 * the RMA channel's 5 s: EPROTO), garbage stored into them while both sides
 * use them (the exchange works or ends cleanly; test_lock_death has a peer
 * killed holding one). Callers that claim a port they do not hold are
 * refused. Then the node table truncated under a running
 * process: its connections reset, nothing faults.
 */
#include "arena.h"
#include "hostile.h"

#define PORT_BASE 4100
#define BIG (4u << 20)

static void told_ready(void)
{
	report_ready(1);
}

/* The victim says when it holds the connection (a byte on this pipe): a
 * connection reset before scif_accept returns is never seen by it, as a TCP
 * connection reset in the backlog. */
static int go_fd = -1;

static void wait_go(void)
{
	char c;

	CHECK(read(go_fd, &c, 1) == 1);
}

static void say_go(int go)
{
	CHECK(write(go, "g", 1) == 1);
}

/* The hostile side as a caller: connects to the victim's port, plays. */
static int role_hostile(const char *arg)
{
	char name[64];
	int port, epd;
	const struct hostile_case *c;

	CHECK(sscanf(arg, "%63[^:]:%d:%d", name, &port, &go_fd) == 3);
	c = hostile_find(name);
	CHECK(c != NULL);
	epd = connect_to(0, (uint16_t)port);
	return hostile_play(epd, c, wait_go, told_ready) == 0 ? 0 : 3;
}

/* The hostile side as the acceptor, on the port it is given: reports it
 * listens, accepts, plays. */
static int role_hostile_server(const char *arg)
{
	char name[64];
	const struct hostile_case *c;
	struct scif_portID peer;
	int port, l, epd;

	CHECK(sscanf(arg, "%63[^:]:%d:%d", name, &port, &go_fd) == 3);
	c = hostile_find(name);
	CHECK(c != NULL);
	l = listen_on((uint16_t)port, 1);
	report_ready(port);
	CHECK(scif_accept(l, &peer, &epd, SCIF_ACCEPT_SYNC) == 0);
	return hostile_play(epd, c, wait_go, told_ready) == 0 ? 0 : 3;
}

/* An acceptor answering with an unsealed ring. */
static int role_unsealed(const char *arg)
{
	int l = listen_on((uint16_t)atoi(arg), 1);

	report_ready(1);
	hostile_answer(l, false, 0);
	return 0;
}

/* Sealed, but the queue pair it places just past its end (the memfd holds
 * one, at 0). */
static int role_outside(const char *arg)
{
	int l = listen_on((uint16_t)atoi(arg), 1);

	report_ready(1);
	hostile_answer(l, true, QP_HEADER_BYTES + 2 * 4096);
	return 0;
}

/* A caller that names itself what it is not: node and port from arg
 * ("victim-port:node:claimed-port"), with our own registry. It must be
 * refused (EPROTO: it holds no such port; EACCES: an admin port without
 * CAP_SYS_ADMIN), whatever it asked. */
static int role_forge(const char *arg)
{
	struct fabric *f = fabric_get();
	struct fabric_caller me = { .flags = tok_full() << QP_PREFILL_SHIFT, .inbox = 1 };
	struct sockaddr_un sa;
	socklen_t len;
	unsigned victim, node, port;
	uint32_t ring, flags;
	uint64_t off;
	int fd, memfd, err;

	CHECK(f != NULL);
	CHECK(sscanf(arg, "%u:%u:%u", &victim, &node, &port) == 3);
	me.id.node = (uint16_t)node;
	me.id.port = (uint16_t)port;
	me.pfd = f->ports_fd;
	me.nonce = 42;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0 && tok_socket(fd) == 0);
	me.epd = fd;
	fabric_caller_addr(f, &me, &sa, &len);
	CHECK(bind(fd, (struct sockaddr *)&sa, len) == 0);
	CHECK(fabric_listener_addr(f, 0, (uint16_t)victim, &sa, &len) == 0);
	CHECK(connect(fd, (struct sockaddr *)&sa, len) == 0);
	CHECK(tok_prefill(fd, tok_full()) == 0);
	report_ready(1);
	do {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		CHECK(poll(&p, 1, -1) == 1);
		err = qp_recv_accept(fd, &ring, &flags, &memfd, &off);
	} while (err == -EAGAIN);
	if (err == 0)
		close(memfd);
	return err == -EPROTO || err == -EACCES ? 0 : 3;
}

/* A caller as it should be, that stays: connects to port arg, reports its
 * own port, and holds the connection until the acceptor closes it. */
static int role_holder(const char *arg)
{
	struct scif_portID to = { .node = 0, .port = (uint16_t)atoi(arg) };
	int epd = scif_open(), port;
	char c;

	CHECK(epd >= 0);
	port = scif_connect(epd, &to);
	CHECK(port >= SCIF_PORT_RSVD);
	report_ready(port);
	(void)scif_recv(epd, &c, 1, SCIF_RECV_BLOCK);	/* the end, or the reset */
	CHECK(scif_close(epd) == 0);
	return 0;
}

/* In a fabric of its own: the directory removed under a running process.
 * A connect from an endpoint opened before says why it fails, not only
 * ECONNREFUSED (test_fabric_removed has the rest: listeners told, the
 * directory made anew). */
static int role_dir_removed(const char *arg)
{
	char dir[] = "/tmp/scif-fabric-removed.XXXXXX", cmd[64];
	struct scif_portID to = { .node = 0, .port = 7000 };
	int c, s, l, epd;

	(void)arg;
	CHECK(mkdtemp(dir) != NULL);
	CHECK(setenv("SCIF_NET_FABRIC", dir, 1) == 0 && setenv("SCIF_NET_NODE", "0", 1) == 0);
	connect_pair(7000, &c, &s);
	l = listen_on(7000, 1);
	epd = scif_open();
	CHECK(epd >= 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	CHECK_ERR(scif_connect(epd, &to), ECONNREFUSED);
	CHECK(strstr(scif_net_last_error(), "was removed") != NULL);
	/* What was connected still is. */
	CHECK(scif_send(c, "x", 1, SCIF_SEND_BLOCK) == 1);
	CHECK(scif_close(epd) == 0 && scif_close(l) == 0 && scif_close(c) == 0 && scif_close(s) == 0);
	return 0;
}

/* A peer as it should be: sends a line, reads it back. */
static int role_good(const char *arg)
{
	char buf[6];
	int epd = connect_to(0, (uint16_t)atoi(arg));

	CHECK(scif_send(epd, "hello", 6, SCIF_SEND_BLOCK) == 6);
	CHECK(scif_recv(epd, buf, 6, SCIF_RECV_BLOCK) == 6 && strcmp(buf, "hello") == 0);
	CHECK(scif_close(epd) == 0);
	return 0;
}

/* Moves all of buf (sending, or receiving), looking at the ring every 10 ms
 * whatever the descriptor says (hostile.h's echo_until_gone says why): 0,
 * or the errno of the call that failed. A peer whose every call is bounded
 * never keeps it 10 s. */
static int move_all(int epd, char *buf, int len, bool send)
{
	double t0 = now_ms();
	int done = 0;

	while (done < len) {
		struct pollfd p = { .fd = epd, .events = send ? POLLOUT : POLLIN };
		int n = send ? scif_send(epd, buf + done, len - done, 0) :
			       scif_recv(epd, buf + done, len - done, 0);

		if (n < 0)
			return errno;
		done += n;
		CHECK(now_ms() - t0 < 10000);
		if (done < len)
			(void)poll(&p, 1, 10);
	}
	return 0;
}

/* The hostile side scribbles on the lock words and echoes: for 1.5 s,
 * 64-byte round trips, then a registration (the RMA channel's lock). Each
 * call works or fails with EPROTO or ECONNRESET (the hostile side may break
 * the connection itself, its own settles meeting its garbage), and what
 * comes back is what went. */
static const char *meet_echo(int epd)
{
	static char outcome[96];
	char out[64], in[64];
	double t0 = now_ms();
	int rounds = 0, err = 0;
	static void *page;	/* registered on each victim in turn, until its close */

	while (!err && now_ms() - t0 < 1500) {
		for (size_t i = 0; i < sizeof(out); i++)
			out[i] = (char)pattern_byte((uint64_t)rounds * sizeof(out) + i);
		err = move_all(epd, out, sizeof(out), true);
		if (!err)
			err = move_all(epd, in, sizeof(in), false);
		if (!err) {
			CHECK(memcmp(in, out, sizeof(in)) == 0);
			rounds++;
		}
	}
	if (!page)
		CHECK(posix_memalign(&page, 4096, 4096) == 0);
	if (!err && scif_register(epd, page, 4096, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0) < 0)
		err = errno;
	if (err != 0 && err != EPROTO && err != ECONNRESET) {
		fprintf(stderr, "under garbage locks: %s\n", strerrorname_np(err));
		exit(1);
	}
	snprintf(outcome, sizeof(outcome), "%d round trips, then %s", rounds,
		 err ? strerrorname_np(err) : "a registration: it worked");
	return outcome;
}

/* The victim meets what the hostile side did: EPROTO (for MEET_ECHO, what
 * happened). */
static const char *meet(int epd, const struct hostile_case *c)
{
	static char *big;
	static char said[64];
	double t0;
	int n;

	if (!big) {
		big = calloc(1, BIG);
		CHECK(big != NULL);
	}
	snprintf(said, sizeof(said), "EPROTO");
	switch (c->meet) {
	case MEET_SEND:
		/* A send that stopped short of the whole may return what went;
		 * the next one must fail. */
		n = scif_send(epd, big, BIG, SCIF_SEND_BLOCK);
		if (n >= 0)
			CHECK_ERR(scif_send(epd, big, BIG, SCIF_SEND_BLOCK), EPROTO);
		else
			CHECK(errno == EPROTO);
		break;
	case MEET_RECV:
		/* Bytes the hostile side sent as it should come first. */
		do
			n = scif_recv(epd, big, 1, SCIF_RECV_BLOCK);
		while (n > 0);
		CHECK(n == -1 && errno == EPROTO);
		break;
	case MEET_RMA:
		/* The first RMA may find the window refused (ENXIO) before the
		 * reset shows; the next one finds the connection reset. */
		t0 = now_ms();
		if (scif_vwriteto(epd, big, 2 * 4096, HOSTILE_WINDOW_OFF, SCIF_RMA_SYNC) == 0)
			CHECK(!"an RMA into a refused window succeeded");
		/* A lock held for good is given up on at its bound (5 s). */
		CHECK(now_ms() - t0 < 5000 + 3000);
		snprintf(said, sizeof(said), "EPROTO (the first RMA failed in %.0f ms)",
			 now_ms() - t0);
		CHECK_ERR(scif_vwriteto(epd, big, 2 * 4096, HOSTILE_WINDOW_OFF, SCIF_RMA_SYNC),
			  EPROTO);
		break;
	case MEET_ECHO:
		return meet_echo(epd);
	}
	/* Every later call says so too. */
	CHECK_ERR(scif_send(epd, "x", 1, 0), EPROTO);
	CHECK_ERR(scif_recv(epd, big, 1, 0), EPROTO);
	return said;
}

/* The victim accepts the hostile caller. */
static void victim_server(const struct hostile_case *c, uint16_t port)
{
	const char *said;
	char arg[96], gofd[16];
	struct scif_portID peer;
	int l = listen_on(port, 1), epd, ready, rd, go = go_pipe(gofd, sizeof(gofd), &rd);
	pid_t pid;

	snprintf(arg, sizeof(arg), "%s:%u:%s", c->name, port, gofd);
	pid = spawn_role(1, "hostile", arg, &ready);
	close(rd);
	CHECK(scif_accept(l, &peer, &epd, SCIF_ACCEPT_SYNC) == 0);
	say_go(go);
	CHECK(await_ready(ready) == 1);
	said = meet(epd, c);
	/* An exchange that worked ends with our close. */
	if (c->meet == MEET_ECHO)
		CHECK(scif_close(epd) == 0);
	expect_exit(pid, 0);
	close(ready);
	close(go);
	if (c->meet != MEET_ECHO)
		CHECK(scif_close(epd) == 0);
	CHECK(scif_close(l) == 0);
	printf("# %s: the victim's calls: %s; the hostile caller saw ECONNRESET\n", c->name, said);
}

/* The victim connects to the hostile acceptor. */
static void victim_client(const struct hostile_case *c, uint16_t port)
{
	const char *said;
	char arg[96], gofd[16];
	int epd, ready, rd, go = go_pipe(gofd, sizeof(gofd), &rd);
	pid_t pid;

	snprintf(arg, sizeof(arg), "%s:%u:%s", c->name, port, gofd);
	pid = spawn_role(1, "hostile-server", arg, &ready);
	close(rd);
	CHECK(await_ready(ready) == port);
	epd = connect_to(1, port);
	say_go(go);
	CHECK(await_ready(ready) == 1);
	said = meet(epd, c);
	if (c->meet == MEET_ECHO)
		CHECK(scif_close(epd) == 0);
	expect_exit(pid, 0);
	close(ready);
	close(go);
	if (c->meet != MEET_ECHO)
		CHECK(scif_close(epd) == 0);
	printf("# %s (hostile acceptor): %s here, ECONNRESET there\n", c->name, said);
}

/* An acceptor whose ring memfd could shrink, or which places the queue
 * pair outside it (role): the connect fails, EPROTO, and maps nothing. */
static void victim_bad_ring(const char *role, uint16_t port)
{
	struct scif_portID to = { .node = 1, .port = port };
	unsigned arenas = arena_count();
	char arg[16];
	int epd, ready;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%u", port);
	pid = spawn_role(1, role, arg, &ready);
	CHECK(await_ready(ready) == 1);
	epd = scif_open();
	CHECK(epd >= 0);
	CHECK_ERR(scif_connect(epd, &to), EPROTO);
	CHECK(arena_count() == arenas);
	expect_exit(pid, 0);
	close(ready);
	CHECK(scif_close(epd) == 0);
	printf("# %s ring: the connect failed with EPROTO before mapping it\n", role);
}

/* A caller on node 1 claiming "node:port" (claim) is refused by listener l
 * on port: nothing to accept, as if it had not come. */
static void refused_claim(int l, uint16_t port, const char *claim)
{
	char arg[48];
	struct scif_portID peer;
	int epd, ready;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%u:%s", port, claim);
	pid = spawn_role(1, "forge", arg, &ready);
	CHECK(await_ready(ready) == 1);
	CHECK_ERR(scif_accept(l, &peer, &epd, 0), EAGAIN);
	expect_exit(pid, 0);
	close(ready);
}

/* Callers claiming ports they do not hold are refused; the listener takes
 * the next caller as if they had not come. */
static void forged_callers(uint16_t port)
{
	static const char *const claims[] = {
		"1:22",		/* an admin port on another node */
		"1:5000",	/* a port nobody holds */
		"0:%u",		/* the listener's own port: held, but not by the caller */
	};
	struct scif_portID peer;
	char claim[32];
	int l = listen_on(port, 4), hready, held, epd;
	pid_t holder;

	for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
		snprintf(claim, sizeof(claim), claims[i], port);
		refused_claim(l, port, claim);
	}
	/* Another caller's port, that caller connected and its fdinfo kept
	 * open by the acceptor (identity.c): refused all the same. */
	snprintf(claim, sizeof(claim), "%u", port);
	holder = spawn_role(1, "holder", claim, &hready);
	CHECK(scif_accept(l, &peer, &epd, SCIF_ACCEPT_SYNC) == 0);
	held = await_ready(hready);
	CHECK(peer.node == 1 && peer.port == held);
	snprintf(claim, sizeof(claim), "1:%d", held);
	refused_claim(l, port, claim);
	CHECK(scif_close(epd) == 0);
	expect_exit(holder, 0);
	close(hready);
	CHECK(scif_close(l) == 0);
	printf("# forged callers (an admin port, a port nobody holds, another's port, another caller's) were refused\n");
}

/* The cap on queue-pair memory: past it the acceptor refuses (ENOMEM on
 * both sides), and what a closed connection gave back is there again. */
static void ring_memory_cap(uint16_t port)
{
	const uint64_t one = QP_HEADER_BYTES + 2 * 4096;	/* one side of one connection */
	struct scif_portID to = { .node = 0, .port = port }, peer;
	int c[2], s[2], l, extra, epd, flags;
	struct fabric *f = fabric_get();
	uint64_t cap;

	CHECK(f != NULL);
	cap = f->ring_memory;
	f->ring_memory = 4 * one;
	connect_pair(port, &c[0], &s[0]);
	connect_pair(port, &c[1], &s[1]);
	l = listen_on(port, 1);
	extra = scif_open();
	CHECK(extra >= 0);
	flags = fcntl(extra, F_GETFL);
	CHECK(flags >= 0 && fcntl(extra, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(extra, &to), EINPROGRESS);
	CHECK_ERR(scif_accept(l, &peer, &epd, SCIF_ACCEPT_SYNC), ENOMEM);
	CHECK(strstr(scif_net_last_error(), "SCIF_NET_RING_MEMORY") != NULL);
	CHECK_ERR(scif_connect(extra, &to), ENOMEM);
	CHECK(scif_close(extra) == 0);
	CHECK(scif_close(l) == 0);
	/* A connection closed gives its memory back. */
	CHECK(scif_close(c[0]) == 0 && scif_close(s[0]) == 0);
	connect_pair(port, &c[0], &s[0]);
	for (int i = 0; i < 2; i++)
		CHECK(scif_close(c[i]) == 0 && scif_close(s[i]) == 0);
	f->ring_memory = cap;
	printf("# ring memory cap: the third connection was refused with ENOMEM on both sides\n");
}

/* A healthy peer is still served, after every hostile one. */
static void still_serving(uint16_t port)
{
	struct scif_portID peer;
	struct pollfd p;
	char buf[6], arg[16];
	int l = listen_on(port, 1), epd, ready;
	pid_t pid;

	snprintf(arg, sizeof(arg), "%u", port);
	pid = spawn_role(1, "good", arg, &ready);
	/* A caller refused would never come: wait a bounded time, not for ever. */
	p = (struct pollfd){ .fd = l, .events = POLLIN };
	CHECK(poll(&p, 1, 10000) == 1);
	CHECK(scif_accept(l, &peer, &epd, 0) == 0);
	CHECK(peer.node == 1);
	CHECK(scif_recv(epd, buf, 6, SCIF_RECV_BLOCK) == 6);
	CHECK(scif_send(epd, buf, 6, SCIF_SEND_BLOCK) == 6);
	expect_exit(pid, 0);
	close(ready);
	CHECK(scif_close(epd) == 0);
	CHECK(scif_close(l) == 0);
}

/* A node's registry made anew by a hand in the directory (renamed away,
 * the next process there creates another): the acceptor, which keeps each
 * node's registry as it last saw it, looks again before it refuses a caller
 * whose port lock is on the new file, and takes it. */
static void registry_made_anew(uint16_t port)
{
	struct fabric *f = fabric_get();
	char path[4200], moved[4200];

	CHECK(f != NULL);
	still_serving(port);	/* a caller of node 1 taken: its registry seen */
	snprintf(path, sizeof(path), "%s/ports.1", f->dir);
	snprintf(moved, sizeof(moved), "%s/ports.1.away", f->dir);
	CHECK(rename(path, moved) == 0);
	still_serving(port);	/* its next process makes another, and is taken */
	CHECK(unlink(moved) == 0);
	printf("# a node's registry made anew: its new callers are taken\n");
}

/* `truncate -s 0 <fabric>/nodes` under a running process: no SIGBUS; its
 * connections reset, new ones find no node. Last: the fabric is lost. */
static void table_truncated(uint16_t port)
{
	char path[4200], c;
	int client, server;

	connect_pair(port, &client, &server);
	CHECK(scif_send(client, "x", 1, SCIF_SEND_BLOCK) == 1);
	snprintf(path, sizeof(path), "%s/nodes", scif_net_fabric_path());
	CHECK(truncate(path, 0) == 0);
	CHECK_ERR(scif_send(client, "y", 1, SCIF_SEND_BLOCK), ECONNRESET);
	CHECK_ERR(scif_recv(server, &c, 1, SCIF_RECV_BLOCK), ECONNRESET);
	/* Our own node is off line in a lost table. */
	CHECK_ERR(scif_open(), ENODEV);
	CHECK(scif_close(client) == 0);
	CHECK(scif_close(server) == 0);
	printf("# node table truncated: connections reset, scif_open ENODEV, no SIGBUS\n");
}

int main(int argc, char **argv)
{
	if (argc > 2) {
		if (strcmp(argv[1], "hostile") == 0)
			return role_hostile(argv[2]);
		if (strcmp(argv[1], "hostile-server") == 0)
			return role_hostile_server(argv[2]);
		if (strcmp(argv[1], "unsealed") == 0)
			return role_unsealed(argv[2]);
		if (strcmp(argv[1], "outside") == 0)
			return role_outside(argv[2]);
		if (strcmp(argv[1], "good") == 0)
			return role_good(argv[2]);
		if (strcmp(argv[1], "forge") == 0)
			return role_forge(argv[2]);
		if (strcmp(argv[1], "holder") == 0)
			return role_holder(argv[2]);
		if (strcmp(argv[1], "dir-removed") == 0)
			return role_dir_removed(argv[2]);
		return 2;
	}
	for (size_t i = 0; i < HOSTILE_NCASES; i++) {
		victim_server(&hostile_cases[i], (uint16_t)(PORT_BASE + 2 * i));
		victim_client(&hostile_cases[i], (uint16_t)(PORT_BASE + 2 * i + 1));
	}
	victim_bad_ring("unsealed", PORT_BASE + 98);
	victim_bad_ring("outside", PORT_BASE + 102);
	forged_callers(PORT_BASE + 97);
	ring_memory_cap(PORT_BASE + 96);
	{
		int ready;

		expect_exit(spawn_role(0, "dir-removed", "-", &ready), 0);
		close(ready);
		printf("# fabric directory removed: a connect says so\n");
	}
	still_serving(PORT_BASE + 99);
	registry_made_anew(PORT_BASE + 101);
	/* Valgrind does not hand the program's SIGBUS handler a fault on a
	 * truncated file mapping as the kernel does (it reports an invalid
	 * read and kills): the case runs natively and under ASan. */
	if (getenv("SCIF_TEST_WRAP") && strstr(getenv("SCIF_TEST_WRAP"), "valgrind"))
		printf("# node table truncated: not under valgrind\n");
	else
		table_truncated(PORT_BASE + 100);
	return 0;
}
