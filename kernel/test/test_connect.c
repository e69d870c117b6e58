/*
 * Connections: bind, listen, connect and accept, with the errno SCIF
 * documents for each way they can go wrong; a listener on another node in
 * another process; node enumeration.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/types.h>

#include "check.h"
#include "fabric.h"

/* A blocking scif_connect() returns once the listener accepts, so the
 * connecting side runs in a thread of its own. */
struct caller {
	pthread_t thread;
	int epd;
	struct scif_portID to;
	int ret, err;
};

static void *call(void *arg)
{
	struct caller *c = arg;

	c->ret = scif_connect(c->epd, &c->to);
	c->err = errno;
	return NULL;
}

static void call_start(struct caller *c, int epd, uint16_t node, uint16_t port)
{
	c->epd = epd;
	c->to = (struct scif_portID){ .node = node, .port = port };
	CHECK(pthread_create(&c->thread, NULL, call, c) == 0);
}

static int call_finish(struct caller *c)
{
	CHECK(pthread_join(c->thread, NULL) == 0);
	errno = c->err;
	return c->ret;
}

static void check_bind(void)
{
	int a = scif_open(), b = scif_open(), c = scif_open();
	int port;

	CHECK(a >= 0 && b >= 0 && c >= 0);
	CHECK(scif_bind(a, 2000) == 2000);
	CHECK_ERR(scif_bind(b, 2000), EINVAL);		/* in use: the driver says EINVAL */
	CHECK_ERR(scif_bind(a, 2001), EINVAL);		/* already bound */
	port = scif_bind(c, 0);
	CHECK(port >= SCIF_PORT_RSVD);
	if (geteuid() != 0)
		CHECK_ERR(scif_bind(b, 80), EACCES);
	CHECK(scif_close(a) == 0);
	CHECK(scif_bind(b, 2000) == 2000);		/* the port came back */
	CHECK(scif_close(b) == 0);
	CHECK(scif_close(c) == 0);
	CHECK_ERR(scif_close(c), EBADF);
	CHECK_ERR(scif_bind(c, 3000), EBADF);
}

static void check_listen_errors(void)
{
	int a = scif_open(), l = listen_on(2100, 16), c = scif_open(), s;
	struct scif_portID to = { .node = 0, .port = 2100 }, peer;

	CHECK_ERR(scif_listen(a, 1), EINVAL);		/* not bound */
	CHECK_ERR(scif_listen(l, 1), EISCONN);		/* listening already */
	CHECK_ERR(scif_connect(l, &to), EOPNOTSUPP);
	CHECK_ERR(scif_accept(l, &peer, &s, 0), EAGAIN);	/* nobody calling */
	CHECK_ERR(scif_accept(a, &peer, &s, 0), EINVAL);	/* not listening */
	CHECK_ERR(scif_accept(l, &peer, &s, 0x40), EINVAL);	/* bad flags */
	CHECK_ERR(scif_send(a, "x", 1, 0), ENOTCONN);
	CHECK_ERR(scif_recv(a, (char[1]){0}, 1, 0), ENOTCONN);
	struct caller cl;

	call_start(&cl, c, 0, 2100);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(call_finish(&cl) >= SCIF_PORT_RSVD);
	CHECK_ERR(scif_connect(c, &to), EISCONN);
	CHECK_ERR(scif_bind(c, 0), EISCONN);
	CHECK(scif_close(s) == 0 && scif_close(c) == 0 && scif_close(l) == 0 && scif_close(a) == 0);
}

static void check_refused(void)
{
	int c = scif_open(), l;
	struct scif_portID to = { .node = 0, .port = 2200 }, peer;
	int s;

	CHECK_ERR(scif_connect(c, &to), ECONNREFUSED);
	/* Refused leaves the endpoint bound and usable: connect again once someone listens. */
	l = listen_on(2200, 16);
	struct caller cl;

	call_start(&cl, c, 0, 2200);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(call_finish(&cl) > 0);
	CHECK(scif_close(s) == 0 && scif_close(l) == 0);
	/* A closed listener refuses; its port name does not linger. */
	CHECK(scif_close(c) == 0);
	c = scif_open();
	CHECK_ERR(scif_connect(c, &to), ECONNREFUSED);
	to.port = 0;
	CHECK_ERR(scif_connect(c, &to), EINVAL);
	CHECK_ERR(scif_connect(c, NULL), EINVAL);
	CHECK(scif_close(c) == 0);
}

