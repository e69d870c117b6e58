// Socket: node:net's Socket over a SCIF endpoint. The socket owns the stream
// state machine (connecting, half-close, timeouts, destroy order); the native
// endpoint only moves bytes and reports readiness (native/endpoint.h).
import { Duplex, type DuplexOptions } from 'node:stream';
import { binding, type NativeEndpoint } from '../binding';
import {
  FAMILY, formatHost, parseAddress, parseHost, selfNode, validateNode, validatePort, type Target,
} from './address';
import {
  ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_MISSING_ARGS, ERR_OUT_OF_RANGE, ERR_SOCKET_CLOSED,
  ERR_SOCKET_CLOSED_BEFORE_CONNECTION, errnoException, exceptionWithHostPort, writeAfterFIN,
} from './errors';

const ENOTCONN = -107;

export const kHandle = Symbol('kHandle');
export const kServer = Symbol('kServer');
const kPeer = Symbol('kPeer');
const kTarget = Symbol('kTarget');
const kReading = Symbol('kReading');
const kBytesRead = Symbol('kBytesRead');
const kBytesWritten = Symbol('kBytesWritten');
const kPendingWrite = Symbol('kPendingWrite');
const kPendingShutdown = Symbol('kPendingShutdown');
const kTimer = Symbol('kTimer');
const kTimeout = Symbol('kTimeout');
const kReset = Symbol('kReset');
const kUnref = Symbol('kUnref');

export interface SocketOptions {
  allowHalfOpen?: boolean;
  readable?: boolean;
  writable?: boolean;
  signal?: AbortSignal;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  highWaterMark?: number;
  /** @internal an accepted endpoint, from Server */
  handle?: NativeEndpoint;
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
  [key: string]: unknown;
}

type Callback = (err?: Error | null) => void;

function noop() {}

/** (options[, cb]), (address[, cb]), (port[, host][, cb]) -> [options, cb]. */
export function normalizeConnectArgs(args: unknown[]): [ConnectOptions, (() => void) | undefined] {
  if (args.length === 0) throw ERR_MISSING_ARGS('options', 'port', 'path');
  const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as () => void) : undefined;
  const first = args[0];
  let options: ConnectOptions;
  if (first !== null && typeof first === 'object') {
    options = first as ConnectOptions;
  } else if (typeof first === 'string' && parseAddress(first)) {
    const t = parseAddress(first)!;
    options = { node: t.node, port: t.port };
  } else if (typeof first === 'string' && Number.isNaN(Number(first))) {
    options = { path: first };
  } else {
    options = { port: first as number };
    if (typeof args[1] === 'string') options.host = args[1];
  }
  return [options, cb];
}

/** Where connect options point, or an argument error. */
export function resolveTarget(options: ConnectOptions): Target {
  if (options.path !== undefined) {
    throw ERR_INVALID_ARG_VALUE('options.path', options.path, 'is not a SCIF address');
  }
  let node: number | null;
  let port: unknown = options.port;
  if (options.node !== undefined) {
    node = validateNode(options.node);
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
  if (port === undefined) throw ERR_MISSING_ARGS('options', 'port', 'path');
  if (typeof port !== 'number' && typeof port !== 'string') {
    throw ERR_INVALID_ARG_TYPE('options.port', 'one of type number or string', port);
  }
  return { node, port: validatePort(port) };
}

function toBuffer(chunk: unknown, encoding?: BufferEncoding | string): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk, (encoding as BufferEncoding) || 'utf8');
  return chunk as Uint8Array;
}

export class Socket extends Duplex {
  connecting = false;
  server: unknown = null;
  declare allowHalfOpen: boolean;
  [kHandle]: NativeEndpoint | null = null;
  [kServer]: { _connections: number; _emitCloseIfDrained(): void } | null = null;
  [kPeer]: Target | null = null;
  [kTarget]: Target | null = null;
  [kReading] = false;
  [kBytesRead] = 0;
  [kBytesWritten] = 0;
  [kPendingWrite]: { cb: Callback; bytes: number } | null = null;
  [kPendingShutdown]: Callback | null = null;
  [kTimer]: NodeJS.Timeout | null = null;
  [kTimeout] = 0;
  [kReset] = false;
  [kUnref] = false;

