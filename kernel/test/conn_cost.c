/*
 * conn_cost - what an idle connection costs: N connections opened from one
 * process to a listener in another, over the fabric and, in the same run,
 * over Unix stream sockets and TCP loopback for comparison. For each: the
 * caller's wall time for the N connects - one after the other (each waits
 * for its answer), and all at once (non-blocking, as an event loop opens
 * them) - the CPU time each side spent, and resident memory per connection
 * on each side (RSS, of which shared memory: the queue pairs' pages).
 *
 *   make conn-cost           (N = 2000, in a fabric of its own)
 *   out/conn_cost [N]        (SCIF_NET_FABRIC as for the tests;
 *                             CONN_COST_FABRIC=1: the fabric alone, in turn)
 *
 * Not a test (make test does not run it): a measurement, for the benchmark's
 * question of what the fabric's own share of a connection is.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "check.h"

#define PORT 4400

enum kind { FABRIC, UNIX, TCP, NKINDS };

static const char *const kind_name[NKINDS] = { "fabric", "unix", "tcp" };

struct mem {
	long rss, shmem;	/* KiB */
};

static struct mem mem_now(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	struct mem m = { 0, 0 };

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		(void)sscanf(line, "VmRSS: %ld", &m.rss);
		(void)sscanf(line, "RssShmem: %ld", &m.shmem);
	}
	fclose(f);
	return m;
}

/* What a side tells the other through a pipe. */
struct report {
	struct mem before, after;
	double ms, cpu_ms;
};

static double cpu_ms(void)
{
	struct rusage ru;

	CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static pid_t caller;	/* names the Unix listener */

static socklen_t unix_addr(struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "conn_cost/%d", (int)caller);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   strlen(sa->sun_path + 1));
}

static int plain_listener(enum kind kind, int n, uint16_t *port)
{
	int fd = socket(kind == UNIX ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	if (kind == UNIX) {
		struct sockaddr_un sa;
		socklen_t len = unix_addr(&sa);

		CHECK(bind(fd, (struct sockaddr *)&sa, len) == 0);
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sa);

		CHECK(bind(fd, (struct sockaddr *)&sa, len) == 0);
		CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
		*port = ntohs(sa.sin_port);
	}
	CHECK(listen(fd, n) == 0);
	return fd;
}

