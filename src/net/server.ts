// Server: node:net's Server, listening over SCIF on this node, or over TCP or
// a path exactly as node:net does when told an IP address, a host name or a
// path. For SCIF the listening endpoint sits where node:net keeps its handle
// (behind a small adapter), so node:net's own close(), address(), ref(),
// getConnections() and 'close' bookkeeping run unchanged.
import tcp = require('node:net');
import os from 'node:os';
import { binding, type NativeSocketHandle } from '../binding';
import { FAMILY, formatHost, localhostIsSCIF, parseAddress, parseHost, parsePathAddress, selfNode, validatePort } from './address';
import { ERR_INVALID_ARG_TYPE, errnoException, uvExceptionWithHostPort } from '../errors';
import { clusterRole, listenInCluster, type ShareFailure } from './cluster';
import { Socket } from './socket';

const EADDRNOTAVAIL = -os.constants.errno.EADDRNOTAVAIL;
const EADDRINUSE = -os.constants.errno.EADDRINUSE;
const EINVAL = -os.constants.errno.EINVAL;
const ENXIO = -os.constants.errno.ENXIO;
const DEFAULT_BACKLOG = 511;

export interface ServerOptions extends tcp.ServerOpts {}

export interface ListenOptions extends tcp.ListenOptions {
  /** A SCIF address ('scif:0:2000') is accepted here too. */
  path?: string;
}

export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

/** A listening endpoint: a SocketHandle, or a listener shared with other processes (cluster.ts). */
type ListeningEndpoint = Pick<NativeSocketHandle, 'setOwner' | 'ref' | 'unref'> & { close(): unknown };

/** What node:net's Server calls on its handle, for a listening endpoint. */
class ListenHandle {
  constructor(readonly endpoint: ListeningEndpoint, readonly node: number, readonly port: number,
    private readonly release?: () => void) {}

  close(): void {
    this.endpoint.close();
    this.release?.();
  }

  ref(): void {
    this.endpoint.ref();
  }

  unref(): void {
    this.endpoint.unref();
  }

  getsockname(out: Partial<AddressInfo>): number {
    out.address = formatHost(this.node);
    out.family = FAMILY;
    out.port = this.port;
    return 0;
  }
}

/** Whether a server (any node:net Server) is listening over SCIF. */
export function listensOverSCIF(server: unknown): boolean {
  return server instanceof tcp.Server && (server as unknown as ServerFields)._handle instanceof ListenHandle;
}

type Listen = { options: ListenOptions; backlog?: number; cb?: () => void };

/** node:net's toNumber: a number >= 0, or false. */
function toNumber(x: unknown): number | false {
  const n = Number(x);
  return n >= 0 ? n : false;
}

/**
 * The SCIF reading of listen()'s arguments, or null when node:net should have
 * them: TCP, a path, a handle or a descriptor, and arguments node:net rejects
 * (it throws its own errors for those). Read as node:net's listen() reads them.
 */
function scifListenArgs(args: unknown[]): Listen | null {
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? (last as () => void) : undefined;
  const first = args[0];
  let options: ListenOptions & { handle?: unknown; _handle?: unknown; fd?: unknown };
  if (first !== null && typeof first === 'object') {
    options = { ...(first as ListenOptions) };
    if (options._handle || options.handle || (typeof options.fd === 'number' && options.fd >= 0)) return null;
  } else if (typeof first === 'string' && toNumber(first) === false) {
    const full = parsePathAddress(first);
    if (!full) return null;  // a path
    options = { host: formatHost(full.node), port: full.port };
  } else {
    options = { port: first as number };
    if (typeof args[1] === 'string') options.host = args[1];
  }
  // listen(), listen(cb), listen(null), { port: undefined }: any free port.
  if (args.length === 0 || typeof first === 'function' || options.port === null ||
      (options.port === undefined && 'port' in options)) {
    options.port = 0;
  }
  if (typeof options.port !== 'number' && typeof options.port !== 'string') {
    const full = typeof options.path === 'string' ? parsePathAddress(options.path) : null;
    if (!full) return null;
    options = { ...options, host: formatHost(full.node), port: full.port, path: undefined };
  }
  const host = options.host;
  if (host === undefined || host === null || host === '') {
    if (!localhostIsSCIF()) return null;
  } else if (typeof host !== 'string' || (!parseAddress(host) && parseHost(host) === null)) {
    return null;  // an IP address or a host name: TCP (or node:net's error)
  }
  const backlogFromArgs = toNumber(args.length > 1 && args[1]) || toNumber(args.length > 2 && args[2]);
  return { options, backlog: options.backlog || backlogFromArgs || undefined, cb };
}

