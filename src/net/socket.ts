// Socket: node:net's Socket, carrying its stream over a SCIF endpoint when it
// connects to a SCIF place (or was accepted by a SCIF server), and behaving
// exactly as node:net's own over TCP or a path otherwise: it *is* a
// node:net Socket, so `instanceof net.Socket` holds for libraries.
//
// In SCIF mode the socket owns the stream state machine (connecting, half
// close, destroy order) and the native endpoint only moves bytes and reports
// readiness (native/endpoint.h). node:net's own code still runs wherever it
// does not touch a handle: timeouts, address getters, end(), destroySoon().
import tcp = require('node:net');
import os from 'node:os';
import { binding, type NativeSocketHandle, type ScifStats, type SocketHooks } from '../binding';
import {
  FAMILY, formatHost, isSCIF, localhostIsSCIF, parseAddress, parseHost, parsePathAddress, selfNode, validateNode, validatePort,
  type Target,
} from './address';
import {
  ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_MISSING_ARGS, ERR_SOCKET_CLOSED,
  ERR_SOCKET_CLOSED_BEFORE_CONNECTION, errnoException, exceptionWithHostPort,
} from '../errors';
import { OnRead, type OnReadOption } from './onread';
import { installTlsCompat } from './tls-compat';

const ENOTCONN = -os.constants.errno.ENOTCONN;

export interface SocketOptions extends tcp.SocketConstructorOpts {
  highWaterMark?: number;
  onread?: OnReadOption;
  /** @internal an endpoint a scif-net Server accepted */
  scifHandle?: NativeSocketHandle;
  /** @internal */
  pauseOnCreate?: boolean;
}

export interface ConnectOptions {
  node?: number;
  port?: number | string;
  host?: string;
  path?: string;
  timeout?: number;
  allowHalfOpen?: boolean;
  signal?: AbortSignal;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  onread?: OnReadOption;
  [key: string]: unknown;
}

type Callback = (err?: Error | null) => void;

const kScif = Symbol('kScif');

/** Whether a socket is one of ours in SCIF mode (node:tls and http2 wrap such sockets: tls-compat.ts). */
export const carriesSCIF = (socket: unknown): boolean => (socket as { [kScif]?: ScifState | null })[kScif] != null;
let compatInstalled = false;

/** The state of a socket in SCIF mode. */
class ScifState {
  constructor() {
    if (!compatInstalled) {
      compatInstalled = true;
      installTlsCompat(carriesSCIF);
    }
  }

  handle: NativeSocketHandle | null = null;
  target: Target | null = null;
  bytesRead = 0;
  bytesWritten = 0;
  pendingWrite: { cb: Callback; bytes: number } | null = null;
  pendingShutdown: Callback | null = null;
  /** Bytes of a write waiting for the connection (node:net's _pendingData). */
  waitingBytes = 0;
  reset = false;
  /** Whether the endpoint has been asked to connect. */
  connectAsked = false;
  /** Whether the endpoint's readStart() is in force. */
  reading = false;
  /** ref()/unref(): whether the user lets the socket keep the process alive. */
  refWanted = true;
  /** Whether the endpoint is ref()'d now (a new one is). */
  referenced = true;
  onread: OnRead | null = null;
  /** The closed handle's last scifStats(). */
  stats: ScifStats | null = null;
}

const noStats = (): ScifStats => ({ sent: { rma: 0, messages: 0 }, received: { rma: 0, messages: 0 }, windows: 0, fallbacks: 0 });

/** (options[, cb]), ('scif:N:P'[, cb]), (path[, cb]), (port[, host][, cb]) -> [options, cb]. */
export function normalizeConnectArgs(args: unknown[]): [ConnectOptions, (() => void) | undefined] {
  if (args.length === 0) throw ERR_MISSING_ARGS('options', 'port', 'path');
  const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as () => void) : undefined;
  const first = args[0];
  let options: ConnectOptions;
  if (first !== null && typeof first === 'object') {
    options = first as ConnectOptions;
  } else if (typeof first === 'string' && parsePathAddress(first)) {
    const t = parsePathAddress(first)!;
    options = { node: t.node, port: t.port };
  } else if (typeof first === 'string' && Number.isNaN(Number(first))) {
    options = { path: first };
  } else {
    options = { port: first as number };
    if (typeof args[1] === 'string') options.host = args[1];
  }
  return [options, cb];
}

