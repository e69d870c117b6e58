/*
 * scif_net.h - what the virtual fabric offers beyond libscif: its place, its
 * nodes, and why the last call failed. Programs written for MPSS never need
 * this header; tools and tests do.
 */
#ifndef SCIF_NET_H
#define SCIF_NET_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SCIF_NET_MAX_NODES 64

/* The fabric directory this process uses (opening it on first use); NULL on failure. */
const char *scif_net_fabric_path(void);

/* This process's node (SCIF_NET_NODE), or -1 with errno when the fabric is unusable. */
int scif_net_self_node(void);

/* How many nodes the fabric has (online or not), or -1 with errno. */
int scif_net_node_count(void);

/* Takes a node off line (a card reset or removal) or brings it back: 0 or -1/errno. */
int scif_net_set_node_online(uint16_t node, int online);

/*
 * A sentence saying why the last failing call in this thread failed, when errno
 * alone does not say it (a fabric that cannot be opened, a bad SCIF_NET_NODE);
 * "" otherwise.
 */
const char *scif_net_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* SCIF_NET_H */
