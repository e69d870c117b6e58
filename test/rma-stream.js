// The bulk path (issue 11): large writes move by RMA into the peer's receive
// window, announced on the queue in stream order. These tests prove it is
// taken and intact (stats, checksums), that it falls back when registration
// fails, and that destroy, a dead peer, mixed sizes and half-close keep the
// socket's contract. No timings here: speed is bench/'s.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const path = require('node:path');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');
const { once } = require('./helpers');

const ROLES = path.join(__dirname, 'fixtures', 'rma-roles.js');
const MiB = 1 << 20;

// A role from rma-roles.js in a child on `node`, optionally behind a command
// prefix (prlimit, setpriv) and with extra environment.
const spawnRole = (t, node, role, args, { prefix = [], env = {} } = {}) =>
  startPeer(t, node, role, args, { roles: ROLES, prefix, env });

async function sendAndCheck(t, port, data, writes) {
  const sock = net.connect({ node: 1, port });
  let answer = '';
  sock.setEncoding('utf8').on('data', (d) => (answer += d));
  await once(sock, 'connect');
  let at = 0;
  for (const n of writes) {
    if (!sock.write(data.subarray(at, at + n))) await once(sock, 'drain');
    at += n;
  }
  sock.end();
  await once(sock, 'close');
  const got = JSON.parse(answer);
  t.equal(got.bytes, data.length, 'every byte arrived');
  t.equal(got.sha256, crypto.createHash('sha256').update(data).digest('hex'), 'in order and intact');
  return { sent: sock.scifStats, received: got.stats };
}

t.test('256 MiB node 0 -> node 1, checksummed: the bulk path carries it', async (t) => {
  const sink = startPeer(t, 1, 'sink', {}, { roles: ROLES });
  const { port } = await sink.until((m) => m.ready);
  const total = 256 * MiB;
  const source = spawnRole(t, 0, 'source', { node: 1, port, bytes: total });
  const { received } = await sink.until((m) => m.received);
  const { sent } = await source.until((m) => m.sent);
  t.equal(received.bytes, total, 'every byte arrived');
  t.equal(received.sha256, sent.sha256, 'in order and intact');
  t.ok(sent.stats.sent.rma >= 0.9 * total, `>= 90% of the bytes went by RMA (${sent.stats.sent.rma})`);
  t.equal(sent.stats.sent.rma + sent.stats.sent.messages, total, 'the sender counted every byte once');
  t.same(received.stats.received, sent.stats.sent, 'the receiver saw the same split');
  t.equal(received.stats.windows, 1, 'one window, registered by the receiver');
  t.equal(sent.stats.fallbacks, 0);
});

t.test('mixed small and large writes, corked and not, keep their order', async (t) => {
  const sink = startPeer(t, 1, 'sink', {}, { roles: ROLES });
  const { port } = await sink.until((m) => m.ready);
  const sizes = [3, 20000, 1, 16383, 16384, MiB + 5, 100, 70000, 7, 300000, 2, 4096, 65536, 1];
  const total = sizes.reduce((a, b) => a + b, 0) * 2;
  const data = crypto.randomBytes(total);
  const sock = net.connect({ node: 1, port });
  let answer = '';
  sock.setEncoding('utf8').on('data', (d) => (answer += d));
  await once(sock, 'connect');
  let at = 0;
  // Once write by write, once corked (one writev mixing both paths).
  for (const n of sizes) {
    sock.write(data.subarray(at, at + n));
    at += n;
  }
  sock.cork();
  for (const n of sizes) {
    sock.write(data.subarray(at, at + n));
    at += n;
  }
  sock.uncork();
  sock.end();
  await once(sock, 'close');
  const got = JSON.parse(answer);
  t.equal(got.bytes, total);
  t.equal(got.sha256, crypto.createHash('sha256').update(data).digest('hex'), 'in order and intact');
  t.ok(sock.scifStats.sent.rma > 0 && sock.scifStats.sent.messages > 0, 'both paths were used');
});

t.test('registration fails (RLIMIT_MEMLOCK 0, no CAP_IPC_LOCK): messages carry it, fallbacks = 1', async (t) => {
  const sink = spawnRole(t, 1, 'sink', {}, {
    prefix: ['prlimit', '--memlock=0:0', '--', 'setpriv', '--bounding-set=-ipc_lock', '--inh-caps=-ipc_lock', '--'],
  });
  const { port } = await sink.until((m) => m.ready);
  const data = crypto.randomBytes(8 * MiB + 77);
  const writes = [MiB, 20, MiB, ...Array(6).fill(MiB), 57];
  const { sent, received } = await sendAndCheck(t, port, data, writes);
  t.equal(sent.fallbacks, 1, 'the sender fell back once');
  t.equal(sent.sent.rma, 0, 'nothing by RMA');
  t.equal(sent.sent.messages, data.length, 'everything by messages');
  t.equal(received.windows, 0, 'the receiver holds no window');
});

