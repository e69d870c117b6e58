/*
 * check.h - the fabric tests' few tools: checks that name what failed, and
 * helper processes that play other nodes.
 */
#ifndef SCIF_NET_CHECK_H
#define SCIF_NET_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scif.h"
#include "scif_net.h"

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: %s failed (errno %s: %s) %s\n",  \
				__FILE__, __LINE__, #cond, strerrorname_np(errno), \
				strerror(errno), scif_net_last_error());         \
			exit(1);                                                 \
		}                                                                \
	} while (0)

/* call must fail with -1 and errno == err. */
#define CHECK_ERR(call, err)                                                     \
	do {                                                                     \
		long r_;                                                         \
		errno = 0;                                                       \
		r_ = (long)(call);                                               \
		if (r_ != -1 || errno != (err)) {                                \
			fprintf(stderr, "%s:%d: %s gave %ld, errno %s; wanted -1, %s\n", \
				__FILE__, __LINE__, #call, r_, strerrorname_np(errno), \
				strerrorname_np(err));                           \
			exit(1);                                                 \
		}                                                                \
	} while (0)

static inline uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		h = (h ^ *b++) * 0x100000001b3ull;
	return h;
}
#define FNV_START 0xcbf29ce484222325ull

/* Deterministic bytes: the sender and receiver compute the same stream. */
static inline unsigned char pattern_byte(uint64_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static inline uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/*
 * Runs this test binary again as another process on `node`, with argv
 * {role, arg}: the role's main reports readiness by writing to the fd given
 * in SCIF_TEST_READY. Returns the pid; *ready is the read end.
 */
static inline pid_t spawn_role(int node, const char *role, const char *arg, int *ready)
{
	char self[4096];
	ssize_t len;
	int p[2];
	pid_t pid, parent;

	/* By name, not as /proc/self/exe: under valgrind that is valgrind
	 * itself, while readlink() gives the program's own path. */
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	CHECK(len > 0 && (size_t)len < sizeof(self) - 1);
	self[len] = '\0';
	CHECK(pipe(p) == 0);
	parent = getpid();
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char nodebuf[16], fdbuf[16];

		/* A role must not outlive a test that failed, or hung and was
		 * killed by the runner: many of them wait for ever to be killed. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(126);
		close(p[0]);
		snprintf(nodebuf, sizeof(nodebuf), "%d", node);
		snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
		setenv("SCIF_NET_NODE", nodebuf, 1);
		setenv("SCIF_TEST_READY", fdbuf, 1);
		execl(self, "child", role, arg ? arg : "", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*ready = p[0];
	return pid;
}

/*
 * A pipe for telling a role when to act: returns the write end (which only
 * this process holds); *rd is the read end, which the role inherits and
 * whose number goes into arg; close it here after spawning.
 */
static inline int go_pipe(char *arg, size_t len, int *rd)
{
	int p[2];

	CHECK(pipe(p) == 0);
	CHECK(fcntl(p[1], F_SETFD, FD_CLOEXEC) == 0);
	snprintf(arg, len, "%d", p[0]);
	*rd = p[0];
	return p[1];
}

/* In a role process: tell the parent a value (a port, say) and go on. */
static inline void report_ready(int value)
{
	const char *fd = getenv("SCIF_TEST_READY");

	CHECK(fd && write(atoi(fd), &value, sizeof(value)) == (ssize_t)sizeof(value));
}

static inline int await_ready(int ready)
{
	int value = -1;

	CHECK(read(ready, &value, sizeof(value)) == (ssize_t)sizeof(value));
	return value;
}

static inline void expect_exit(pid_t pid, int code)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != code) {
		fprintf(stderr, "child %d: status %#x, wanted exit %d\n", (int)pid, status, code);
		exit(1);
	}
}

/* A child that was killed with sig (and did not exit on its own first). */
static inline void expect_signal(pid_t pid, int sig)
{
	int status;

	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != sig) {
		fprintf(stderr, "child %d: status %#x, wanted signal %d\n", (int)pid, status, sig);
		exit(1);
	}
}

