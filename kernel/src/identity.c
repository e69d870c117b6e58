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
 * What it costs the acceptor: a getsockopt and the read of one fdinfo file
 * per connection (microseconds; the last few callers' stay open); each
 * node's registry is looked up once, and again only before a claim on it is
 * refused. The caller's uid is compared with the fabric directory's owner,
 * which open_dir (fabric.c) made sure was our euid, rather than with a
 * geteuid() per connection: the 0700 directory lets in its owner and root,
 * and so does the check.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/random.h>
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

/* ---- nonces ----
 * A caller's name carries a fresh random nonce (fabric.h); getrandom() is
 * asked for a batch at a time, as one call per connection was a noticeable
 * share of the handshake's. A forked child forgets the batch it shares with
 * its parent (the two would pick the same names). */
#define NONCE_BATCH 32	/* 256 bytes: getrandom() fills that much in one go */

static pthread_mutex_t nonce_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t nonce_pool[NONCE_BATCH];
static unsigned nonce_left;
static pthread_once_t nonce_once = PTHREAD_ONCE_INIT;

static void nonce_prepare(void)
{
	pthread_mutex_lock(&nonce_lock);
}

static void nonce_parent(void)
{
	pthread_mutex_unlock(&nonce_lock);
}

static void nonce_child(void)
{
	nonce_left = 0;
	pthread_mutex_unlock(&nonce_lock);
}

static void nonce_atfork(void)
{
	pthread_atfork(nonce_prepare, nonce_parent, nonce_child);
}

int fabric_nonce(uint64_t *nonce)
{
	int err = 0;

	pthread_once(&nonce_once, nonce_atfork);
	pthread_mutex_lock(&nonce_lock);
	if (nonce_left == 0) {
		if (getrandom(nonce_pool, sizeof(nonce_pool), 0) == (ssize_t)sizeof(nonce_pool))
			nonce_left = NONCE_BATCH;
		else
			err = errno ? -errno : -EIO;
	}
	if (!err) {
		*nonce = nonce_pool[--nonce_left];
		nonce_pool[nonce_left] = 0;	/* handed out once */
	}
	pthread_mutex_unlock(&nonce_lock);
	return err;
}

/* ---- callers' fdinfo, kept open ----
 * Opening, reading and closing a caller's fdinfo for every connection was
 * three system calls where one does: the last few callers' files stay open
 * and are read again from offset 0, where the kernel writes them anew
 * (seq_file). A kept file believes nothing it should not: once its process
 * is gone, reading it fails (ESRCH) even when the pid is taken again, the
 * file being the old task's; a caller's descriptor closed or reused reads as
 * a fresh open of the path would. All the same, only "held" is taken from a
 * kept file; anything else is asked again of a fresh open. A forked child
 * closes what it inherited: its table is its parent's copy. */
#define KEPT_FDINFO 8

struct kept_fdinfo {
	pid_t pid;
	int pfd;
	int fd;		/* -1: a free slot */
};

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept_fdinfo kept[KEPT_FDINFO];
static unsigned kept_next;	/* the slot taken when none is free */
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;

static void kept_prepare(void)
{
	pthread_mutex_lock(&kept_lock);
}

static void kept_parent(void)
{
	pthread_mutex_unlock(&kept_lock);
}

static void kept_child(void)
{
	for (unsigned i = 0; i < KEPT_FDINFO; i++) {
		if (kept[i].fd >= 0)
			close(kept[i].fd);
		kept[i].fd = -1;
	}
	pthread_mutex_unlock(&kept_lock);
}

static void kept_init(void)
{
	for (unsigned i = 0; i < KEPT_FDINFO; i++)
		kept[i].fd = -1;
	pthread_atfork(kept_prepare, kept_parent, kept_child);
}

/* Takes pid's kept fdinfo of pfd out of the table, so that no other thread
 * reads it meanwhile: its descriptor, or -1. */
static int kept_take(pid_t pid, int pfd)
{
	int fd = -1;

	pthread_once(&kept_once, kept_init);
	pthread_mutex_lock(&kept_lock);
	for (unsigned i = 0; i < KEPT_FDINFO; i++) {
		if (kept[i].fd >= 0 && kept[i].pid == pid && kept[i].pfd == pfd) {
			fd = kept[i].fd;
			kept[i].fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&kept_lock);
	return fd;
}

/* Keeps fd as pid's fdinfo of pfd: in a free slot, or in the place of the
 * one kept longest. */
static void kept_put(pid_t pid, int pfd, int fd)
{
	unsigned i = 0;
	int old = -1;

	pthread_mutex_lock(&kept_lock);
	while (i < KEPT_FDINFO && kept[i].fd >= 0)
		i++;
	if (i == KEPT_FDINFO) {
		i = kept_next;
		kept_next = (kept_next + 1) % KEPT_FDINFO;
		old = kept[i].fd;
	}
	kept[i] = (struct kept_fdinfo){ .pid = pid, .pfd = pfd, .fd = fd };
	pthread_mutex_unlock(&kept_lock);
	if (old >= 0)
		close(old);
}

/* ---- claims ---- */

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

/* 1 if the open fdinfo file fd lists a lock on the port's byte of st's
 * file, 0 if not, -errno if it cannot be read. Read from its start without
 * stdio, and no further than the line that answers (one read, usually). */
static int fdinfo_locks_port(int fd, const struct stat *st, uint16_t port)
{
	char buf[4096];
	size_t have = 0;
	off_t at = 0;
	ssize_t n = 0;
	int found = 0;

	while (!found && (n = pread(fd, buf + have, sizeof(buf) - 1 - have, at)) > 0) {
		char *line = buf, *end;

		at += n;
		have += (size_t)n;
		buf[have] = '\0';
		while (!found && (end = strchr(line, '\n'))) {
			*end = '\0';
			found = strncmp(line, "lock:", 5) == 0 &&
				locks_port(line, st->st_dev, st->st_ino, port);
			line = end + 1;
		}
		/* Keep a line not yet whole; one that fills the buffer is no lock line. */
		have = (size_t)(buf + have - line);
		if (have == sizeof(buf) - 1)
			have = 0;
		memmove(buf, line, have);
	}
	return found || n == 0 ? found : -errno;
}

/* 1 if pid's descriptor pfd holds a lock on the port's byte of st's file,
 * 0 if not, -errno if its fdinfo cannot be opened. */
static int holds_port(pid_t pid, int pfd, const struct stat *st, uint16_t port)
{
	char path[64];
	int fd = kept_take(pid, pfd), found;

	if (fd >= 0) {
		if (fdinfo_locks_port(fd, st, port) == 1) {
			kept_put(pid, pfd, fd);
			return 1;
		}
		close(fd);	/* its process gone, or the answer no: ask anew */
	}
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, pfd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	found = fdinfo_locks_port(fd, st, port);
	if (found == 1) {
		kept_put(pid, pfd, fd);
		return 1;
	}
	close(fd);
	return 0;	/* not held, or unreadable once open: refused, as before */
}

static bool pid_capable(pid_t pid, int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = pid };
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, caps) < 0)
		return false;
	return caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

