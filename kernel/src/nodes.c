/*
 * nodes.c - node enumeration (scif_get_nodeIDs) and the fabric's own calls
 * from scif_net.h.
 */
#include <errno.h>

#include "fabric.h"
#include "reset.h"
#include "scif.h"
#include "scif_net.h"

int scif_get_nodeIDs(uint16_t *nodes, int len, uint16_t *self)
{
	struct fabric *f = fabric_get();
	uint64_t online;
	int count = 0;

	if (!f)
		return -1;
	if (!self || (len > 0 && !nodes)) {
		errno = EFAULT;
		return -1;
	}
	online = atomic_load_explicit(&f->table->online, memory_order_acquire);
	for (uint16_t n = 0; n < f->node_count; n++) {
		if (!(online >> n & 1))
			continue;
		if (count < len)
			nodes[count] = n;
		count++;
	}
	*self = f->self;
	return count;
}

const char *scif_net_fabric_path(void)
{
	struct fabric *f = fabric_get();

	return f ? f->dir : NULL;
}

int scif_net_self_node(void)
{
	struct fabric *f = fabric_get();

	return f ? f->self : -1;
}

int scif_net_node_count(void)
{
	struct fabric *f = fabric_get();

	return f ? (int)f->node_count : -1;
}

int scif_net_set_node_online(uint16_t node, int online)
{
	struct fabric *f = fabric_get();
	uint64_t bit = 1ull << (node % 64);

	if (!f)
		return -1;
	if (!fabric_node_exists(f, node)) {
		errno = ENODEV;
		return -1;
	}
	if (online) {
		atomic_fetch_or_explicit(&f->table->online, bit, memory_order_acq_rel);
	} else if (atomic_fetch_and_explicit(&f->table->online, ~bit, memory_order_acq_rel) & bit) {
		/* A card reset: every connection with an end on the node is reset,
		 * in every process (reset.h). The epoch says which: from here on
		 * every call on them finds it moved; the watchers wake sleepers. */
		atomic_fetch_add_explicit(&f->table->epoch[node], 1, memory_order_acq_rel);
		reset_notify(f);
	}
	return 0;
}
