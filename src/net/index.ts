// The node:net look-alike: SCIF places go over the fabric, everything else
// (IP addresses, host names, paths) to node:net unchanged.
import tcp from 'node:net';
import { isSCIF, localhostIsSCIF, parseHost } from './address';
import { Server, type ServerOptions } from './server';
import { normalizeConnectArgs, Socket, type ConnectOptions } from './socket';

export { Socket, Server };
export type { ConnectOptions, SocketOptions } from './socket';
export type { ServerOptions, ListenOptions, AddressInfo } from './server';
export { isSCIF, formatAddress, formatHost, parseAddress, parseHost } from './address';
export const Stream = Socket;

/** Whether connect options point into the SCIF fabric rather than at TCP or a path. */
function goesOverSCIF(options: ConnectOptions): boolean {
  if (options.node !== undefined) return true;
  if (options.path !== undefined) return false;
  if (options.host === undefined || options.host === null) return localhostIsSCIF();
  if (typeof options.host !== 'string') return true;  // let Socket report the bad type
  return isSCIF(options.host) || parseHost(options.host) !== null;
}

export function connect(options: ConnectOptions, connectionListener?: () => void): Socket | tcp.Socket;
export function connect(address: string, connectionListener?: () => void): Socket | tcp.Socket;
export function connect(port: number | string, host?: string, connectionListener?: () => void): Socket | tcp.Socket;
export function connect(...args: unknown[]): Socket | tcp.Socket {
  const [options, cb] = normalizeConnectArgs(args);
  if (!goesOverSCIF(options)) return (tcp.connect as (...a: unknown[]) => tcp.Socket)(...args);
  const socket = new Socket(options);
  return socket.connect(options, cb);
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
