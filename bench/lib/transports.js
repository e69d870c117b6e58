'use strict';
// The three transports side by side: how a server listens and a client
// connects on each. Addresses travel between processes as plain objects:
//   tcp  { host: '127.0.0.1', port }     node:net over TCP loopback
//   unix { path }                        node:net over a Unix socket
//   scif { node, port }                  scif-net between virtual SCIF nodes
// scif-net is loaded only by the processes that use it, so the node:net
// peers run plain Node.
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');

function scifNet() {
  return require(ROOT);
}

function scifHttp() {
  return require(path.join(ROOT, 'dist', 'http.js'));
}

function netFor(transport) {
  if (transport === 'scif') return scifNet();
  if (transport === 'tcp' || transport === 'unix') return require('node:net');
  throw new Error(`unknown transport ${transport}`);
}

/** A Unix socket path in the run's temporary directory (BENCH_TMP). */
function unixPath(tag) {
  const dir = process.env.BENCH_TMP;
  if (!dir) throw new Error('BENCH_TMP is not set');
  return path.join(dir, `${tag}-${process.pid}.sock`);
}

/** Listens a node:net-shaped server (net.Server or scif-net Server) on the transport. */
function listenOn(server, transport, tag) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      const a = server.address();
      if (transport === 'tcp') resolve({ host: '127.0.0.1', port: a.port });
      else if (transport === 'unix') resolve({ path: a });
      else resolve({ node: scifNet().getNodeIds().self, port: a.port });
    };
    if (transport === 'tcp') server.listen(0, '127.0.0.1', done);
    else if (transport === 'unix') server.listen(unixPath(tag), done);
    else server.listen(0, done);
  });
}

function createServer(transport, listener) {
  return netFor(transport).createServer(listener);
}

/** Connects and resolves once the socket is connected. */
function connect(transport, address) {
  const net = netFor(transport);
  let sock;
  if (transport === 'tcp') sock = net.connect({ host: address.host, port: address.port });
  else if (transport === 'unix') sock = net.connect({ path: address.path });
  else sock = net.connect({ node: address.node, port: address.port });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

/** An http.Server listening on the transport; resolves its address. */
async function listenHttp(httpServer, transport) {
  if (transport !== 'scif') return listenOn(httpServer, transport, 'http');
  const server = await new Promise((resolve, reject) => {
    const s = scifHttp().listen(httpServer, 0, () => resolve(s));
    s.once('error', reject);
  });
  return { node: scifNet().getNodeIds().self, port: server.address().port };
}

function undici() {
  return require(path.join(ROOT, 'node_modules', 'undici'));
}

/**
 * An undici dispatcher and origin for requests to an HTTP server on the
 * transport; for scif, createDispatcher() from dist/http.js.
 */
function httpClient(transport, address, options = {}) {
  if (transport === 'tcp') {
    return { dispatcher: new (undici().Agent)(options), origin: `http://${address.host}:${address.port}` };
  }
  if (transport === 'unix') {
    return { dispatcher: new (undici().Agent)({ ...options, connect: { socketPath: address.path } }), origin: 'http://localhost' };
  }
  // MPSS host names: node 0 is 'host', node K+1 is 'micK'.
  const origin = `http://${address.node === 0 ? 'host' : `mic${address.node - 1}`}:${address.port}`;
  return { dispatcher: scifHttp().createDispatcher(options), origin };
}

/** Resource figures a peer reports: bytes, and open descriptors. */
function stats() {
  const m = process.memoryUsage();
  const fs = require('node:fs');
  let fds = -1;
  try {
    fds = fs.readdirSync('/proc/self/fd').length;
  } catch {
    // not Linux: leave -1
  }
  const cpu = process.cpuUsage();
  return {
    cpuUs: cpu.user + cpu.system,
    rss: m.rss,
    maxRSS: process.resourceUsage().maxRSS * 1024,
    heapUsed: m.heapUsed,
    // V8's young generation: its size is a heuristic's (it grows after
    // scavenges that many objects survive) and stays grown after a GC.
    youngGen: require('node:v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    fds,
  };
}

module.exports = { ROOT, undici, netFor, listenOn, createServer, connect, listenHttp, httpClient, stats };
