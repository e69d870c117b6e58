// The fabric this process is on: its nodes, and taking one off line.
import { binding } from './binding';
import type { EndpointInfo } from './binding';

export type { EndpointInfo };
import { errnoException } from './errors';

export interface NodeIds {
  /** This process's node (SCIF_NET_NODE). */
  self: number;
  /** The nodes that are online, this one included. */
  nodes: number[];
}

/** scif_get_nodeIDs(): which nodes are online. */
export function getNodeIds(): NodeIds {
  const r = binding.nodeIds();
  if (typeof r === 'number') throw errnoException(r, 'scif_get_nodeIDs');
  return r;
}

/** The fabric directory this process uses (SCIF_NET_FABRIC or the per-user default). */
export function fabricPath(): string {
  const r = binding.fabricPath();
  if (typeof r === 'number') throw errnoException(r, 'scif_open');
  return r;
}

/** Takes a node off line (as a card reset would) or brings it back. */
export function setNodeOnline(node: number, online: boolean): void {
  const r = binding.setNodeOnline(node, online);
  if (r < 0) throw errnoException(r, 'scif_net_set_node_online');
}

/** How many nodes the fabric has, online or not (the host is node 0). */
export function fabricNodeCount(): number {
  const r = binding.nodeCount();
  if (r < 0) throw errnoException(r, 'scif_net_node_count');
  return r;
}

/**
 * Every listener and connected end on the fabric, in every process of this
 * user (what `scif-net ports` shows): read from the kernel's socket tables,
 * changing nothing.
 */
export function endpoints(): EndpointInfo[] {
  const r = binding.census();
  if (typeof r === 'number') throw errnoException(r, 'scif_net_census');
  return r;
}

export interface BackendInfo {
  /** 'virtual' (the fabric linked into scif-net) or 'hw' (a libscif loaded with dlopen). */
  name: string;
  /** The library loaded, for 'hw'. */
  library: string;
  /** Why SCIF_NET_BACKEND=auto chose what it chose. */
  note: string;
}

/** The SCIF backend in use (SCIF_NET_BACKEND=auto|hw|virtual); throws, saying why, when there is none. */
export function backend(): BackendInfo {
  const r = binding.backend();
  if (typeof r === 'string') throw Object.assign(new Error(`scif-net: ${r}`), { code: 'ENXIO' });
  return r;
}
