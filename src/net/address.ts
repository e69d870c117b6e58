// SCIF addresses: parsing what users write, and the strings sockets report.
//
//   'scif:1:2000', 'scif://1:2000'     node 1, port 2000
//   { node: 1, port: 2000 }
//   host 'scif:1' / 'scif://1'         node 1
//   host 'host'                        node 0 (MPSS's name for the host)
//   host 'micK'                        node K + 1 (MPSS's name for card K)
//   host 'localhost' (or none)         this process's node, unless
//                                      SCIF_NET_LOCALHOST=tcp sends it to TCP
//
// Anything else that starts with 'scif:' is a mistake, never a Unix socket
// path or a host name: ERR_INVALID_ARG_VALUE ('scif::', 'scif:99:2001' - nodes
// are 0 to 63 - 'scif:1:x'), or ERR_SOCKET_BAD_PORT for a port past 65535.
// Where node:net takes a path, 'scif:N:P' is an address and 'scif:N' (no
// port) an ERR_INVALID_ARG_VALUE.
import { binding } from '../binding';
import {
  ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE, ERR_SOCKET_BAD_PORT, errnoException,
} from '../errors';

export const FAMILY = 'SCIF';
export const MAX_NODE = 63;

export interface Target {
  node: number;
  port: number;
}

const FULL = /^scif:(?:\/\/)?(\d{1,5}):(\d{1,5})$/i;
const HOST = /^scif:(?:\/\/)?(\d{1,5})$/i;
const MIC = /^mic(\d{1,2})$/i;
const SCHEME = /^\s*scif:/i;

function malformed(text: string): TypeError {
  return ERR_INVALID_ARG_VALUE('address', text,
    `is not a SCIF address ('scif:NODE:PORT' or 'scif:NODE', NODE from 0 to ${MAX_NODE}, PORT from 0 to 65535)`);
}

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

/** The node a host string names, or null if it is not a SCIF host; throws for a malformed 'scif:' one. */
export function parseHost(host: string): number | null {
  const h = host.trim();
  let m = HOST.exec(h);
  if (m) {
    const node = nodeNumber(m[1]);
    if (node === null) throw malformed(host);
    return node;
  }
  if (SCHEME.test(h)) {
    if (FULL.exec(h)) return null;  // a full address: parseAddress()'s
    throw malformed(host);
  }
  m = MIC.exec(h);
  if (m) return nodeNumber(String(Number(m[1]) + 1));
  const lower = h.toLowerCase();
  if (lower === 'host') return 0;
  if (lower === 'localhost' && localhostIsSCIF()) return selfNode();
  return null;
}

/**
 * A full 'scif:N:P' / 'scif://N:P' address, or null for anything that is not
 * one ('scif:N' alone included: parseHost()'s); throws for a malformed one.
 */
export function parseAddress(text: string): Target | null {
  const t = text.trim();
  const m = FULL.exec(t);
  if (!m) {
    if (SCHEME.test(t) && !HOST.test(t)) throw malformed(text);
    return null;
  }
  const node = nodeNumber(m[1]);
  const port = Number(m[2]);
  if (node === null) throw malformed(text);
  if (port > 65535) throw ERR_SOCKET_BAD_PORT('Port', port);
  return { node, port };
}

/**
 * A string given where node:net takes a path (connect('...'), listen('...'),
 * { path }): a full SCIF address, or null for a real path. 'scif:N' alone
 * names no port, so it is an error here, never a file called 'scif:N'.
 */
export function parsePathAddress(text: string): Target | null {
  const full = parseAddress(text);
  if (!full && HOST.test(text.trim())) {
    throw ERR_INVALID_ARG_VALUE('address', text, "names a SCIF node but no port ('scif:NODE:PORT')");
  }
  return full;
}

/** Whether input names a SCIF place: a full address, a SCIF host, or an object with a node. */
export function isSCIF(input: unknown): boolean {
  if (typeof input === 'string') {
    if (SCHEME.test(input)) return true;  // well formed or not: never TCP or a path
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
