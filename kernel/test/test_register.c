/*
 * scif_register and scif_unregister: SCIF's errno for each misuse, offsets
 * chosen and fixed, unregistering ranges of windows (all or nothing), and the
 * pages themselves. Heap memory from posix_memalign and malloc and a static
 * array are registered, some on several endpoints at once and overlapping:
 * the owner's pointer and every mapping of the windows are one memfd's pages
 * (the same inode), written on one side and read on the others; the last
 * unregister (or scif_close) gives the owner private memory holding what was
 * written, neighbouring bytes untouched, and free() works after; and the
 * peer's views are gone when unregister returns (it waits for the peer's
 * acknowledgement, as the driver's does). RLIMIT_MEMLOCK bounds what a
 * process registers, as in MPSS 4.
 *
 * Both ends of each connection live in this process; test_mmap and test_rma
 * put them in two.
 */
#include <linux/capability.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "check.h"

#define RW (SCIF_PROT_READ | SCIF_PROT_WRITE)

static size_t P;

static void *pages(size_t n)
{
	void *p = NULL;

	CHECK(posix_memalign(&p, P, n * P) == 0);
	return p;
}

static void check_args(int c)
{
	uint8_t *buf = pages(4);
	void *hole, *none, *shared;
	int closed = scif_open();

	memset(buf, 1, 4 * P);
	/* Alignment, length, flags and protections. */
	CHECK_ERR(scif_register(c, buf + 1, P, 0, RW, 0), EINVAL);
	CHECK_ERR(scif_register(c, buf, 0, 0, RW, 0), EINVAL);
	CHECK_ERR(scif_register(c, buf, P + 1, 0, RW, 0), EINVAL);
	CHECK_ERR(scif_register(c, buf, P, 0, RW | 4, 0), EINVAL);
	CHECK_ERR(scif_register(c, buf, P, 0, RW, 0x1), EINVAL);
	CHECK_ERR(scif_register(c, buf, P, 0, RW, SCIF_MAP_KERNEL), EINVAL);
	/* Fixed offsets: aligned, not negative, not wrapping, below 2^62. */
	CHECK_ERR(scif_register(c, buf, P, 100, RW, SCIF_MAP_FIXED), EINVAL);
	CHECK_ERR(scif_register(c, buf, P, -(off_t)P, RW, SCIF_MAP_FIXED), EINVAL);
	CHECK_ERR(scif_register(c, buf, 2 * P, INT64_MAX & ~(off_t)(P - 1), RW, SCIF_MAP_FIXED),
		  EINVAL);
	CHECK_ERR(scif_register(c, buf, P, 1ll << 62, RW, SCIF_MAP_FIXED), EADDRINUSE);
	CHECK_ERR(scif_register(c, buf, 2 * P, (1ll << 62) - (off_t)P, RW, SCIF_MAP_FIXED),
		  EADDRINUSE);
	/* Not endpoints. */
	CHECK(closed >= 0 && scif_close(closed) == 0);
	CHECK_ERR(scif_register(closed, buf, P, 0, RW, 0), EBADF);
	CHECK_ERR(scif_register(-1, buf, P, 0, RW, 0), EBADF);
	CHECK_ERR(scif_unregister(closed, 0, P), EBADF);
	/* Addresses that are not memory, or memory that cannot be moved. */
	hole = mmap(NULL, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(hole != MAP_FAILED && munmap((uint8_t *)hole + P, P) == 0);
	CHECK_ERR(scif_register(c, (uint8_t *)hole + P, P, 0, RW, 0), EFAULT);
	CHECK_ERR(scif_register(c, hole, 2 * P, 0, RW, 0), EFAULT);	/* half of it */
	none = mmap(NULL, P, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(none != MAP_FAILED);
	CHECK_ERR(scif_register(c, none, P, 0, RW, 0), EFAULT);
	/* Shared with whoever else maps it: copying would break that. */
	shared = mmap(NULL, P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shared != MAP_FAILED);
	CHECK_ERR(scif_register(c, shared, P, 0, RW, 0), EFAULT);
	/* None of that moved a page. */
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	CHECK(munmap(hole, P) == 0 && munmap(none, P) == 0 && munmap(shared, P) == 0);
	for (size_t i = 0; i < 4 * P; i++)
		CHECK(buf[i] == 1);
	free(buf);
}

static void check_not_connected(void)
{
	struct scif_portID to = { .node = 0, .port = 7001 };
	int unbound = scif_open(), bound = scif_open(), lis = scif_open(), refused = scif_open();
	int eps[4] = { unbound, bound, lis, refused };
	uint8_t *buf = pages(1);

	CHECK(unbound >= 0 && bound >= 0 && lis >= 0 && refused >= 0);
	CHECK(scif_bind(bound, 7000) == 7000);
	CHECK(scif_bind(lis, 7002) == 7002 && scif_listen(lis, 1) == 0);
	CHECK_ERR(scif_connect(refused, &to), ECONNREFUSED);
	for (int i = 0; i < 4; i++) {
		CHECK_ERR(scif_register(eps[i], buf, P, 0, RW, 0), ENOTCONN);
		CHECK_ERR(scif_unregister(eps[i], 0, P), ENOTCONN);
		CHECK(scif_close(eps[i]) == 0);
	}
	free(buf);
}

/* Maps the peer's pages at off through s, or fails the test. */
static uint8_t *peer_map(int s, off_t off, size_t len)
{
	void *m = scif_mmap(NULL, len, RW, 0, s, off);

	CHECK(m != SCIF_MMAP_FAILED);
	return m;
}

static void check_offsets(int c, int s)
{
	const off_t F = 16 * (off_t)P;
	uint8_t *buf = pages(8), *m;
	off_t a, b;

	/* Chosen: at or above 2^62, page aligned, apart; the offset is a hint. */
	a = scif_register(c, buf, 2 * P, 0, RW, 0);
	b = scif_register(c, buf + 2 * P, P, a, RW, 0);
	CHECK(a >= 1ll << 62 && b >= 1ll << 62 && a % (off_t)P == 0 && b % (off_t)P == 0);
	CHECK(b >= a + 2 * (off_t)P || a >= b + (off_t)P);
	/* Fixed: exactly there, never over another window. */
	CHECK(scif_register(c, buf, 2 * P, F, RW, SCIF_MAP_FIXED) == F);		/* A */
	CHECK(scif_register(c, buf + 2 * P, P, F + 2 * (off_t)P, RW, SCIF_MAP_FIXED) ==
	      F + 2 * (off_t)P);							/* B */
	CHECK(scif_register(c, buf + 5 * P, P, F + 5 * (off_t)P, RW, SCIF_MAP_FIXED) ==
	      F + 5 * (off_t)P);							/* C */
	CHECK_ERR(scif_register(c, buf, P, F + (off_t)P, RW, SCIF_MAP_FIXED), EADDRINUSE);
	CHECK_ERR(scif_register(c, buf, 2 * P, F - (off_t)P, RW, SCIF_MAP_FIXED), EADDRINUSE);
	CHECK_ERR(scif_register(c, buf, 2 * P, F + 4 * (off_t)P, RW, SCIF_MAP_FIXED), EADDRINUSE);
	/* Unregistering: whole windows, no gaps, or nothing at all. */
	CHECK_ERR(scif_unregister(c, F + (off_t)P, P), EINVAL);		/* cuts A's start off */
	CHECK_ERR(scif_unregister(c, F, P), EINVAL);			/* cuts A's end off */
	CHECK_ERR(scif_unregister(c, F, 3 * P + P), ENXIO);		/* A, B, then a gap */
	CHECK_ERR(scif_unregister(c, F + 3 * (off_t)P, P), ENXIO);	/* nothing there */
	CHECK_ERR(scif_unregister(c, F + 3 * (off_t)P, 3 * P), ENXIO);	/* a gap, then C */
	CHECK_ERR(scif_unregister(c, -(off_t)P, P), EINVAL);
	CHECK_ERR(scif_unregister(c, F + 1, P), EINVAL);
	CHECK_ERR(scif_unregister(c, F, 0), EINVAL);
	CHECK_ERR(scif_unregister(c, F, P - 1), EINVAL);
	CHECK_ERR(scif_unregister(c, INT64_MAX & ~(off_t)(P - 1), 2 * P), EINVAL);
	/* Those changed nothing: A and B still map, side by side. */
	m = peer_map(s, F, 3 * P);
	m[0] = 0xa;
	m[2 * P] = 0xb;
	CHECK(buf[0] == 0xa && buf[2 * P] == 0xb);
	CHECK(scif_munmap(m, 3 * P) == 0);
	/* A and B in one call; then they are gone for the peer too. */
	CHECK(scif_unregister(c, F, 3 * P) == 0);
	CHECK(scif_mmap(NULL, P, RW, 0, s, F) == SCIF_MMAP_FAILED && errno == ENXIO);
	CHECK(scif_mmap(NULL, P, RW, 0, s, F + 2 * (off_t)P) == SCIF_MMAP_FAILED && errno == ENXIO);
	CHECK(scif_unregister(c, F + 5 * (off_t)P, P) == 0);
	CHECK(scif_unregister(c, a, 2 * P) == 0 && scif_unregister(c, b, P) == 0);
	/* Their offsets are free again. */
	CHECK(scif_register(c, buf, 2 * P, F, RW, SCIF_MAP_FIXED) == F);
	CHECK(scif_unregister(c, F, 2 * P) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	free(buf);
}

static void expect_bytes(const uint8_t *p, size_t n, uint64_t seed)
{
	uint8_t *want = malloc(n);

	CHECK(want != NULL);
	fill64(want, n, seed);
	CHECK(memcmp(p, want, n) == 0);
	free(want);
}

/* The same pages on two endpoints, overlapping, seen through three mappings. */
static void check_same_pages(int c1, int s1, int c2, int s2)
{
	uint8_t *buf = pages(8), *m1, *m2, *m3;
	unsigned long ino, ino2;
	off_t o1, o2, o3;

	fill64(buf, 8 * P, 7);
	o1 = scif_register(c1, buf, 4 * P, 0, RW, 0);
	CHECK(o1 >= 0);
	ino = window_inode(buf);
	CHECK(ino != 0 && window_inode(buf + 3 * P) == ino && window_inode(buf + 4 * P) == 0);
	expect_bytes(buf, 8 * P, 7);	/* moved with its contents */
	/* Again, on another endpoint: the same memfd, not a second move. */
	o2 = scif_register(c2, buf, 4 * P, 0, SCIF_PROT_READ, 0);
	CHECK(o2 >= 0 && window_inode(buf) == ino);
	m1 = peer_map(s1, o1, 4 * P);
	m2 = scif_mmap(NULL, 4 * P, SCIF_PROT_READ, 0, s2, o2);
	CHECK(m2 != SCIF_MMAP_FAILED);
	CHECK(window_inode(m1) == ino && window_inode(m2) == ino);
	m1[10] = 0x5a;
	CHECK(buf[10] == 0x5a && m2[10] == 0x5a);
	buf[P + 3] = 0xa5;
	CHECK(m1[P + 3] == 0xa5 && m2[P + 3] == 0xa5);
	/* Overlapping: two pages already on a memfd, two not yet. */
	o3 = scif_register(c2, buf + 2 * P, 4 * P, 0, RW, 0);
	CHECK(o3 >= 0 && window_inode(buf + 2 * P) == ino);
	ino2 = window_inode(buf + 4 * P);
	CHECK(ino2 != 0 && ino2 != ino && window_inode(buf + 5 * P) == ino2);
	m3 = peer_map(s2, o3, 4 * P);
	m3[5] = 0x11;			/* buf page 2 */
	m3[3 * P + 5] = 0x22;		/* buf page 5 */
	CHECK(buf[2 * P + 5] == 0x11 && m1[2 * P + 5] == 0x11 && buf[5 * P + 5] == 0x22);
	/* Pages stay shared while any window holds them. */
	CHECK(scif_unregister(c1, o1, 4 * P) == 0);
	CHECK(window_inode(buf) == ino);
	CHECK(scif_unregister(c2, o2, 4 * P) == 0);
	CHECK(window_inode(buf) == ino && window_inode(buf + 4 * P) == ino2);
	m1[20] = 0x77;		/* still the owner's pages */
	CHECK(buf[20] == 0x77);
	/* The last one gives them back: private, with what was written. */
	CHECK(scif_unregister(c2, o3, 4 * P) == 0);
	CHECK(window_inode(buf) == 0 && window_inode(buf + 4 * P) == 0);
	CHECK(buf[10] == 0x5a && buf[P + 3] == 0xa5 && buf[20] == 0x77);
	CHECK(buf[2 * P + 5] == 0x11 && buf[5 * P + 5] == 0x22);
	/* The peer's mappings stay valid memory, no longer the owner's. */
	buf[10] = 0;
	CHECK(m1[10] == 0x5a && m3[3 * P + 5] == 0x22);
	CHECK(scif_munmap(m1, 4 * P) == 0 && scif_munmap(m2, 4 * P) == 0 &&
	      scif_munmap(m3, 4 * P) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	free(buf);
}

/* malloc'd memory: the registered pages inside a block, its edges untouched. */
static void check_malloc(int c, int s)
{
	size_t len = 10 * P;
	uint8_t *block = malloc(len), *in, *m;
	off_t o;

	CHECK(block != NULL);
	fill64(block, len, 3);
	in = (uint8_t *)(((uintptr_t)block + P - 1) & ~(uintptr_t)(P - 1));
	o = scif_register(c, in, 4 * P, 0, RW, 0);
	CHECK(o >= 0);
	m = peer_map(s, o, 4 * P);
	m[0] = (uint8_t)~in[0];
	CHECK(in[0] == m[0]);
	in[0] = m[0] = (uint8_t)~m[0];
	CHECK(scif_unregister(c, o, 4 * P) == 0);
	CHECK(scif_munmap(m, 4 * P) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	expect_bytes(block, len, 3);
	free(block);
	/* malloc still works around where the pages were. */
	for (int i = 0; i < 100; i++)
		free(malloc(1 + (size_t)i * 97));
}

static uint8_t static_pages[4 * 4096] __attribute__((aligned(4096)));

/* A static array, registered, released by closing, registered again. */
static void check_static(int port)
{
	int c, s;
	uint8_t *m;
	off_t o;

	if (P != 4096)
		return;
	connect_pair((uint16_t)port, &c, &s);
	memset(static_pages, 9, sizeof(static_pages));
	o = scif_register(c, static_pages, sizeof(static_pages), 0, RW, 0);
	CHECK(o >= 0 && window_inode(static_pages) != 0);
	m = peer_map(s, o, sizeof(static_pages));
	m[100] = 42;
	CHECK(static_pages[100] == 42);
	/* Closing releases the windows: the owner's pages are private again,
	 * and the peer can no longer map them. */
	CHECK(scif_close(c) == 0);
	CHECK(window_inode(static_pages) == 0 && static_pages[100] == 42 && static_pages[0] == 9);
	CHECK(scif_mmap(NULL, P, RW, 0, s, o) == SCIF_MMAP_FAILED && errno == ECONNRESET);
	CHECK(scif_munmap(m, sizeof(static_pages)) == 0);
	/* And a closed peer refuses both calls. */
	CHECK_ERR(scif_register(s, static_pages, P, 0, RW, 0), ECONNRESET);
	CHECK_ERR(scif_unregister(s, o, P), ECONNRESET);
	CHECK(scif_close(s) == 0);
	/* Registered anew on a new connection: a new memfd, same contents. */
	connect_pair((uint16_t)(port + 1), &c, &s);
	o = scif_register(c, static_pages, sizeof(static_pages), 0, RW, 0);
	CHECK(o >= 0 && static_pages[100] == 42);
	m = peer_map(s, o, sizeof(static_pages));
	CHECK(m[100] == 42 && m[0] == 9);
	CHECK(scif_munmap(m, sizeof(static_pages)) == 0);
	CHECK(scif_close(s) == 0);
	/* The peer's close leaves ours registered until we close. */
	CHECK_ERR(scif_unregister(c, o, sizeof(static_pages)), ECONNRESET);
	CHECK(scif_close(c) == 0);
	CHECK(window_inode(static_pages) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
}

/* In a child without CAP_IPC_LOCK (which lifts the limit) and with
 * RLIMIT_MEMLOCK at four pages: a registration past it fails with EAGAIN and
 * moves no page; the same pages registered on another endpoint count again;
 * unregistering gives them back. */
static void check_memlock(void)
{
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
		struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
		struct rlimit rl;
		uint8_t *buf = pages(4);
		off_t a;
		int c, s;

		CHECK(syscall(SYS_capget, &hdr, caps) == 0);
		caps[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
		CHECK(syscall(SYS_capset, &hdr, caps) == 0);
		CHECK(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		rl.rlim_cur = 4 * P;
		CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		connect_pair(7110, &c, &s);
		a = scif_register(c, buf, 3 * P, 0, RW, 0);
		CHECK(a >= 0);
		CHECK_ERR(scif_register(s, buf, 2 * P, 0, RW, 0), EAGAIN);
		CHECK_ERR(scif_register(c, buf + 3 * P, 2 * P, 0, RW, 0), EAGAIN);
		CHECK(window_inode(buf + 3 * P) == 0);		/* not moved */
		CHECK(scif_register(s, buf, P, 0, RW, 0) >= 0);	/* the fourth page */
		CHECK_ERR(scif_register(c, buf + 3 * P, P, 0, RW, 0), EAGAIN);
		CHECK(scif_unregister(c, a, 3 * P) == 0);
		CHECK(scif_register(c, buf + P, 3 * P, 0, RW, 0) >= 0);
		CHECK(scif_close(c) == 0 && scif_close(s) == 0);
		free(buf);
		exit(0);
	}
	expect_exit(pid, 0);
}

int main(void)
{
	int c, s, c2, s2;

	P = page_size();
	check_memlock();		/* first: its child starts from a clean slate */
	connect_pair(7100, &c, &s);
	connect_pair(7101, &c2, &s2);
	check_args(c);
	check_not_connected();
	check_offsets(c, s);
	check_same_pages(c, s, c2, s2);
	check_malloc(c, s);
	check_static(7102);
	CHECK(scif_close(c) == 0 && scif_close(s) == 0);
	CHECK(scif_close(c2) == 0 && scif_close(s2) == 0);
	CHECK(count_window_maps() == 0 && count_window_fds() == 0);
	return 0;
}
