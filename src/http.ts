// HTTP(S) over SCIF with Node's own stacks: node:http and node:https serving
// connections a scif-net Server accepts, node:http(s) clients through agents
// whose sockets are scif-net sockets, and undici through a connector that
// connects the same way (TLS on top for https: URLs). URLs name SCIF nodes by
// host: http://mic0:8080/ (node 1), http://host:8080/ (node 0),
// http://localhost:8080/ (this node); other hosts go over TCP as usual.
import http = require('node:http');
import https = require('node:https');
import tls = require('node:tls');
import type { Duplex } from 'node:stream';
import type { Agent as UndiciAgent, buildConnector, Dispatcher } from 'undici';
import { connect, Server, type Socket } from './net';
import { listenOverSCIF } from './net/server';
import { ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE } from './errors';

/** Feeds every connection a separate scif-net Server accepts to the HTTP(S) server. */
export function attach(httpServer: http.Server, scifServer: Server): Server {
  scifServer.on('connection', (socket: Socket) => httpServer.emit('connection', socket));
  return scifServer;
}

/**
 * Makes an existing node:http or node:https server listen as server.listen()
 * would, over SCIF when the arguments name a SCIF place (a port alone means
 * this node) and over TCP otherwise. The server itself then reports
 * 'listening', address(), listening, and close() stops it, as usual.
 */
export function listen<S extends http.Server>(httpServer: S, ...args: unknown[]): S {
  if (!listenOverSCIF(httpServer, args)) (httpServer.listen as (...a: unknown[]) => S)(...args);
  return httpServer;
}

/** node:http's Server, listening over SCIF for SCIF places (see listen()). */
export class HttpServer extends http.Server {
  override listen(...args: unknown[]): this {
    return listen(this, ...args);
  }
}

/** node:https's Server, listening over SCIF for SCIF places (see listen()). */
export class HttpsServer extends https.Server {
  override listen(...args: unknown[]): this {
    return listen(this, ...args);
  }
}

/** http.createServer(), whose listen() speaks SCIF: createServer(handler).listen(8080). */
export function createServer(options?: http.ServerOptions | http.RequestListener, handler?: http.RequestListener): HttpServer {
  return typeof options === 'function' ? new HttpServer(options) : new HttpServer(options ?? {}, handler);
}

/** https.createServer(), likewise. */
export function createSecureServer(options: https.ServerOptions, handler?: http.RequestListener): HttpsServer {
  return new HttpsServer(options, handler);
}

/**
 * Stops accepting, closes idle keep-alive connections, and calls back once
 * the last connection is gone (a separate scif-net Server fed through
 * attach() is closed too).
 */
export function closeServer(httpServer: http.Server, scifServer?: Server | ((err?: Error) => void), cb?: (err?: Error) => void): void {
  if (typeof scifServer === 'function') {
    cb = scifServer;
    scifServer = undefined;
  }
  if (scifServer && scifServer !== (httpServer as unknown)) scifServer.close();
  httpServer.close(cb);
  httpServer.closeIdleConnections();
}

interface ConnectTarget {
  host?: string | null;
  hostname?: string | null;
  port?: number | string | null;
  defaultPort?: number;
}

function target(options: ConnectTarget, defaultPort: number): { host: string; port: number } {
  const host = options.hostname || options.host || 'localhost';
  const port = options.port === undefined || options.port === null || options.port === '' ? defaultPort : Number(options.port);
  return { host, port };
}

/** An http.Agent whose connections are scif-net sockets (TCP ones for other hosts). */
export class Agent extends http.Agent {
  override createConnection(options: ConnectTarget): Duplex {
    const { host, port } = target(options, options.defaultPort ?? 80);
    return connect({ host, port });
  }
}

/** An https.Agent: TLS over scif-net sockets. TLS options go to the agent or the request, as usual. */
export class HttpsAgent extends https.Agent {
  override createConnection(options: ConnectTarget & tls.ConnectionOptions): Duplex {
    const { host, port } = target(options, options.defaultPort ?? 443);
    const socket = connect({ host, port });
    return tls.connect({ ...options, host, port, socket });
  }
}

/** What bounds a connector's connects. */
export interface ConnectorOptions {
  /**
   * Milliseconds a connect may take (TLS handshake included) before it fails
   * with undici's ConnectTimeoutError (UND_ERR_CONNECT_TIMEOUT), as undici's
   * own connector's: 10000 by default, 0 or null for none.
   */
  timeout?: number | null;
  /** Aborts every connect under way (and refuses new ones) with its reason. */
  signal?: AbortSignal;
}

function validateTimeout(value: unknown, name: string): number {
  if (value === undefined || value === null) return DEFAULT_CONNECT_TIMEOUT;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw ERR_INVALID_ARG_VALUE(name, value, 'must be a finite number >= 0 (milliseconds; 0 for none)');
  }
  return value;
}

