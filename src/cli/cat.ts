// scif-net cat PLACE / scif-net cat -l PORT: netcat over SCIF. stdin goes to
// the connection and the connection to stdout; stdin's end is a half-close
// (the peer reads an end and may go on sending), and we exit once the peer
// has ended too. A connection that fails or is reset is exit status 1.
import type * as nodeNet from 'node:net';
import { parsePlace, formatPlace } from './places';
import { connectTo, listenOn } from './streams';
import { report, describe } from './report';

export interface CatOptions {
  listen: boolean;
  quiet: boolean;
}

function run(socket: nodeNet.Socket): Promise<number> {
  return new Promise((resolve) => {
    let failed = false;
    socket.on('error', (err) => {
      failed = true;
      report('cat', err);
    });
    process.stdin.pipe(socket);
    socket.pipe(process.stdout, { end: false });
    // A stdout that went away (`| head`) ends our interest in the peer.
    process.stdout.on('error', () => socket.destroy());
    socket.once('close', () => {
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      resolve(failed ? 1 : 0);
    });
  });
}

export function cat(spec: string, options: CatOptions): Promise<number> {
  if (!options.listen) {
    const socket = connectTo(parsePlace(spec, false));
    return run(socket);
  }
  // -l PORT listens on SCIF; -l PLACE anywhere a bridge could.
  const place = parsePlace(/^\d+$/.test(spec) ? `scif:${spec}` : spec, true);
  return new Promise((resolve, reject) => {
    const server = listenOn(place, (socket) => {
      // One connection, as nc -l: the port is let go at once.
      server.close();
      socket.resume();
      resolve(run(socket));
    });
    server.once('error', reject);
    server.once('listening', () => {
      if (options.quiet) return;
      const a = server.address();
      const port = a && typeof a === 'object' ? a.port : undefined;
      process.stderr.write(`scif-net cat: listening on ${formatPlace(place.kind === 'unix' || port === undefined ? place : { ...place, port })}\n`);
    });
  }).catch((err) => {
    report('cat', err);
    return 1;
  }) as Promise<number>;
}

export { describe };