static inline double now_ms(void)
{
	struct timespec t;

	CHECK(clock_gettime(CLOCK_MONOTONIC, &t) == 0);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Stops process pid (SIGSTOP) and returns once every thread of it is
 * stopped: kill() returns before the group stop is through, and a thread
 * still running meanwhile (a service thread, say) may do what a test
 * counts on it not doing. */
static inline void stop_process(pid_t pid)
{
	char path[64];
	bool all;

	CHECK(kill(pid, SIGSTOP) == 0);
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	do {
		DIR *d = opendir(path);
		struct dirent *de;

		CHECK(d != NULL);
		all = true;
		while (all && (de = readdir(d))) {
			char stat[400], buf[512], *paren;
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(stat, sizeof(stat), "%s/%s/stat", path, de->d_name);
			f = fopen(stat, "r");
			if (!f)
				continue;	/* a thread that has just ended */
			if (fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')) && paren[1] == ' ')
				all = paren[2] == 'T' || paren[2] == 't';
			fclose(f);
		}
		closedir(d);
		if (!all)
			nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
	} while (!all);
}

/* Whether thread tid of this process sleeps in system call nr (-1: in poll,
 * epoll or on a futex). A thread that has ended sets *gone, for a caller
 * that watches one which may return (gone NULL: it fails the test). */
static inline bool thread_sleeps(pid_t tid, long nr, bool *gone)
{
	char path[64], buf[512];
	char *paren, state = '?';
	long now = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f && gone) {
		*gone = true;
		return false;
	}
	CHECK(f != NULL);
	if (fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')) && paren[1] == ' ')
		state = paren[2];
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%ld", &now) != 1)
			now = -1;	/* "running" */
		fclose(f);
	} else if (gone && access(path, F_OK) != 0 && errno == ENOENT) {
		*gone = true;	/* ended between the two looks */
		return false;
	}
	if (state != 'S')
		return false;
#ifdef SYS_restart_syscall
	/* Under valgrind an ignored signal (a child's SIGCHLD) is given to a
	 * thread asleep in a call, which then sleeps on in restart_syscall:
	 * where it sleeps says in which (test_rma_death met it). */
	if (f && now == SYS_restart_syscall) {
		char wchan[64] = "";
		FILE *w;

		snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)tid);
		w = fopen(path, "r");
		if (w) {
			if (!fgets(wchan, sizeof(wchan), w))
				wchan[0] = '\0';
			fclose(w);
		}
		if (!wchan[0] || strcmp(wchan, "0") == 0)
			return false;	/* hidden: cannot tell, look again */
		if (nr == SYS_clock_nanosleep)
			return strstr(wchan, "nanosleep") != NULL;
		if (nr == SYS_futex)
			return strstr(wchan, "futex") != NULL;
		return nr < 0 && strstr(wchan, "nanosleep") == NULL;
	}
#endif
	if (nr >= 0)
		return f && now == nr;
	return !f || now == SYS_futex || now == SYS_ppoll || now == SYS_epoll_pwait
#ifdef SYS_poll
	       || now == SYS_poll
#endif
#ifdef SYS_epoll_wait
	       || now == SYS_epoll_wait
#endif
	       ;
}

static inline bool sleeps_in(pid_t tid, long nr)
{
	return thread_sleeps(tid, nr, NULL);
}

/*
 * Waits until thread tid of this process sleeps in poll, epoll or on a
 * futex: it is blocked in the call under test, not merely on its way there.
 * This looks at the thread instead of sleeping a while and hoping, so a test
 * that then wakes it knows it woke a sleeper. (Only the tests' own threads
 * are watched, and nothing else contends for the fabric's locks meanwhile,
 * so a futex sleep is a condition or lock wait of the call's.)
 */
static inline void wait_blocked(pid_t tid)
{
	while (!sleeps_in(tid, -1))
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
}

