// The redirection map (scif-net/register): which TCP places an unmodified
// program names go over SCIF instead.
//
//   SCIF_NET_MAP='127.0.0.1:8080=scif:1:8080,localhost:50051=scif:0:50051'
//   SCIF_NET_MAP_FILE=/etc/scif-net.map     (the same entries, one or more a
//                                            line, '#' starts a comment)
//
// An entry is FROM=TO:
//   FROM  HOST:PORT   a host name, an IPv4 address or a bracketed IPv6 one
//                     ([::1]:8080); '*' for any host; PORT '*' for any port
//   TO    scif:N:P    node N, port P (also 'scif://N:P')
//         scif:N      node N, the port FROM named
//
// The loopback names (localhost, 127.0.0.1, ::1, and 0.0.0.0 or :: as
// connect targets) are one host here, as they are one machine: libraries
// that resolve 'localhost' before connecting (grpc-js) reach the same entry.
// A connect is looked up by the host and port it names; a listen on a
// wildcard address (none, 0.0.0.0, ::) by its port alone, preferring an
// entry on this process's node. The most specific entry wins: host and port,
// then host and any port, then any host and port.
import fs from 'node:fs';
import { parseAddress } from './address';
import { coded } from '../errors';

export interface MapEntry {
  /** The host, normalised (lower case, no brackets, loopback names as 'localhost'), or '*'. */
  host: string;
  /** The port, or '*'. */
  port: number | '*';
  node: number;
  /** The SCIF port, or null for the port matched. */
  scifPort: number | null;
  /** The entry as written, and where ('SCIF_NET_MAP', or the file and line). */
  text: string;
  source: string;
}

/** Where a mapped place goes. */
export interface Mapped {
  node: number;
  port: number;
  entry: MapEntry;
}

const LOOPBACK = 'localhost';
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.', '127.0.0.1', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']);
const WILDCARDS = new Set(['', '0.0.0.0', '::', '0:0:0:0:0:0:0:0']);
const FORMAT = "Entries are HOST:PORT=scif:NODE:PORT or HOST:PORT=scif:NODE, separated by commas (HOST may be '*', an IPv6 address goes in brackets, PORT may be '*')";

function bad(source: string, text: string, why: string): Error {
  const err = coded(TypeError, 'ERR_INVALID_ARG_VALUE', `${source}: bad entry '${text}': ${why}. ${FORMAT}.`);
  return Object.assign(err, { entry: text, source });
}

