// Redirection (scif-net/register): listens and connects to the TCP places a
// map names go over SCIF inside an unmodified program, as rsockets' preload
// library does for RDMA. Three functions of Node's are wrapped, since every
// stack in Node ends in them:
//
//   net.Socket.prototype.connect   net.connect/createConnection, node:http(s)
//                                  agents, http2 (h2c), undici and the global
//                                  fetch, grpc-js, jayson, mqtt, ...
//   net.Server.prototype.listen    net, http, https, http2, tls servers, and
//                                  every framework's app.listen()
//   tls.connect                    https agents, http2 over TLS, undici and
//                                  fetch for https: URLs
//
// A connect to a mapped place turns the socket into a scif-net Socket (its
// prototype: a plain net.Socket becomes exactly what `new scifNet.Socket()`
// makes) and connects it over SCIF; tls.connect() to a mapped place runs TLS
// over such a socket (the certificate is still checked against the name the
// program used); a listen on a mapped place listens over SCIF on that server.
// Everything else reaches Node's own functions with the same arguments:
// unmapped places behave exactly as before.
import module from 'node:module';
import tcp from 'node:net';
import tls from 'node:tls';
import util from 'node:util';
import os from 'node:os';
import { formatAddress, formatHost, selfNode } from './address';
import type { Mapped, RedirectMap } from './map';
import { listenOverSCIF } from './server';
import { Socket } from './socket';
import { coded } from '../errors';

type AnyFn = (this: any, ...args: any[]) => any;

interface Installed {
  map: RedirectMap;
  connect: AnyFn;
  listen: AnyFn;
  tlsConnect: AnyFn;
}

const INSTALLED = Symbol.for('scif-net.redirect');

/** The options and callback of connect()'s forms, as node:net reads them (none for a path). */
function connectArgs(args: unknown[]): [Record<string, unknown>, AnyFn | undefined] | null {
  const list = Array.isArray(args[0]) ? (args[0] as unknown[]) : args;  // net.connect() passes [options, cb]
  const cb = typeof list[list.length - 1] === 'function' ? (list[list.length - 1] as AnyFn) : undefined;
  const first = list[0];
  if (first !== null && typeof first === 'object') return [first as Record<string, unknown>, cb];
  if (typeof first === 'string' && Number.isNaN(Number(first))) return null;  // a path
  return [{ port: first, host: typeof list[1] === 'string' ? list[1] : undefined }, cb];
}

function portOf(value: unknown): number | null {
  if (typeof value !== 'number' && typeof value !== 'string') return null;
  if (typeof value === 'string' && !/^\s*\d+\s*$/.test(value)) return null;
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : null;
}

function lookupConnect(map: RedirectMap, options: Record<string, unknown>): Mapped | null {
  if (options.path !== undefined && options.path !== null) return null;
  const port = portOf(options.port);
  const host = options.host ?? 'localhost';
  if (port === null || typeof host !== 'string') return null;
  return map.connect(host, port);
}

// The prototype a socket of `proto` gets to carry SCIF: ours for a plain
// net.Socket; for a subclass of net.Socket, the subclass with ours laid over it.
const overlays = new WeakMap<object, object>();
function scifPrototype(proto: object): object {
  if (proto === tcp.Socket.prototype) return Socket.prototype;
  let overlay = overlays.get(proto);
  if (!overlay) {
    const { constructor: _constructor, ...own } = Object.getOwnPropertyDescriptors(Socket.prototype);
    overlay = Object.create(proto, own) as object;
    overlays.set(proto, overlay);
  }
  return overlay;
}

function systemError(errno: number, syscall: string, address: string, port: number, note: string): Error {
  const [code, text] = util.getSystemErrorMap().get(errno) ?? ['EIO', 'i/o error'];
  const err = new Error(`${syscall} ${code}: ${text} ${address}:${port} (${note})`);
  return Object.assign(err, { errno, code, syscall, address, port });
}

function connectOverSCIF(socket: tcp.Socket, options: Record<string, unknown>, cb: AnyFn | undefined, to: Mapped): tcp.Socket {
  if (socket instanceof tls.TLSSocket) {
    // A TLSSocket made by hand and then connected: its TLS sits on a TCP
    // handle made with it. tls.connect() is the way in (wrapped below).
    const err = coded(Error, 'ERR_INVALID_ARG_VALUE',
      `${String(options.host ?? 'localhost')}:${String(options.port)} is mapped to ${formatAddress(to.node, to.port)} by ` +
      `${to.entry.source} ('${to.entry.text}'), and a tls.TLSSocket made with new cannot connect over SCIF; use tls.connect()`);
    process.nextTick(() => socket.destroy(err));
    return socket;
  }
  if (!(socket instanceof Socket)) Object.setPrototypeOf(socket, scifPrototype(Object.getPrototypeOf(socket) as object));
  const { host: _host, path: _path, port: _port, family: _family, lookup: _lookup, localAddress: _la, localPort: _lp, ...rest } = options;
  return (Socket.prototype.connect as AnyFn).call(socket, { ...rest, node: to.node, port: to.port }, cb);
}