/* Waits until thread tid sleeps in a delay the fabric makes for tests
 * (SCIF_NET_*_DELAY_US): past every lock it takes on its way there. */
static inline void wait_delayed(pid_t tid)
{
	while (!sleeps_in(tid, SYS_clock_nanosleep))
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
}

/* ---- threads asleep in one call, for tests that wake them ---- */

enum call { CALL_RECV, CALL_SEND, CALL_POLL, CALL_FD_POLL, CALL_ACCEPT, CALL_CONNECT };

static inline const char *call_name(enum call call)
{
	static const char *const names[] = { "scif_recv", "scif_send", "scif_poll", "poll",
					     "scif_accept", "scif_connect" };

	return names[call];
}

/* A thread of this process in one call on epd. Zero it, set what the call
 * needs (else: len, all of buf; events, POLLIN), then block_in(). */
struct blocked {
	enum call call;
	int epd;
	int len;		/* CALL_RECV, CALL_SEND: bytes */
	short events;		/* CALL_POLL, CALL_FD_POLL */
	struct scif_portID to;	/* CALL_CONNECT */
	char buf[1000];		/* what is sent, or received */
	pthread_t thread;
	_Atomic pid_t tid;
	int ret, err;		/* what the call returned, and errno */
	short revents;
	double returned_ms;	/* when (now_ms()) */
};

static inline void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	int len = b->len ? b->len : (int)sizeof(b->buf);
	short events = b->events ? b->events : POLLIN;
	struct scif_pollepd pe = { .epd = b->epd, .events = events };
	/* An event loop: the raw descriptor, no fabric call. */
	struct pollfd p = { .fd = scif_get_fd(b->epd), .events = events };
	struct scif_portID peer;
	int epd;

	b->tid = gettid();
	switch (b->call) {
	case CALL_RECV:
		b->ret = scif_recv(b->epd, b->buf, len, SCIF_RECV_BLOCK);
		break;
	case CALL_SEND:
		b->ret = scif_send(b->epd, b->buf, len, SCIF_SEND_BLOCK);
		break;
	case CALL_POLL:
		b->ret = scif_poll(&pe, 1, -1);
		b->revents = pe.revents;
		break;
	case CALL_FD_POLL:
		b->ret = poll(&p, 1, -1);
		b->revents = p.revents;
		break;
	case CALL_ACCEPT:
		b->ret = scif_accept(b->epd, &peer, &epd, SCIF_ACCEPT_SYNC);
		break;
	case CALL_CONNECT:
		b->ret = scif_connect(b->epd, &b->to);
		break;
	}
	b->err = errno;
	b->returned_ms = now_ms();
	return NULL;
}

/* Starts a thread in call on epd and returns once it sleeps there. */
static inline void block_in(struct blocked *b, enum call call, int epd)
{
	b->call = call;
	b->epd = epd;
	b->tid = 0;
	CHECK(pthread_create(&b->thread, NULL, blocked_main, b) == 0);
	while (!b->tid)
		sched_yield();
	wait_blocked(b->tid);
}

/* Joins the thread, whose call must have failed with err. */
static inline void woke_failing(struct blocked *b, int err)
{
	CHECK(pthread_join(b->thread, NULL) == 0);
	if (b->ret != -1 || b->err != err) {
		fprintf(stderr, "%s asleep returned %d, errno %s; wanted %s\n", call_name(b->call),
			b->ret, strerrorname_np(b->err), strerrorname_np(err));
		exit(1);
	}
}

/* Joins the thread, whose poll must have found one ready: its revents. */
static inline short woke_polled(struct blocked *b)
{
	CHECK(pthread_join(b->thread, NULL) == 0);
	CHECK(b->ret == 1);
	return b->revents;
}

/* Everything an endpoint whose peer left (or that was reset) answers, once
 * all that can be read was; then closes it. */
