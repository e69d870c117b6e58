/*
 * fabric.c - opening the fabric: its directory, its node table, and what
 * the environment says (the node, the ring size); errors in words; opening
 * it anew once its directory was removed (lost.h), and keeping the fabrics
 * a process had. Our node's port registry and the sockets' names are
 * ports.c's.
 */
#include "fabric.h"

#include <limits.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define TABLE_MAGIC 0x53434e46u	/* "SCNF" */
#define TABLE_VERSION 1
#define TABLE_BYTES 4096

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
	/* Not through a symlink: whoever made it chose where our fabric is. */
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f->dirfd < 0) {
		int err = errno;
		if (err == ELOOP || err == ENOTDIR)
			fabric_set_error("fabric directory %s is a symbolic link or not a directory: refused (remove it, or set SCIF_NET_FABRIC)",
					 f->dir);
		else
			fabric_set_error("cannot open fabric directory %s: %s", f->dir, strerror(err));
		return err == ELOOP || err == ENOTDIR ? -EACCES : -err;
	}
	if (fstat(f->dirfd, &st) < 0)
		return -errno;
	/* Anyone who can enter the directory can join the fabric: it must be ours alone. */
	if (st.st_uid != geteuid() || (st.st_mode & 077)) {
		fabric_set_error("fabric directory %s is refused: %s (it must be owned by uid %u with mode 0700; it is uid %u, mode %04o)",
				 f->dir, st.st_uid != geteuid() ? "another user owns it" :
				 "others may enter it", (unsigned)geteuid(), (unsigned)st.st_uid,
				 (unsigned)(st.st_mode & 07777));
		return -EACCES;
	}
	f->dev = (unsigned long long)st.st_dev;
	f->ino = (unsigned long long)st.st_ino;
	f->uid = st.st_uid;
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

/*
 * The node table is a plain file (every process of the fabric maps it, and
 * waits on a futex in it), so seals cannot keep it whole: `truncate -s 0
 * <fabric>/nodes` would make the next look at an epoch SIGBUS in every
 * process of the fabric. A SIGBUS inside the table's mapping instead puts an
 * anonymous page there saying every node is down and every epoch moved - a
 * lost table is a lost fabric: connections reset, connects fail with ENODEV
 * - and the access that faulted goes on. Any other SIGBUS goes to the
 * handler that was there before, or kills as it would have.
 */
static struct fabric *_Atomic current;	/* the newest fabric opened; older ones follow */
static struct sigaction table_prev_bus;

/* Whether addr is in the table of some fabric of ours: async-signal-safe. */
static struct fabric_table *table_of(const void *addr)
{
	const uint8_t *a = addr;

	for (struct fabric *f = atomic_load_explicit(&current, memory_order_acquire); f; f = f->older) {
		const uint8_t *base = (const uint8_t *)f->table;

		if (a >= base && a < base + TABLE_BYTES)
			return f->table;
	}
	return NULL;
}

static void table_lost(int sig, siginfo_t *si, void *uc)
{
	struct fabric_table *base = table_of(si->si_addr), *t;

	if (!base) {
		if (table_prev_bus.sa_flags & SA_SIGINFO) {
			table_prev_bus.sa_sigaction(sig, si, uc);
		} else if (table_prev_bus.sa_handler == SIG_IGN) {
			return;
		} else if (table_prev_bus.sa_handler != SIG_DFL) {
			table_prev_bus.sa_handler(sig);
		} else {
			/* Fault again, and die of it as if we were not here. */
			signal(SIGBUS, SIG_DFL);
		}
		return;
	}
	/* mmap is a system call: async-signal-safe in practice. */
	t = mmap(base, TABLE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0);
	if (t == MAP_FAILED) {
		signal(SIGBUS, SIG_DFL);
		return;
	}
	t->magic = TABLE_MAGIC;
	t->version = TABLE_VERSION;
	t->node_count = 0;
	atomic_store_explicit(&t->online, 0, memory_order_relaxed);
	for (int i = 0; i < SCIF_NET_MAX_NODES; i++)
		atomic_store_explicit(&t->epoch[i], UINT32_MAX, memory_order_relaxed);
	/* Not a count any watcher has seen: it looks once more, finds
	 * every epoch moved, and resets everything. */
	atomic_store_explicit(&t->resets, UINT32_MAX, memory_order_release);
}

/* Once per process, for every table it will map (table_of): a second
 * sigaction would take our own handler for the one before it. */
static int table_guard(void)
{
	static bool guarded;	/* under the opening's serialization (fabric_get) */
	struct sigaction sa;

	if (guarded)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = table_lost;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &table_prev_bus) < 0) {
		int err = errno;

		fabric_set_error("cannot guard the node table against SIGBUS: %s", strerror(err));
		return -err;
	}
	guarded = true;
	return 0;
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
	/* Read once: the table is a file anyone of ours may scribble on, and
	 * the count bounds every index into it. */
	f->node_count = f->table->node_count;
	return table_guard();
}