/** A host as the map compares hosts. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  return LOOPBACK_NAMES.has(h) || WILDCARDS.has(h) ? LOOPBACK : h;
}

function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

function parseEntry(text: string, source: string): MapEntry {
  const eq = text.indexOf('=');
  if (eq < 0 || text.indexOf('=', eq + 1) >= 0) throw bad(source, text, "it needs exactly one '='");
  const from = text.slice(0, eq);
  const to = text.slice(eq + 1);

  let host: string;
  let portText: string;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(from);
  if (v6) {
    [, host, portText] = v6;
  } else {
    const colon = from.lastIndexOf(':');
    if (colon < 0) throw bad(source, text, `'${from}' has no port (HOST:PORT)`);
    host = from.slice(0, colon);
    portText = from.slice(colon + 1);
    if (host.includes(':')) throw bad(source, text, `write an IPv6 address in brackets ('[${host}]:${portText}')`);
  }
  if (host.length === 0) throw bad(source, text, `'${from}' has no host (use '*' for any host)`);
  const port = portText === '*' ? '*' : parsePort(portText);
  if (port === null) throw bad(source, text, `'${portText}' is not a port (1 to 65535, or '*')`);

  let node: number;
  let scifPort: number | null = null;
  const full = parseAddress(to);
  const hostOnly = /^scif:(?:\/\/)?(\d{1,2})$/i.exec(to.trim());
  if (full) {
    if (full.port === 0) throw bad(source, text, `'${to}' names port 0`);
    node = full.node;
    scifPort = full.port;
  } else if (hostOnly && Number(hostOnly[1]) <= 63) {
    node = Number(hostOnly[1]);
  } else {
    throw bad(source, text, `'${to}' is not a SCIF place ('scif:NODE:PORT' or 'scif:NODE', NODE from 0 to 63)`);
  }
  if (port === '*' && scifPort !== null) {
    throw bad(source, text, `a '*' port keeps its number, so the target is 'scif:${node}' without a port`);
  }
  return { host: host === '*' ? '*' : normalizeHost(host), port, node, scifPort, text, source };
}

/** Entries from a map's text: commas, white space and new lines separate them; '#' comments to the end of a line. */
export function parseMap(text: string, source: string): MapEntry[] {
  const entries: MapEntry[] = [];
  text.split('\n').forEach((line, i) => {
    const where = source.startsWith('SCIF_NET_MAP_FILE') ? `${source}:${i + 1}` : source;
    for (const item of line.replace(/#.*/, '').split(/[\s,]+/)) {
      if (item) entries.push(parseEntry(item, where));
    }
  });
  return entries;
}

/** The map an environment gives: SCIF_NET_MAP_FILE's entries, then SCIF_NET_MAP's (one place mapped twice is an error). */
export function loadMap(env: NodeJS.ProcessEnv = process.env): RedirectMap {
  const file = env.SCIF_NET_MAP_FILE;
  const parts: Array<[string, string]> = [];
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw Object.assign(new Error(`SCIF_NET_MAP_FILE: cannot read ${file}: ${e.message}`), { code: e.code, path: file });
    }
    parts.push([text, `SCIF_NET_MAP_FILE ${file}`]);
  }
  if (env.SCIF_NET_MAP) parts.push([env.SCIF_NET_MAP, 'SCIF_NET_MAP']);
  const entries: MapEntry[] = [];
  for (const [body, source] of parts) {
    for (const entry of parseMap(body, source)) {
      const same = entries.find((e) => e.host === entry.host && e.port === entry.port);
      if (same) throw bad(entry.source, entry.text, `'${entry.host}:${entry.port}' is mapped already, by '${same.text}' (${same.source})`);
      entries.push(entry);
    }
  }
  return new RedirectMap(entries);
}

const WILDCARD_LISTEN = (host: unknown) => host === undefined || host === null || (typeof host === 'string' && WILDCARDS.has(host.trim().replace(/^\[(.*)\]$/, '$1')));

export class RedirectMap {
  constructor(readonly entries: readonly MapEntry[]) {}

  get size(): number {
    return this.entries.length;
  }

  private static resolve(entry: MapEntry, port: number): Mapped {
    return { node: entry.node, port: entry.scifPort ?? port, entry };
  }

  /** Where a connect to host:port goes, or null: TCP as before. */
  connect(host: string, port: number): Mapped | null {
    const h = normalizeHost(host);
    const tiers = [
      (e: MapEntry) => e.host === h && e.port === port,
      (e: MapEntry) => e.host === h && e.port === '*',
      (e: MapEntry) => e.host === '*' && e.port === port,
      (e: MapEntry) => e.host === '*' && e.port === '*',
    ];
    for (const tier of tiers) {
      const entry = this.entries.find(tier);
      if (entry) return RedirectMap.resolve(entry, port);
    }
    return null;
  }

  /**
   * Where a listen on host:port goes, or null. A wildcard host (none, '',
   * 0.0.0.0, ::) takes any entry for the port, one on `self` first.
   */
  listen(host: unknown, port: number, self: number): Mapped | null {
    if (!WILDCARD_LISTEN(host)) return typeof host === 'string' ? this.connect(host, port) : null;
    const tiers = [
      (e: MapEntry) => e.port === port && e.host !== '*',
      (e: MapEntry) => e.port === port,
      (e: MapEntry) => e.port === '*' && e.host !== '*',
      (e: MapEntry) => e.port === '*',
    ];
    for (const tier of tiers) {
      const matches = this.entries.filter(tier);
      const entry = matches.find((e) => e.node === self) ?? matches[0];
      if (entry) return RedirectMap.resolve(entry, port);
    }
    return null;
  }
}