static inline void expect_reset(int epd)
{
	struct scif_pollepd pe = { .epd = epd, .events = POLLIN | POLLOUT };
	char c;

	/* recv returns at once (with ECONNRESET). POLLOUT as it comes: the
	 * driver's says whether the ring has room, a socket whether the
	 * tokens in the peer's went with it (kernel/README.md). */
	CHECK(scif_poll(&pe, 1, 0) == 1);
	if ((pe.revents & ~POLLOUT) != (POLLIN | POLLHUP)) {
		fprintf(stderr, "expect_reset: revents %#x\n", pe.revents);
		exit(1);
	}
	CHECK_ERR(scif_recv(epd, &c, 1, 0), ECONNRESET);
	CHECK(scif_net_rx_ready(epd, 0) == 1);
	CHECK_ERR(scif_recv(epd, &c, 1, SCIF_RECV_BLOCK), ECONNRESET);
	CHECK_ERR(scif_send(epd, "x", 1, 0), ECONNRESET);
	CHECK_ERR(scif_send(epd, "x", 1, SCIF_SEND_BLOCK), ECONNRESET);
	CHECK(scif_close(epd) == 0);
}

/* A listener on port of this node. */
static inline int listen_on(uint16_t port, int backlog)
{
	int epd = scif_open();

	CHECK(epd >= 0);
	CHECK(scif_bind(epd, port) == port);
	CHECK(scif_listen(epd, backlog) == 0);
	return epd;
}

/* An endpoint connected to (node, port), from an ephemeral port. */
static inline int connect_to(uint16_t node, uint16_t port)
{
	struct scif_portID to = { .node = node, .port = port };
	int epd = scif_open();

	CHECK(epd >= 0);
	CHECK(scif_connect(epd, &to) >= SCIF_PORT_RSVD);
	return epd;
}

/* A connected pair in this process: a listener on port, a client endpoint
 * connected to it without a thread (non-blocking connect, accept, finish),
 * and the accepted endpoint. The listener is closed again. */
static inline void connect_pair(uint16_t port, int *client, int *server)
{
	struct scif_portID to = { .node = (uint16_t)scif_net_self_node(), .port = port }, peer;
	struct scif_pollepd pe;
	int l = scif_open(), c = scif_open(), flags, cport;

	CHECK(l >= 0 && c >= 0);
	CHECK(scif_bind(l, port) == port);
	CHECK(scif_listen(l, 4) == 0);
	flags = fcntl(c, F_GETFL);
	CHECK(flags >= 0 && fcntl(c, F_SETFL, flags | O_NONBLOCK) == 0);
	CHECK_ERR(scif_connect(c, &to), EINPROGRESS);
	CHECK(scif_accept(l, &peer, server, SCIF_ACCEPT_SYNC) == 0);
	pe = (struct scif_pollepd){ .epd = c, .events = POLLOUT };
	CHECK(scif_poll(&pe, 1, -1) == 1 && pe.revents == POLLOUT);
	cport = scif_connect(c, &to);
	CHECK(cport == peer.port);
	CHECK(fcntl(c, F_SETFL, flags) == 0);
	CHECK(scif_close(l) == 0);
	*client = c;
}

/* ---- registered memory (registry.h) ---- */

#define WINDOW_MEMFD "memfd:scif-window"
/* Queue pairs' memory: an acceptor holds one per arena (arena.h), not per
 * connection. */
#define ARENA_MEMFD "memfd:scif-qp"

/* Whether socket inode ino is an inbox of the fabric's (abstract names
 * ".../inbox/<n>", as /proc/net/unix lists them). */
static inline bool is_inbox_socket(unsigned long ino)
{
	FILE *f = fopen("/proc/net/unix", "r");
	char line[512];
	bool found = false;

	CHECK(f != NULL);
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long i;
		char path[300] = "";

		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %299s", &i, path) >= 1)
			found = i == ino && strstr(path, "/inbox/") != NULL;
	}
	fclose(f);
	return found;
}

/* How many of this process's descriptors have a /proc/self/fd link that
 * `counts` accepts. */