static int fabric_open(struct fabric *f)
{
	long self, ring, cap, reclaim;
	int err;

	f->dirfd = -1;
	f->ports_fd = -1;
	f->inbox_fd = -1;
	f->table = MAP_FAILED;
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
	if ((uint32_t)self >= f->node_count) {
		fabric_set_error("SCIF_NET_NODE=%ld: the fabric in %s has nodes 0 to %u",
				 self, f->dir, f->node_count - 1);
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
	err = env_number("SCIF_NET_RING_MEMORY", 0, LONG_MAX, (long)FABRIC_DEFAULT_RING_MEMORY, &cap);
	if (err)
		return err;
	f->ring_memory = (uint64_t)cap;
	err = env_number("SCIF_NET_RECLAIM_MS", 0, 3600 * 1000, FABRIC_DEFAULT_RECLAIM_MS, &reclaim);
	if (err)
		return err;
	f->reclaim_ms = (uint32_t)reclaim;
	return fabric_ports_open(f);
}

/* What a failed opening leaves: nothing (it may be tried again). */
static void fabric_close(struct fabric *f)
{
	if (f->table != MAP_FAILED)
		munmap(f->table, TABLE_BYTES);
	if (f->ports_fd >= 0)
		close(f->ports_fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
}

static struct fabric the_fabric;
static int the_error;
static char the_error_text[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Serializes opening a fabric anew, and fork with it. */
static pthread_mutex_t renew_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fabric *forking;	/* the newest when fork began */

/* Every fabric's port registry around fork (ports.c), newest first. */
static void fabric_prepare(void)
{
	pthread_mutex_lock(&renew_lock);
	forking = fabric_newest();
	for (struct fabric *f = forking; f; f = f->older)
		fabric_ports_prepare(f);
}

static void fabric_parent(void)
{
	for (struct fabric *f = forking; f; f = f->older)
		fabric_ports_parent(f);
	pthread_mutex_unlock(&renew_lock);
}

static void fabric_child(void)
{
	for (struct fabric *f = forking; f; f = f->older)
		fabric_ports_child(f);
	pthread_mutex_unlock(&renew_lock);
}

static void fabric_init(void)
{
	the_error = fabric_open(&the_fabric);
	if (the_error) {
		snprintf(the_error_text, sizeof(the_error_text), "%s", last_error);
		fabric_close(&the_fabric);
		return;
	}
	pthread_atfork(fabric_prepare, fabric_parent, fabric_child);
	atomic_store_explicit(&current, &the_fabric, memory_order_release);
}

/*
 * The fabric in place of lost one, whose directory went: made anew, as by
 * a process starting now (open_dir's checks; a new node table and port
 * registry if nobody made them yet), and from then on the one new
 * endpoints join. The lost one stays as it is for the endpoints holding
 * it: their connections go on, their listeners are taken down (lost.c).
 * Threads inside the fabric meanwhile use whichever their endpoint holds.
 */
static struct fabric *renew(struct fabric *lost)
{
	struct fabric *f;
	int err = 0;

	pthread_mutex_lock(&renew_lock);
	f = atomic_load_explicit(&current, memory_order_acquire);
	if (f == lost) {
		f = calloc(1, sizeof(*f));
		err = f ? fabric_open(f) : -ENOMEM;
		if (err && f) {
			fabric_close(f);
			free(f);
		}
		if (!err) {
			f->older = lost;
			atomic_store_explicit(&current, f, memory_order_release);
		}
	}
	pthread_mutex_unlock(&renew_lock);
	if (err) {
		/* Tried again by the next call: the directory may be fixed. */
		errno = -err;
		return NULL;
	}
	return f;
}

struct fabric *fabric_get(void)
{
	struct fabric *f;

	pthread_once(&once, fabric_init);
	if (the_error) {
		/* Every thread that asks learns why, not only the first. */
		fabric_set_error("%s", the_error_text[0] ? the_error_text : strerror(-the_error));
		errno = -the_error;
		return NULL;
	}
	f = atomic_load_explicit(&current, memory_order_acquire);
	return fabric_lost(f) ? renew(f) : f;
}

struct fabric *fabric_newest(void)
{
	return atomic_load_explicit(&current, memory_order_acquire);
}

bool fabric_dir_removed(const struct fabric *f)
{
	struct stat st;

	return fstat(f->dirfd, &st) == 0 && st.st_nlink == 0;
}

bool fabric_node_exists(const struct fabric *f, uint16_t node)
{
	return node < f->node_count;
}

bool fabric_node_online(const struct fabric *f, uint16_t node)
{
	return fabric_node_exists(f, node) &&
	       (atomic_load_explicit(&f->table->online, memory_order_acquire) >> node & 1);
}