  constructor(options: SocketOptions = {}) {
    if (options === null || typeof options !== 'object') throw ERR_INVALID_ARG_TYPE('options', 'of type object', options);
    super({
      allowHalfOpen: Boolean(options.allowHalfOpen),
      emitClose: false,
      autoDestroy: true,
      decodeStrings: false,
      readable: options.readable,
      writable: options.writable,
      highWaterMark: options.highWaterMark,
      signal: options.signal,
    } as DuplexOptions);
    this.on('end', onReadableStreamEnd);
    if (options.handle) {
      this[kHandle] = options.handle;
      this[kPeer] = { node: options.handle.peerNode, port: options.handle.peerPort };
      attach(this, options.handle);
      if (options.readable !== false) {
        if (options.pauseOnCreate) this.pause();
        else this.read(0);
      }
    }
  }

  connect(...args: unknown[]): this {
    const [options, cb] = normalizeConnectArgs(args);
    if (this.write !== Socket.prototype.write) this.write = Socket.prototype.write;
    if (this.destroyed || this[kHandle]) {
      throw Object.assign(new Error('Socket is already connected or was destroyed; create a new Socket'), { code: 'ERR_SOCKET_CONNECTING' });
    }
    const target = resolveTarget(options);
    if (cb) this.once('connect', cb);
    if (options.timeout !== undefined) this.setTimeout(options.timeout as number);
    this.connecting = true;
    this[kTarget] = target;
    const handle = new binding.Endpoint();
    let err = handle.open();
    if (err === 0) {
      this[kHandle] = handle;
      attach(this, handle);
      if (this[kUnref]) handle.unref();
      err = handle.connect(target.node, target.port);
    }
    if (err !== 0) {
      const ex = exceptionWithHostPort(err, 'connect', formatHost(target.node), target.port);
      process.nextTick(() => this.destroy(ex));
    }
    return this;
  }

  get pending(): boolean {
    return !this[kHandle] || this.connecting;
  }

