'use strict';
// The server side of every benchmark, one child process per (kind, transport):
//
//   node bench/peers.js <kind> <transport>
//
//   discard  counts what each connection sends. A connection starts with an
//            8-byte little-endian total; when that many bytes have followed,
//            the server answers one byte, so the client's clock stops only
//            once everything has arrived.
//   echo     writes back whatever it reads (the ping-pong peer).
//   http     a node:http server answering every request with a short body.
//   hold     accepts connections and keeps them open, idle.
//
// Every peer watches its event loop's delay (perf_hooks): 'lag' returns the
// delay since the last 'lag' (p50, p99, max in µs) and starts over.
// A scif peer runs on the node SCIF_NET_NODE names (the orchestrator sets 1).
// Commands from the orchestrator: stats (memory, descriptors, connections), gc.
const http = require('node:http');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { serve } = require('./lib/proc');
const T = require('./lib/transports');

const [kind, transport] = process.argv.slice(2);
const sockets = new Set();
const totals = { connections: 0, bytes: 0 };

function track(sock) {
  totals.connections++;
  sockets.add(sock);
  sock.on('error', () => {});  // a client that destroys after its answer may reset us
  sock.on('close', () => sockets.delete(sock));
}

function discard(sock) {
  track(sock);
  let got = 0;
  let expect = -1;
  let head = [];
  let replied = false;
  sock.on('data', (chunk) => {
    got += chunk.length;
    totals.bytes += chunk.length;
    if (expect < 0) {
      head.push(chunk);
      if (got < 8) return;
      expect = Number(Buffer.concat(head).readBigUInt64LE(0)) + 8;
      head = null;
    }
    if (!replied && got >= expect) {
      replied = true;
      sock.write('k');
    }
  });
  sock.on('end', () => sock.end());
}

function echo(sock) {
  track(sock);
  if (typeof sock.setNoDelay === 'function') sock.setNoDelay(true);
  sock.on('data', (chunk) => {
    totals.bytes += chunk.length;
    sock.write(chunk);
  });
  sock.on('end', () => sock.end());
}

function hold(sock) {
  track(sock);
  sock.on('end', () => sock.end());
}

const BODY = Buffer.from('hello from the bench server\n');

async function main() {
  let address;
  if (kind === 'http') {
    const server = http.createServer((req, res) => {
      totals.connections++;  // requests, for http
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
        res.end(BODY);
      });
    });
    server.keepAliveTimeout = 60000;
    address = await T.listenHttp(server, transport);
  } else {
    const handler = { discard, echo, hold }[kind];
    if (!handler) throw new Error(`unknown peer kind ${kind}`);
    const server = T.createServer(transport, handler);
    server.on('error', (err) => {
      console.error(`peer ${kind}/${transport}:`, err);
    });
    address = await T.listenOn(server, transport, kind);
  }
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  serve({
    lag: () => {
      const r = { p50: delay.percentile(50) / 1e3, p99: delay.percentile(99) / 1e3, max: delay.max / 1e3 };
      delay.reset();
      return r;
    },
    stats: () => ({ ...T.stats(), open: sockets.size, ...totals }),
    gc: () => {
      if (global.gc) {
        global.gc();
        global.gc();
      }
      return T.stats();
    },
  }, { address, pid: process.pid });
}

main().catch((err) => {
  console.error(`peer ${kind}/${transport}:`, err);
  process.exit(1);
});
