/*
 * identity.c - who a caller is, as the fabric knows it rather than as the
 * caller says.
 *
 * A caller's request (its abstract name, ports.c) names its node and port.
 * Anyone of our uid can bind any name, so the acceptor checks the claim
 * against what the kernel knows of the caller's process, the one that
 * connected (SO_PEERCRED):
 *  - the port: a port is a lock on its byte of the node's registry
 *    (ports.<node>), and the request names the caller's open registry. Its
 *    /proc/<pid>/fdinfo lists the locks held through it: one must be on the
 *    port's byte of that very file. Nobody can forge another process's
 *    fdinfo, so a caller holds the port it claims, on the node it claims -
 *    being on a node is holding a port of its registry;
 *  - a port below 1024 (SCIF_ADMIN_PORT_END): the caller must have
 *    CAP_SYS_ADMIN, which scif_bind asks for it too, so that a process that
 *    takes the lock by hand is refused all the same.
 * A caller of another uid cannot reach the listener at all (the fabric's
 * directory is 0700); root may, as it may anything.
 *
 * What it costs the acceptor: a getsockopt, an fstatat and the read of one
 * fdinfo file per connection (microseconds).
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <unistd.h>

#include "fabric.h"

/* Whether one fdinfo "lock:" line is a lock on byte port of the file dev:ino. */
static bool locks_port(const char *line, dev_t dev, ino_t ino, uint16_t port)
{
	unsigned maj, mn;
	unsigned long long start, inode, end;
	char kind[16], mode[16], rw[16], last[24];
	int pid;

	/* "lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:2148267 5 5"; the kernel
	 * merges a holder's adjacent bytes into one range, up to EOF. */
	if (sscanf(line, "lock: %*d: %15s %15s %15s %d %x:%x:%llu %llu %23s", kind, mode, rw, &pid,
		   &maj, &mn, &inode, &start, last) != 9)
		return false;
	end = strcmp(last, "EOF") == 0 ? UINT64_MAX : strtoull(last, NULL, 10);
	return strcmp(kind, "OFDLCK") == 0 && maj == major(dev) && mn == minor(dev) &&
	       inode == (unsigned long long)ino && start <= port && port <= end;
}

/* 1 if pid's descriptor pfd holds a lock on the port's byte of st's file,
 * 0 if not, -errno if its fdinfo cannot be read. */
static int holds_port(pid_t pid, int pfd, const struct stat *st, uint16_t port)
{
	char path[64], line[256];
	FILE *in;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, pfd);
	in = fopen(path, "re");
	if (!in)
		return -errno;
	while (!found && fgets(line, sizeof(line), in))
		found = strncmp(line, "lock:", 5) == 0 && locks_port(line, st->st_dev, st->st_ino, port);
	fclose(in);
	return found;
}

static bool pid_capable(pid_t pid, int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = pid };
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, caps) < 0)
		return false;
	return caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

int fabric_verify_caller(const struct fabric *f, int fd, const struct fabric_caller *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat st;
	char name[32];
	int held;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (cred.uid != geteuid() && cred.uid != 0)
		return -EACCES;
	if (c->id.port < SCIF_ADMIN_PORT_END && !pid_capable(cred.pid, CAP_SYS_ADMIN))
		return -EACCES;
	snprintf(name, sizeof(name), "ports.%u", c->id.node);
	if (fstatat(f->dirfd, name, &st, 0) < 0)
		return errno == ENOENT ? -EPROTO : -errno;	/* ENOENT: nobody ever held a port there */
	held = holds_port(cred.pid, c->pfd, &st, c->id.port);
	/* A /proc we may not read (hidepid) leaves the claim unchecked rather
	 * than refuse every caller; out of descriptors, we cannot tell (and
	 * say so); a caller gone meanwhile is refused. */
	if (held == -EACCES || held == -EPERM)
		return 0;
	if (held == -EMFILE || held == -ENFILE || held == -ENOMEM)
		return held;
	return held == 1 ? 0 : -EPROTO;
}
