/*
 * lost.c - a fabric directory removed under running processes (lost.h).
 *
 * Noticing. A process with listeners watches, with inotify, the directory
 * *holding* its fabric's: a removal or a rename of ours is an IN_DELETE or
 * IN_MOVED_FROM there, with our name, as it happens. The directory's own
 * IN_DELETE_SELF would come only once nothing refers to it any more - and we
 * hold it open, and every listener's socket holds its name in it - so it
 * tells nothing in time. The service thread reads the news (no thread of
 * its own, no polling: it sleeps in epoll as before), and the parent's other
 * removals cost it a read and a name compared. Whatever else looks at the
 * directory (a new endpoint, a listen, a connect) checks it too, with one
 * lstat, so a process that does not listen learns at its next use.
 *
 * Telling. A listener in a lost fabric is shut down, which every process
 * holding it sees (its descriptor says POLLIN | POLLHUP), and its
 * scif_accept fails with ENODEV (listener.c). Callers that were waiting are
 * refused when its last holder closes it.
 *
 * Opening anew. A lost fabric is never used for a new endpoint: fabric_get
 * opens another in its place (fabric.c), and endpoints keep the fabric they
 * were made in (ep->fabric), so connections made before go on.
 */
#include "lost.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"
#include "service.h"

/* What, in the parent directory, may be ours going. */
#define WATCHED (IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

bool fabric_check(struct fabric *f)
{
	struct stat st;

	if (fabric_lost(f))
		return true;
	if (lstat(f->dir, &st) == 0) {
		if (S_ISDIR(st.st_mode) && st.st_dev == (dev_t)f->dev && st.st_ino == (ino_t)f->ino)
			return false;
	} else if (errno != ENOENT && errno != ENOTDIR) {
		return false;	/* cannot tell: as it was */
	}
	/* We hold the old directory open, so no directory made since can
	 * have its device and inode. */
	atomic_store_explicit(&f->lost, true, memory_order_release);
	return true;
}

static void take_down(struct endpoint *ep)
{
	if (!fabric_lost(ep->fabric))
		return;
	pthread_mutex_lock(&ep->lock);
	/* Shut for every process holding it: they all lost it. */
	if (ep->state == EP_LISTENING && !ep_closing(ep))
		shutdown(ep->fd, SHUT_RDWR);
	pthread_mutex_unlock(&ep->lock);
}

void fabric_take_down_lost(void)
{
	ep_for_each(take_down);
}

struct fabric *fabric_fresh(void)
{
	struct fabric *f = fabric_get();

	if (f && fabric_check(f)) {
		fabric_take_down_lost();
		f = fabric_get();
	}
	return f;
}

/* ---- the watch ---- */

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int notify_fd = -1;	/* the process's inotify instance */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* A fork copies no thread: the child reads news of its own, once it
 * listens (the instance it shares would take its parent's). */
static void watch_prepare(void)
{
	pthread_mutex_lock(&watch_lock);
}

static void watch_parent(void)
{
	pthread_mutex_unlock(&watch_lock);
}

static void watch_child(void)
{
	int fd = atomic_exchange(&notify_fd, -1);

	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&watch_lock);
}

static void watch_atfork(void)
{
	pthread_atfork(watch_prepare, watch_parent, watch_child);
}

/* dir's parent into parent, and where its last name starts (*name, *len):
 * "/a/b/" is "/a" and "b"; "b" is "." and "b". */
static int split(const char *dir, char *parent, size_t size, const char **name, size_t *len)
{
	size_t end = strlen(dir), start;

	while (end > 1 && dir[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && dir[start - 1] != '/')
		start--;
	*name = dir + start;
	*len = end - start;
	if (start == 0)
		return snprintf(parent, size, ".") < 0 ? -EINVAL : 0;
	if (start == 1)
		return snprintf(parent, size, "/") < 0 ? -EINVAL : 0;
	if (start - 1 >= size)
		return -ENAMETOOLONG;
	memcpy(parent, dir, start - 1);
	parent[start - 1] = '\0';
	return 0;
}

/* Whether an event may be about dir: ours going by name, or the parent
 * itself going (or the news overflowing), which we cannot tell apart. */
static bool about(const struct inotify_event *e, const char *dir)
{
	char parent[PATH_MAX];
	const char *name;
	size_t len;

	if (!(e->mask & (IN_DELETE | IN_MOVED_FROM)))
		return true;
	return split(dir, parent, sizeof(parent), &name, &len) == 0 && e->len > len &&
	       strncmp(e->name, name, len) == 0 && e->name[len] == '\0';
}

/* The service thread's, when there is news: reads it all, and looks. */
static void on_news(void)
{
	union {
		char buf[4096];
		struct inotify_event align;
	} u;
	struct fabric *f = fabric_newest();
	bool look = false;
	ssize_t n;

	while ((n = read(atomic_load(&notify_fd), u.buf, sizeof(u.buf))) > 0) {
		for (char *p = u.buf; p < u.buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;

			look = look || about(e, f->dir);
			p += sizeof(*e) + e->len;
		}
	}
	if (look) {
		(void)fabric_check(f);
		fabric_take_down_lost();
	}
}

int fabric_watch_dir(struct fabric *f)
{
	char parent[PATH_MAX];
	const char *name;
	size_t len;
	int fd, err;

	pthread_once(&atfork_once, watch_atfork);
	pthread_mutex_lock(&watch_lock);
	err = f->dir_watcher == getpid() ? 0 : split(f->dir, parent, sizeof(parent), &name, &len);
	if (!err && f->dir_watcher != getpid()) {
		fd = atomic_load(&notify_fd);
		if (fd < 0) {
			fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
			err = fd < 0 ? -errno : service_watch_fabric_dir(fd, on_news);
			if (!err)
				atomic_store(&notify_fd, fd);
			else if (fd >= 0)
				close(fd);
		}
		if (!err && inotify_add_watch(fd, parent, WATCHED) < 0)
			err = -errno;
		if (!err)
			f->dir_watcher = getpid();
	}
	pthread_mutex_unlock(&watch_lock);
	return err;
}

/* ---- in words ---- */

static const char *how(const struct fabric *f)
{
	return fabric_dir_removed(f) ? "removed" : "moved away";
}

void fabric_refused_error(const struct fabric *f, uint16_t node, uint16_t port)
{
	if (fabric_lost(f))
		fabric_set_error("the fabric directory %s was %s after this endpoint was opened: "
				 "nobody can be reached through it (a new endpoint joins the directory made anew)",
				 f->dir, how(f));
	else if (f->older)
		fabric_set_error("nobody listens on node %u port %u in %s, which this process made anew "
				 "after the fabric directory was removed: servers of the old one must listen again",
				 node, port, f->dir);
}
