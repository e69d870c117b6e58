/*
 * census.c - scif_net_census(): the fabric's listeners and connections, as
 * `ss` lists sockets, read from outside the processes that hold them.
 *
 * Nothing here changes the fabric. The kernel already knows everything: a
 * listener is a Unix socket listening at <fabric>/n<node>p<port>, an accepted
 * end carries that same name, a caller's end an abstract name saying its node
 * and port (ports.c), and sock_diag pairs each end with its peer. Which
 * process holds an end comes from /proc/<pid>/fd; how many bytes went through
 * a connection from the free-running ring offsets and RMA counters of its
 * queue pair, read through /proc/<pid>/mem (so only for processes we may
 * ptrace: our own). A registry of its own would cost every connection
 * bookkeeping; this costs only the tool.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fabric.h"
#include "qp.h"

#define UNIX_LISTEN_STATE 10	/* TCP_LISTEN, which unix_diag reports for listeners */

struct usock {
	uint32_t ino, peer;
	uint8_t state;
	char name[108];		/* '@' first for an abstract name; "" unnamed */
};

struct usocks {
	struct usock *v;
	size_t n, cap;
};

static int push_sock(struct usocks *s, const struct usock *u)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct usock *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *u;
	return 0;
}

/* Every Unix socket of this network namespace with its name and peer. */
static int dump_unix(struct usocks *out)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	static char buf[32768];
	int fd, err = 0, done = 0;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	memset(&msg, 0, sizeof(msg));
	msg.nlh.nlmsg_len = sizeof(msg);
	msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	msg.req.sdiag_family = AF_UNIX;
	msg.req.udiag_states = ~0u;
	msg.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		goto out;
	}
	while (!done && !err) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct unix_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a;
			int len;
			struct usock u;

			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				err = e->error ? e->error : -EIO;
				break;
			}
			memset(&u, 0, sizeof(u));
			u.ino = m->udiag_ino;
			u.state = m->udiag_state;
			len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
				if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
					memcpy(&u.peer, RTA_DATA(a), sizeof(uint32_t));
				} else if (a->rta_type == UNIX_DIAG_NAME) {
					size_t l = RTA_PAYLOAD(a);

					if (l >= sizeof(u.name))
						l = sizeof(u.name) - 1;
					memcpy(u.name, RTA_DATA(a), l);
					u.name[l] = '\0';
					if (l && u.name[0] == '\0')
						u.name[0] = '@';
				}
			}
			if (u.name[0] && (err = push_sock(out, &u)) != 0)
				break;
			/* Unnamed sockets are never the fabric's ends, but an
			 * accepted end shows its listener's name: kept above. */
		}
	}
out:
	close(fd);
	return err;
}

/* n<node>p<port> in our fabric's directory. */
static bool parse_listener_name(const struct fabric *f, const char *name, uint16_t *node,
				uint16_t *port)
{
	size_t dl = strlen(f->dir);
	unsigned nd, pt;
	int used = -1;

	if (strncmp(name, f->dir, dl) != 0 || name[dl] != '/')
		return false;
	if (sscanf(name + dl + 1, "n%up%u%n", &nd, &pt, &used) != 2 || name[dl + 1 + used] != '\0' ||
	    nd >= SCIF_NET_MAX_NODES || pt == 0 || pt > 65535)
		return false;
	*node = (uint16_t)nd;
	*port = (uint16_t)pt;
	return true;
}

static bool parse_caller_name(const struct fabric *f, const char *name, uint16_t *node,
			      uint16_t *port)
{
	struct sockaddr_un sa;
	struct fabric_caller c;
	size_t l = strlen(name);

	if (name[0] != '@' || l > sizeof(sa.sun_path))
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, name + 1, l - 1);
	if (!fabric_parse_caller(f, &sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l), &c))
		return false;
	*node = c.id.node;
	*port = c.id.port;
	return true;
}

static const struct usock *find_sock(const struct usocks *s, uint32_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].ino == ino)
			return &s->v[i];
	return NULL;
}

/* The process holding socket inode ino (the first found), and its descriptor there. */
struct holder {
	uint32_t ino;
	int32_t pid, fd;
};

