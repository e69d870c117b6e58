/*
 * The errno of every way a call can be misused that test_connect does not
 * cover: bad lengths, flags and buffers in send/recv, closed and foreign
 * descriptors, calls on endpoints that are not connected, ephemeral ports,
 * ports held by another process, and privileged ports for an unprivileged
 * process (as root, in a child that gives up root and makes its own fabric).
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>

#include "check.h"

#define NOBODY 65534

/* Runs first, before this process opens its fabric: the child must open one
 * of its own, as the unprivileged user, so it forks from a clean slate. */
static void check_privileged_ports(void)
{
	char dir[] = "/tmp/scif-fabric-eacces.XXXXXX";
	pid_t pid;
	DIR *d;
	struct dirent *de;

	if (geteuid() != 0) {
		int e = scif_open();

		CHECK(e >= 0);
		CHECK_ERR(scif_bind(e, 80), EACCES);
		CHECK_ERR(scif_bind(e, SCIF_ADMIN_PORT_END - 1), EACCES);
		CHECK(scif_bind(e, SCIF_ADMIN_PORT_END) == SCIF_ADMIN_PORT_END);
		CHECK(scif_close(e) == 0);
		return;
	}
	CHECK(mkdtemp(dir) != NULL);
	CHECK(chown(dir, NOBODY, NOBODY) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int e;

		CHECK(setgid(NOBODY) == 0 && setuid(NOBODY) == 0);
		CHECK(geteuid() == NOBODY);
		CHECK(setenv("SCIF_NET_FABRIC", dir, 1) == 0);
		CHECK(setenv("SCIF_NET_NODE", "0", 1) == 0);
		e = scif_open();
		CHECK(e >= 0);
		CHECK(strcmp(scif_net_fabric_path(), dir) == 0);
		CHECK_ERR(scif_bind(e, 80), EACCES);
		CHECK_ERR(scif_bind(e, SCIF_ADMIN_PORT_END - 1), EACCES);
		/* Refused, not half-bound: the endpoint can still bind elsewhere. */
		CHECK(scif_bind(e, SCIF_ADMIN_PORT_END) == SCIF_ADMIN_PORT_END);
		CHECK(scif_close(e) == 0);
		exit(0);
	}
	expect_exit(pid, 0);
	d = opendir(dir);
	CHECK(d != NULL);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			CHECK(unlinkat(dirfd(d), de->d_name, 0) == 0);
	CHECK(closedir(d) == 0);
	CHECK(rmdir(dir) == 0);
}

static void check_messages(void)
{
	int c, s;
	char buf[4] = "abc";

	connect_pair(6000, &c, &s);
	CHECK_ERR(scif_send(c, buf, -1, 0), EINVAL);
	CHECK_ERR(scif_send(c, buf, -1, SCIF_SEND_BLOCK), EINVAL);
	CHECK_ERR(scif_recv(s, buf, -5, 0), EINVAL);
	CHECK_ERR(scif_send(c, buf, 1, 2), EINVAL);
	CHECK_ERR(scif_send(c, buf, 1, -1), EINVAL);
	CHECK_ERR(scif_recv(s, buf, 1, 2), EINVAL);
	CHECK_ERR(scif_recv(s, buf, 1, SCIF_RECV_BLOCK | 0x100), EINVAL);
	CHECK_ERR(scif_send(c, NULL, 1, 0), EFAULT);
	CHECK_ERR(scif_send(c, NULL, 1, SCIF_SEND_BLOCK), EFAULT);
	CHECK_ERR(scif_recv(s, NULL, 1, 0), EFAULT);
	CHECK_ERR(scif_recv(s, NULL, 1, SCIF_RECV_BLOCK), EFAULT);
	/* Nothing to move is no error, and does not wait. */
	CHECK(scif_send(c, NULL, 0, SCIF_SEND_BLOCK) == 0);
	CHECK(scif_recv(s, NULL, 0, SCIF_RECV_BLOCK) == 0);
	CHECK(scif_recv(s, buf, 0, SCIF_RECV_BLOCK) == 0);
	/* None of the refused calls moved a byte. */
	CHECK(scif_recv(s, buf, 1, 0) == 0);
	CHECK(scif_send(c, "x", 1, 0) == 1);
	CHECK(scif_recv(s, buf, 4, 0) == 1 && buf[0] == 'x');
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
}

