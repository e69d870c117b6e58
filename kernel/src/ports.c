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
#include <stdlib.h>
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

static int open_registry(const struct fabric *f)
{
	char name[32];

	snprintf(name, sizeof(name), "ports.%u", f->self);
	return openat(f->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
}

static int lock_on(int fd, uint16_t port, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = port, .l_len = 1,
	};

	/* Open-file-description locks: released by the kernel if we die. */
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return errno == EAGAIN || errno == EACCES ? -EADDRINUSE : -errno;
	return 0;
}

/*
 * A child forked without exec shares its parent's open registry, so its
 * locks would be its parent's: it gets one of its own. Its parent's claims
 * stay its parent's; the listeners it inherited (their descriptors are its
 * too) it holds as any other holder does, shared, so that its close or its
 * death is one holder leaving, not the listener going. (A lost fabric's
 * registry cannot be opened again: the child keeps its parent's, for
 * listeners that are taken down anyway.) fabric.c calls these for every
 * fabric of the process.
 */
void fabric_ports_prepare(struct fabric *f)
{
	pthread_mutex_lock(&f->ports_lock);
}

void fabric_ports_parent(struct fabric *f)
{
	pthread_mutex_unlock(&f->ports_lock);
}

void fabric_ports_child(struct fabric *f)
{
	int fd = open_registry(f);
	size_t kept = 0;

	if (fd >= 0) {
		memset(f->ports_mine, 0, sizeof(f->ports_mine));
		for (size_t i = 0; i < f->nheld; i++) {
			uint16_t port = f->held[i].port;

			if (lock_on(fd, port, F_RDLCK) == 0) {
				f->held[kept++] = f->held[i];
				f->ports_mine[port / 8] |= (uint8_t)(1u << (port % 8));
			}
		}
		f->nheld = kept;
		close(f->ports_fd);	/* the parent's, which keeps it */
		f->ports_fd = fd;
	}
	pthread_mutex_unlock(&f->ports_lock);
}

int fabric_ports_open(struct fabric *f)
{
	f->ports_fd = open_registry(f);
	if (f->ports_fd < 0)
		return -errno;
	if (pthread_mutex_init(&f->ports_lock, NULL))
		return -ENOMEM;
	/* Start ephemeral ports somewhere different in every process, as TCP does,
	 * so that many processes do not all probe the same ports first. */
	f->first_ephemeral = (uint16_t)(EPHEMERAL_BASE +
		((unsigned)getpid() * 2654435761u) % (65536u - EPHEMERAL_BASE));
	f->next_ephemeral = f->first_ephemeral;
	return 0;
}

/* How far an ephemeral port is from this process's first, going up and
 * round: the order in which it hands them out. */
static unsigned ephemeral_rank(const struct fabric *f, uint16_t port)
{
	const unsigned span = 65536u - EPHEMERAL_BASE;

	return ((unsigned)port + span - f->first_ephemeral) % span;
}

static bool port_is_mine(const struct fabric *f, uint16_t port)
{
	return f->ports_mine[port / 8] >> (port % 8) & 1;
}

static int port_lock(struct fabric *f, uint16_t port, short type)
{
	return lock_on(f->ports_fd, port, type);
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
	if (port_is_mine(f, port) && port_lock(f, port, F_UNLCK) == 0) {
		f->ports_mine[port / 8] &= (uint8_t)~(1u << (port % 8));
		/* Handed out again first, as the driver's idr hands out the
		 * lowest free port: our ports stay together, and so does the
		 * list of our registry's locks, which an acceptor reads for every
		 * caller of ours (identity.c) - one range per port once they
		 * scatter, 50-240 us a read at 100-500 ports. */
		if (port >= EPHEMERAL_BASE && ephemeral_rank(f, port) < ephemeral_rank(f, f->next_ephemeral))
			f->next_ephemeral = port;
	}
	pthread_mutex_unlock(&f->ports_lock);
}

/* ---- listeners' ports, held shared ---- */

static struct port_hold *find_hold(struct fabric *f, uint16_t port)
{
	for (size_t i = 0; i < f->nheld; i++)
		if (f->held[i].port == port)
			return &f->held[i];
	return NULL;
}