/** Whether connect options point into the SCIF fabric rather than at TCP or a path. */
export function goesOverSCIF(options: ConnectOptions): boolean {
  if (options.node !== undefined) return true;
  if (typeof options.path === 'string') return parsePathAddress(options.path) !== null;
  if (options.path !== undefined && options.path !== null) return false;
  if (options.host === undefined || options.host === null) return localhostIsSCIF();
  if (typeof options.host !== 'string') return false;  // node:net reports the bad type
  return isSCIF(options.host);
}

/** Where SCIF connect options point, or an argument error. */
export function resolveTarget(options: ConnectOptions): Target {
  let node: number | null;
  let port: unknown = options.port;
  const viaPath = typeof options.path === 'string' ? parsePathAddress(options.path) : null;
  if (options.node !== undefined) {
    node = validateNode(options.node);
  } else if (viaPath) {
    node = viaPath.node;
    if (port === undefined) port = viaPath.port;
  } else {
    const host = options.host ?? 'localhost';
    if (typeof host !== 'string') throw ERR_INVALID_ARG_TYPE('options.host', 'of type string', host);
    const full = parseAddress(host);
    if (full && port === undefined) port = full.port;
    node = full ? full.node : parseHost(host);
    if (node === null) {
      throw ERR_INVALID_ARG_VALUE('options.host', host, "is not a SCIF host ('scif:N', 'host', 'micK' or 'localhost')");
    }
  }
  // As node:net: no port is a missing argument, a null one a bad type.
  if (port === undefined) throw ERR_MISSING_ARGS('options', 'port', 'path');
  if (typeof port !== 'number' && typeof port !== 'string') {
    throw ERR_INVALID_ARG_TYPE('options.port', 'one of type number or string', port);
  }
  return { node, port: validatePort(port) };
}

function toBuffer(chunk: unknown, encoding?: string): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk, (encoding as BufferEncoding) || 'utf8');
  return chunk as Uint8Array;
}

function byteLength(chunk: unknown, encoding?: string): number {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk, (encoding as BufferEncoding) || 'utf8') : (chunk as Uint8Array).byteLength;
}

/** The bytes of what _writeGeneric was given. */
function chunkBytes(writev: boolean, data: unknown, encoding: string): number {
  if (!writev) return byteLength(data, encoding);
  let bytes = 0;
  for (const c of data as Array<{ chunk: unknown; encoding: string }>) bytes += byteLength(c.chunk, c.encoding);
  return bytes;
}

function withoutScifOptions(options: SocketOptions): tcp.SocketConstructorOpts {
  if (!('scifHandle' in options) && !('pauseOnCreate' in options)) return options;
  const { scifHandle, pauseOnCreate, ...rest } = options;
  return rest;
}

const base = tcp.Socket.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;

export class Socket extends tcp.Socket {
  [kScif]: ScifState | null = null;
  // node:net's own, beyond its public types.
  declare connecting: boolean;
  declare _unrefTimer: () => void;
  /** How this socket's bytes moved over SCIF, in bytes (undefined outside SCIF mode). */
  declare readonly scifStats: ScifStats | undefined;

  // What node:net's takes (a number is a descriptor, its legacy form), with
  // our own options for accepted sockets.
  constructor(options?: SocketOptions | number) {
    const own = options !== null && typeof options === 'object' ? options : null;
    super((own ? withoutScifOptions(own) : options) as tcp.SocketConstructorOpts);
    if (own?.scifHandle) {
      const scifHandle = own.scifHandle;
      const state = this.scif();
      state.handle = scifHandle;
      state.onread = OnRead.from(own.onread);
      setPeer(this, scifHandle);
      scifHandle.setOwner(this);
      if (own.readable !== false) {
        if (own.pauseOnCreate) this.pause();
        else this.read(0);
      }
      updateLiveness(this, state);
    }
  }

