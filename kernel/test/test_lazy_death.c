/*
 * The lazy RMA channel (channel.h) and a peer that is gone, stopped, or
 * dies making the channel: the side that needs the channel never waits for
 * the peer process to do anything, and when it must wait (the peer holds the
 * channel's lock) the fabric's rules for a peer's death and our own close
 * end the wait.
 *
 *   dead      the role was killed: registering fails with ECONNRESET, and
 *             no channel is left behind
 *   stopped   the role is stopped: registering here makes the channel at
 *             once; once the role goes on, it has its ends, and RMA works
 *   dies      the role is stopped, we make the channel (its ends wait in its
 *             inbox) and unregister, which waits for the role; then it is
 *             killed: its ends go with it, and the unregister returns
 *   mid-way   the role is making the channel (SCIF_NET_CHAN_DELAY_US holds
 *             it half-way): our register waits, and the role's death ends
 *             the wait with ECONNRESET
 *   closed    the same, the role stopped half-way: our scif_close ends the
 *             wait with EINTR
 *   no fds    the role is at its descriptor limit: its ends are lost on the
 *             way, and it hangs the connection up
 *
 * Each case has a role (conn_role.h) of its own on node 1.
 */
#include "conn_role.h"

#define PORT 3910
#define SLOW_US "60000000"	/* a role making a channel "for ever" */

static size_t P;

struct role {
	pid_t pid;
	int ready;
	struct scif_portID at;
};

static struct role start(uint16_t port, bool slow)
{
	struct role r = { .at = { .node = 1, .port = port } };
	char arg[16];

	snprintf(arg, sizeof(arg), "%u", port);
	if (slow)
		setenv("SCIF_NET_CHAN_DELAY_US", SLOW_US, 1);
	r.pid = spawn_role(1, "serve", arg, &r.ready);
	unsetenv("SCIF_NET_CHAN_DELAY_US");
	CHECK(await_ready(r.ready) == 1);
	return r;
}

static void end(struct role *r, int sig)
{
	CHECK(kill(r->pid, sig) == 0);
	if (sig == SIGCONT)
		return;
	expect_signal(r->pid, sig);
	CHECK(close(r->ready) == 0);
}

static int dial(struct role *r)
{
	int epd = scif_open();

	CHECK(epd >= 0 && scif_connect(epd, &r->at) > 0);
	return epd;
}

static void *page(void)
{
	void *p = NULL;

	CHECK(posix_memalign(&p, P, P) == 0);
	memset(p, 0, P);
	return p;
}

static void dead(void)
{
	struct role r = start(PORT, false);
	int c = dial(&r), base, mark;
	void *mine = page();

	end(&r, SIGKILL);
	base = count_connection_fds();
	CHECK_ERR(scif_register(c, mine, P, 0, SCIF_PROT_READ, 0), ECONNRESET);
	CHECK_ERR(scif_fence_mark(c, SCIF_FENCE_INIT_SELF, &mark), ECONNRESET);
	CHECK(count_connection_fds() == base);
	CHECK(scif_close(c) == 0);
	free(mine);
	printf("# dead: ECONNRESET, no channel made\n");
}

struct blocked_unregister {
	int epd;
	off_t off;
	_Atomic pid_t tid;
	int ret;
	double returned_ms;
};

static void *unregister_main(void *arg)
{
	struct blocked_unregister *b = arg;

	b->tid = gettid();
	b->ret = scif_unregister(b->epd, b->off, P);
	b->returned_ms = now_ms();
	return NULL;
}

static void stopped_then_dies(void)
{
	struct role r = start(PORT + 1, false);
	int c = dial(&r), d = dial(&r), base = count_connection_fds();
	void *mine = page(), *other = page();
	struct scif_pollepd pe = { .epd = d, .events = POLLIN };
	struct blocked_unregister b = { .epd = d };
	pthread_t t;
	double t0, killed;
	off_t off, roff;

	stop_process(r.pid);
	/* Stopped: nothing of it runs, not even its service thread. */
	t0 = now_ms();
	off = scif_register(c, mine, P, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0);
	CHECK(off >= 0 && count_connection_fds() - base == 2);	/* its ctl, its bell */
	printf("# stopped: registered in %.2f ms without the role\n", now_ms() - t0);
	end(&r, SIGCONT);
	CHECK(role_fds_reach(c, 3 + 1) == 3 + 1);
	roff = role_register(c);
	write_and_verify(c, roff, 5);

	/* d: made here while the role is stopped; its ends are in the role's
	 * inbox when it dies. An unregister waits for the role to hear of it,
	 * and learns of the death instead. */
	stop_process(r.pid);
	b.off = scif_register(d, other, P, 0, SCIF_PROT_READ | SCIF_PROT_WRITE, 0);
	CHECK(b.off >= 0);
	CHECK(pthread_create(&t, NULL, unregister_main, &b) == 0);
	while (!b.tid)
		sched_yield();
	wait_blocked(b.tid);
	killed = now_ms();
	end(&r, SIGKILL);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(b.ret == 0);	/* a departed peer has no view left to update */
	CHECK(scif_poll(&pe, 1, -1) == 1 && (pe.revents & POLLHUP));
	CHECK_ERR(scif_register(d, other, P, 0, SCIF_PROT_READ, 0), ECONNRESET);
	CHECK(scif_close(c) == 0 && scif_close(d) == 0);
	free(mine);
	free(other);
	printf("# dies: an unregister waiting for the role's ends, still in its inbox, "
	       "returned %.2f ms after the kill\n", b.returned_ms - killed);
}

