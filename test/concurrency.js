// 200 connections at once to a server in another process, each with its own
// payload, all answered correctly; and a server counting its connections
// (and what they cost in descriptors).
require('./fixtures/fabric');
const crypto = require('node:crypto');
const fs = require('node:fs');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

t.test('200 concurrent connections to an echo server on node 1', async (t) => {
  const peer = startPeer(t, 1, 'echo');
  const { port } = await peer.next();
  const N = 200;
  const results = await Promise.all(Array.from({ length: N }, (_, i) => new Promise((resolve, reject) => {
    const payload = crypto.randomBytes(1000 + i * 37);
    const sock = net.connect({ node: 1, port });
    const parts = [];
    sock.on('data', (d) => parts.push(d));
    sock.on('error', reject);
    sock.on('connect', () => sock.end(payload));
    sock.on('close', () => resolve(Buffer.concat(parts).equals(payload)));
  })));
  t.equal(results.filter(Boolean).length, N, 'every connection got its own bytes back');
});

t.test('a server holds 200 connections open and counts them', async (t) => {
  const N = 200;
  const server = net.createServer();
  const sockets = [];
  let peak = 0;
  server.on('connection', (s) => {
    sockets.push(s);
    peak = Math.max(peak, server._connections);
  });
  await new Promise((r) => server.listen(0, r));
  // The acceptor's arenas of queue pairs (a memfd per 64 connections with one
  // process, kernel/src/arena.h) are counted apart, and the fdinfo files of
  // its last few callers, which it keeps open (kernel/src/identity.c), not
  // at all.
  const targets = () => fs.readdirSync('/proc/self/fd').map((fd) => {
    try { return fs.readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; }
  });
  const fds = () => targets().filter((l) => !l.includes('memfd:scif-qp') && !/^\/proc\/\d+\/fdinfo\//.test(l)).length;
  const arenaFds = () => targets().filter((l) => l.includes('memfd:scif-qp')).length;
  const fdsBefore = fds();
  const arenasBefore = arenaFds();
  const clients = [];
  await Promise.all(Array.from({ length: N }, () => new Promise((resolve, reject) => {
    const c = net.connect(server.address().port, resolve);
    c.on('error', reject);
    clients.push(c);
  })));
  while (sockets.length < N) await new Promise((r) => server.once('connection', r));
  const count = await new Promise((r) => server.getConnections((err, n) => r(n)));
  t.equal(count, N);
  t.equal(peak, N);
  // As TCP: one descriptor a side per connection (no control channel or RMA
  // bell for sockets), so descriptors do not run out before connections do.
  t.equal(fds() - fdsBefore, 2 * N, 'one descriptor per socket');
  t.equal(arenaFds() - arenasBefore, Math.ceil(N / 64), "the acceptor's queue pairs in one memfd per 64");
  const closed = new Promise((r) => server.close(r));
  t.equal(server.listening, false, 'close() stops listening at once');
  let closeEvent = false;
  server.once('close', () => (closeEvent = true));
  for (const c of clients) c.end();
  for (const s of sockets) s.resume();
  await closed;
  t.ok(closeEvent, "'close' once the last connection ended");
  t.equal(server._connections, 0);
});
