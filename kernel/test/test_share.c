/*
 * A listener several processes hold (listener.c): its descriptor passed
 * with SCM_RIGHTS (as node:cluster passes it to workers) or dup()ed is
 * adopted by the first libscif call on it, and the port and the listener's
 * name stay until the last holder closes or dies.
 *
 *   share     the parent opens a listener, a role on the same node accepts
 *             on it too: first the role alone, then both at once, each
 *             connection served by exactly one of them; nothing left,
 *             non-blocking accepts say EAGAIN; RMA on a connection the
 *             role accepted; our close wakes our acceptor and leaves the
 *             role accepting; the role's death resets its connections and
 *             frees the port
 *   opener    the role opens it (stream-only) and dies: the parent, holding
 *             it, keeps the port and the name, accepts (stream-only
 *             connections), and closes it last
 *   unadopted a process that received it but never used it holds nothing:
 *             the opener's close takes the listener down, and the receiver
 *             cannot adopt it afterwards (EBADF)
 *   dup       two descriptors of one process: closing one leaves a caller
 *             waiting for the other; closing the last refuses the caller
 *   forked    a child forked without exec closes the listener it inherited
 *             (one holder leaving) and accepts on the copy it is passed
 *   not ours  a pipe, a plain socket, another node's listener: EBADF
 *
 * Roles are driven over a socketpair that also carries the descriptors.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conn_role.h"

#define PORT 4300
#define ALONE 8
#define BOTH 48

static char fabric[4096];

/* ---- descriptors and commands over a socketpair ---- */

struct cmd {
	char op;
	int arg;
};

static void send_cmd(int sock, char op, int arg, int fd)
{
	struct cmd c;
	struct iovec iov = { .iov_base = &c, .iov_len = sizeof(c) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;

	/* Its padding too: every byte sent is defined (valgrind). */
	memset(&c, 0, sizeof(c));
	memset(&cm, 0, sizeof(cm));
	c.op = op;
	c.arg = arg;

	if (fd >= 0) {
		struct cmsghdr *h;

		memset(cm.buf, 0, sizeof(cm.buf));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		h = CMSG_FIRSTHDR(&mh);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &fd, sizeof(int));
	}
	CHECK(sendmsg(sock, &mh, 0) == (ssize_t)sizeof(c));
}

/* A command, or an answer: with *fd the descriptor it carried, or -1. */
static struct cmd recv_cmd(int sock, int *fd)
{
	struct cmd c;
	struct iovec iov = { .iov_base = &c, .iov_len = sizeof(c) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cm.buf, .msg_controllen = sizeof(cm.buf),
	};
	struct cmsghdr *h;

	CHECK(recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) == (ssize_t)sizeof(c));
	h = CMSG_FIRSTHDR(&mh);
	if (fd)
		*fd = -1;
	if (h && h->cmsg_type == SCM_RIGHTS && fd)
		memcpy(fd, CMSG_DATA(h), sizeof(int));
	return c;
}

/* ---- the role ---- */

static void *serve_main(void *arg)
{
	(void)serve_listener((int)(intptr_t)arg);
	return NULL;
}

/* Commands, each answered with an int (and 'l' with the listener):
 *   'f' +fd   keeps a descriptor, nothing else: its number
 *   'S' n     serves listener n in a thread (its first scif_accept adopts it)
 *   'a' n     one non-blocking scif_accept on n: 0 (served) or -errno
 *   'c' n     scif_close(n): 0 or -errno
 *   'l' port  a listener of its own on port: its descriptor, sent along
 *   'L' port  the same, stream-only */