static void check_pending_refused_on_close(void)
{
	int l = listen_on(2250, 16), c = scif_open(), flags;
	struct scif_portID to = { .node = 0, .port = 2250 };
	struct scif_pollepd pe;

	flags = fcntl(c, F_GETFL);
	CHECK(fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	pe = (struct scif_pollepd){ .epd = l, .events = POLLIN };
	CHECK(scif_poll(&pe, 1, 1000) == 1 && (pe.revents & POLLIN));
	/* The listener goes away with the request still pending: refused. */
	CHECK(scif_close(l) == 0);
	pe = (struct scif_pollepd){ .epd = c, .events = POLLOUT };
	CHECK(scif_poll(&pe, 1, -1) == 1 && (pe.revents & POLLOUT));
	CHECK_ERR(scif_connect(c, &to), ECONNREFUSED);
	CHECK(scif_close(c) == 0);
}

static void check_nonblocking_connect(void)
{
	int l = listen_on(2300, 16), c = scif_open(), s, flags, port;
	struct scif_portID to = { .node = 0, .port = 2300 }, peer;
	struct scif_pollepd pe = { .epd = c, .events = POLLOUT };

	flags = fcntl(scif_get_fd(c), F_GETFL);
	CHECK(fcntl(scif_get_fd(c), F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_poll(&pe, 1, 0) == 0);		/* nobody accepted yet */
	CHECK(scif_accept(l, &peer, &s, 0) == 0);
	CHECK(peer.node == 0 && peer.port >= SCIF_PORT_RSVD);
	/* As the driver's: scif_open's descriptors are close-on-exec, accepted
	 * ones are not. */
	CHECK(fcntl(c, F_GETFD) == FD_CLOEXEC && fcntl(l, F_GETFD) == FD_CLOEXEC);
	CHECK(fcntl(s, F_GETFD) == 0);
	CHECK(scif_poll(&pe, 1, -1) == 1 && pe.revents == POLLOUT);
	port = scif_connect(c, &to);
	CHECK(port == peer.port);
	CHECK(scif_send(c, "hi", 2, SCIF_SEND_BLOCK) == 2);
	char buf[2];
	CHECK(scif_recv(s, buf, 2, SCIF_RECV_BLOCK) == 2 && memcmp(buf, "hi", 2) == 0);
	CHECK(scif_close(s) == 0 && scif_close(c) == 0 && scif_close(l) == 0);
}

static void check_nodes(void)
{
	uint16_t nodes[8], self = 99;
	int c = scif_open();
	struct scif_portID to = { .node = 17, .port = 2400 };

	CHECK(scif_get_nodeIDs(nodes, 8, &self) == 4);	/* the default fabric: host and 3 cards */
	CHECK(self == 0 && nodes[0] == 0 && nodes[3] == 3);
	CHECK(scif_get_nodeIDs(nodes, 2, &self) == 4);	/* the count, even if more than fit */
	CHECK_ERR(scif_get_nodeIDs(nodes, 2, NULL), EFAULT);
	CHECK_ERR(scif_connect(c, &to), ENODEV);	/* no such node */
	to.node = 3;
	CHECK(scif_net_set_node_online(3, 0) == 0);
	CHECK(scif_get_nodeIDs(nodes, 8, &self) == 3);
	CHECK_ERR(scif_connect(c, &to), ENODEV);	/* node lost */
	CHECK(scif_net_set_node_online(3, 1) == 0);
	CHECK_ERR(scif_connect(c, &to), ECONNREFUSED);	/* back, but nobody listens */
	CHECK(scif_close(c) == 0);
}

/* Role: a listener on another node echoes one message per connection. */
static int echo_server(void)
{
	int l = listen_on(2500, 16), s;
	struct scif_portID peer;
	char buf[64];

	report_ready(0);
	for (int i = 0; i < 3; i++) {
		int n;

		CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
		CHECK(peer.node == 0);
		n = scif_recv(s, buf, 5, SCIF_RECV_BLOCK);
		CHECK(n == 5);
		CHECK(scif_send(s, buf, n, SCIF_SEND_BLOCK) == n);
		CHECK(scif_close(s) == 0);
	}
	CHECK(scif_close(l) == 0);
	return 0;
}

static void check_other_node(void)
{
	int ready;
	pid_t pid = spawn_role(2, "echo", NULL, &ready);
	struct scif_portID to = { .node = 2, .port = 2500 };

	await_ready(ready);
	for (int i = 0; i < 3; i++) {
		int c = scif_open();
		char buf[5];

		CHECK(scif_connect(c, &to) > 0);
		CHECK(scif_send(c, "hello", 5, SCIF_SEND_BLOCK) == 5);
		CHECK(scif_recv(c, buf, 5, SCIF_RECV_BLOCK) == 5 && memcmp(buf, "hello", 5) == 0);
		CHECK(scif_close(c) == 0);
	}
	/* Node 2's port 2500 is not node 0's. */
	{
		int c = scif_open();
		struct scif_portID here = { .node = 0, .port = 2500 };

		CHECK_ERR(scif_connect(c, &here), ECONNREFUSED);
		CHECK(scif_close(c) == 0);
	}
	expect_exit(pid, 0);
}

/* Lines of our port registry's locks in its fdinfo (the kernel merges a
 * holder's adjacent bytes into one). */
static int lock_lines(void)
{
	struct fabric *f = fabric_get();
	char path[64], line[256];
	FILE *in;
	int n = 0;

	CHECK(f != NULL);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", f->ports_fd);
	in = fopen(path, "r");
	CHECK(in != NULL);
	while (fgets(line, sizeof(line), in))
		n += strncmp(line, "lock:", 5) == 0;
	fclose(in);
	return n;
}

/* Ephemeral ports freed are handed out again, lowest first, so that a
 * process's ports (and its registry's lock list) stay together. */
static void check_port_reuse(void)
{
	int e[10], port[10], again, lines;

	for (int i = 0; i < 10; i++) {
		e[i] = scif_open();
		CHECK(e[i] >= 0);
		port[i] = scif_bind(e[i], 0);
		CHECK(port[i] > SCIF_PORT_RSVD);
	}
	lines = lock_lines();
	CHECK(scif_close(e[6]) == 0 && scif_close(e[3]) == 0);
	CHECK(lock_lines() == lines + 2);
	e[3] = scif_open();
	e[6] = scif_open();
	CHECK(e[3] >= 0 && e[6] >= 0);
	again = scif_bind(e[3], 0);
	CHECK(again == port[3]);
	again = scif_bind(e[6], 0);
	CHECK(again == port[6]);
	CHECK(lock_lines() == lines);
	for (int i = 0; i < 10; i++)
		CHECK(scif_close(e[i]) == 0);
	printf("# port reuse: freed ephemeral ports handed out again, lowest first\n");
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "echo") == 0)
		return echo_server();
	check_bind();
	check_port_reuse();
	check_listen_errors();
	check_refused();
	check_pending_refused_on_close();
	check_nonblocking_connect();
	check_nodes();
	check_other_node();
	return 0;
}