struct blocked_register {
	int epd;
	void *page;
	_Atomic pid_t tid;
	int ret, err;
	double returned_ms;
};

static void *register_main(void *arg)
{
	struct blocked_register *b = arg;

	b->tid = gettid();
	b->ret = (int)scif_register(b->epd, b->page, P, 0, SCIF_PROT_READ, 0);
	b->err = errno;
	b->returned_ms = now_ms();
	return NULL;
}

/* A thread of ours registering on epd, asleep waiting for the role, which
 * is half-way through making the channel. */
static void register_blocked(struct blocked_register *b, pthread_t *t, int epd)
{
	*b = (struct blocked_register){ .epd = epd, .page = page() };
	CHECK(pthread_create(t, NULL, register_main, b) == 0);
	while (!b->tid)
		sched_yield();
	wait_blocked(b->tid);
}

static int slow_register(int epd)
{
	return ask(epd, 'R');
}

static void dies_mid_way(void)
{
	struct role r = start(PORT + 2, true);
	int c = dial(&r);
	struct blocked_register b;
	pthread_t t;
	double killed;

	CHECK(slow_register(c) == 0);
	register_blocked(&b, &t, c);
	killed = now_ms();
	end(&r, SIGKILL);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(b.ret == -1 && b.err == ECONNRESET);
	printf("# mid-way: our register woke with ECONNRESET %.2f ms after the kill\n",
	       b.returned_ms - killed);
	CHECK(scif_close(c) == 0);
	free(b.page);
}

static void closed_mid_way(void)
{
	struct role r = start(PORT + 3, true);
	int c = dial(&r);
	struct blocked_register b;
	pthread_t t;
	double t0;

	CHECK(slow_register(c) == 0);
	stop_process(r.pid);
	register_blocked(&b, &t, c);
	t0 = now_ms();
	CHECK(scif_close(c) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(b.ret == -1 && b.err == EINTR);
	printf("# closed: our close ended the wait for a stopped role (EINTR) in %.2f ms\n",
	       now_ms() - t0);
	end(&r, SIGKILL);
	free(b.page);
}

/* The role has no descriptor left for its ends: they are lost on the way,
 * and it hangs the connection up, so that both sides learn it at once. */
static void no_descriptors(void)
{
	struct role r = start(PORT + 4, false);
	int c = dial(&r);
	struct scif_pollepd pe = { .epd = c, .events = POLLIN };
	void *mine = page();

	CHECK(ask(c, 'N') == 0);
	/* The window is announced as the role hangs up, or after: */
	errno = 0;
	CHECK(scif_register(c, mine, P, 0, SCIF_PROT_READ, 0) >= 0 || errno == ECONNRESET);
	CHECK(scif_poll(&pe, 1, 10000) == 1 && (pe.revents & POLLHUP));
	CHECK_ERR(scif_send(c, "x", 1, 0), ECONNRESET);
	CHECK(scif_close(c) == 0);
	end(&r, SIGKILL);
	free(mine);
	printf("# no descriptors: the role could not take its ends, and hung the connection up\n");
}

int main(int argc, char **argv)
{
	P = page_size();
	if (argc > 2 && strcmp(argv[1], "serve") == 0)
		return role_serve(argv[2]);
	CHECK(scif_net_self_node() == 0);	/* the fabric's own descriptors, opened */
	dead();
	stopped_then_dies();
	dies_mid_way();
	closed_mid_way();
	/* Valgrind keeps descriptors of its own above the program's limit and
	 * fakes RLIMIT_NOFILE, so the role cannot be left without any. */
	if (getenv("SCIF_TEST_WRAP") && strstr(getenv("SCIF_TEST_WRAP"), "valgrind"))
		printf("# no descriptors: not under valgrind\n");
	else
		no_descriptors();
	return 0;
}
