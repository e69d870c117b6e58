// SCIF addresses: parsing what users write, and the strings sockets report.
//
//   'scif:1:2000', 'scif://1:2000'     node 1, port 2000
//   { node: 1, port: 2000 }
//   host 'scif:1' / 'scif://1'         node 1
//   host 'host'                        node 0 (MPSS's name for the host)
//   host 'micK'                        node K + 1 (MPSS's name for card K)
//   host 'localhost' (or none)         this process's node, unless
//                                      SCIF_NET_LOCALHOST=tcp sends it to TCP
import { binding } from '../binding';
import { ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE, ERR_SOCKET_BAD_PORT, errnoException } from '../errors';

export const FAMILY = 'SCIF';
export const MAX_NODE = 63;

export interface Target {
  node: number;
  port: number;
}

const FULL = /^scif:(?:\/\/)?(\d{1,5}):(\d{1,5})$/i;
const HOST = /^scif:(?:\/\/)?(\d{1,5})$/i;
const MIC = /^mic(\d{1,2})$/i;

/** Whether plain 'localhost' means this process's SCIF node (the default) or TCP. */
export function localhostIsSCIF(): boolean {
  return (process.env.SCIF_NET_LOCALHOST ?? 'scif').toLowerCase() !== 'tcp';
}

/** This process's node (SCIF_NET_NODE); throws when the fabric cannot be used. */
export function selfNode(): number {
  const n = binding.selfNode();
  if (n < 0) throw errnoException(n, 'scif_open');
  return n;
}

function nodeNumber(text: string): number | null {
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 && n <= MAX_NODE ? n : null;
}

/** The node a host string names, or null if it is not a SCIF host. */
export function parseHost(host: string): number | null {
  const h = host.trim();
  let m = HOST.exec(h);
  if (m) return nodeNumber(m[1]);
  m = MIC.exec(h);
  if (m) return nodeNumber(String(Number(m[1]) + 1));
  const lower = h.toLowerCase();
  if (lower === 'host') return 0;
  if (lower === 'localhost' && localhostIsSCIF()) return selfNode();
  return null;
}

/** A full 'scif:N:P' / 'scif://N:P' address, or null. */
export function parseAddress(text: string): Target | null {
  const m = FULL.exec(text.trim());
  if (!m) return null;
  const node = nodeNumber(m[1]);
  const port = Number(m[2]);
  return node === null || port > 65535 ? null : { node, port };
}

/** Whether input names a SCIF place: a full address, a SCIF host, or an object with a node. */
export function isSCIF(input: unknown): boolean {
  if (typeof input === 'string') {
    if (parseAddress(input)) return true;
    try {
      return parseHost(input) !== null;
    } catch {
      return false;
    }
  }
  if (input !== null && typeof input === 'object') {
    const o = input as { node?: unknown; host?: unknown; path?: unknown };
    if (o.node !== undefined) return true;
    if (typeof o.host === 'string') return isSCIF(o.host);
    return o.path === undefined && o.host === undefined && localhostIsSCIF();
  }
  return false;
}

export function formatHost(node: number): string {
  return `scif:${node}`;
}

export function formatAddress(node: number, port: number): string {
  return `scif:${node}:${port}`;
}

/** Node's validatePort: a number or numeric string in [0, 65536), as a number. */
export function validatePort(port: unknown, name = 'Port', allowZero = true): number {
  if ((typeof port !== 'number' && typeof port !== 'string') ||
      (typeof port === 'string' && port.trim().length === 0) ||
      +port !== (+port >>> 0) || +port > 0xffff || (port === 0 && !allowZero)) {
    throw ERR_SOCKET_BAD_PORT(name, port, allowZero);
  }
  return +port | 0;
}

export function validateNode(node: unknown, name = 'options.node'): number {
  if (typeof node !== 'number' && typeof node !== 'string') throw ERR_INVALID_ARG_TYPE(name, 'of type number', node);
  const n = typeof node === 'number' ? node : Number(node);
  if (!Number.isInteger(n) || n < 0 || n > MAX_NODE) {
    throw ERR_OUT_OF_RANGE(name, `an integer from 0 to ${MAX_NODE}`, node);
  }
  return n;
}