  private scif(): ScifState {
    if (!this[kScif]) this[kScif] = new ScifState();
    return this[kScif];
  }

  override connect(...args: any[]): this {
    const [options, cb] = normalizeConnectArgs(args);
    if (!goesOverSCIF(options)) {
      this[kScif] = null;
      return (base.connect as (...a: unknown[]) => this).apply(this, args);
    }
    const target = resolveTarget(options);
    if (cb) this.once('connect', cb);
    if (options.timeout) this.setTimeout(options.timeout as number);
    if (this.write !== tcp.Socket.prototype.write) this.write = tcp.Socket.prototype.write;
    if (this.destroyed) {
      (this as unknown as { _peername: null })._peername = null;
      (this as unknown as { _undestroy(): void })._undestroy();
    }
    const state = new ScifState();
    this[kScif] = state;
    state.target = target;
    state.onread = OnRead.from(options.onread);
    this.connecting = true;
    this._unrefTimer();
    const handle = new binding.SocketHandle();
    const err = handle.open();
    if (err === 0) {
      state.handle = handle;
      handle.setOwner(this);
      // As node:net asks for a connection a tick later (for an IP address;
      // later still for a host name), a socket destroyed or aborted at once
      // never reaches its peer.
      process.nextTick(() => startConnect(this, state));
    } else {
      const ex = exceptionWithHostPort(err, 'connect', formatHost(target.node), target.port);
      process.nextTick(() => this.destroy(ex));
    }
    return this;
  }

  _getsockname(): object {
    const state = this[kScif];
    if (!state) return base._getsockname.call(this) as object;
    if (!state.handle || this.connecting) return {};
    return { address: formatHost(selfNode()), family: FAMILY, port: state.handle.localPort };
  }

  override ref(): this {
    const state = this[kScif];
    if (!state) return base.ref.call(this) as this;
    state.refWanted = true;
    updateLiveness(this, state);
    return this;
  }

  override unref(): this {
    const state = this[kScif];
    // Before any connect node:net's unref() waits for 'connect', which suits us too.
    if (!state) return base.unref.call(this) as this;
    state.refWanted = false;
    updateLiveness(this, state);
    return this;
  }

  /** Closes at once; the peer reads ECONNRESET instead of an orderly end. */
  override resetAndDestroy(): this {
    const state = this[kScif];
    if (!state) return base.resetAndDestroy.call(this) as this;
    if (!state.handle) {
      this.destroy(ERR_SOCKET_CLOSED());
    } else if (this.connecting) {
      this.once('connect', () => this.resetAndDestroy());
    } else {
      state.reset = true;
      this.destroy();
    }
    return this;
  }

  override pause(): this {
    const state = this[kScif];
    if (state?.onread && !this.connecting && state.handle) {
      state.onread.reading = false;
      readStop(this, state);
    }
    return super.pause();
  }

  override resume(): this {
    const state = this[kScif];
    if (state?.onread && !this.connecting && state.handle) startReading(this, state);
    return super.resume();
  }

  // As node:net's: with onread, read() starts reading again.
  override read(size?: number): any {
    const state = this[kScif];
    if (state?.onread && !state.onread.reading && !this.connecting && state.handle) startReading(this, state);
    return super.read(size);
  }

  override _read(size: number): void {
    const state = this[kScif];
    if (!state) {
      base._read.call(this, size);
    } else if (this.connecting || !state.handle) {
      this.once('connect', () => this._read(size));
    } else if (!state.onread && !state.reading) {
      // As node:net's: only if the handle is not reading already (a stream
      // asks after every chunk it is given).
      startReading(this, state);
    }
  }

