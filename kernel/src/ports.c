/*
 * ports.c - our node's port registry (a byte-range lock per port, which the
 * kernel drops with its holder) and the names the fabric's sockets go by:
 * a listener's path, a caller's abstract name (its request). And the
 * driver's question of privilege, capable(), which the admin ports ask
 * first (registrations too, of RLIMIT_MEMLOCK).
 */
#include "fabric.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool fabric_capable(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, caps) < 0)
		return geteuid() == 0;
	return caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
}

/* MPSS 4 hands out ephemeral ports from SCIF_PORT_RSVD + 1 (MPSS 3 from it). */
#define EPHEMERAL_BASE (SCIF_PORT_RSVD + 1)

int fabric_ports_open(struct fabric *f)
{
	char name[32];

	snprintf(name, sizeof(name), "ports.%u", f->self);
	f->ports_fd = openat(f->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (f->ports_fd < 0)
		return -errno;
	if (pthread_mutex_init(&f->ports_lock, NULL))
		return -ENOMEM;
	/* Start ephemeral ports somewhere different in every process, as TCP does,
	 * so that many processes do not all probe the same ports first. */
	f->next_ephemeral = (uint16_t)(EPHEMERAL_BASE +
		((unsigned)getpid() * 2654435761u) % (65536u - EPHEMERAL_BASE));
	return 0;
}

static bool port_is_mine(const struct fabric *f, uint16_t port)
{
	return f->ports_mine[port / 8] >> (port % 8) & 1;
}

static int port_lock(struct fabric *f, uint16_t port, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = port, .l_len = 1,
	};

	/* Open-file-description locks: released by the kernel if we die. */
	if (fcntl(f->ports_fd, F_OFD_SETLK, &fl) < 0)
		return errno == EAGAIN || errno == EACCES ? -EADDRINUSE : -errno;
	return 0;
}

static int claim_locked(struct fabric *f, uint16_t port)
{
	int err;

	if (port_is_mine(f, port))
		return -EADDRINUSE;
	err = port_lock(f, port, F_WRLCK);
	if (!err)
		f->ports_mine[port / 8] |= (uint8_t)(1u << (port % 8));
	return err;
}

int fabric_port_claim(struct fabric *f, uint16_t port)
{
	int err;

	if (port == 0)
		return -EINVAL;
	/* The driver's test: CAP_SYS_ADMIN, not the user id. */
	if (port < SCIF_ADMIN_PORT_END && !fabric_capable(CAP_SYS_ADMIN))
		return -EACCES;
	pthread_mutex_lock(&f->ports_lock);
	err = claim_locked(f, port);
	pthread_mutex_unlock(&f->ports_lock);
	return err;
}

int fabric_port_claim_any(struct fabric *f)
{
	const unsigned span = 65536u - EPHEMERAL_BASE;
	int found = -ENOSPC;

	pthread_mutex_lock(&f->ports_lock);
	for (unsigned i = 0; i < span; i++) {
		uint16_t port = f->next_ephemeral;

		f->next_ephemeral = port == 65535 ? EPHEMERAL_BASE : port + 1;
		if (claim_locked(f, port) == 0) {
			found = port;
			break;
		}
	}
	pthread_mutex_unlock(&f->ports_lock);
	return found;
}

void fabric_port_release(struct fabric *f, uint16_t port)
{
	pthread_mutex_lock(&f->ports_lock);
	if (port_is_mine(f, port) && port_lock(f, port, F_UNLCK) == 0)
		f->ports_mine[port / 8] &= (uint8_t)~(1u << (port % 8));
	pthread_mutex_unlock(&f->ports_lock);
}

int fabric_listener_addr(const struct fabric *f, uint16_t node, uint16_t port,
			 struct sockaddr_un *sa, socklen_t *len)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/n%up%u", f->dir, node, port);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		/* A deep fabric directory: reach it through our open descriptor. */
		n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/n%up%u",
			     f->dirfd, node, port);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

#define CALLER_FORMAT "scif-net/%llx/%llx/%u/%u"
#define CALLER_FLAGS "/%x"	/* only when there are some */

void fabric_caller_addr(const struct fabric *f, uint16_t node, uint16_t port, uint32_t flags,
			struct sockaddr_un *sa, socklen_t *len)
{
	size_t room = sizeof(sa->sun_path) - 1;
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* Abstract namespace: the name goes away with the socket, crash or not. */
	n = snprintf(sa->sun_path + 1, room, CALLER_FORMAT, f->dev, f->ino, node, port);
	if (flags)
		n += snprintf(sa->sun_path + 1 + n, room - (size_t)n, CALLER_FLAGS, flags);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

bool fabric_parse_caller(const struct fabric *f, const struct sockaddr_un *sa,
			 socklen_t len, struct scif_portID *id, uint32_t *flags)
{
	size_t base = offsetof(struct sockaddr_un, sun_path);
	char name[sizeof(sa->sun_path)];
	unsigned long long dev, ino;
	unsigned node, port, fl = 0;
	size_t n;
	int used = -1, more = -1;

	if (len <= base + 1 || sa->sun_path[0] != '\0')
		return false;
	n = len - base - 1;
	memcpy(name, sa->sun_path + 1, n);
	name[n] = '\0';
	if (sscanf(name, CALLER_FORMAT "%n", &dev, &ino, &node, &port, &used) != 4 ||
	    used < 0 || dev != f->dev || ino != f->ino ||
	    node >= f->table->node_count || port == 0 || port > 65535)
		return false;
	if ((size_t)used != n &&
	    (sscanf(name + used, CALLER_FLAGS "%n", &fl, &more) != 1 ||
	     (size_t)(used + more) != n || fl == 0))
		return false;
	id->node = (uint16_t)node;
	id->port = (uint16_t)port;
	*flags = fl;
	return true;
}
