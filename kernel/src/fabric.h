/*
 * fabric.h - the shared state of a virtual SCIF fabric: a directory holding
 * the node table, one port registry per node and the listeners' rendezvous
 * sockets. Everything a dead process held (ports, listeners, connections) is
 * released by the kernel when it dies, so nothing here needs cleaning up.
 */
#ifndef SCIF_NET_FABRIC_H
#define SCIF_NET_FABRIC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "scif.h"
#include "scif_net.h"

#define FABRIC_DEFAULT_NODES 4
#define FABRIC_DEFAULT_RING 4096u	/* the driver's SCIF_ENDPT_QP_SIZE */

/*
 * Queue pairs count against a per-process cap on the shared memory they map
 * (header and both rings, each side counting its own mapping), so that many
 * connections with large rings (SCIF_NET_RING) cannot take the machine's
 * memory: SCIF_NET_RING_MEMORY bytes, 1 GiB by default (about 87,000
 * connections of 4 KiB rings), 0 for no cap. Past it, the acceptor refuses
 * with ENOMEM and a caller's connect fails with ENOMEM.
 */
#define FABRIC_DEFAULT_RING_MEMORY (1ull << 30)

/* How long a ring this process writes stays empty and unwritten before its
 * pages go back (reclaim.h): SCIF_NET_RECLAIM_MS, 0 never. */
#define FABRIC_DEFAULT_RECLAIM_MS 1000

/* The node table, mapped shared by every process of the fabric. */
struct fabric_table {
	uint32_t magic;
	uint32_t version;
	uint32_t node_count;
	/* Bumped after a node went down: the futex word every process's
	 * watcher sleeps on (reset.h). Tables made before it held zero here. */
	_Atomic uint32_t resets;
	_Atomic uint64_t online;			/* bit n: node n is up */
	_Atomic uint32_t epoch[SCIF_NET_MAX_NODES];	/* bumped when a node goes down */
};

struct fabric {
	char dir[4096];
	int dirfd;
	unsigned long long dev, ino;	/* names this fabric in socket addresses */
	uid_t uid;			/* the directory's owner: our euid when it was opened */
	uint16_t self;
	uint32_t node_count;		/* the table's, read once when it was opened */
	uint32_t ring_size;		/* bytes per direction for connections we accept */
	uint64_t ring_memory;		/* queue-pair bytes we may map (SCIF_NET_RING_MEMORY), 0: no cap */
	uint32_t reclaim_ms;		/* idle time before a ring's pages go back (SCIF_NET_RECLAIM_MS), 0: never */
	struct fabric_table *table;

	/* Port registry of our node: an open file whose byte n is locked by the
	 * process holding port n, and which of those locks are this process's. */
	int ports_fd;
	pthread_mutex_t ports_lock;
	uint8_t ports_mine[65536 / 8];
	/* Ephemeral ports: where this process starts, and the lowest from there
	 * (going up and round) that may be free (ports.c). */
	uint16_t first_ephemeral;
	uint16_t next_ephemeral;
	/* Listeners' ports, which every process holding the listener holds
	 * shared (ports.c): how many of our endpoints hold each. */
	struct port_hold {
		uint16_t port;
		uint32_t holds;
	} *held;
	size_t nheld, held_cap;
	/* Each node's registry as last seen (identity.c, under ports_lock):
	 * what a caller's port lock must be on; 0 until looked up. */
	struct registry_seen {
		unsigned long long dev, ino;
	} registry_seen[SCIF_NET_MAX_NODES];

	/* Its directory was removed (or renamed) under us (lost.c): it stays
	 * for the endpoints that hold it, as memory and descriptors nobody
	 * frees - one per removal the process lives through - and a fabric
	 * opened anew takes its place for new ones. */
	_Atomic bool lost;
	struct fabric *older;		/* the fabric this one replaced, or NULL */
	/* This process's inbox in this fabric (channel.c, under its lock). */
	int inbox_fd;
	uint32_t inbox_id;
	bool reset_watched;		/* reset.c: its watcher runs (under its lock) */
	pid_t dir_watcher;		/* lost.c: the process watching its directory */
};

/* The process's fabric, opened on first use, and opened anew (a new
 * directory, node table and port registry) once the one it had is known to
 * be lost; NULL with errno (and a sentence for scif_net_last_error()) when
 * it cannot be. */
struct fabric *fabric_get(void);
/* The newest fabric this process opened, or NULL; never opens one. Older
 * ones follow through ->older: for what every fabric of the process has
 * (inboxes, watchers), and for fork. */
struct fabric *fabric_newest(void);

/* Opens our node's port registry (ports.c): 0 or -errno. Around fork, with
 * every fabric's in turn (fabric.c): the child opens registries of its own. */