static int role_share(const char *arg)
{
	int sock = atoi(arg);

	report_ready(1);
	for (;;) {
		int fd, n = 0;
		struct cmd c = recv_cmd(sock, &fd);
		struct scif_portID who;
		pthread_t t;

		switch (c.op) {
		case 'f':
			n = fd;
			break;
		case 'S':
			CHECK(pthread_create(&t, NULL, serve_main, (void *)(intptr_t)c.arg) == 0);
			CHECK(pthread_detach(t) == 0);
			break;
		case 'a':
			if (scif_accept(c.arg, &who, &n, 0) == 0) {
				CHECK(pthread_create(&t, NULL, role_conn, (void *)(intptr_t)n) == 0);
				CHECK(pthread_detach(t) == 0);
				n = 0;
			} else {
				n = -errno;
			}
			break;
		case 'c':
			n = scif_close(c.arg) == 0 ? 0 : -errno;
			break;
		case 'l':
		case 'L':
			n = scif_open();
			CHECK(n >= 0 && (c.op == 'l' || scif_net_set_stream_only(n) == 0));
			CHECK(scif_bind(n, (uint16_t)c.arg) == c.arg && scif_listen(n, 16) == 0);
			break;
		default:
			CHECK(!"a command");
		}
		send_cmd(sock, 'r', n, c.op == 'l' || c.op == 'L' ? n : -1);
	}
}

/* ---- the parent's side ---- */

struct role {
	pid_t pid;
	int ready, sock;
};

static struct role start(int node)
{
	struct role r;
	int sv[2];
	char arg[16];

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	CHECK(fcntl(sv[0], F_SETFD, FD_CLOEXEC) == 0);
	snprintf(arg, sizeof(arg), "%d", sv[1]);
	r.pid = spawn_role(node, "share", arg, &r.ready);
	CHECK(close(sv[1]) == 0);
	r.sock = sv[0];
	CHECK(await_ready(r.ready) == 1);
	return r;
}

static int role_do(struct role *r, char op, int arg, int fd)
{
	send_cmd(r->sock, op, arg, fd);
	return recv_cmd(r->sock, NULL).arg;
}

/* 'l', 'L': the role's new listener, whose descriptor comes with the answer. */
static int role_listener(struct role *r, char op, uint16_t port)
{
	int fd;

	send_cmd(r->sock, op, port, -1);
	CHECK(recv_cmd(r->sock, &fd).arg >= 0 && fd >= 0);
	return fd;
}

static void kill_role(struct role *r)
{
	CHECK(kill(r->pid, SIGKILL) == 0);
	expect_signal(r->pid, SIGKILL);
	CHECK(close(r->ready) == 0 && close(r->sock) == 0);
}

/* Whether some process holds port on node 0: a bind says EINVAL. */
static bool port_held(uint16_t port)
{
	int e = scif_open(), r;

	CHECK(e >= 0);
	r = scif_bind(e, port);
	CHECK(r == port || (r == -1 && errno == EINVAL));
	CHECK(scif_close(e) == 0);
	return r == -1;
}

static bool name_exists(uint16_t port)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/n0p%u", fabric, port);
	return stat(path, &st) == 0;
}

/* Which process accepted connection c. */
static int served_by(int c)
{
	return ask(c, 'p');
}

/* Closes a connection whose server was in this process, or is dead. */
static void hang_up(int c, int server)
{
	if (server == getpid())
		role_quit(c);	/* our serving thread leaves first */
	CHECK(scif_close(c) == 0);
}

static void *accept_main(void *arg)
{
	return (void *)(intptr_t)serve_listener((int)(intptr_t)arg);
}

