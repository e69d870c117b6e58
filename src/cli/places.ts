// The places `bridge` and `cat` name, socat-style: tcp:HOST:PORT, unix:PATH,
// scif:NODE:PORT. A listening place may leave out the host or node.
import { UsageError } from './usage';

export type Place =
  | { kind: 'tcp'; host?: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'scif'; node?: number; port: number };

function portOf(text: string, spec: string, listening: boolean): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${spec}: "${text}" is not a port number`);
  const port = Number(text);
  if (port > 65535 || (port === 0 && !listening)) throw new UsageError(`${spec}: port ${port} is out of range (1..65535)`);
  return port;
}

/** Parses a place; `listening` allows a missing host/node and port 0 (any). */
export function parsePlace(spec: string, listening: boolean): Place {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? '' : spec.slice(0, colon).toLowerCase();
  const rest = spec.slice(colon + 1);
  if (kind === 'unix') {
    if (!rest) throw new UsageError(`${spec}: unix: needs a path`);
    return { kind: 'unix', path: rest };
  }
  if (kind === 'tcp') {
    const m = /^(?:(\[[^\]]+\]|[^:]*):)?([^:]+)$/.exec(rest);
    if (!m) throw new UsageError(`${spec}: expected tcp:HOST:PORT${listening ? ' or tcp:PORT' : ''}`);
    const host = m[1] === undefined ? undefined : m[1].replace(/^\[(.*)\]$/, '$1');
    if (!listening && !host) throw new UsageError(`${spec}: a TCP target needs a host (tcp:HOST:PORT)`);
    return { kind: 'tcp', host: host || undefined, port: portOf(m[2], spec, listening) };
  }
  if (kind === 'scif') {
    const parts = rest.replace(/^\/\//, '').split(':');
    if (parts.length === 1 && listening) return { kind: 'scif', port: portOf(parts[0], spec, true) };
    if (parts.length !== 2 || !/^\d+$/.test(parts[0]))
      throw new UsageError(`${spec}: expected scif:NODE:PORT${listening ? ' or scif:PORT' : ''}`);
    return { kind: 'scif', node: Number(parts[0]), port: portOf(parts[1], spec, listening) };
  }
  throw new UsageError(`${spec}: a place is tcp:HOST:PORT, unix:PATH or scif:NODE:PORT`);
}

export function formatPlace(p: Place): string {
  if (p.kind === 'unix') return `unix:${p.path}`;
  if (p.kind === 'tcp') return `tcp:${p.host === undefined ? '' : p.host.includes(':') ? `[${p.host}]:` : `${p.host}:`}${p.port}`;
  return `scif:${p.node === undefined ? '' : `${p.node}:`}${p.port}`;
}