  _writeGeneric(writev: boolean, data: unknown, encoding: string, cb: Callback): void {
    const state = this[kScif];
    if (!state) {
      base._writeGeneric.call(this, writev, data, encoding, cb);
      return;
    }
    if (this.connecting) {
      // Writes wait for the connection; the Writable queues the ones after.
      // Until then bytesWritten counts this one, as node:net's does.
      state.waitingBytes = chunkBytes(writev, data, encoding);
      // A connection that never came keeps counting it, as node:net's
      // _pendingData does.
      const onClose = () => cb(ERR_SOCKET_CLOSED_BEFORE_CONNECTION());
      this.once('connect', () => {
        this.off('close', onClose);
        state.waitingBytes = 0;
        this._writeGeneric(writev, data, encoding, cb);
      });
      this.once('close', onClose);
      return;
    }
    const h = state.handle;
    if (!h) {
      cb(ERR_SOCKET_CLOSED());
      return;
    }
    this._unrefTimer();
    const buffers = writev
      ? (data as Array<{ chunk: unknown; encoding: string }>).map((c) => toBuffer(c.chunk, c.encoding))
      : [toBuffer(data, encoding)];
    let bytes = 0;
    for (const b of buffers) bytes += b.byteLength;
    const status = h.writev(buffers);
    if (status < 0) {
      cb(errnoException(status, 'write'));
    } else if (status === 0) {
      state.bytesWritten += bytes;
      cb();
    } else {
      state.pendingWrite = { cb, bytes };
      updateLiveness(this, state);
    }
  }

  override _final(cb: Callback): void {
    const state = this[kScif];
    if (!state) {
      base._final.call(this, cb);
      return;
    }
    if (this.connecting) {
      this.once('connect', () => this._final(cb));
      return;
    }
    const h = state.handle;
    if (!h) {
      cb();
      return;
    }
    const status = h.shutdown();
    if (status === 0 || status === ENOTCONN) {
      cb();
    } else if (status === 1) {
      state.pendingShutdown = cb;
      updateLiveness(this, state);
      // Nothing left queued: the FIN is in the ring already. Reported as
      // libuv reports a shutdown, right after this turn's poll phase; the
      // hook would come a turn later, after a peer in this process has read
      // the FIN and closed (so the ends would close in another order).
      if (h.writeQueueSize === 0) setImmediate(() => shutdownDone(this, state, cb, 0));
    } else {
      cb(errnoException(status, 'shutdown'));
    }
  }

  override _destroy(err: Error | null, cb: Callback): void {
    const state = this[kScif];
    if (!state) {
      base._destroy.call(this, err, cb);
      return;
    }
    const midConnect = this.connecting && state.connectAsked;
    this.connecting = false;
    this.setTimeout(0);
    const h = state.handle;
    const hadError = Boolean(err);
    state.handle = null;
    if (h) state.stats = h.scifStats();
    if (h) {
      // As node:net does: what was in flight completes quietly once
      // destroyed, when the handle has closed, right before 'close' (never
      // inside destroy()); the writes queued behind it then fail with
      // ERR_STREAM_DESTROYED. A write under way counts as written, as
      // node:net counts what it handed to its handle.
      const pending = state.pendingWrite;
      const shutdown = state.pendingShutdown;
      // Closing lets go of us: no hook is called after this.
      const emitClose = () => {
        if (pending && state.pendingWrite === pending) {
          state.pendingWrite = null;
          state.bytesWritten += pending.bytes;
          pending.cb(null);
        }
        if (shutdown && state.pendingShutdown === shutdown) {
          state.pendingShutdown = null;
          shutdown(null);
        }
        this.emit('close', hadError);
      };
      if (midConnect) {
        abandonConnect(h);
        setImmediate(emitClose);
      } else if (!h.close(state.reset, emitClose)) {
        setImmediate(emitClose);
      }
      cb(err);
    } else {
      cb(err);
      process.nextTick(() => this.emit('close', hadError));
    }
    const self = this as unknown as { _server: { _connections: number; _emitCloseIfDrained?(): void } | null };
    if (self._server) {
      self._server._connections--;
      self._server._emitCloseIfDrained?.();
    }
  }
}