static void share(void)
{
	struct role r = start(0);
	int l = listen_on(PORT, 64), c[ALONE + BOTH], by[ALONE + BOTH], mine = 0, extra;
	struct scif_portID who;
	pthread_t t;
	void *why;
	off_t roff;

	CHECK(role_do(&r, 'S', role_do(&r, 'f', 0, l), -1) == 0);
	for (int i = 0; i < ALONE + BOTH; i++) {
		if (i == ALONE)	/* now we accept too */
			CHECK(pthread_create(&t, NULL, accept_main, (void *)(intptr_t)l) == 0);
		c[i] = connect_to(0, PORT);
		by[i] = served_by(c[i]);
		CHECK(by[i] == r.pid || (i >= ALONE && by[i] == getpid()));
		mine += by[i] == getpid();
	}
	printf("# share: the role alone accepted %d; then both: the role %d, we %d\n", ALONE,
	       BOTH - mine, mine);
	/* Nothing left for a non-blocking accept, in either process. */
	CHECK_ERR(scif_accept(l, &who, &extra, 0), EAGAIN);
	CHECK(role_do(&r, 'a', role_do(&r, 'f', 0, l), -1) == -EAGAIN);

	/* A connection the role accepted does RMA like any other. */
	roff = role_register(c[0]);
	write_and_verify(c[0], roff, 9);

	/* Our close: our acceptor wakes, the role still holds the listener. */
	CHECK(scif_close(l) == 0);
	CHECK(pthread_join(t, &why) == 0 && (intptr_t)why == EINTR);
	CHECK(port_held(PORT) && name_exists(PORT));
	extra = connect_to(0, PORT);
	CHECK(served_by(extra) == r.pid);
	printf("# share: after our close the role accepts on; the port and its name stay\n");

	/* The role dies: its connections are reset, its hold goes with it. */
	kill_role(&r);
	expect_reset(c[0]);
	CHECK(!port_held(PORT));
	for (int i = 1; i < ALONE + BOTH; i++)
		hang_up(c[i], by[i]);
	CHECK(scif_close(extra) == 0);
	/* A dead holder leaves the name, as any dead listener: the next
	 * listener on the port replaces it. */
	CHECK(name_exists(PORT));
	l = listen_on(PORT, 1);
	CHECK(scif_close(l) == 0 && !name_exists(PORT) && !port_held(PORT));
}

/* A caller of ours accepted on listener l of ours, in this thread; a
 * stream-only listener's connections refuse RMA. */
static void connect_accept(int l, uint16_t port, bool stream_only)
{
	size_t P = page_size();
	void *page = NULL;
	struct scif_portID to = { .node = 0, .port = port }, who;
	struct scif_pollepd pe;
	int c = scif_open(), s, flags;

	CHECK(c >= 0);
	flags = fcntl(c, F_GETFL);
	CHECK(flags >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_accept(l, &who, &s, SCIF_ACCEPT_SYNC) == 0);
	pe = (struct scif_pollepd){ .epd = c, .events = POLLOUT };
	CHECK(scif_poll(&pe, 1, -1) == 1 && scif_connect(c, &to) > 0);
	CHECK(scif_send(c, "hi", 2, 0) == 2);
	CHECK(posix_memalign(&page, P, P) == 0);
	if (stream_only)
		CHECK_ERR(scif_register(s, page, P, 0, SCIF_PROT_READ, 0), EOPNOTSUPP);
	else
		CHECK(scif_register(s, page, P, 0, SCIF_PROT_READ, 0) >= 0);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	free(page);
}

static void opener_dies(void)
{
	struct role r = start(0);
	int l = role_listener(&r, 'L', PORT + 1);

	CHECK(scif_get_fd(l) == l);	/* adopted: we hold it */
	kill_role(&r);
	CHECK(port_held(PORT + 1) && name_exists(PORT + 1));
	connect_accept(l, PORT + 1, true);	/* the role made it stream-only */
	CHECK(scif_close(l) == 0);
	CHECK(!port_held(PORT + 1) && !name_exists(PORT + 1));
	printf("# opener: its death left the listener to us, with its port and name\n");
}

static void unadopted(void)
{
	struct role r = start(0);
	int l = listen_on(PORT + 2, 4), theirs;

	theirs = role_do(&r, 'f', 0, l);
	CHECK(scif_close(l) == 0);
	CHECK(!port_held(PORT + 2) && !name_exists(PORT + 2));
	CHECK(role_do(&r, 'a', theirs, -1) == -EBADF);
	kill_role(&r);
	printf("# unadopted: a descriptor never used holds nothing; adopting it later is EBADF\n");
}

