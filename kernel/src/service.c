/*
 * service.c - the fabric service thread (service.h).
 */
#include "service.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ctl.h"
#include "endpoint.h"
#include "thread.h"

/* What an event is about: the connection (its endpoint's descriptor and a
 * number of the watch, as the descriptor may be another endpoint's by the
 * time the event is read), and whether it came from the control channel. */
#define ON_CTL 1u
#define EVENT(epd, watch, ctl) ((uint64_t)(watch) << 32 | (uint64_t)(epd) << 1 | (ctl))
#define EVENT_EPD(what) ((int)((uint32_t)(what) >> 1))
#define EVENT_WATCH(what) ((uint32_t)((what) >> 32))
/* The process's inboxes (channel.h): watch number 0, which no endpoint has. */
#define EVENT_INBOX 0u
/* Where its fabric directories are (lost.c): watch number 0 too. */
#define EVENT_FABRIC_DIR EVENT(1, 0, 0)

static _Atomic uint32_t watches;	/* numbers the watches */

static pthread_mutex_t service_lock = PTHREAD_MUTEX_INITIALIZER;
static int epfd = -1;		/* guarded by service_lock until the thread runs */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void (*_Atomic inbox_handler)(void);	/* what reads the inbox */
static void (*_Atomic dir_handler)(void);	/* what reads the directory's news */

static void handle(uint64_t what)
{
	struct endpoint *ep;

	if (what == EVENT_INBOX) {
		atomic_load_explicit(&inbox_handler, memory_order_acquire)();
		return;
	}
	if (what == EVENT_FABRIC_DIR) {
		atomic_load_explicit(&dir_handler, memory_order_acquire)();
		return;
	}
	ep = ep_find(EVENT_EPD(what));

	/* Closed meanwhile, or the number is another endpoint's now. */
	if (!ep)
		return;
	if (atomic_load_explicit(&ep->watch, memory_order_relaxed) == EVENT_WATCH(what)) {
		/* A hang-up: its windows go too, if the channel says so. */
		if ((what & ON_CTL) || ep_take_hangup(ep))
			ctl_service(ep);
	}
	ep_put(ep);
}

static void *service_main(void *arg)
{
	int fd = (int)(intptr_t)arg;

	for (;;) {
		struct epoll_event ev[64];
		int n = epoll_wait(fd, ev, 64, -1);

		for (int i = 0; i < n; i++)
			handle(ev[i].data.u64);
	}
	return NULL;
}

/* A fork copies no thread: the child has no service thread, and must not
 * share its parent's epoll set. */
static void service_prepare(void)
{
	pthread_mutex_lock(&service_lock);
}

static void service_parent(void)
{
	pthread_mutex_unlock(&service_lock);
}

static void service_child(void)
{
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
	pthread_mutex_unlock(&service_lock);
}

static void service_atfork(void)
{
	pthread_atfork(service_prepare, service_parent, service_child);
}

static int service_fd(void)
{
	int fd, err = 0;

	pthread_once(&atfork_once, service_atfork);
	pthread_mutex_lock(&service_lock);
	if (epfd < 0) {
		fd = epoll_create1(EPOLL_CLOEXEC);
		if (fd < 0) {
			err = -errno;
		} else {
			err = thread_start(service_main, (void *)(intptr_t)fd, "scif-service");
			if (err)
				close(fd);
			else
				epfd = fd;
		}
	}
	fd = epfd;
	pthread_mutex_unlock(&service_lock);
	return err ? err : fd;
}

static int add(int fd, int watched, uint32_t events, uint64_t what)
{
	struct epoll_event e = { .events = events, .data.u64 = what };

	return epoll_ctl(fd, EPOLL_CTL_ADD, watched, &e) < 0 ? -errno : 0;
}

int service_watch(struct endpoint *ep)
{
	int fd = service_fd(), err;
	uint32_t watch;

	if (fd < 0)
		return fd;
	/* Never 0, which no endpoint watched has. */
	do
		watch = atomic_fetch_add_explicit(&watches, 1, memory_order_relaxed) + 1;
	while (watch == 0);
	atomic_store_explicit(&ep->watch, watch, memory_order_relaxed);
	/* Edge-triggered, and for the hang-up alone: the tokens' POLLIN and
	 * POLLOUT wake-ups never reach this thread. */
	err = add(fd, ep->fd, EPOLLRDHUP | EPOLLET, EVENT(ep->fd, watch, 0));
	if (!err && ep_has_channel(ep))
		err = service_watch_ctl(ep);
	return err;
}

int service_watch_ctl(struct endpoint *ep)
{
	int fd = service_fd();
	uint32_t watch = atomic_load_explicit(&ep->watch, memory_order_relaxed);

	if (fd < 0)
		return fd;
	/* Messages that came before are reported at once: epoll looks when a
	 * descriptor is added. */
	return add(fd, ep->ctl, EPOLLIN | EPOLLRDHUP | EPOLLET, EVENT(ep->fd, watch, ON_CTL));
}

int service_watch_inbox(int inbox, void (*handler)(void))
{
	int fd = service_fd();

	if (fd < 0)
		return fd;
	atomic_store_explicit(&inbox_handler, handler, memory_order_release);
	/* Level-triggered: whoever reads the inbox reads all of it, but a
	 * message that comes as it stops must wake us again. */
	return add(fd, inbox, EPOLLIN, EVENT_INBOX);
}

int service_watch_fabric_dir(int fd, void (*handler)(void))
{
	int epfd_now = service_fd();

	if (epfd_now < 0)
		return epfd_now;
	atomic_store_explicit(&dir_handler, handler, memory_order_release);
	/* Level-triggered, as the inbox: the handler reads all there is. */
	return add(epfd_now, fd, EPOLLIN, EVENT_FABRIC_DIR);
}
