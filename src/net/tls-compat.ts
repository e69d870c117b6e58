// node:tls over scif-net sockets.
//
// node:tls takes a net.Socket without a native handle for one still
// connecting (TLSSocket.prototype._init: `connecting = socket.connecting ||
// !socket._handle`) and waits for its 'connect'. A scif-net socket in SCIF
// mode is a net.Socket that carries its stream without a node handle, so a
// TLS socket over an established one (every tls.Server connection) would wait
// for ever. node:tls then drives such a socket as a plain stream, so the raw
// socket must also leave half-closing to TLS instead of ending its side by
// itself the moment the peer's end arrives (which would cut TLS's last
// records short). This wraps _init to say both; it touches only TLS sockets
// made over scif-net sockets in SCIF mode.
import tls from 'node:tls';

type Init = (this: { connecting: boolean }, socket: unknown, wrap: unknown) => unknown;

let installed = false;

export function installTlsCompat(carriesSCIF: (socket: unknown) => socket is { connecting: boolean; allowHalfOpen: boolean }): void {
  if (installed) return;
  installed = true;
  const proto = tls.TLSSocket.prototype as unknown as { _init?: Init };
  const init = proto._init;
  if (typeof init !== 'function') return;
  proto._init = function (this: { connecting: boolean }, socket: unknown, wrap: unknown) {
    const scif = carriesSCIF(socket) ? socket : null;
    if (scif) scif.allowHalfOpen = true;
    const result = init.call(this, socket, wrap);
    if (scif && !scif.connecting) this.connecting = false;
    return result;
  };
}
