// scif-net/scif endpoints: connect/accept/send/recv of raw SCIF bytes
// between nodes, in order, with backpressure, never blocking the loop; the
// peer's departure; close; the module's shape.
require('./fixtures/fabric');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const t = require('tap');
const scif = require('scif-net/scif');
const { startPeer } = require('./fixtures/scif-peer');

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

async function pair() {
  const listener = scif.listen(0);
  const [a, b] = await Promise.all([listener.accept(), scif.connect({ node: 0, port: listener.localPort })]);
  await listener.close();
  return [a, b];
}

t.test('the module', async (t) => {
  t.equal(require('scif-net/scif'), require('../dist/scif'), "require('scif-net/scif')");
  t.equal(require('scif-net').scif.Endpoint, scif.Endpoint, "and require('scif-net').scif");
  t.match(scif.constants, {
    PROT_READ: 1, PROT_WRITE: 2, MAP_FIXED: 0x10, RMA_USECPU: 1, RMA_USECACHE: 2, RMA_SYNC: 4, RMA_ORDERED: 8,
    FENCE_INIT_SELF: 1, FENCE_INIT_PEER: 2, SIGNAL_LOCAL: 0x10, SIGNAL_REMOTE: 0x20,
  }, "MPSS libscif's values");
  t.equal(scif.pageSize, 4096);
  t.comment(`backend: ${JSON.stringify(require('scif-net').backend())}`);
  t.same(scif.getNodeIds(), { self: 0, nodes: [0, 1, 2, 3] });
  const buf = scif.alloc(5000);
  t.ok(Buffer.isBuffer(buf));
  t.equal(buf.length, 8192, 'alloc() rounds up to whole pages');
  t.equal(buf.byteOffset, 0);
  t.ok(buf.every((b) => b === 0), 'zeroed');
});

t.test('connect and accept across nodes: peers and ports', async (t) => {
  const peer = startPeer(t, 1, 'echo', { bytes: 4 });
  const { port } = await peer.next();
  const ep = await scif.connect({ node: 1, port });
  t.same(ep.peer, { node: 1, port });
  t.ok(ep.localPort >= 1088, `a local port was bound (${ep.localPort})`);
  t.equal(await ep.send(Buffer.from('ping')), 4);
  t.equal((await ep.recv(4)).toString(), 'ping');
  t.match(await peer.next(), { peer: { node: 0, port: ep.localPort } }, 'the acceptor sees our node and port');
  const accepted = scif.listen(0);
  const [server, client] = await Promise.all([accepted.accept(), scif.connect({ node: 0, port: accepted.localPort })]);
  t.equal(server.localPort, accepted.localPort, 'an accepted endpoint shares its listener\'s port');
  t.same(server.peer, { node: 0, port: client.localPort });
  t.ok(server instanceof scif.Endpoint);
  await Promise.all([ep.close(), server.close(), client.close(), accepted.close()]);
});

