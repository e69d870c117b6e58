// The node:net look-alike, a superset of node:net: SCIF places go over the
// fabric, everything else (IP addresses, host names, paths) to node:net.
import tcp = require('node:net');
import { installClusterPrimary } from './cluster';
import { installSendGuard } from './handoff';
import { listensOverSCIF, Server as ServerClass, type ServerOptions } from './server';
import { carriesSCIF, normalizeConnectArgs, Socket as SocketClass, type ConnectOptions } from './socket';

type CallableClass<C extends new (...args: any[]) => object> = C & ((...args: ConstructorParameters<C>) => InstanceType<C>);

/**
 * A class that may also be called without `new`, as node:net's Socket and
 * Server may (`net.Socket()`, `net.Server(listener)`): it stays the class
 * for `new`, `instanceof` and `class X extends ...`, and is each instance's
 * `constructor`. What it builds is built with the class itself (or the
 * subclass) as new.target: V8 keeps the initial hidden class of what a
 * class constructs, but makes a new one for every object whose new.target is
 * something else (a Proxy, a wrapper function), and each socket then had a
 * chain of hidden classes of its own, some 3.5 KiB of heap per connection.
 */
function callableWithoutNew<C extends new (...args: any[]) => object>(cls: C): CallableClass<C> {
  const callable: CallableClass<C> = new Proxy(cls, {
    apply: (target, _self, args) => Reflect.construct(target, args),
    construct: (target, args, newTarget) => Reflect.construct(target, args, newTarget === callable ? target : newTarget),
  }) as CallableClass<C>;
  Object.defineProperty(cls.prototype, 'constructor', { value: callable, writable: true, configurable: true });
  return callable;
}

export const Socket = callableWithoutNew(SocketClass);
export type Socket = SocketClass;
export const Server = callableWithoutNew(ServerClass);
export type Server = ServerClass;
export type { ConnectOptions, SocketOptions } from './socket';
export type { ServerOptions, ListenOptions, AddressInfo } from './server';
export type { OnReadOption } from './onread';
export { isSCIF, formatAddress, formatHost, parseAddress, parseHost } from './address';
export const Stream = Socket;

// child.send('socket', socket) and the like fail clearly for SCIF sockets and servers (handoff.ts).
installSendGuard((handle) => (carriesSCIF(handle) ? 'socket' : listensOverSCIF(handle) ? 'server' : null));
// node:cluster workers listening on one SCIF port share it (cluster.ts).
installClusterPrimary();

export function connect(options: ConnectOptions, connectionListener?: () => void): Socket;
export function connect(address: string, connectionListener?: () => void): Socket;
export function connect(port: number | string, host?: string, connectionListener?: () => void): Socket;
export function connect(...args: unknown[]): Socket {
  const [options] = normalizeConnectArgs(args);
  const socket = new Socket(options);
  return socket.connect(...args);
}

export const createConnection = connect;

export function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new Server(options, connectionListener);
}

// node:net's helpers, so that this module can stand in for it.
export const { isIP, isIPv4, isIPv6, BlockList, SocketAddress } = tcp;
export const getDefaultAutoSelectFamily = tcp.getDefaultAutoSelectFamily;
export const setDefaultAutoSelectFamily = tcp.setDefaultAutoSelectFamily;
export const getDefaultAutoSelectFamilyAttemptTimeout = tcp.getDefaultAutoSelectFamilyAttemptTimeout;
export const setDefaultAutoSelectFamilyAttemptTimeout = tcp.setDefaultAutoSelectFamilyAttemptTimeout;
/** @deprecated node:net's DEP0121: a no-op that warns once (node:net's own, so once between the two). */
export const _setSimultaneousAccepts: () => void = (tcp as unknown as { _setSimultaneousAccepts: () => void })._setSimultaneousAccepts;