/* The listening side: accepts n, reports, waits to be told to go. */
static void serve(enum kind kind, int n, int to_parent, int from_parent)
{
	struct report r;
	uint16_t port = PORT;
	int l, one;
	char go;

	l = kind == FABRIC ? listen_on(PORT, n) : plain_listener(kind, n, &port);
	r.before = mem_now();
	r.cpu_ms = cpu_ms();
	CHECK(write(to_parent, &port, sizeof(port)) == sizeof(port));
	for (int i = 0; i < n; i++) {
		if (kind == FABRIC) {
			struct scif_portID who;

			CHECK(scif_accept(l, &who, &one, SCIF_ACCEPT_SYNC) == 0);
		} else {
			CHECK((one = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0);
		}
	}
	r.after = mem_now();
	r.cpu_ms = cpu_ms() - r.cpu_ms;
	r.ms = 0;
	CHECK(write(to_parent, &r, sizeof(r)) == sizeof(r));
	CHECK(read(from_parent, &go, 1) == 1);
	_exit(0);
}

/* Connects answered at once (none, unless the listener was quicker than
 * the caller's return): nothing to finish. */
static bool *answered;

/* A connect, finished (wait) or under way: the descriptor. */
static int plain_connect(enum kind kind, uint16_t port, bool wait)
{
	int fd = socket(kind == UNIX ? AF_UNIX : AF_INET,
			SOCK_STREAM | SOCK_CLOEXEC | (wait ? 0 : SOCK_NONBLOCK), 0);
	int rc;

	CHECK(fd >= 0);
	if (kind == UNIX) {
		struct sockaddr_un sa;
		socklen_t len = unix_addr(&sa);

		rc = connect(fd, (struct sockaddr *)&sa, len);
	} else {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	CHECK(rc == 0 || (!wait && errno == EINPROGRESS));
	return fd;
}

static int fabric_connect(uint16_t port, bool wait, bool *done)
{
	struct scif_portID to = { .node = 0, .port = port };
	int epd = scif_open(), rc;

	CHECK(epd >= 0);
	if (!wait)
		CHECK(fcntl(epd, F_SETFL, O_NONBLOCK) == 0);
	rc = scif_connect(epd, &to);
	CHECK(rc > 0 || (!wait && errno == EINPROGRESS));
	*done = rc > 0;
	return epd;
}

/* Waits for every connect under way in fds to finish. */
static void finish_all(enum kind kind, int *fds, int n, uint16_t port)
{
	struct scif_portID to = { .node = 0, .port = port };
	struct pollfd *p = malloc((size_t)n * sizeof(*p));
	int left = n;

	CHECK(p != NULL);
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = answered[i] ? -1 : fds[i], .events = POLLOUT };
	while (left > 0) {
		int m = 0;

		CHECK(poll(p, (nfds_t)left, -1) > 0);
		for (int i = 0; i < left; i++) {
			if (p[i].fd < 0)
				continue;
			if (!p[i].revents) {
				p[m++] = p[i];
				continue;
			}
			if (kind == FABRIC) {
				CHECK(scif_connect(p[i].fd, &to) > 0);
			} else {
				int err = 0;
				socklen_t len = sizeof(err);

				CHECK(getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && !err);
			}
		}
		left = m;
	}
	free(p);
}

static void measure(enum kind kind, int n, bool at_once, struct report *client,
		    struct report *server)
{
	int up[2], down[2];
	int *fds = malloc((size_t)n * sizeof(int));
	uint16_t port;
	pid_t pid;
	double t0;

	CHECK(fds != NULL && pipe(up) == 0 && pipe(down) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		serve(kind, n, up[1], down[0]);
	}
	close(up[1]);
	close(down[0]);
	CHECK(read(up[0], &port, sizeof(port)) == sizeof(port));
	client->before = mem_now();
	client->cpu_ms = cpu_ms();
	t0 = now_ms();
	for (int i = 0; i < n; i++) {
		answered[i] = false;
		fds[i] = kind == FABRIC ? fabric_connect(port, !at_once, &answered[i]) :
					  plain_connect(kind, port, !at_once);
	}
	if (at_once)
		finish_all(kind, fds, n, port);
	client->ms = now_ms() - t0;
	client->cpu_ms = cpu_ms() - client->cpu_ms;
	client->after = mem_now();
	CHECK(read(up[0], server, sizeof(*server)) == sizeof(*server));
	CHECK(write(down[1], "", 1) == 1);
	expect_exit(pid, 0);
	for (int i = 0; i < n; i++)
		CHECK(kind == FABRIC ? scif_close(fds[i]) == 0 : close(fds[i]) == 0);
	close(up[0]);
	close(down[1]);
	free(fds);
}

static double per_conn(const struct report *r, int n, bool shmem)
{
	long kib = shmem ? r->after.shmem - r->before.shmem : r->after.rss - r->before.rss;

	return (double)kib * 1024 / n;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	int kinds = getenv("CONN_COST_FABRIC") ? 1 : NKINDS;
	struct report c[NKINDS], s[NKINDS];
	struct rlimit rl;

	CHECK(n > 0);
	caller = getpid();
	answered = calloc((size_t)n, sizeof(*answered));
	CHECK(answered != NULL);
	/* 2 descriptors a connection in the caller (fabric and socket: one),
	 * and room. */
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_cur < (rlim_t)n * 2 + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n * 2 + 64 ? rl.rlim_max : (rlim_t)n * 2 + 64;
		CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	}
	CHECK(scif_net_self_node() == 0);
	printf("# %d idle connections, caller and listener in two processes\n", n);
	printf("# %-7s %-9s %9s %8s %12s %12s %10s %10s %10s\n", "", "connects", "wall", "per conn",
	       "caller CPU", "listener CPU", "caller", "listener", "(shared)");
	for (int once = 0; once < 2; once++) {
		for (int k = 0; k < kinds; k++)
			measure((enum kind)k, n, once, &c[k], &s[k]);
		for (int k = 0; k < kinds; k++)
			printf("# %-7s %-9s %6.1f ms %5.1f us %7.1f us/c %7.1f us/c %6.0f B/c %6.0f B/c %6.0f B/c\n",
			       kind_name[k], once ? "at once" : "in turn", c[k].ms,
			       c[k].ms * 1000 / n, c[k].cpu_ms * 1000 / n, s[k].cpu_ms * 1000 / n,
			       per_conn(&c[k], n, false), per_conn(&s[k], n, false),
			       per_conn(&s[k], n, true));
		if (kinds == 1)
			break;	/* for a profile of the fabric's alone */
		printf("# %s: fabric / unix %.2fx the wall time, fabric / tcp %.2fx\n",
		       once ? "at once" : "in turn", c[FABRIC].ms / c[UNIX].ms,
		       c[FABRIC].ms / c[TCP].ms);
	}
	return 0;
}
