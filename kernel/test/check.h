/*
 * check.h - the fabric tests' few tools: checks that name what failed, and
 * helper processes that play other nodes.
 */
#ifndef SCIF_NET_CHECK_H
#define SCIF_NET_CHECK_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
	int p[2];
	pid_t pid;

	CHECK(pipe(p) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char nodebuf[16], fdbuf[16];

		close(p[0]);
		snprintf(nodebuf, sizeof(nodebuf), "%d", node);
		snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
		setenv("SCIF_NET_NODE", nodebuf, 1);
		setenv("SCIF_TEST_READY", fdbuf, 1);
		execl("/proc/self/exe", "child", role, arg ? arg : "", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	*ready = p[0];
	return pid;
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

#endif
