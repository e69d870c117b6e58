// scif-net bridge LISTEN TARGET: every connection accepted on LISTEN is
// spliced to a new connection to TARGET (streams.ts), as socat's
// `socat TCP-LISTEN:8080,fork SCIF:1:8080` would if socat spoke SCIF.
import type * as nodeNet from 'node:net';
import { formatPlace, parsePlace } from './places';
import { connectTo, listenOn, reset, splice } from './streams';
import { describe } from './report';

export interface BridgeOptions {
  quiet: boolean;
}

export function bridge(listenSpec: string, targetSpec: string, options: BridgeOptions): Promise<number> {
  const listenAt = parsePlace(listenSpec, true);
  const target = parsePlace(targetSpec, false);
  const say = (line: string) => {
    if (!options.quiet) process.stderr.write(`scif-net bridge: ${line}\n`);
  };
  return new Promise((resolve, reject) => {
    const server = listenOn(listenAt, (client: nodeNet.Socket) => {
      const upstream = connectTo(target);
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        void splice(client, upstream);
      });
      upstream.once('error', (err) => {
        if (connected) return;  // splice passes it on
        // The target refused: the client is reset, as a relay that cannot
        // connect onwards must not pretend the connection worked.
        say(`${formatPlace(target)}: ${describe(err)}`);
        reset(client);
      });
      // Its error (a reset while we connect onwards) shows as its close, below.
      client.on('error', () => {});
      // A client gone while we connect onwards takes the onward connection with it.
      client.once('close', () => {
        if (!connected) reset(upstream);
      });
    });
    server.once('error', reject);
    server.once('listening', () => {
      const a = server.address();
      const where =
        listenAt.kind === 'unix' || a === null || typeof a === 'string'
          ? formatPlace(listenAt)
          : listenAt.kind === 'tcp'
            ? formatPlace({ kind: 'tcp', host: a.address, port: a.port })
            : formatPlace({ kind: 'scif', node: Number(String(a.address).replace(/^scif:/, '')), port: a.port });
      say(`listening on ${where}, to ${formatPlace(target)}`);
      server.off('error', reject);
      server.on('error', (err) => say(describe(err)));
    });
    const stop = () => server.close(() => resolve(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
