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

/**
 * An undici connector: a scif-net socket for each connection, and TLS over it
 * for https: origins (`tlsOptions` are passed to tls.connect()).
 */
export function createConnector(tlsOptions: tls.ConnectionOptions = {}): buildConnector.connector {
  return (opts, callback) => {
    const secure = opts.protocol === 'https:';
    const { host, port } = target(opts as ConnectTarget, secure ? 443 : 80);
    const raw = connect({ host, port });
    const socket: Duplex = secure
      ? tls.connect({ servername: opts.servername ?? host, ALPNProtocols: ['http/1.1'], ...tlsOptions, socket: raw })
      : raw;
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        callback(err, null);
      } else {
        callback(null, socket as unknown as import('node:net').Socket);
      }
    };
    const onError = (err: Error) => settle(err);
    socket.once('error', onError);
    socket.once(secure ? 'secureConnect' : 'connect', () => settle(null));
  };
}

export interface DispatcherOptions extends Omit<UndiciAgent.Options, 'connect'> {
  /** TLS options for https: origins. */
  tlsOptions?: tls.ConnectionOptions;
}

/** An undici Dispatcher (an undici Agent) whose connections are scif-net sockets. */
export function createDispatcher(options: DispatcherOptions = {}): Dispatcher {
  const { tlsOptions, ...rest } = options;
  // Loaded here, not at the top: a server (or a node:http client) never needs undici.
  const { Agent } = require('undici') as typeof import('undici');
  return new Agent({ ...rest, connect: createConnector(tlsOptions) });
}