static inline int count_fds(bool (*counts)(const char *target))
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	CHECK(d != NULL);
	while ((de = readdir(d))) {
		char path[300], target[300];
		ssize_t len;

		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (counts(target))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * Descriptors that are connections' (their sockets, control channels and RMA
 * bells) and endpoints': all but what the fabric holds once per process -
 * the service thread's epoll set, the process's inbox - and what is not a
 * connection's - window memfds (registrations' and the peer's, which the
 * service thread receives as they are announced), a listener's wake-up for
 * its blocked acceptors, an acceptor's arenas of queue pairs, the fdinfo
 * files of its last few callers (identity.c) and the descriptor a listening
 * process keeps spare (listener.c).
 */
static inline bool is_connection_fd(const char *target)
{
	unsigned long ino;

	return !(strcmp(target, "anon_inode:[eventpoll]") == 0 ||
		 strcmp(target, "anon_inode:[eventfd]") == 0 || strstr(target, WINDOW_MEMFD) ||
		 (strncmp(target, "/proc/", 6) == 0 && strstr(target, "/fdinfo/")) ||
		 strcmp(target, "/dev/null") == 0 ||
		 strstr(target, ARENA_MEMFD) || (sscanf(target, "socket:[%lu]", &ino) == 1 && is_inbox_socket(ino)));
}

static inline int count_connection_fds(void)
{
	return count_fds(is_connection_fd);
}

/* How many mappings of memfds named what (WINDOW_MEMFD, ARENA_MEMFD) this
 * process has. */
static inline int count_maps_of(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, what))
			n++;
	fclose(f);
	return n;
}

static inline int count_window_maps(void)
{
	return count_maps_of(WINDOW_MEMFD);
}

static inline bool is_window_fd(const char *target)
{
	return strstr(target, WINDOW_MEMFD) != NULL;
}

/* How many descriptors of window memfds this process holds. */
static inline int count_window_fds(void)
{
	return count_fds(is_window_fd);
}

/* The inode of the file mapped at p whose maps line names `name` (any file
 * if NULL), or 0 if p is not in such a mapping. */
static inline unsigned long inode_mapped_at(const void *p, const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	unsigned long ino = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		unsigned long i;

		if (sscanf(line, "%llx-%llx %*s %*s %*s %lu", &lo, &hi, &i) == 3 &&
		    (uintptr_t)p >= lo && (uintptr_t)p < hi) {
			ino = !name || strstr(line, name) ? i : 0;
			break;
		}
	}
	fclose(f);
	return ino;
}

/* The inode of the window memfd mapped at p, or 0 if p is not in one. */
static inline unsigned long window_inode(const void *p)
{
	return inode_mapped_at(p, WINDOW_MEMFD);
}

/* Fast checksums and fillers for large buffers: 8 bytes a step. */
static inline uint64_t sum64(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = FNV_START, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h ^ n;
}

static inline void fill64(void *p, size_t n, uint64_t seed)
{
	unsigned char *b = p;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
	for (; i < n; i++)
		b[i] = (unsigned char)(seed + i);
}

static inline size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Whether this thread has capability cap in its effective set. */
static inline bool has_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

	return syscall(SYS_capget, &hdr, caps) == 0 &&
	       (caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap));
}

/* Megabytes for the big cases: SCIF_TEST_MIB (valgrind runs use less), or
 * def - but no more than a quarter of what RLIMIT_MEMLOCK lets a process
 * register, which the fabric counts registrations against as MPSS 4 does
 * (unless the process has CAP_IPC_LOCK; run.sh raises the soft limit to the
 * hard one). */
static inline size_t test_mib(size_t def)
{
	const char *s = getenv("SCIF_TEST_MIB");
	size_t mib = s && atoi(s) > 0 ? (size_t)atoi(s) : def;
	struct rlimit rl;

	if (!has_cap(CAP_IPC_LOCK) && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && mib > (size_t)(rl.rlim_cur >> 20) / 4)
		mib = rl.rlim_cur >> 22 ? (size_t)(rl.rlim_cur >> 22) : 1;
	return mib;
}

#endif
