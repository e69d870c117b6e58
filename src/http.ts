// HTTP over SCIF with Node's own HTTP stacks: node:http serving connections a
// scif-net Server accepts, node:http clients through an Agent whose sockets
// are scif-net sockets, and undici through a Dispatcher that connects the same
// way. URLs name SCIF nodes by host: http://mic0:8080/ (node 1),
// http://host:8080/ (node 0), http://localhost:8080/ (this node).
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { Agent as UndiciAgent, type Dispatcher } from 'undici';
import { connect, createServer, Server, type ListenOptions, type ServerOptions, type Socket } from './net';

/** Feeds every connection the SCIF server accepts to the HTTP server. */
export function attach(httpServer: http.Server, scifServer: Server): Server {
  scifServer.on('connection', (socket: Socket) => httpServer.emit('connection', socket));
  return scifServer;
}

/**
 * Serves `httpServer` on a new scif-net Server listening with the given
 * arguments (as server.listen's). Close with closeServer(), which stops
 * accepting and lets keep-alive connections end.
 */
export function listen(httpServer: http.Server, ...args: unknown[]): Server {
  const scifServer = createServer({ allowHalfOpen: true } as ServerOptions);
  attach(httpServer, scifServer);
  return scifServer.listen(...(args as [ListenOptions]));
}

/** Stops accepting, closes idle keep-alive connections, and calls back once all are gone. */
export function closeServer(httpServer: http.Server, scifServer: Server, cb?: (err?: Error) => void): void {
  scifServer.close(cb);
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

/** An http.Agent whose connections are scif-net sockets (or TCP ones for non-SCIF hosts). */
export class Agent extends http.Agent {
  override createConnection(options: ConnectTarget): Duplex {
    const { host, port } = target(options, options.defaultPort ?? 80);
    return connect({ host, port }) as Duplex;
  }
}

/** An undici Dispatcher (an undici Agent) whose connections are scif-net sockets. */
export function createDispatcher(options: UndiciAgent.Options = {}): Dispatcher {
  return new UndiciAgent({
    ...options,
    connect(opts, callback) {
      const { host, port } = target(opts as ConnectTarget, opts.protocol === 'https:' ? 443 : 80);
      const socket = connect({ host, port });
      let settled = false;
      const onError = (err: Error) => {
        if (settled) return;
        settled = true;
        callback(err, null);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        if (settled) return;
        settled = true;
        socket.off('error', onError);
        callback(null, socket as unknown as import('node:net').Socket);
      });
    },
  });
}
