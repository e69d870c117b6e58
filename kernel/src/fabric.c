/*
 * fabric.c - opening the fabric directory, its node table and our node's
 * port registry.
 */
#include "fabric.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TABLE_MAGIC 0x53434e46u	/* "SCNF" */
#define TABLE_VERSION 1
#define TABLE_BYTES 4096

/* MPSS 4 hands out ephemeral ports from SCIF_PORT_RSVD + 1 (MPSS 3 from it). */
#define EPHEMERAL_BASE (SCIF_PORT_RSVD + 1)

static __thread char last_error[512];

void fabric_set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

void fabric_clear_error(void)
{
	last_error[0] = '\0';
}

const char *scif_net_last_error(void)
{
	return last_error;
}

/* Reads a whole decimal number from the environment; def when unset. */
static int env_number(const char *name, long min, long max, long def, long *out)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max) {
		fabric_set_error("%s=%s is not a number from %ld to %ld", name, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int default_dir(char *dir, size_t len)
{
	const char *env = getenv("SCIF_NET_FABRIC");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	int n;

	if (env && *env)
		n = snprintf(dir, len, "%s", env);
	else if (xdg && *xdg && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode))
		n = snprintf(dir, len, "%s/scif-net", xdg);
	else
		n = snprintf(dir, len, "/tmp/scif-net-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len) {
		fabric_set_error("fabric directory name is too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static int open_dir(struct fabric *f)
{
	struct stat st;

	if (mkdir(f->dir, 0700) < 0 && errno != EEXIST) {
		int err = errno;
		fabric_set_error("cannot create fabric directory %s: %s", f->dir, strerror(err));
		return -err;
	}
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		int err = errno;
		fabric_set_error("cannot open fabric directory %s: %s", f->dir, strerror(err));
		return -err;
	}
	if (fstat(f->dirfd, &st) < 0)
		return -errno;
	/* Anyone who can enter the directory can join the fabric: it must be ours alone. */
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		fabric_set_error("fabric directory %s must be owned by uid %u with mode 0700 (it is uid %u, mode %04o)",
				 f->dir, (unsigned)geteuid(), (unsigned)st.st_uid,
				 (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	f->dev = (unsigned long long)st.st_dev;
	f->ino = (unsigned long long)st.st_ino;
	return 0;
}

/* Writes a complete table under a private name, then links it into place, so
 * no process ever maps a half-written one; the first to link wins. */
static int create_table(struct fabric *f)
{
	char tmp[64];
	struct fabric_table *t;
	long nodes;
	int fd, err = 0;

	err = env_number("SCIF_NET_NODES", 1, SCIF_NET_MAX_NODES, FABRIC_DEFAULT_NODES, &nodes);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "nodes.%d.%ld", (int)getpid(), (long)time(NULL));
	fd = openat(f->dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, TABLE_BYTES) < 0) {
		err = -errno;
		goto out;
	}
	t = mmap(NULL, TABLE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	t->magic = TABLE_MAGIC;
	t->version = TABLE_VERSION;
	t->node_count = (uint32_t)nodes;
	atomic_init(&t->resets, 0);
	atomic_init(&t->online, nodes == 64 ? ~0ull : (1ull << nodes) - 1);
	for (int i = 0; i < SCIF_NET_MAX_NODES; i++)
		atomic_init(&t->epoch[i], 0);
	if (munmap(t, TABLE_BYTES) < 0)
		err = -errno;
	if (!err && linkat(f->dirfd, tmp, f->dirfd, "nodes", 0) < 0 && errno != EEXIST)
		err = -errno;
out:
	close(fd);
	unlinkat(f->dirfd, tmp, 0);
	return err;
}

static int open_table(struct fabric *f)
{
	struct stat st;
	int fd, err;

	fd = openat(f->dirfd, "nodes", O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		err = create_table(f);
		if (err)
			return err;
		fd = openat(f->dirfd, "nodes", O_RDWR | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < TABLE_BYTES) {
		close(fd);
		fabric_set_error("%s/nodes is not a fabric node table", f->dir);
		return -ENXIO;
	}
	f->table = mmap(NULL, TABLE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	err = f->table == MAP_FAILED ? -errno : 0;
	close(fd);
	if (err)
		return err;
	if (f->table->magic != TABLE_MAGIC || f->table->version != TABLE_VERSION ||
	    f->table->node_count < 1 || f->table->node_count > SCIF_NET_MAX_NODES) {
		fabric_set_error("%s/nodes was written by an incompatible fabric version", f->dir);
		return -ENXIO;
	}
	return 0;
}

static int open_ports(struct fabric *f)
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

static int fabric_open(struct fabric *f)
{
	long self, ring;
	int err;

	f->dirfd = -1;
	f->ports_fd = -1;
	err = default_dir(f->dir, sizeof(f->dir));
	if (!err)
		err = open_dir(f);
	if (!err)
		err = open_table(f);
	if (err)
		return err;
	err = env_number("SCIF_NET_NODE", 0, SCIF_NET_MAX_NODES - 1, 0, &self);
	if (err)
		return err;
	if ((uint32_t)self >= f->table->node_count) {
		fabric_set_error("SCIF_NET_NODE=%ld: the fabric in %s has nodes 0 to %u",
				 self, f->dir, f->table->node_count - 1);
		return -ENODEV;
	}
	f->self = (uint16_t)self;
	err = env_number("SCIF_NET_RING", 4096, 64L << 20, FABRIC_DEFAULT_RING, &ring);
	if (err)
		return err;
	if (ring & (ring - 1)) {
		fabric_set_error("SCIF_NET_RING=%ld is not a power of two", ring);
		return -EINVAL;
	}
	f->ring_size = (uint32_t)ring;
	return open_ports(f);
}

static struct fabric the_fabric;
static int the_error;
static char the_error_text[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fabric_init(void)
{
	the_error = fabric_open(&the_fabric);
	if (the_error)
		snprintf(the_error_text, sizeof(the_error_text), "%s", last_error);
}

struct fabric *fabric_get(void)
{
	pthread_once(&once, fabric_init);
	if (the_error) {
		/* Every thread that asks learns why, not only the first. */
		fabric_set_error("%s", the_error_text[0] ? the_error_text : strerror(-the_error));
		errno = -the_error;
		return NULL;
	}
	return &the_fabric;
}

bool fabric_node_exists(const struct fabric *f, uint16_t node)
{
	return node < f->table->node_count;
}

bool fabric_node_online(const struct fabric *f, uint16_t node)
{
	return fabric_node_exists(f, node) &&
	       (atomic_load_explicit(&f->table->online, memory_order_acquire) >> node & 1);
}

bool fabric_capable(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, caps) < 0)
		return geteuid() == 0;
	return caps[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap);
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