/** node:net's validateAbortSignal. */
function validateAbortSignal(signal: unknown, name: string): void {
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || !('aborted' in signal))) {
    throw ERR_INVALID_ARG_TYPE(name, 'an instance of AbortSignal', signal);
  }
}

type ServerFields = {
  _handle: unknown; _unref: boolean; _connectionKey?: string; _connections: number; maxConnections?: number; allowHalfOpen: boolean;
  pauseOnConnect: boolean; highWaterMark?: number;
};

/**
 * Listens over SCIF on any node:net Server (ours, node:http's, node:https's)
 * when listen()'s arguments name a SCIF place, as node:net would over TCP:
 * 'listening' and 'connection' are emitted on that server and its handle is
 * the listening endpoint. False when the arguments are not SCIF's.
 */
export function listenOverSCIF(server: tcp.Server, args: unknown[]): boolean {
  const parsed = scifListenArgs(args);
  if (!parsed) return false;
  const self = server as unknown as ServerFields;
  if (self._handle) return false;  // node:net throws ERR_SERVER_ALREADY_LISTEN
  const { options, cb } = parsed;
  if (cb) server.once('listening', cb);
  validateAbortSignal(options.signal, 'options.signal');
  const port = validatePort(options.port, 'options.port');
  const backlog = Number(parsed.backlog || DEFAULT_BACKLOG) | 0;
  if (options.signal) watchSignal(server, options.signal);

  let here: number;
  try {
    here = selfNode();
  } catch (err) {
    const errno = (err as { errno?: number }).errno ?? ENXIO;
    const ex = uvExceptionWithHostPort(errno, 'listen', options.host ?? 'localhost', port);
    process.nextTick(() => server.emit('error', ex));
    return true;
  }
  const full = options.host ? parseAddress(options.host) : null;
  const node = options.host ? (full ? full.node : parseHost(options.host)!) : here;
  const fail = (status: number, note?: string) => {
    const err = uvExceptionWithHostPort(status, 'listen', formatHost(node), port, note);
    process.nextTick(() => server.emit('error', err));
  };
  // A node:cluster worker shares the port with its siblings (cluster.ts).
  const role = node === here && !options.exclusive ? clusterRole() : 'none';
  if (role === 'worker') {
    // Closed before the primary answered: what it sends is let go, and the
    // server never listens (node:net's worker does the same).
    let closed = false;
    const onClose = () => (closed = true);
    server.once('close', onClose);
    const settled = () => {
      server.off('close', onClose);
      return !closed;
    };
    clusterListens.set(server, (clusterListens.get(server) ?? 0) + 1);
    const answered = () => clusterListens.set(server, clusterListens.get(server)! - 1);
    listenInCluster(node, port, backlog, {
      shared: (listener, bound, release) => {
        answered();
        if (settled()) return becomeListening(server, listener, node, bound, port, release);
        listener.close();
        release();
      },
      alone: (why) => (answered(), settled() && listenAlone(server, node, here, port, backlog, fail, why)),
      failed: (status) => (answered(), settled() && fail(status)),
    });
  } else {
    listenAlone(server, node, here, port, backlog, fail, role === 'none' ? undefined : role);
  }
  return true;
}

const SHARE_NOTES: Record<ShareFailure, string> = {
  'no-primary': 'cluster workers share a SCIF port when their primary loaded scif-net before forking them: ' +
    "node --require scif-net/register, or require('scif-net') in the primary",
  unsupported: 'cluster workers cannot share a SCIF port here: this SCIF backend cannot accept on a listener ' +
    'another process opened',
};

/**
 * A cluster worker's listens on a server that its primary has not answered
 * yet. A worker may call listen() again before the first answer (node:net's
 * test-net-listen-twice): the server then listens once, on the last answer,
 * whichever tick each answer comes in.
 */
const clusterListens = new WeakMap<object, number>();

/** Opens, binds and listens an endpoint of this process's own for the server. */
function listenAlone(server: tcp.Server, node: number, here: number, port: number, backlog: number,
  fail: (status: number, note?: string) => void, shareFailure?: ShareFailure): void {
  const endpoint = new binding.SocketHandle();
  let status = node === here ? endpoint.open() : EADDRNOTAVAIL;  // one listens on one's own node
  let bound = port;
  if (status === 0) {
    bound = endpoint.bind(port);
    // SCIF says EINVAL for a port in use (its "the endpoint or the port are
    // already bound"); a fresh endpoint is not bound, so here it is the port,
    // which node:net calls EADDRINUSE.
    if (bound === EINVAL && port !== 0) bound = EADDRINUSE;
    status = bound < 0 ? bound : endpoint.listen(backlog);
  }
  if (status !== 0) {
    endpoint.close();
    fail(status, status === EADDRINUSE && shareFailure ? SHARE_NOTES[shareFailure] : undefined);
    return;
  }
  becomeListening(server, endpoint, node, bound, port);
}

