// A node taken off line (a card reset) resets every connection with an end on
// it, idle ones included, in every process: both ends get ECONNRESET and
// close. Its listeners stay: connecting fails with ENODEV while the node is
// off line and works again once it is back.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

const connected = (sock) => new Promise((resolve, reject) => {
  sock.once('connect', resolve);
  sock.once('error', reject);
});

t.test('node 1 goes off line under an idle connection, and comes back', async (t) => {
  const peer = startPeer(t, 1, 'reportingEcho');
  t.teardown(() => net.setNodeOnline(1, true));
  const { port } = await peer.until((m) => m.ready);

  // Connected and idle: no byte either way.
  const sock = net.connect({ node: 1, port });
  await connected(sock);
  const { accepted } = await peer.until((m) => m.accepted);
  const errored = new Promise((r) => sock.once('error', r));
  const closed = new Promise((r) => sock.once('close', r));

  net.setNodeOnline(1, false);
  t.match(await errored, { code: 'ECONNRESET' }, 'the client on node 0 is reset');
  t.equal(await closed, true, "and closes with hadError");
  t.same(await peer.until((m) => m.conn === accepted), { error: 'ECONNRESET', conn: accepted },
    'the server on node 1 is reset too');
  t.same(await peer.until((m) => m.closed === accepted), { closed: accepted, hadError: true });
  t.same(net.getNodeIds().nodes, [0, 2, 3]);

  const refused = net.connect({ node: 1, port });
  const err = await new Promise((r) => refused.once('error', r));
  t.match(err, { code: 'ENODEV', syscall: 'connect', address: 'scif:1', port });

  // Back on line: the server's listener stayed, and answers.
  net.setNodeOnline(1, true);
  const again = net.connect({ node: 1, port });
  await connected(again);
  let got = '';
  again.setEncoding('utf8').on('data', (d) => (got += d));
  again.end('back again');
  await new Promise((r) => again.once('close', r));
  t.equal(got, 'back again');
});
