// What Node's stream wrappers need from a scif-net socket in SCIF mode, which
// carries its stream without a native handle:
//
// 1. node:tls takes a net.Socket without a native handle for one still
//    connecting (TLSSocket.prototype._init: `connecting = socket.connecting ||
//    !socket._handle`) and waits for its 'connect', so a TLS socket over an
//    established one (every tls.Server connection) would wait for ever. node:tls
//    then drives such a socket as a plain stream, so the raw socket must also
//    leave half-closing to TLS instead of ending its side by itself the moment
//    the peer's end arrives (which would cut TLS's last records short).
//    TLSSocket.prototype._init is wrapped to say both.
//
// 2. A socket that wraps another one asks its own handle for addresses: a
//    TLSSocket (over `_parent`) and the JSStreamSocket that node:tls and http2
//    put around a socket without a native handle (over `stream`). Their handle
//    then is Node's JS stream handle, which knows no address, so remoteAddress,
//    remotePort, remoteFamily and the local ones read undefined under TLS,
//    HTTPS and http2. net.Socket.prototype._getpeername and _getsockname are
//    wrapped to ask the SCIF socket underneath instead.
//
// Scope: nothing is installed until this process's first socket enters SCIF
// mode (importing scif-net changes nothing in node:tls or node:net by
// itself); it is installed once per process, however many copies of scif-net
// are loaded (they share one registry, found through Symbol.for); and the
// wrappers hand every socket that does not sit on a SCIF-mode scif-net socket
// straight to Node's own functions, unchanged.
import tcp from 'node:net';
import tls from 'node:tls';

/** Says whether a socket is a scif-net socket in SCIF mode (each copy of scif-net brings one). */
export type CarrierTest = (socket: unknown) => boolean;

interface Carrier {
  connecting: boolean;
  allowHalfOpen: boolean;
  _getpeername(): object;
  _getsockname(): object;
}

interface Registry {
  tests: Set<CarrierTest>;
}

type Method = (this: Record<string, unknown>, ...args: unknown[]) => unknown;

const REGISTRY = Symbol.for('scif-net.stream-wrappers');

function carrier(registry: Registry, socket: unknown): Carrier | null {
  if (socket === null || typeof socket !== 'object') return null;
  for (const test of registry.tests) if (test(socket)) return socket as Carrier;
  return null;
}

function install(): Registry {
  const registry: Registry = { tests: new Set() };
  const tlsProto = tls.TLSSocket.prototype as unknown as Record<string, Method>;
  const netProto = tcp.Socket.prototype as unknown as Record<string | symbol, unknown>;
  Object.defineProperty(netProto, REGISTRY, { value: registry });

  const init = tlsProto._init;
  if (typeof init === 'function') {
    tlsProto._init = function (this: Record<string, unknown>, socket: unknown, wrap: unknown) {
      const scif = carrier(registry, socket);
      if (!scif) return init.call(this, socket, wrap);
      scif.allowHalfOpen = true;
      const result = init.call(this, socket, wrap);
      if (!scif.connecting) this.connecting = false;
      return result;
    };
  }

  // The SCIF socket a TLSSocket or a JSStreamSocket sits on, if any.
  const under = (socket: Record<string, unknown>): Carrier | null =>
    carrier(registry, socket._parent) ?? carrier(registry, socket.stream);
  for (const name of ['_getpeername', '_getsockname'] as const) {
    const original = netProto[name] as Method;
    if (typeof original !== 'function') continue;
    netProto[name] = function (this: Record<string, unknown>) {
      const scif = under(this);
      return scif ? scif[name]() : original.call(this);
    };
  }
  return registry;
}

/** Installs the wrappers (once per process) and teaches them `isCarrier`. */
export function installTlsCompat(isCarrier: CarrierTest): void {
  const existing = (tcp.Socket.prototype as unknown as Record<symbol, Registry | undefined>)[REGISTRY];
  (existing ?? install()).tests.add(isCarrier);
}
