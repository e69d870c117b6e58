// Server: node:net's Server over a listening SCIF endpoint on this node.
import { EventEmitter } from 'node:events';
import { binding, type NativeEndpoint } from '../binding';
import { FAMILY, formatHost, parseAddress, parseHost, selfNode, validatePort } from './address';
import {
  ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_SERVER_ALREADY_LISTEN, ERR_SERVER_NOT_RUNNING,
  errnoException, uvExceptionWithHostPort,
} from './errors';
import { kHandle, kServer, Socket } from './socket';

const EADDRNOTAVAIL = -99;
const DEFAULT_BACKLOG = 511;

export interface ServerOptions {
  allowHalfOpen?: boolean;
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  highWaterMark?: number;
}

export interface ListenOptions {
  port?: number | string;
  host?: string;
  backlog?: number;
  exclusive?: boolean;
  signal?: AbortSignal;
  path?: string;
}

export interface AddressInfo {
  address: string;
  family: string;
  port: number;
}

const kUnref = Symbol('kUnref');
const kPort = Symbol('kPort');

/** (port[, host][, backlog][, cb]), (options[, cb]), ('scif:N:P'[, backlog][, cb]) -> [options, cb]. */
function normalizeListenArgs(args: unknown[]): [ListenOptions, (() => void) | undefined] {
  const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
  const [first, second, third] = args;
  if (first === undefined || first === null) return [{ port: 0 }, cb];
  if (typeof first === 'object') return [first as ListenOptions, cb];
  if (typeof first === 'string' && parseAddress(first)) {
    const t = parseAddress(first)!;
    return [{ host: `scif:${t.node}`, port: t.port, backlog: second as number | undefined }, cb];
  }
  const options: ListenOptions = { port: first as number };
  if (typeof second === 'string') {
    options.host = second;
    if (typeof third === 'number') options.backlog = third;
  } else if (typeof second === 'number') {
    options.backlog = second;
  }
  return [options, cb];
}

export class Server extends EventEmitter {
  _connections = 0;
  maxConnections?: number;
  allowHalfOpen: boolean;
  pauseOnConnect: boolean;
  noDelay: boolean;
  keepAlive: boolean;
  highWaterMark?: number;
  [kHandle]: NativeEndpoint | null = null;
  [kPort] = 0;
  [kUnref] = false;

  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    } else if (options === undefined || options === null) {
      options = {};
    } else if (typeof options !== 'object') {
      throw ERR_INVALID_ARG_TYPE('options', 'of type object', options);
    }
    if (connectionListener) this.on('connection', connectionListener);
    this.allowHalfOpen = Boolean(options.allowHalfOpen);
    this.pauseOnConnect = Boolean(options.pauseOnConnect);
    this.noDelay = Boolean(options.noDelay);
    this.keepAlive = Boolean(options.keepAlive);
    this.highWaterMark = options.highWaterMark;
  }

  get listening(): boolean {
    return this[kHandle] !== null;
  }

  listen(...args: unknown[]): this {
    const [options, cb] = normalizeListenArgs(args);
    if (this[kHandle]) throw ERR_SERVER_ALREADY_LISTEN();
    if (options.path !== undefined && !parseAddress(String(options.path))) {
      throw ERR_INVALID_ARG_VALUE('options.path', options.path, 'is not a SCIF address');
    }
    if (options.path !== undefined) {
      const t = parseAddress(String(options.path))!;
      options.host = `scif:${t.node}`;
      options.port = t.port;
    }
    const port = validatePort(options.port ?? 0, 'options.port');
    const backlog = options.backlog ?? DEFAULT_BACKLOG;
    if (typeof backlog !== 'number') throw ERR_INVALID_ARG_TYPE('options.backlog', 'of type number', backlog);
    if (options.host !== undefined && typeof options.host !== 'string') {
      throw ERR_INVALID_ARG_TYPE('options.host', 'of type string', options.host);
    }
    if (cb) this.once('listening', cb);
    if (options.signal) this.watchSignal(options.signal);

    let self: number;
    try {
      self = selfNode();
    } catch (err) {
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    const hostNode = options.host === undefined ? self : parseHost(options.host);
    if (hostNode === null) {
      throw ERR_INVALID_ARG_VALUE('options.host', options.host, "is not a SCIF host ('scif:N', 'host', 'micK' or 'localhost')");
    }
    let status = hostNode === self ? 0 : EADDRNOTAVAIL;  // one listens on one's own node only
    const handle = new binding.Endpoint();
    if (status === 0) status = handle.open();
    if (status === 0) {
      const bound = handle.bind(port);
      status = bound < 0 ? bound : handle.listen(backlog);
      if (bound >= 0) this[kPort] = bound;
    }
    if (status !== 0) {
      handle.close();
      const err = uvExceptionWithHostPort(status, 'listen', formatHost(hostNode), port);
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    this[kHandle] = handle;
    handle.onconnection = (st, child, node, peerPort) => this.onConnection(st, child, node, peerPort);
    if (this[kUnref]) handle.unref();
    process.nextTick(() => {
      if (this[kHandle] === handle) this.emit('listening');
    });
    return this;
  }

  private watchSignal(signal: AbortSignal): void {
    if (signal.aborted) {
      process.nextTick(() => this.close());
      return;
    }
    const onAbort = () => this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    this.once('close', () => signal.removeEventListener('abort', onAbort));
  }

  private onConnection(status: number, child?: NativeEndpoint, node?: number, port?: number): void {
    if (status < 0 || !child) {
      this.emit('error', errnoException(status, 'accept'));
      return;
    }
    if (this.maxConnections != null && this._connections >= this.maxConnections) {
      child.close();
      this.emit('drop', {
        localAddress: formatHost(selfNode()), localPort: this[kPort], localFamily: FAMILY,
        remoteAddress: formatHost(node!), remotePort: port, remoteFamily: FAMILY,
      });
      return;
    }
    const socket = new Socket({
      handle: child,
      allowHalfOpen: this.allowHalfOpen,
      pauseOnCreate: this.pauseOnConnect,
      readable: true,
      writable: true,
      highWaterMark: this.highWaterMark,
    });
    this._connections++;
    socket.server = this;
    socket[kServer] = this;
    this.emit('connection', socket);
  }

  address(): AddressInfo | null {
    if (!this[kHandle]) return null;
    return { address: formatHost(selfNode()), family: FAMILY, port: this[kPort] };
  }

  /** Stops accepting; 'close' (and cb) once the last connection has ended. */
  close(cb?: (err?: Error) => void): this {
    if (typeof cb === 'function') {
      if (!this[kHandle]) this.once('close', () => cb(ERR_SERVER_NOT_RUNNING()));
      else this.once('close', cb);
    }
    const handle = this[kHandle];
    if (handle) {
      this[kHandle] = null;
      handle.onconnection = undefined;
      handle.close();
    }
    this._emitCloseIfDrained();
    return this;
  }

  _emitCloseIfDrained(): void {
    if (this[kHandle] || this._connections > 0) return;
    process.nextTick(() => this.emit('close'));
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    process.nextTick(cb, null, this._connections);
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

  [Symbol.asyncDispose](): Promise<void> {
    if (!this[kHandle]) return Promise.resolve();
    return new Promise((resolve, reject) => this.close((err) => (err ? reject(err) : resolve())));
  }
}