// Accessors node:net computes from its handle; in SCIF mode ours answer.
function scifAccessor(name: string, get: (this: Socket, state: ScifState) => unknown): void {
  const inherited = Object.getOwnPropertyDescriptor(tcp.Socket.prototype, name)!;
  Object.defineProperty(Socket.prototype, name, {
    configurable: true,
    enumerable: inherited.enumerable,
    get(this: Socket) {
      const state = this[kScif];
      return state ? get.call(this, state) : inherited.get!.call(this);
    },
  });
}

scifAccessor('pending', function (state) {
  return !state.handle || this.connecting;
});
scifAccessor('bytesRead', (state) => state.bytesRead);

// How this socket's bytes moved over SCIF (large writes by RMA, the rest by
// messages), in bytes; undefined for a socket that is not in SCIF mode.
Object.defineProperty(Socket.prototype, 'scifStats', {
  configurable: true,
  enumerable: false,
  get(this: Socket): ScifStats | undefined {
    const state = this[kScif];
    if (!state) return undefined;
    return state.handle ? state.handle.scifStats() : (state.stats ?? noStats());
  },
});
scifAccessor('bytesWritten', function (state) {
  // What reached the fabric, plus what is still queued, as node:net counts.
  let queued = (state.pendingWrite?.bytes ?? 0) + state.waitingBytes;
  const buffered = (this as unknown as { writableBuffer?: Array<{ chunk: unknown; encoding: string }> }).writableBuffer;
  for (const entry of buffered ?? []) queued += byteLength(entry.chunk, entry.encoding);
  return state.bytesWritten + queued;
});
scifAccessor('bufferSize', function (state) {
  return state.handle ? this.writableLength + state.handle.writeQueueSize : undefined;
});

// The handle's hooks (native/socket_handle.h), called with the socket as `this`.
const hooks: Omit<SocketHooks<Socket>, 'onconnection'> = {
  onconnect(status) {
    if (abandoned.has(this)) {
      abandoned.delete(this);
      (this as unknown as { handle: NativeSocketHandle }).handle.close(false);
      return;
    }
    const state = this[kScif];
    if (!state) return;
    const target = state.target!;
    this.connecting = false;
    if (status < 0) {
      this.destroy(exceptionWithHostPort(status, 'connect', formatHost(target.node), target.port));
      return;
    }
    setPeer(this, state.handle!);
    state.target = null;  // for a failed connect's error only
    this._unrefTimer();
    this.emit('connect');
    this.emit('ready');
    if (this.readable && !this.isPaused()) this.read(0);
    updateLiveness(this, state);
  },

  onread(nread, buffer, offset = 0) {
    const state = this[kScif];
    const h = state?.handle;
    if (!state || !h) return;
    this._unrefTimer();
    if (nread > 0) {
      state.bytesRead += nread;
      const chunk = offset === 0 && nread === buffer!.length ? buffer! : buffer!.subarray(offset, offset + nread);
      const more = state.onread ? state.onread.deliver(this, chunk) : this.push(chunk);
      if (!more) readStop(this, state);
      return;
    }
    if (nread === binding.UV_EOF) {
      state.reading = false;  // the endpoint reads no more
      updateLiveness(this, state);
      // With onread, the end waits for the bytes the callback has not had yet.
      if (state.onread && (state.onread.hasPending() || !state.onread.reading)) state.onread.endWaiting = true;
      else endOfStream(this, state);
      return;
    }
    this.destroy(errnoException(nread, 'read'));
  },

  onwrite(status) {
    const state = this[kScif];
    const pending = state?.pendingWrite;
    if (!state || !pending) return;
    state.pendingWrite = null;
    updateLiveness(this, state);
    if (status < 0) {
      pending.cb(errnoException(status, 'write'));
    } else {
      state.bytesWritten += pending.bytes;
      this._unrefTimer();
      pending.cb();
    }
  },

  onshutdown(status) {
    const state = this[kScif];
    if (!state) return;
    if (state.pendingShutdown) shutdownDone(this, state, state.pendingShutdown, status);
    else if (status < 0 && !this.destroyed) this.destroy(errnoException(status, 'shutdown'));  // reported done too soon
  },
};
binding.SocketHandle.linkHooks<Socket>(hooks);