/** Makes a listening endpoint (on port, as asked for asked) the server's handle; 'listening' follows. */
function becomeListening(server: tcp.Server, endpoint: ListeningEndpoint, node: number, port: number, asked: number,
  release?: () => void): void {
  const self = server as unknown as ServerFields;
  const handle = new ListenHandle(endpoint, node, port, release);
  // An earlier answer to a listen() called twice: this one takes its place.
  if (self._handle instanceof ListenHandle) self._handle.close();
  self._handle = handle;
  // node:net's addressType:address:port (port as asked); SCIF's addressType
  // is its family's last character, as node:net's tests derive it.
  self._connectionKey = `${FAMILY.slice(-1)}:${formatHost(node)}:${asked}`;
  endpoint.setOwner(server);
  if (self._unref) endpoint.unref();
  process.nextTick(() => {
    if (self._handle === handle && !clusterListens.get(server)) server.emit('listening');
  });
}

function watchSignal(server: tcp.Server, signal: AbortSignal): void {
  if (signal.aborted) {
    process.nextTick(() => server.close());
    return;
  }
  const onAbort = () => server.close();
  signal.addEventListener('abort', onAbort, { once: true });
  server.once('close', () => signal.removeEventListener('abort', onAbort));
}

/**
 * The listening endpoint can accept nothing more (its fabric directory was
 * removed): the server stops listening, as after a listen that failed - its
 * handle closed, no 'close' - and says why; it may listen again. Connections
 * it accepted before go on.
 */
function listenerGone(server: tcp.Server, status: number): void {
  const self = server as unknown as ServerFields;
  const handle = self._handle as ListenHandle;
  // Made first: the fabric's sentence is the failed accept's.
  const err = uvExceptionWithHostPort(status, 'accept', formatHost(handle.node), handle.port);
  handle.close();
  self._handle = null;
  server.emit('error', err);
}

/**
 * Whether a server with this many connections drops the next one, as the
 * running Node's node:net decides: Node 20 reads maxConnections 0 as no
 * limit (`if (self.maxConnections && ...)`), later ones (nodejs/node#48276)
 * as none allowed.
 */
const ZERO_MEANS_NONE = Number(process.versions.node.split('.')[0]) >= 21;
function overLimit(max: number | undefined, connections: number): boolean {
  if (max === undefined || max === null) return false;
  if (!max && !ZERO_MEANS_NONE) return false;
  return connections >= max;
}

function onconnection(this: tcp.Server, status: number, child?: NativeSocketHandle, gone?: boolean): void {
  const server = this;
  const self = server as unknown as ServerFields;
  if (gone && self._handle instanceof ListenHandle) {
    listenerGone(server, status);
    return;
  }
  if (status < 0 || !child) {
    server.emit('error', errnoException(status, 'accept'));
    return;
  }
  if (overLimit(self.maxConnections, self._connections)) {
    const local = server.address() as AddressInfo;
    child.close();
    server.emit('drop', {
      localAddress: local.address, localPort: local.port, localFamily: FAMILY,
      remoteAddress: formatHost(child.peerNode), remotePort: child.peerPort, remoteFamily: FAMILY,
    });
    return;
  }
  const socket = new Socket({
    scifHandle: child,
    allowHalfOpen: self.allowHalfOpen,
    pauseOnCreate: self.pauseOnConnect,
    readable: true,
    writable: true,
    highWaterMark: self.highWaterMark,
  });
  self._connections++;
  const s = socket as unknown as { server: unknown; _server: unknown };
  s.server = server;
  s._server = server;
  server.emit('connection', socket);
}

binding.SocketHandle.linkHooks<tcp.Server>({ onconnection });

export class Server extends tcp.Server {
  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    if (options !== undefined && options !== null && typeof options !== 'object' && typeof options !== 'function') {
      throw ERR_INVALID_ARG_TYPE('options', 'of type object', options);
    }
    super(options as tcp.ServerOpts, connectionListener as (socket: tcp.Socket) => void);
  }

  override listen(...args: unknown[]): this {
    if (listenOverSCIF(this, args)) return this;
    return (super.listen as (...a: unknown[]) => this)(...args);
  }
}