int fabric_ports_open(struct fabric *f);
void fabric_ports_prepare(struct fabric *f);
void fabric_ports_parent(struct fabric *f);
void fabric_ports_child(struct fabric *f);

bool fabric_node_exists(const struct fabric *f, uint16_t node);
/* Whether the fabric's directory was removed since we opened it. */
bool fabric_dir_removed(const struct fabric *f);

static inline bool fabric_lost(const struct fabric *f)
{
	return atomic_load_explicit(&f->lost, memory_order_acquire);
}
bool fabric_node_online(const struct fabric *f, uint16_t node);

/* Claim a port on our node: 0, -EADDRINUSE, -EACCES (below 1024 without
 * CAP_SYS_ADMIN). */
int fabric_port_claim(struct fabric *f, uint16_t port);
/* Claim some free port > SCIF_PORT_RSVD: the port, or -ENOSPC. */
int fabric_port_claim_any(struct fabric *f);
void fabric_port_release(struct fabric *f, uint16_t port);

/*
 * A listener's port is held by every process that holds the listener (its
 * descriptor may travel with SCM_RIGHTS: listener.c), each with a shared
 * lock, so it stays claimed - and its name in place - until the last holder
 * closes or dies, whichever process claimed it.
 *
 * fabric_port_share: the port we claimed for a listener becomes a share (a
 * new listener: one hold). fabric_port_adopt: one more hold, for a listener
 * some process made: 0, or -EADDRINUSE when the port is no longer the
 * listener's (it was let go and claimed again). fabric_port_leave: one hold
 * less; true when ours was the last in the fabric, and the port is then ours
 * alone (claimed, as by fabric_port_claim) for the caller to take the
 * listener down and release it.
 */
void fabric_port_share(struct fabric *f, uint16_t port);
int fabric_port_adopt(struct fabric *f, uint16_t port);
bool fabric_port_leave(struct fabric *f, uint16_t port);

/* What a listener's holders need to know of it, recorded in the registry
 * by its maker (under its claim) and read by whoever adopts it: qp.h's
 * QP_STREAM_ONLY. */
int fabric_listener_record(struct fabric *f, uint16_t port, uint32_t flags);
uint32_t fabric_listener_flags(struct fabric *f, uint16_t port);

/* Where a listener on (node, port) waits for connections. */
int fabric_listener_addr(const struct fabric *f, uint16_t node, uint16_t port,
			 struct sockaddr_un *sa, socklen_t *len);
/* Removes the name of our listener on port from this fabric's directory -
 * through the descriptor we hold, never the path, which may name another
 * fabric's directory by now. */
void fabric_listener_unlink(const struct fabric *f, uint16_t port);
/* A connect request, which is the abstract name a connecting endpoint binds
 * before it connects: the acceptor reads it with the connection itself,
 * without waiting for a message. Who is calling, the flags it asks for
 * (qp.h's QP_STREAM_ONLY, how many tokens it sent ahead), and where its RMA
 * channel's ends are to be sent when the other side makes it (channel.h):
 * the caller's descriptor and its process's inbox. */
struct fabric_caller {
	struct scif_portID id;
	uint32_t flags;
	int32_t epd;
	uint32_t inbox;
	int32_t pfd;		/* the caller's open port registry, holding its port's lock */
	uint64_t nonce;		/* random: a name nobody can bind ahead of us */
};

/* A fresh random nonce for a caller's name: 0 or -errno (identity.c). */
int fabric_nonce(uint64_t *nonce);

void fabric_caller_addr(const struct fabric *f, const struct fabric_caller *c,
			struct sockaddr_un *sa, socklen_t *len);
/* Whether sa is a request of this fabric's (and of this version's): *c. */
bool fabric_parse_caller(const struct fabric *f, const struct sockaddr_un *sa,
			 socklen_t len, struct fabric_caller *c);

/* Whether the process that connected on fd (SO_PEERCRED) is the caller c
 * claims to be: it holds c's port on c's node, and CAP_SYS_ADMIN for a port
 * below 1024 (identity.c). 0, -EPROTO (a false claim), -EACCES, or what kept
 * us from looking (-EMFILE, -ENFILE, -ENOMEM). *pid: the process, as
 * SO_PEERCRED says (0 if it is not in our pid namespace). */
int fabric_verify_caller(struct fabric *f, int fd, const struct fabric_caller *c, pid_t *pid);

/* A process's inbox (inbox.h): an abstract name of this fabric's. */
void fabric_inbox_addr(const struct fabric *f, uint32_t inbox, struct sockaddr_un *sa,
		       socklen_t *len);

/* Whether this thread has capability cap (linux/capability.h's CAP_*) in
 * its effective set, as the driver's capable() asks (ports.c). */
bool fabric_capable(int cap);

/* Record a sentence for scif_net_last_error() in this thread. */
void fabric_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fabric_clear_error(void);

#endif