static void find_holders(struct holder *h, size_t n)
{
	DIR *proc = opendir("/proc");
	struct dirent *p;

	if (!proc)
		return;
	while ((p = readdir(proc)) != NULL) {
		char path[64], link[64];
		DIR *fds;
		struct dirent *d;
		int pid = atoi(p->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		if (!fds)
			continue;	/* gone, or another user's */
		while ((d = readdir(fds)) != NULL) {
			unsigned long ino;
			ssize_t l;

			if (d->d_name[0] == '.')
				continue;
			l = readlinkat(dirfd(fds), d->d_name, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = '\0';
			if (sscanf(link, "socket:[%lu]", &ino) != 1)
				continue;
			for (size_t i = 0; i < n; i++)
				if (h[i].ino == ino && h[i].pid == 0) {
					h[i].pid = pid;
					h[i].fd = atoi(d->d_name);
				}
		}
		closedir(fds);
	}
	closedir(proc);
}

/*
 * The queue pair of the connection whose side `side` is descriptor fd in
 * process pid: its header copied from the process's memory. 0 when found.
 */
static int read_qp(int32_t pid, int32_t fd, int side, struct qp_header *out)
{
	char path[64], line[512];
	FILE *maps;
	int mem, found = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "re");
	if (!maps)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0) {
		int err = -errno;

		fclose(maps);
		return err;
	}
	while (found != 0 && fgets(line, sizeof(line), maps)) {
		unsigned long long start, end;

		if (!strstr(line, "/memfd:scif-qp") || sscanf(line, "%llx-%llx", &start, &end) != 2)
			continue;
		/* An arena (arena.h): queue pairs one after the other, as far as
		 * one has been made. */
		while (found != 0 && end - start >= sizeof(*out) &&
		       pread(mem, out, sizeof(*out), (off_t)start) == (ssize_t)sizeof(*out) &&
		       out->magic == QP_MAGIC && out->version == QP_VERSION &&
		       out->ring_size >= 4096 && !(out->ring_size & (out->ring_size - 1))) {
			if (out->ends.epd[side] == fd)
				found = 0;
			else if (end - start > QP_HEADER_BYTES + 2ull * out->ring_size)
				start += QP_HEADER_BYTES + 2ull * out->ring_size;
			else
				break;
		}
	}
	close(mem);
	fclose(maps);
	return found;
}

static void fill_traffic(struct scif_net_endpoint_info *e, int side)
{
	struct qp_header h;

	e->bytes_sent = e->bytes_received = e->rmas = SCIF_NET_UNKNOWN;
	if (e->pid <= 0 || read_qp(e->pid, e->fd, side, &h) != 0)
		return;
	e->conn = h.ends.conn;
	e->bytes_sent = atomic_load_explicit(&h.ring[side].write, memory_order_relaxed);
	e->bytes_received = atomic_load_explicit(&h.ring[1 - side].write, memory_order_relaxed);
	e->rmas = atomic_load_explicit(&h.rma[side].started, memory_order_relaxed);
}

int scif_net_census(struct scif_net_endpoint_info *out, int max)
{
	struct fabric *f = fabric_get();
	struct usocks socks = { 0 };
	struct holder *holders = NULL;
	struct scif_net_endpoint_info *all = NULL;
	size_t n = 0;
	int err;

	if (!f)
		return -1;
	if (max < 0 || (max > 0 && !out)) {
		errno = EINVAL;
		return -1;
	}
	err = dump_unix(&socks);
	if (err)
		goto out;
	/* At most one entry per named socket. */
	all = calloc(socks.n ? socks.n : 1, sizeof(*all));
	holders = calloc(socks.n ? socks.n : 1, sizeof(*holders));
	if (!all || !holders) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < socks.n; i++) {
		const struct usock *u = &socks.v[i];
		struct scif_net_endpoint_info e;
		uint16_t node, port;

		memset(&e, 0, sizeof(e));
		if (parse_listener_name(f, u->name, &node, &port)) {
			if (u->state == UNIX_LISTEN_STATE) {
				e.state = SCIF_NET_EP_LISTENING;
				e.peer_node = e.peer_port = SCIF_NET_NO_PEER;
			} else if (u->peer) {
				/* An accepted end: side 1; its peer is a caller. */
				const struct usock *c = find_sock(&socks, u->peer);

				if (!c || !parse_caller_name(f, c->name, &e.peer_node, &e.peer_port))
					continue;
				e.state = SCIF_NET_EP_ACCEPTED;
			} else {
				continue;
			}
		} else if (parse_caller_name(f, u->name, &node, &port)) {
			const struct usock *a = u->peer ? find_sock(&socks, u->peer) : NULL;

			if (!a || !parse_listener_name(f, a->name, &e.peer_node, &e.peer_port))
				continue;	/* still connecting, or refused */
			e.state = SCIF_NET_EP_CONNECTED;
		} else {
			continue;
		}
		e.node = node;
		e.port = port;
		holders[n].ino = u->ino;
		all[n++] = e;
	}
	find_holders(holders, n);
	for (size_t i = 0; i < n; i++) {
		all[i].pid = holders[i].pid;
		all[i].fd = holders[i].pid ? holders[i].fd : -1;
		if (all[i].state == SCIF_NET_EP_LISTENING)
			all[i].bytes_sent = all[i].bytes_received = all[i].rmas = 0;
		else
			fill_traffic(&all[i], all[i].state == SCIF_NET_EP_CONNECTED ? 0 : 1);
	}
	for (size_t i = 0; i < n && i < (size_t)max; i++)
		out[i] = all[i];
out:
	free(all);
	free(holders);
	free(socks.v);
	if (err) {
		fabric_set_error("cannot list the fabric's sockets: %s", strerror(-err));
		errno = -err;
		return -1;
	}
	return (int)n;
}
