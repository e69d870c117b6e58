// Listening on and connecting to a Place, and splicing two streams together
// the way a TCP relay must: both directions, backpressure, half-close (an end
// on one side is an end on the other, the other direction going on), and
// resets (an end that fails or vanishes without a FIN resets the other).
import type { Duplex } from 'node:stream';
import type * as nodeNet from 'node:net';
import type { Place } from './places';

type ScifNet = typeof import('../index');

/** scif-net, loaded when first needed: SCIF_NET_NODE must be settled before (--node). */
export function scifNet(): ScifNet {
  return require('../index') as ScifNet;
}

export function listenOn(place: Place, onConnection: (socket: nodeNet.Socket) => void): nodeNet.Server {
  const net = scifNet();
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onConnection);
  if (place.kind === 'unix') server.listen({ path: place.path });
  else if (place.kind === 'tcp') server.listen(place.host === undefined ? { port: place.port } : { port: place.port, host: place.host });
  else server.listen(place.node === undefined ? place.port : `scif:${place.node}:${place.port}`);
  return server;
}

export function connectTo(place: Place): nodeNet.Socket {
  const net = scifNet();
  if (place.kind === 'unix') return net.connect({ path: place.path, allowHalfOpen: true });
  if (place.kind === 'tcp') return net.connect({ host: place.host, port: place.port, allowHalfOpen: true });
  return net.connect({ node: place.node, port: place.port, allowHalfOpen: true } as never);
}

/** Resets a socket when its kind can be reset (TCP, SCIF); destroys it otherwise (a Unix socket has no RST). */
export function reset(socket: nodeNet.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Pipes a into b and b into a; resolves once both are closed. */
export function splice(a: nodeNet.Socket, b: nodeNet.Socket): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const done = () => {
      if (++closed === 2) resolve();
    };
    const wire = (from: nodeNet.Socket, to: nodeNet.Socket) => {
      let ended = false;
      from.on('end', () => (ended = true));
      from.pipe(to as Duplex, { end: true });
      // An error, or a close without the peer's FIN, is a reset: pass it on.
      from.on('error', () => reset(to));
      from.on('close', () => {
        if (!ended) reset(to);
        done();
      });
    };
    wire(a, b);
    wire(b, a);
    a.resume();
    b.resume();
  });
}