static void dup_in_process(void)
{
	struct scif_portID to = { .node = 0, .port = PORT + 3 }, who;
	struct scif_pollepd pe = { .events = POLLOUT };
	int l = listen_on(PORT + 3, 4), d = dup(l), c = scif_open(), s, flags;

	CHECK(d >= 0 && c >= 0);
	CHECK(scif_get_fd(d) == d);	/* adopted: a hold of its own */
	flags = fcntl(c, F_GETFL);
	CHECK(flags >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_close(l) == 0);	/* d holds it: the caller waits on */
	CHECK(port_held(PORT + 3) && name_exists(PORT + 3));
	CHECK(scif_accept(d, &who, &s, 0) == 0);
	pe.epd = c;
	CHECK(scif_poll(&pe, 1, -1) == 1 && scif_connect(c, &to) > 0);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);

	c = scif_open();
	CHECK(c >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_close(d) == 0);	/* the last: the caller is refused */
	CHECK(scif_poll(&pe, 1, -1) == 1);
	CHECK_ERR(scif_connect(c, &to), ECONNREFUSED);
	CHECK(scif_close(c) == 0);
	CHECK(!port_held(PORT + 3) && !name_exists(PORT + 3));
	printf("# dup: the first close left the caller to the other descriptor, the last refused\n");
}

/* A child forked without exec: it inherits the listener (the descriptor
 * and its endpoint) and closes that copy - one holder leaving - then
 * accepts on the one the parent passes it. */
static void forked(void)
{
	int l = listen_on(PORT + 5, 4), sv[2], c;
	pid_t pid;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct scif_portID who;
		int fd, s;

		CHECK(scif_close(l) == 0);
		(void)recv_cmd(sv[1], &fd);
		CHECK(fd >= 0 && scif_accept(fd, &who, &s, SCIF_ACCEPT_SYNC) == 0);
		(void)role_conn((void *)(intptr_t)s);
		exit(0);	/* holding fd: the kernel closes it */
	}
	send_cmd(sv[0], 'f', 0, l);
	c = connect_to(0, PORT + 5);
	CHECK(served_by(c) == pid);
	role_quit(c);
	CHECK(scif_close(c) == 0);
	expect_exit(pid, 0);
	CHECK(port_held(PORT + 5) && name_exists(PORT + 5));
	CHECK(scif_close(l) == 0);
	CHECK(!port_held(PORT + 5) && !name_exists(PORT + 5));
	CHECK(close(sv[0]) == 0 && close(sv[1]) == 0);
	printf("# forked: a child's close of its inherited copy left the listener to it and to us\n");
}

static void not_ours(void)
{
	struct role r = start(1);
	struct scif_portID who;
	int p[2], u = socket(AF_UNIX, SOCK_STREAM, 0), other, s;

	CHECK(pipe(p) == 0 && u >= 0);
	CHECK_ERR(scif_accept(p[0], &who, &s, 0), EBADF);
	CHECK_ERR(scif_close(p[0]), EBADF);
	CHECK_ERR(scif_accept(u, &who, &s, 0), EBADF);
	/* Listening, but under a name the kernel picks, not one of ours. */
	CHECK(bind(u, (struct sockaddr *)&(struct sockaddr_un){ .sun_family = AF_UNIX },
		   sizeof(sa_family_t)) == 0 && listen(u, 1) == 0);
	CHECK_ERR(scif_accept(u, &who, &s, 0), EBADF);
	other = role_listener(&r, 'l', PORT + 4);	/* node 1's */
	CHECK_ERR(scif_accept(other, &who, &s, 0), EBADF);
	CHECK(close(p[0]) == 0 && close(p[1]) == 0 && close(u) == 0 && close(other) == 0);
	kill_role(&r);
	printf("# not ours: a pipe, a plain socket, another node's listener: EBADF\n");
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "share") == 0)
		return role_share(argv[2]);
	CHECK(scif_net_fabric_path() != NULL);
	snprintf(fabric, sizeof(fabric), "%s", scif_net_fabric_path());
	share();
	opener_dies();
	unadopted();
	dup_in_process();
	forked();
	not_ours();
	return 0;
}
