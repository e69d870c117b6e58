// 256 MiB in random pieces between processes on different nodes, hashed on
// both ends: nothing lost, duplicated or reordered.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

const TOTAL = 256 * 1024 * 1024;

t.test('node 0 sends 256 MiB to a sink on node 1', async (t) => {
  const sink = startPeer(t, 1, 'sink');
  const { port } = await sink.next();
  const hash = crypto.createHash('sha256');
  const sock = net.connect({ node: 1, port });
  let reply = '';
  sock.setEncoding('utf8').on('data', (d) => (reply += d));
  await new Promise((r) => sock.once('connect', r));
  let left = TOTAL;
  while (left > 0) {
    const n = Math.min(left, 1 + crypto.randomInt(1 << 20));
    const chunk = crypto.randomBytes(n);
    hash.update(chunk);
    left -= n;
    if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
  }
  sock.end();
  await new Promise((r) => sock.once('close', r));
  const got = JSON.parse(reply);
  t.equal(got.bytes, TOTAL, 'every byte arrived');
  t.equal(got.sha256, hash.digest('hex'), 'in order and intact');
  t.equal(sock.bytesWritten, TOTAL);
});

t.test('a source on node 2 sends 256 MiB to node 0', async (t) => {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let remote;
  const server = net.createServer((s) => {
    remote = { address: s.remoteAddress, family: s.remoteFamily };
    s.on('data', (d) => {
      bytes += d.length;
      hash.update(d);
    });
  });
  await new Promise((r) => server.listen(0, r));
  const source = startPeer(t, 2, 'source', { node: 0, port: server.address().port, bytes: TOTAL });
  const sent = await source.next();
  t.equal(sent.sent, TOTAL);
  await new Promise((r) => server.close(r));  // after the connection has ended
  t.equal(bytes, TOTAL, 'every byte arrived');
  t.equal(hash.digest('hex'), sent.sha256, 'in order and intact');
  t.same(remote, { address: 'scif:2', family: 'SCIF' }, 'the peer is seen on its node');
});