/* Closed endpoints, numbers never opened, and descriptors that are not
 * endpoints are all EBADF (POLLNVAL for scif_poll). */
static void check_bad_descriptors(void)
{
	struct scif_portID to = { .node = 0, .port = 6010 }, peer;
	struct scif_pollepd pe;
	int closed = scif_open(), p[2], newepd;
	int bad[4];
	char c;

	CHECK(closed >= 0 && scif_close(closed) == 0);
	CHECK(pipe(p) == 0);
	bad[0] = closed;
	bad[1] = -1;
	bad[2] = 1 << 20;
	bad[3] = p[0];
	for (int i = 0; i < 4; i++) {
		int e = bad[i];

		CHECK_ERR(scif_close(e), EBADF);
		CHECK_ERR(scif_bind(e, 6010), EBADF);
		CHECK_ERR(scif_bind(e, 0), EBADF);
		CHECK_ERR(scif_listen(e, 1), EBADF);
		CHECK_ERR(scif_connect(e, &to), EBADF);
		CHECK_ERR(scif_accept(e, &peer, &newepd, 0), EBADF);
		CHECK_ERR(scif_accept(e, &peer, &newepd, SCIF_ACCEPT_SYNC), EBADF);
		CHECK_ERR(scif_send(e, "x", 1, 0), EBADF);
		CHECK_ERR(scif_send(e, "x", 1, SCIF_SEND_BLOCK), EBADF);
		CHECK_ERR(scif_recv(e, &c, 1, 0), EBADF);
		CHECK_ERR(scif_recv(e, &c, 1, SCIF_RECV_BLOCK), EBADF);
		/* scif_poll is poll(2) on the descriptors, as MPSS's: a negative
		 * one is skipped, a closed one is POLLNVAL, and another kind of
		 * descriptor (the pipe) says what it says. */
		pe = (struct scif_pollepd){ .epd = e, .events = POLLIN | POLLOUT };
		if (e == -1)
			CHECK(scif_poll(&pe, 1, 0) == 0 && pe.revents == 0);
		else if (e == 1 << 20)
			CHECK(scif_poll(&pe, 1, 0) == 1 && pe.revents == POLLNVAL);
	}
	/* The pipe was left alone by all of that. */
	CHECK(write(p[1], "y", 1) == 1 && read(p[0], &c, 1) == 1 && c == 'y');
	CHECK(close(p[0]) == 0 && close(p[1]) == 0);
	/* The library's other argument checks. */
	pe = (struct scif_pollepd){ .epd = -1 };
	CHECK_ERR(scif_poll(NULL, 1, 0), EFAULT);
	CHECK_ERR(scif_accept(-1, NULL, &newepd, 0), EINVAL);
	CHECK_ERR(scif_accept(-1, &peer, NULL, 0), EINVAL);
	CHECK_ERR(scif_get_nodeIDs(NULL, 4, (uint16_t[1]){0}), EFAULT);
}

/* send and recv on endpoints that are not connected. */
static void check_not_connected(void)
{
	int unbound = scif_open(), bound = scif_open(), lis = scif_open(), refused = scif_open();
	struct scif_portID to = { .node = 0, .port = 6021 };
	int eps[4] = { unbound, bound, lis, refused };
	char c;

	CHECK(unbound >= 0 && bound >= 0 && lis >= 0 && refused >= 0);
	CHECK(scif_bind(bound, 6020) == 6020);
	CHECK(scif_bind(lis, 6022) == 6022 && scif_listen(lis, 1) == 0);
	CHECK_ERR(scif_connect(refused, &to), ECONNREFUSED);	/* left bound */
	for (int i = 0; i < 4; i++) {
		CHECK_ERR(scif_send(eps[i], "x", 1, 0), ENOTCONN);
		CHECK_ERR(scif_send(eps[i], "x", 1, SCIF_SEND_BLOCK), ENOTCONN);
		CHECK_ERR(scif_recv(eps[i], &c, 1, 0), ENOTCONN);
		CHECK_ERR(scif_recv(eps[i], &c, 1, SCIF_RECV_BLOCK), ENOTCONN);
		CHECK(scif_close(eps[i]) == 0);
	}
}