/** (port[, host][, backlog][, cb]) or (options[, cb]): what listen() asks for, or null for a path, a handle or port 0. */
function listenArgs(args: unknown[]): { host: unknown; port: number; options: Record<string, unknown>; cb?: AnyFn } | null {
  const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as AnyFn) : undefined;
  const list = cb ? args.slice(0, -1) : args;
  const first = list[0];
  if (first !== null && typeof first === 'object') {
    const o = first as Record<string, unknown>;
    if ('handle' in o || '_handle' in o || 'fd' in o) return null;
    if (o.path !== undefined && o.path !== null) return null;
    const port = portOf(o.port);
    return port === null ? null : { host: o.host, port, options: o, cb };
  }
  const port = portOf(first);
  if (port === null) return null;
  const host = typeof list[1] === 'string' ? list[1] : undefined;
  const backlog = [list[1], list[2]].find((v) => typeof v === 'number');
  return { host, port, options: backlog === undefined ? {} : { backlog }, cb };
}

/** Wraps Node's connect, listen and tls.connect for `map`; once per process (a second call replaces the map). */
export function installRedirect(map: RedirectMap): void {
  const holder = tcp.Socket.prototype as unknown as Record<symbol, Installed | undefined>;
  const existing = holder[INSTALLED];
  if (existing) {
    existing.map = map;
    return;
  }
  const state: Installed = {
    map,
    connect: tcp.Socket.prototype.connect as AnyFn,
    listen: tcp.Server.prototype.listen as AnyFn,
    tlsConnect: tls.connect as AnyFn,
  };
  Object.defineProperty(holder, INSTALLED, { value: state });

  tcp.Socket.prototype.connect = function connect(this: tcp.Socket, ...args: unknown[]) {
    const parsed = state.map.size > 0 ? connectArgs(args) : null;
    const to = parsed && lookupConnect(state.map, parsed[0]);
    if (!to) return state.connect.apply(this, args);
    return connectOverSCIF(this, parsed[0], parsed[1], to);
  } as typeof tcp.Socket.prototype.connect;

  tcp.Server.prototype.listen = function listen(this: tcp.Server, ...args: unknown[]) {
    const parsed = state.map.size > 0 && !(this as unknown as { _handle: unknown })._handle ? listenArgs(args) : null;
    if (!parsed) return state.listen.apply(this, args);
    let self: number;
    try {
      self = selfNode();
    } catch {
      self = -1;  // then listenOverSCIF reports the unusable fabric as a listen error
    }
    const to = state.map.listen(parsed.host, parsed.port, self);
    if (!to) return state.listen.apply(this, args);
    if (to.node !== self && self >= 0) {
      const err = systemError(-os.constants.errno.EADDRNOTAVAIL, 'listen', formatHost(to.node), to.port,
        `${to.entry.source} ('${to.entry.text}') sends port ${parsed.port} to node ${to.node}, and this process is on node ${self}`);
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    const { host: _host, port: _port, ...rest } = parsed.options;
    listenOverSCIF(this, [{ ...rest, host: formatHost(to.node), port: to.port }, ...(parsed.cb ? [parsed.cb] : [])]);
    return this;
  } as typeof tcp.Server.prototype.listen;

  tls.connect = function connect(this: unknown, ...args: unknown[]) {
    const parsed = state.map.size > 0 ? connectArgs(args) : null;
    if (parsed) {
      // tls.connect(port, host, options, cb): options may come second or third.
      const options = { ...parsed[0] };
      const extra = [args[1], args[2]].find((a) => a !== null && typeof a === 'object' && !Array.isArray(a));
      if (extra && extra !== parsed[0]) Object.assign(options, extra);
      const to = options.socket ? null : lookupConnect(state.map, options);
      if (to) {
        const socket = connectOverSCIF(new Socket(), {}, undefined, to);
        return state.tlsConnect.call(this, { ...options, socket }, parsed[1]);
      }
    }
    return state.tlsConnect.apply(this, args);
  } as typeof tls.connect;

  // ESM programs importing { connect } from 'node:tls' get the wrapper too.
  module.syncBuiltinESMExports();
}