/* Node's registry, as last seen or (fresh) looked up now: 0, -EPROTO when
 * nobody ever held a port there, or -errno. Looking it up for every caller
 * was a system call per connection; the file stays for the fabric's life,
 * and a claim that fails on what was seen looks again (fabric_verify_caller). */
static int registry_of(struct fabric *f, uint16_t node, bool fresh, struct stat *st)
{
	struct registry_seen *seen = &f->registry_seen[node % SCIF_NET_MAX_NODES];
	char name[32];

	pthread_mutex_lock(&f->ports_lock);
	st->st_dev = (dev_t)seen->dev;
	st->st_ino = (ino_t)seen->ino;
	pthread_mutex_unlock(&f->ports_lock);
	if (!fresh && st->st_ino != 0)
		return 0;
	snprintf(name, sizeof(name), "ports.%u", node);
	if (fstatat(f->dirfd, name, st, 0) < 0)
		return errno == ENOENT ? -EPROTO : -errno;	/* ENOENT: nobody ever held a port there */
	pthread_mutex_lock(&f->ports_lock);
	seen->dev = st->st_dev;
	seen->ino = st->st_ino;
	pthread_mutex_unlock(&f->ports_lock);
	return 0;
}

int fabric_verify_caller(struct fabric *f, int fd, const struct fabric_caller *c, pid_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct stat st;
	int held, err;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (cred.uid != f->uid && cred.uid != 0)
		return -EACCES;
	*pid = cred.pid;
	if (c->id.port < SCIF_ADMIN_PORT_END && !pid_capable(cred.pid, CAP_SYS_ADMIN))
		return -EACCES;
	if (c->id.node >= SCIF_NET_MAX_NODES)
		return -EPROTO;
	err = registry_of(f, c->id.node, false, &st);
	if (err)
		return err;
	held = holds_port(cred.pid, c->pfd, &st, c->id.port);
	if (held == 0) {
		/* The registry may be another file than the one seen (made anew
		 * by a hand in the directory): look again before refusing. */
		struct stat now;

		err = registry_of(f, c->id.node, true, &now);
		if (err)
			return err;
		if (now.st_dev != st.st_dev || now.st_ino != st.st_ino)
			held = holds_port(cred.pid, c->pfd, &now, c->id.port);
	}
	/* A /proc we may not read (hidepid) leaves the claim unchecked rather
	 * than refuse every caller; out of descriptors, we cannot tell (and
	 * say so); a caller gone meanwhile is refused. */
	if (held == -EACCES || held == -EPERM)
		return 0;
	if (held == -EMFILE || held == -ENFILE || held == -ENOMEM)
		return held;
	return held == 1 ? 0 : -EPROTO;
}