#define MANY 500

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Port 0 picks a free port at or above SCIF_PORT_RSVD, never one in use. */
static void check_ephemeral(void)
{
	static int eps[MANY], ports[MANY];
	int c, s, l, port;
	struct scif_portID to = { .node = 0, .port = 6030 }, peer;

	for (int i = 0; i < MANY; i++) {
		eps[i] = scif_open();
		CHECK(eps[i] >= 0);
		ports[i] = scif_bind(eps[i], 0);
		CHECK(ports[i] >= SCIF_PORT_RSVD && ports[i] <= 65535);
	}
	/* Each taken port is really held. */
	c = scif_open();
	CHECK(c >= 0);
	CHECK_ERR(scif_bind(c, (uint16_t)ports[MANY / 2]), EINVAL);
	qsort(ports, MANY, sizeof(ports[0]), cmp_int);
	for (int i = 1; i < MANY; i++)
		CHECK(ports[i] != ports[i - 1]);
	for (int i = 0; i < MANY; i++)
		CHECK(scif_close(eps[i]) == 0);
	CHECK(scif_close(c) == 0);

	/* connect binds one too, and closing gives it back. */
	l = scif_open();
	CHECK(l >= 0 && scif_bind(l, 6030) == 6030 && scif_listen(l, 1) == 0);
	c = scif_open();
	CHECK(c >= 0 && fcntl(c, F_SETFL, O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_accept(l, &peer, &s, SCIF_ACCEPT_SYNC) == 0);
	CHECK(peer.port >= SCIF_PORT_RSVD);
	{
		int e = scif_open();

		CHECK(e >= 0);
		CHECK_ERR(scif_bind(e, peer.port), EINVAL);
		CHECK(scif_close(c) == 0);
		port = scif_bind(e, peer.port);
		CHECK(port == peer.port);
		CHECK(scif_close(e) == 0);
	}
	CHECK(scif_close(s) == 0 && scif_close(l) == 0);
}

/* Role: binds port arg on its node, reports, closes when told, and exits at EOF. */
static int role_hold(const char *port, const char *go)
{
	int e = scif_open(), fd = atoi(go);
	char c;

	CHECK(e >= 0);
	CHECK(scif_bind(e, (uint16_t)atoi(port)) == atoi(port));
	report_ready(1);
	CHECK(read(fd, &c, 1) == 1);
	CHECK(scif_close(e) == 0);
	report_ready(2);
	CHECK(read(fd, &c, 1) == 0);
	return 0;
}

static pid_t hold(int node, const char *port, int *ready, int *go)
{
	char arg[32], role[64];
	int rd;
	pid_t pid;

	/* spawn_role passes one argument: the port and the go pipe travel in it. */
	*go = go_pipe(arg, sizeof(arg), &rd);
	snprintf(role, sizeof(role), "hold:%s", port);
	pid = spawn_role(node, role, arg, ready);
	CHECK(close(rd) == 0);
	CHECK(await_ready(*ready) == 1);
	return pid;
}

/* A port held by another process of the same node is in use; one held on
 * another node is not; closing it there frees it here. */
static void check_other_process(void)
{
	int ready0, go0, ready1, go1, e = scif_open(), f = scif_open();
	pid_t p0 = hold(0, "6040", &ready0, &go0), p1 = hold(1, "6041", &ready1, &go1);

	CHECK(e >= 0 && f >= 0);
	CHECK_ERR(scif_bind(e, 6040), EINVAL);
	CHECK(scif_bind(f, 6041) == 6041);		/* node 1's 6041 is not ours */
	CHECK(write(go0, "c", 1) == 1);
	CHECK(await_ready(ready0) == 2);
	CHECK(scif_bind(e, 6040) == 6040);		/* refused once, bindable now */
	CHECK(write(go1, "c", 1) == 1);
	CHECK(await_ready(ready1) == 2);
	CHECK(close(go0) == 0 && close(go1) == 0);
	expect_exit(p0, 0);
	expect_exit(p1, 0);
	CHECK(close(ready0) == 0 && close(ready1) == 0);
	CHECK(scif_close(e) == 0 && scif_close(f) == 0);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strncmp(argv[1], "hold:", 5) == 0)
		return role_hold(argv[1] + 5, argv[2]);
	check_privileged_ports();
	if (geteuid() == 0) {
		/* Privileged: the admin ports are ours to bind. */
		int e = scif_open();

		CHECK(e >= 0 && scif_bind(e, 80) == 80 && scif_close(e) == 0);
	}
	check_messages();
	check_bad_descriptors();
	check_not_connected();
	check_ephemeral();
	check_other_process();
	return 0;
}