  get readyState(): string {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  get bytesRead(): number {
    return this[kBytesRead];
  }

  /** Bytes handed to the fabric plus bytes still queued, as node:net counts them. */
  get bytesWritten(): number {
    let queued = 0;
    const buffered = (this as unknown as { writableBuffer: Array<{ chunk: unknown; encoding: string }> }).writableBuffer;
    for (const entry of buffered) {
      const c = entry.chunk;
      queued += typeof c === 'string' ? Buffer.byteLength(c, entry.encoding as BufferEncoding) : (c as Uint8Array).byteLength;
    }
    return this[kBytesWritten] + (this[kPendingWrite]?.bytes ?? 0) + queued;
  }

  get bufferSize(): number | undefined {
    return this[kHandle] ? this.writableLength + this[kHandle].writeQueueSize : undefined;
  }

  get remoteAddress(): string | undefined {
    const p = this[kPeer];
    return p ? formatHost(p.node) : undefined;
  }

  get remotePort(): number | undefined {
    return this[kPeer]?.port;
  }

  get remoteFamily(): string | undefined {
    return this[kPeer] ? FAMILY : undefined;
  }

  get localAddress(): string | undefined {
    return this[kHandle] && !this.connecting ? formatHost(selfNode()) : undefined;
  }

  get localPort(): number | undefined {
    return this[kHandle] && !this.connecting ? this[kHandle].localPort : undefined;
  }

  get localFamily(): string | undefined {
    return this[kHandle] && !this.connecting ? FAMILY : undefined;
  }

  get timeout(): number | undefined {
    return this[kTimeout] || undefined;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    const h = this[kHandle];
    if (!h || this.connecting) return {};
    return { address: formatHost(selfNode()), family: FAMILY, port: h.localPort };
  }

  setTimeout(msecs: number, callback?: () => void): this {
    if (typeof msecs !== 'number') throw ERR_INVALID_ARG_TYPE('msecs', 'of type number', msecs);
    if (!(msecs >= 0) || !Number.isFinite(msecs)) throw ERR_OUT_OF_RANGE('msecs', 'a non-negative finite number', msecs);
    if (callback !== undefined && typeof callback !== 'function') throw ERR_INVALID_ARG_TYPE('callback', 'of type function', callback);
    if (this[kTimer]) clearTimeout(this[kTimer]);
    this[kTimer] = null;
    this[kTimeout] = msecs;
    if (msecs === 0) {
      if (callback) this.removeListener('timeout', callback);
      return this;
    }
    // Like node:net's, the idle timer never keeps the process alive.
    this[kTimer] = setTimeout(() => this.emit('timeout'), msecs).unref();
    if (callback) this.once('timeout', callback);
    return this;
  }

  /** Accepted for compatibility: SCIF has no Nagle delay to turn off. */
  setNoDelay(_enable?: boolean): this {
    return this;
  }

  /** Accepted for compatibility: a dead SCIF peer is noticed at once, without probes. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  ref(): this {
    this[kUnref] = false;
    this[kHandle]?.ref();
    return this;
  }

  unref(): this {
    this[kUnref] = true;
    this[kHandle]?.unref();
    return this;
  }

  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes at once; the peer reads ECONNRESET instead of an orderly end. */
  resetAndDestroy(): this {
    if (!this[kHandle]) {
      this.destroy(ERR_SOCKET_CLOSED());
    } else if (this.connecting) {
      this.once('connect', () => this.resetAndDestroy());
    } else {
      this[kReset] = true;
      this.destroy();
    }
    return this;
  }

  override _read(_size: number): void {
    const h = this[kHandle];
    if (this.connecting || !h) {
      this.once('connect', () => this._read(_size));
    } else if (!this[kReading]) {
      this[kReading] = true;
      h.readStart();
    }
  }

  override _write(chunk: unknown, encoding: BufferEncoding, cb: Callback): void {
    this.writeGeneric([toBuffer(chunk, encoding)], cb);
  }

  override _writev(chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>, cb: Callback): void {
    this.writeGeneric(chunks.map((c) => toBuffer(c.chunk, c.encoding)), cb);
  }

  private writeGeneric(buffers: Uint8Array[], cb: Callback): void {
    if (this.connecting) {
      // Writes wait for the connection; the Writable queues the ones after.
      const onClose = () => cb(ERR_SOCKET_CLOSED_BEFORE_CONNECTION());
      this.once('connect', () => {
        this.off('close', onClose);
        this.writeGeneric(buffers, cb);
      });
      this.once('close', onClose);
      return;
    }
    const h = this[kHandle];
    if (!h) {
      cb(ERR_SOCKET_CLOSED());
      return;
    }
    this.activity();
    let bytes = 0;
    for (const b of buffers) bytes += b.byteLength;
    const status = h.writev(buffers);
    if (status < 0) {
      cb(errnoException(status, 'write'));
    } else if (status === 0) {
      this[kBytesWritten] += bytes;
      cb();
    } else {
      this[kPendingWrite] = { cb, bytes };
    }
  }

  override _final(cb: Callback): void {
    if (this.pending && this.connecting) {
      this.once('connect', () => this._final(cb));
      return;
    }
    const h = this[kHandle];
    if (!h) {
      cb();
      return;
    }
    const status = h.shutdown();
    if (status === 0 || status === ENOTCONN) cb();
    else if (status === 1) this[kPendingShutdown] = cb;
    else cb(errnoException(status, 'shutdown'));
  }

  override _destroy(err: Error | null, cb: Callback): void {
    this.connecting = false;
    if (this[kTimer]) clearTimeout(this[kTimer]);
    this[kTimer] = null;
    const h = this[kHandle];
    const hadError = Boolean(err);
    if (h) {
      this[kHandle] = null;
      h.onread = h.onwrite = h.onshutdown = h.onconnect = noop;
      h.close(this[kReset]);
      // As node:net does: what was in flight completes quietly once destroyed.
      const pending = this[kPendingWrite];
      const shutdown = this[kPendingShutdown];
      this[kPendingWrite] = this[kPendingShutdown] = null;
      cb(err);
      if (pending) pending.cb(null);
      if (shutdown) shutdown(null);
      setImmediate(() => this.emit('close', hadError));
    } else {
      cb(err);
      process.nextTick(() => this.emit('close', hadError));
    }
    const server = this[kServer];
    if (server) {
      this[kServer] = null;
      server._connections--;
      server._emitCloseIfDrained();
    }
  }

  /** Any traffic postpones the idle timeout. */
  private activity(): void {
    this[kTimer]?.refresh();
  }

  /** @internal native hooks */
  onConnect(status: number): void {
    const target = this[kTarget]!;
    this.connecting = false;
    if (status < 0) {
      this.destroy(exceptionWithHostPort(status, 'connect', formatHost(target.node), target.port));
      return;
    }
    this[kPeer] = target;
    this.activity();
    this.emit('connect');
    this.emit('ready');
    if (this.readable && !this.isPaused()) this.read(0);
  }

  /** @internal */
  onRead(nread: number, buffer?: Buffer, offset = 0): void {
    const h = this[kHandle];
    if (!h) return;
    this.activity();
    if (nread > 0) {
      this[kBytesRead] += nread;
      const chunk = offset === 0 && nread === buffer!.length ? buffer! : buffer!.subarray(offset, offset + nread);
      if (!this.push(chunk) && this[kReading]) {
        this[kReading] = false;
        h.readStop();
      }
      return;
    }
    this[kReading] = false;
    if (nread === binding.UV_EOF) {
      this.push(null);
      this.read(0);
      return;
    }
    this.destroy(errnoException(nread, 'read'));
  }

  /** @internal */
  onWrite(status: number): void {
    const pending = this[kPendingWrite];
    this[kPendingWrite] = null;
    if (!pending) return;
    if (status < 0) {
      pending.cb(errnoException(status, 'write'));
    } else {
      this[kBytesWritten] += pending.bytes;
      this.activity();
      pending.cb();
    }
  }

  /** @internal */
  onShutdown(status: number): void {
    const cb = this[kPendingShutdown];
    this[kPendingShutdown] = null;
    if (cb) cb(status < 0 ? errnoException(status, 'shutdown') : null);
  }
}

function attach(socket: Socket, handle: NativeEndpoint): void {
  handle.onconnect = (status) => socket.onConnect(status);
  handle.onread = (nread, buffer, offset) => socket.onRead(nread, buffer, offset);
  handle.onwrite = (status) => socket.onWrite(status);
  handle.onshutdown = (status) => socket.onShutdown(status);
}

// After the peer's end: without allowHalfOpen, our side ends too (the Duplex
// does that) and writing is an EPIPE, as in node:net.
function onReadableStreamEnd(this: Socket): void {
  if (!this.allowHalfOpen) {
    this.write = function writeAfterEnd(this: Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
      // Until the Duplex has ended our side too, writes still go through.
      if (!this.writableEnded) return Duplex.prototype.write.call(this, chunk, encoding as BufferEncoding, cb as Callback);
      const callback = typeof encoding === 'function' ? encoding : cb;
      const err = writeAfterFIN();
      this.destroy(err);
      if (typeof callback === 'function') process.nextTick(callback as (e: Error) => void, err);
      return false;
    } as Socket['write'];
  }
}