t.test('raw bytes: what one side sends is exactly what the other receives', async (t) => {
  const pieces = [Buffer.from('abc'), new Uint8Array([1, 2, 3, 4, 5]), new DataView(new ArrayBuffer(7)), new ArrayBuffer(2)];
  const total = pieces.reduce((n, p) => n + p.byteLength, 0);
  const peer = startPeer(t, 1, 'echo', { bytes: total });
  const { port } = await peer.next();
  const ep = await scif.connect({ node: 1, port });
  const sent = await Promise.all(pieces.map((p) => ep.send(p)));
  t.same(sent, pieces.map((p) => p.byteLength));
  const back = await ep.recv(total);
  t.equal(back.length, total, 'no framing: the echo read exactly our bytes');
  t.same([...back], [97, 98, 99, 1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.equal((await peer.next()).sha256, sha256(back));
  t.equal((await ep.recv(0)).length, 0, 'recv(0) is an empty Buffer');
  t.equal(await ep.send(Buffer.alloc(0)), 0, 'and sending nothing sends nothing');
  await ep.close();
});

t.test('64 MiB each way; sends and receives queue in order', async (t) => {
  const total = 64 << 20;
  const peer = startPeer(t, 1, 'echo', { bytes: total });
  const { port } = await peer.next();
  const ep = await scif.connect({ node: 1, port });
  const data = crypto.randomBytes(total);
  const cuts = [0];
  while (cuts.at(-1) < total) cuts.push(Math.min(total, cuts.at(-1) + 1 + crypto.randomInt(3 << 20)));
  // Every send and every receive issued at once: they complete in order.
  const sends = cuts.slice(1).map((end, i) => ep.send(data.subarray(cuts[i], end)));
  const sizes = [1, 2, 3, 1 << 20, 5 << 20, (1 << 20) + 7];
  sizes.push(total - sizes.reduce((a, b) => a + b, 0));
  const order = [];
  const recvs = sizes.map((n, i) => ep.recv(n).then((b) => (order.push(i), b)));
  t.same(await Promise.all(sends), cuts.slice(1).map((end, i) => end - cuts[i]));
  const got = Buffer.concat(await Promise.all(recvs));
  t.same(order, sizes.map((_, i) => i), 'receives resolved in the order they were asked');
  t.equal(sha256(got), sha256(data), 'the bytes came back whole and in order');
  t.equal((await peer.next()).sha256, sha256(data), 'and the peer saw them so');
  await ep.close();
});

t.test('backpressure: a send bigger than the ring waits for the reader, the loop turning', async (t) => {
  const [a, b] = await pair();
  const big = crypto.randomBytes(8 << 20);
  let done = false;
  const sending = a.send(big).then((n) => ((done = true), n));
  let turns = 0;
  while (turns < 50) {
    turns++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(done, false, 'not all in after 50 turns of the loop: the ring is full');
  t.equal(a.pending.sends, 1);
  t.ok(a.pending.watching, 'waiting on the descriptor');
  const got = await b.recv(big.length);
  t.equal(await sending, big.length);
  t.ok(got.equals(big));
  await Promise.all([a.close(), b.close()]);
});

t.test('a peer that closes: what it sent, then ECONNRESET', async (t) => {
  const [a, b] = await pair();
  await a.send(Buffer.from('last words'));
  await a.close();
  t.equal((await b.recv(10)).toString(), 'last words', 'what was sent before the close is still read');
  await t.rejects(b.recv(1), { code: 'ECONNRESET', syscall: 'scif_recv', message: 'scif_recv ECONNRESET' });
  await t.rejects(b.send(Buffer.from('?')), { code: 'ECONNRESET', syscall: 'scif_send' });
  const partial = b.recv(5);
  await t.rejects(partial, { code: 'ECONNRESET' }, 'as is a receive that cannot be filled');
  await b.close();
});

// What a dead peer sent can be read after its death as far as it is in our
// inbound queue (the driver's 4 KiB: 4095 bytes); a sender that waits for
// room has sent nothing more.
const QUEUED = 4000;

t.test('a peer killed after sending: the bytes, then ECONNRESET', async (t) => {
  const listener = scif.listen(0);
  const accepting = listener.accept();
  const peer = startPeer(t, 2, 'sender', { connect: { node: 0, port: listener.localPort }, bytes: QUEUED });
  const ep = await accepting;
  await peer.next();
  const waiting = ep.recv(QUEUED + 1);
  peer.kill();
  await t.rejects(waiting, { code: 'ECONNRESET' }, 'one byte more than it sent: ECONNRESET once the peer is gone');
  await ep.close();
  // Again, reading just what it sent.
  const accepting2 = listener.accept();
  const peer2 = startPeer(t, 2, 'sender', { connect: { node: 0, port: listener.localPort }, bytes: QUEUED });
  const ep2 = await accepting2;
  t.same(ep2.peer.node, 2);
  const { sha256: sent2 } = await peer2.next();
  await peer2.kill();
  t.equal(sha256(await ep2.recv(QUEUED)), sent2, 'everything it sent is read after its death');
  await t.rejects(ep2.recv(1), { code: 'ECONNRESET' });
  await Promise.all([ep2.close(), listener.close()]);
});

t.test('close() cancels what waits, and is idempotent', async (t) => {
  const [a, b] = await pair();
  const r = a.recv(10);
  const s = a.send(Buffer.alloc(4 << 20)); // more than the ring: waits for b
  const closing = a.close();
  t.equal(a.close(), closing);
  await t.rejects(r, { code: 'ECANCELED', syscall: 'scif_recv' });
  await t.rejects(s, { code: 'ECANCELED', syscall: 'scif_send' });
  await closing;
  t.same(a.pending, { ...a.pending, recvs: 0, sends: 0, watching: false });
  await b.close();
});

t.test('many connections at once', async (t) => {
  const N = 64;
  const listener = scif.listen(0, N); // past the backlog, SCIF may refuse

  const accepted = Array.from({ length: N }, () => listener.accept());
  const clients = await Promise.all(Array.from({ length: N }, () => scif.connect({ node: 0, port: listener.localPort })));
  const servers = await Promise.all(accepted);
  await Promise.all(clients.map((c, i) => c.send(Buffer.from([i]))));
  const got = await Promise.all(servers.map((s) => s.recv(1)));
  const byPort = new Map(clients.map((c, i) => [c.localPort, i]));
  t.ok(servers.every((s, i) => byPort.get(s.peer.port) === got[i][0]), 'each accepted endpoint reads its own caller');
  await Promise.all([...clients, ...servers, listener].map((e) => e.close()));
});

t.test('endpoints keep the process alive only while they wait, and not when unref()ed', async (t) => {
  const dist = JSON.stringify(path.join(__dirname, '..', 'dist', 'scif'));
  const run = (script) => spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000, env: process.env });
  const idle = run(`
    const scif = require(${dist});
    (async () => {
      const l = scif.listen(0);
      const [a, b] = await Promise.all([l.accept(), scif.connect({ node: 0, port: l.localPort })]);
      await a.register(scif.alloc(4096));
      console.log('connected, nothing waiting');
    })();`);
  t.equal(idle.status, 0, idle.stderr);
  t.equal(idle.stdout, 'connected, nothing waiting\n', 'connected endpoints with nothing to wait for let the process exit');
  const unrefd = run(`
    const scif = require(${dist});
    const l = scif.listen(0).unref();
    l.accept().then(() => console.log('accepted?'));
    console.log('waiting, unref()ed');`);
  t.equal(unrefd.status, 0, unrefd.stderr);
  t.equal(unrefd.stdout, 'waiting, unref()ed\n');
  const reffed = run(`
    const scif = require(${dist});
    const l = scif.listen(0);
    l.accept().then(async (ep) => { console.log('accepted', ep.peer.node); await ep.close(); await l.close(); });
    setImmediate(() => scif.connect({ node: 0, port: l.localPort }).then((c) => c.close()));`);
  t.equal(reffed.stdout, 'accepted 0\n', 'a waiting accept keeps it alive until it is answered');
});
