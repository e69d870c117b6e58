// A peer process killed with SIGKILL: the survivor gets what was sent before
// the kill, then ECONNRESET, within a second - never a hang.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

const DEADLINE_MS = 1000;

function errorAfterKill(t, sock, peer) {
  return new Promise((resolve) => {
    let killedAt;
    const timer = setTimeout(() => {
      t.fail(`no error ${DEADLINE_MS} ms after the kill`);
      resolve(null);
    }, DEADLINE_MS + 10000);
    sock.once('error', (err) => {
      clearTimeout(timer);
      resolve({ err, ms: Number(process.hrtime.bigint() - killedAt) / 1e6 });
    });
    killedAt = process.hrtime.bigint();
    peer.child.kill('SIGKILL');
  });
}

t.test('the server dies: the client reads what was sent, then ECONNRESET', async (t) => {
  const peer = startPeer(t, 1, 'holdingServer', { bytes: 100000 });
  const { port } = await peer.next();
  const sock = net.connect({ node: 1, port });
  let got = 0;
  sock.on('data', (d) => (got += d.length));
  await peer.next();  // the server's write went through
  const { err, ms } = await errorAfterKill(t, sock, peer);
  t.equal(got, 100000, 'every byte sent before the kill arrived');
  t.match(err, { code: 'ECONNRESET', syscall: 'read' });
  t.ok(ms < DEADLINE_MS, `ECONNRESET ${ms.toFixed(1)} ms after the kill`);
  t.equal(await new Promise((r) => sock.once('close', r)), true);
});

t.test('the client dies: the server side reads what was sent, then ECONNRESET', async (t) => {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, r));
  const accepted = new Promise((r) => server.once('connection', r));
  const peer = startPeer(t, 2, 'holder', { node: 0, port: server.address().port, bytes: 50000 });
  const sock = await accepted;
  let got = 0;
  sock.on('data', (d) => (got += d.length));
  await peer.next();  // its write went through
  const { err, ms } = await errorAfterKill(t, sock, peer);
  t.equal(got, 50000);
  t.match(err, { code: 'ECONNRESET' });
  t.ok(ms < DEADLINE_MS, `ECONNRESET ${ms.toFixed(1)} ms after the kill`);
  t.equal(sock.remoteAddress, 'scif:2');
  await new Promise((r) => server.close(r));
});

t.test('a writer blocked on a full ring learns of the death', async (t) => {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, r));
  const accepted = new Promise((r) => server.once('connection', r));
  const peer = startPeer(t, 3, 'holder', { node: 0, port: server.address().port, bytes: 10 });
  const sock = await accepted;
  await peer.next();
  sock.pause();  // the holder never reads, so our writes fill its ring
  const big = Buffer.alloc(1024 * 1024);
  while (sock.write(big));
  const { err, ms } = await errorAfterKill(t, sock, peer);
  t.ok(['ECONNRESET', 'EPIPE'].includes(err.code), `the stuck write fails (${err.code})`);
  t.ok(ms < DEADLINE_MS, `${ms.toFixed(1)} ms after the kill`);
  await new Promise((r) => server.close(r));
});