const DEFAULT_CONNECT_TIMEOUT = 10e3;  // undici's buildConnector()

/**
 * An undici connector: a scif-net socket for each connection, and TLS over it
 * for https: origins (`tlsOptions` are passed to tls.connect()). A connect
 * that is not done within the timeout (a listener that never accepts, a
 * stopped peer) fails with UND_ERR_CONNECT_TIMEOUT, as undici's TCP one does.
 */
export function createConnector(tlsOptions: tls.ConnectionOptions = {}, options: ConnectorOptions = {}): buildConnector.connector {
  if (options === null || typeof options !== 'object') throw ERR_INVALID_ARG_TYPE('options', 'of type object', options);
  const timeout = validateTimeout(options.timeout, 'options.timeout');
  const { signal } = options;
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || !('aborted' in signal))) {
    throw ERR_INVALID_ARG_TYPE('options.signal', 'an instance of AbortSignal', signal);
  }
  // One listener on the signal for every connect under way: one each would
  // pass the signal's 10-listener warning with undici's connections in flight.
  const pending = new Set<(err: Error) => void>();
  let watching = false;
  const watch = (settle: (err: Error) => void) => {
    pending.add(settle);
    if (watching || !signal) return;
    watching = true;
    signal.addEventListener('abort', () => {
      for (const s of [...pending]) s(abortError(signal));
    }, { once: true });
  };
  return (opts, callback) => {
    const secure = opts.protocol === 'https:';
    const { host, port } = target(opts as ConnectTarget, secure ? 443 : 80);
    if (signal?.aborted) {
      callback(abortError(signal), null);
      return;
    }
    let raw: Duplex;
    try {
      raw = connect({ host, port });
    } catch (err) {
      callback(err as Error, null);
      return;
    }
    const socket: Duplex = secure
      ? tls.connect({ servername: opts.servername ?? host, ALPNProtocols: ['http/1.1'], ...tlsOptions, socket: raw })
      : raw;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      pending.delete(settle);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        raw.destroy();
        callback(err, null);
      } else {
        callback(null, socket as unknown as import('node:net').Socket);
      }
    };
    const onError = (err: Error) => settle(err);
    socket.once('error', onError);
    socket.once(secure ? 'secureConnect' : 'connect', () => settle(null));
    watch(settle);
    if (timeout > 0) {
      timer = setTimeout(() => settle(connectTimeoutError(host, port, timeout)), timeout);
      // The pending connect keeps the process alive, not its timer.
      timer.unref();
    }
  };
}

function undiciErrors(): typeof import('undici').errors {
  return (require('undici') as typeof import('undici')).errors;
}

function connectTimeoutError(host: string, port: number, timeout: number): Error {
  return new (undiciErrors().ConnectTimeoutError)(`Connect Timeout Error (attempted address: ${host}:${port}, timeout: ${timeout}ms)`);
}

function abortError(signal: AbortSignal): Error {
  if (signal.reason instanceof Error) return signal.reason;
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

export interface DispatcherOptions extends Omit<UndiciAgent.Options, 'connect'> {
  /** TLS options for https: origins. */
  tlsOptions?: tls.ConnectionOptions;
  /** As undici's: milliseconds a connect may take (10000 by default, 0 for none). */
  connectTimeout?: number;
  /** Aborts the dispatcher's connects under way, and refuses new ones. */
  connectSignal?: AbortSignal;
}

/** An undici Dispatcher (an undici Agent) whose connections are scif-net sockets. */
export function createDispatcher(options: DispatcherOptions = {}): Dispatcher {
  const { tlsOptions, connectTimeout, connectSignal, ...rest } = options;
  // destroy() ends the connects under way too: undici waits for a pending
  // connect before it calls a destroyed client's callbacks.
  const destroyed = new AbortController();
  if (connectSignal?.aborted) destroyed.abort(connectSignal.reason);
  else connectSignal?.addEventListener('abort', () => destroyed.abort(connectSignal.reason), { once: true });
  const connector = createConnector(tlsOptions, { timeout: connectTimeout, signal: destroyed.signal });
  // Loaded here, not at the top: a server (or a node:http client) never needs undici.
  const { Agent, errors } = require('undici') as typeof import('undici');
  const agent = new Agent({ ...rest, connect: connector });
  const destroy = agent.destroy.bind(agent) as (...args: unknown[]) => unknown;
  (agent as unknown as { destroy: (...args: unknown[]) => unknown }).destroy = (...args: unknown[]) => {
    const err = args.find((a) => a instanceof Error);
    destroyed.abort(err ?? new errors.ClientDestroyedError());
    return destroy(...args);
  };
  return agent;
}