function shutdownDone(socket: Socket, state: ScifState, cb: Callback, status: number): void {
  if (state.pendingShutdown !== cb) return;
  state.pendingShutdown = null;
  updateLiveness(socket, state);
  cb(status < 0 ? errnoException(status, 'shutdown') : null);
}

function startConnect(socket: Socket, state: ScifState): void {
  if (socket[kScif] !== state || !state.handle || !socket.connecting) return;
  const { node, port } = state.target!;
  state.connectAsked = true;
  const err = state.handle.connect(node, port);
  if (err !== 0) socket.destroy(exceptionWithHostPort(err, 'connect', formatHost(node), port));
}

/** Owners of the endpoints of sockets destroyed while they connected. */
const abandoned = new WeakSet<object>();

/**
 * A socket destroyed while its connection is under way: a TCP socket closed
 * mid-connect sends its peer, which may have accepted it already, a FIN; so
 * its endpoint is closed gracefully once the connect is through (or has
 * failed), and the peer reads an orderly end rather than a reset. It keeps
 * no process alive meanwhile, as node:net's closed handle does not.
 */
function abandonConnect(handle: NativeSocketHandle): void {
  const owner = { handle };
  abandoned.add(owner);
  handle.setOwner(owner);
  handle.unref();
}

/** node:net's _peername, from what the handle knows of its peer. */
function setPeer(socket: Socket, handle: NativeSocketHandle): void {
  (socket as unknown as { _peername: object })._peername = { address: formatHost(handle.peerNode), family: FAMILY, port: handle.peerPort };
}

function startReading(socket: Socket, state: ScifState): void {
  if (!state.handle) return;
  const onread = state.onread;
  if (onread) {
    if (onread.ended) return;
    onread.reading = true;
    if (onread.hasPending() || onread.endWaiting) {
      flushOnRead(socket, state);
      return;
    }
  }
  readStart(socket, state);
}

/**
 * Bytes an onread callback did not take last time, then the end if it came,
 * handed over a turn of the loop later, as node:net's reads come after
 * readStart(): not inside the resume() that asked for them.
 */
function flushOnRead(socket: Socket, state: ScifState): void {
  const onread = state.onread!;
  if (onread.flushing) return;
  onread.flushing = true;
  setImmediate(() => {
    onread.flushing = false;
    if (!state.handle || !onread.reading) return;
    if (onread.hasPending() && !onread.deliver(socket, null)) return;
    if (onread.endWaiting) endOfStream(socket, state);
    else readStart(socket, state);
  });
}

function readStart(socket: Socket, state: ScifState): void {
  state.reading = true;
  state.handle?.readStart();
  updateLiveness(socket, state);
}

function readStop(socket: Socket, state: ScifState): void {
  state.reading = false;
  state.handle?.readStop();
  updateLiveness(socket, state);
}

/**
 * Whether the endpoint keeps the process alive: as a libuv stream handle
 * does, only while it has something to do (connecting, reading, a write or a
 * shutdown under way), and only if the user has not unref()'d it. A
 * connected socket that is paused and idle lets the process exit, as
 * node:net's does.
 */
function updateLiveness(socket: Socket, state: ScifState): void {
  const h = state.handle;
  if (!h) return;
  const busy = socket.connecting || state.reading || state.pendingWrite !== null || state.pendingShutdown !== null;
  const referenced = state.refWanted && busy;
  if (referenced === state.referenced) return;
  state.referenced = referenced;
  if (referenced) h.ref();
  else h.unref();
}

/** The peer ended: node:net's push(null) and read(0). */
function endOfStream(socket: Socket, state: ScifState): void {
  if (state.onread) {
    state.onread.ended = true;
    state.onread.reading = false;
  }
  socket.push(null);
  socket.read(0);
}