t.test('the reader pauses (pipe back-pressure) while its own write waits for credit', async (t) => {
  // An echo server: pipe() pauses reading while the echo's write waits, and
  // that write's credit comes on the queue it no longer reads.
  const server = net.createServer((s) => s.pipe(s));
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => server.close());
  const data = crypto.randomBytes(48 * MiB);
  const sock = net.connect(server.address().port);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  sock.on('data', (d) => {
    bytes += d.length;
    hash.update(d);
  });
  await once(sock, 'connect');
  for (let at = 0; at < data.length; at += MiB) {
    if (!sock.write(data.subarray(at, at + MiB))) await once(sock, 'drain');
  }
  sock.end();
  await once(sock, 'close');
  t.equal(bytes, data.length, 'all echoed');
  t.equal(hash.digest('hex'), crypto.createHash('sha256').update(data).digest('hex'), 'in order and intact');
  t.ok(sock.scifStats.sent.rma > 0 && sock.scifStats.received.rma > 0, 'both directions by RMA');
});

t.test('half-close after RMA writes: the other side still writes large, and credit flows after our FIN', async (t) => {
  const a = crypto.randomBytes(5 * MiB + 3);
  const b = crypto.randomBytes(7 * MiB + 1);
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const got = [];
    s.on('data', (d) => got.push(d));
    s.on('end', () => {
      t.ok(Buffer.concat(got).equals(a), 'the server read what the client sent before its end');
      s.end(b);
    });
  });
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => server.close());
  const sock = net.connect({ port: server.address().port, allowHalfOpen: true });
  const back = [];
  sock.on('data', (d) => back.push(d));
  await once(sock, 'connect');
  sock.end(a);
  await once(sock, 'end');
  t.ok(Buffer.concat(back).equals(b), 'the client read the answer written after its end');
  t.ok(sock.scifStats.sent.rma > 0 && sock.scifStats.received.rma > 0);
  await once(sock, 'close');
});

for (const copy of ['dma', 'mmap']) {
  t.test(`destroy() while RMA chunks are in flight (SCIF_NET_RMA_COPY=${copy}): closes once they return, nothing used after free`, async (t) => {
    // Read when the window comes: dma's chunks run on the threadpool, so the
    // descriptor's close waits for them.
    process.env.SCIF_NET_RMA_COPY = copy;
    t.teardown(() => delete process.env.SCIF_NET_RMA_COPY);
    const sink = startPeer(t, 1, 'sink', {}, { roles: ROLES });
    const { port } = await sink.until((m) => m.ready);
    for (let round = 0; round < 20; round++) {
      const sock = net.connect({ node: 1, port });
      sock.on('error', () => {});
      await once(sock, 'connect');
      // A first large write brings the window; the second is in flight when destroyed.
      await new Promise((r) => sock.write(Buffer.alloc(MiB, 1), r));
      sock.write(crypto.randomBytes(16 * MiB));
      for (let i = 0; i < round % 4; i++) await new Promise((r) => setImmediate(r));
      const before = sock.scifStats.sent.rma;
      sock.destroy();
      await once(sock, 'close');
      t.ok(before < 17 * MiB, `destroyed with the write under way (${before} bytes announced)`);
    }
    // The process and the sink still work.
    const data = crypto.randomBytes(3 * MiB);
    await sendAndCheck(t, port, data, [MiB, MiB, MiB]);
  });
}

t.test('a peer killed while our write waits for its credit: ECONNRESET, no hang', async (t) => {
  // The peer reads the first 2 MiB (the window comes meanwhile), then pauses for good.
  const peer = spawnRole(t, 1, 'stall', { readFirst: 2 * MiB });
  const { port } = await peer.until((m) => m.ready);
  const sock = net.connect({ node: 1, port });
  await once(sock, 'connect');
  await new Promise((r) => sock.write(Buffer.alloc(MiB, 1), r));
  sock.write(Buffer.alloc(64 * MiB, 2));
  await peer.until((m) => m.paused);
  peer.child.kill('SIGKILL');
  const err = await once(sock, 'error');
  t.equal(err.code, 'ECONNRESET');
  const { rma } = sock.scifStats.sent;
  t.ok(rma > 0 && rma < 64 * MiB, `it was moving by RMA, and stopped part-way (${rma} bytes)`);
  await once(sock, 'close');
});