static int add_hold(struct fabric *f, uint16_t port)
{
	if (f->nheld == f->held_cap) {
		size_t cap = f->held_cap ? 2 * f->held_cap : 8;
		struct port_hold *grown = realloc(f->held, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		f->held = grown;
		f->held_cap = cap;
	}
	f->held[f->nheld++] = (struct port_hold){ .port = port, .holds = 1 };
	return 0;
}

void fabric_port_share(struct fabric *f, uint16_t port)
{
	pthread_mutex_lock(&f->ports_lock);
	/* Our exclusive lock becomes a shared one in place (never refused):
	 * binds elsewhere still fail, adoptions succeed. With no memory for
	 * the count the port simply stays exclusive: nobody can adopt it. */
	if (add_hold(f, port) == 0 && port_lock(f, port, F_RDLCK) != 0)
		f->nheld--;
	pthread_mutex_unlock(&f->ports_lock);
}

int fabric_port_adopt(struct fabric *f, uint16_t port)
{
	struct port_hold *h;
	int err = 0;

	pthread_mutex_lock(&f->ports_lock);
	h = find_hold(f, port);
	if (h) {
		h->holds++;
	} else if (port_is_mine(f, port)) {
		err = -EADDRINUSE;	/* ours, for an endpoint that is not this listener */
	} else {
		err = port_lock(f, port, F_RDLCK);
		if (!err) {
			err = add_hold(f, port);
			if (err)
				(void)port_lock(f, port, F_UNLCK);
			else
				f->ports_mine[port / 8] |= (uint8_t)(1u << (port % 8));
		}
	}
	pthread_mutex_unlock(&f->ports_lock);
	return err;
}

bool fabric_port_leave(struct fabric *f, uint16_t port)
{
	struct port_hold *h;
	bool last = false;

	pthread_mutex_lock(&f->ports_lock);
	h = find_hold(f, port);
	if (h && --h->holds > 0) {
		pthread_mutex_unlock(&f->ports_lock);
		return false;
	}
	if (h)
		*h = f->held[--f->nheld];
	/* Ours alone if no other process holds a share: the upgrade succeeds.
	 * Two holders leaving at once may each find the other's share; each
	 * then lets go and tries once more, and the second of those tries
	 * finds nobody (a third process that claimed the port meanwhile owns
	 * it, and any name left there is its to replace). */
	if (port_lock(f, port, F_WRLCK) == 0) {
		last = true;
	} else {
		(void)port_lock(f, port, F_UNLCK);
		last = port_lock(f, port, F_WRLCK) == 0;
	}
	if (!last)
		f->ports_mine[port / 8] &= (uint8_t)~(1u << (port % 8));
	pthread_mutex_unlock(&f->ports_lock);
	return last;
}

/* Byte port of the registry file (whose locks are the claims) holds the
 * listener's record: RECORD_VALID, so a byte never written reads as none. */
#define RECORD_VALID 0x80u

int fabric_listener_record(struct fabric *f, uint16_t port, uint32_t flags)
{
	uint8_t rec = (uint8_t)(RECORD_VALID | (flags & 0x7fu));

	return pwrite(f->ports_fd, &rec, 1, port) == 1 ? 0 : -errno;
}

uint32_t fabric_listener_flags(struct fabric *f, uint16_t port)
{
	uint8_t rec = 0;

	if (pread(f->ports_fd, &rec, 1, port) != 1 || !(rec & RECORD_VALID))
		return 0;
	return rec & 0x7fu;
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

void fabric_listener_unlink(const struct fabric *f, uint16_t port)
{
	char name[32];

	snprintf(name, sizeof(name), "n%up%u", f->self, port);
	(void)unlinkat(f->dirfd, name, 0);
}

/* Fields: the fabric (its directory's device and inode), the caller's node
 * and port, then its flags, descriptor and inbox, its open port registry
 * (identity.c checks the port's lock there) and a random nonce (abstract
 * names are anyone's to bind: one we cannot guess cannot be taken ahead of
 * us, and bind tries again if it was). Names of older builds
 * (without the last three) do not parse: the acceptor refuses them with
 * EPROTO, as it refuses any caller that is not one of ours. */
#define CALLER_FORMAT "scif-net/%llx/%llx/%u/%u/%x/%x/%x/%x/%llx"

/* An abstract name: gone with its socket, crash or not. */
static socklen_t abstract_addr(struct sockaddr_un *sa, int n)
{
	sa->sun_family = AF_UNIX;
	sa->sun_path[0] = '\0';
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

void fabric_caller_addr(const struct fabric *f, const struct fabric_caller *c,
			struct sockaddr_un *sa, socklen_t *len)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, CALLER_FORMAT, f->dev, f->ino,
		     c->id.node, c->id.port, c->flags, (unsigned)c->epd, c->inbox, (unsigned)c->pfd,
		     (unsigned long long)c->nonce);
	*len = abstract_addr(sa, n);
}

bool fabric_parse_caller(const struct fabric *f, const struct sockaddr_un *sa,
			 socklen_t len, struct fabric_caller *c)
{
	size_t base = offsetof(struct sockaddr_un, sun_path);
	char name[sizeof(sa->sun_path)];
	unsigned long long dev, ino;
	unsigned node, port, flags, epd, inbox, pfd;
	unsigned long long nonce;
	size_t n;
	int used = -1;

	if (len <= base + 1 || sa->sun_path[0] != '\0')
		return false;
	n = len - base - 1;
	memcpy(name, sa->sun_path + 1, n);
	name[n] = '\0';
	if (sscanf(name, CALLER_FORMAT "%n", &dev, &ino, &node, &port, &flags, &epd, &inbox,
		   &pfd, &nonce, &used) != 9 ||
	    (size_t)used != n || dev != f->dev || ino != f->ino ||
	    node >= f->node_count || port == 0 || port > 65535 || epd > INT32_MAX ||
	    pfd > INT32_MAX)
		return false;
	c->id.node = (uint16_t)node;
	c->id.port = (uint16_t)port;
	c->flags = flags;
	c->epd = (int32_t)epd;
	c->inbox = inbox;
	c->pfd = (int32_t)pfd;
	c->nonce = nonce;
	return true;
}

void fabric_inbox_addr(const struct fabric *f, uint32_t inbox, struct sockaddr_un *sa,
		       socklen_t *len)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "scif-net/%llx/%llx/inbox/%x",
		     f->dev, f->ino, inbox);
	*len = abstract_addr(sa, n);
}
