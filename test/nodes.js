// Nodes: processes on different nodes find each other by node number, and
// the fabric reports which nodes are online.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

t.test('a client on node 0 talks to echo servers on nodes 1 and 3', async (t) => {
  const one = startPeer(t, 1, 'echo', { port: 4000 });
  const three = startPeer(t, 3, 'echo', { port: 4000 });  // the same port on another node
  await one.next();
  await three.next();
  for (const [host, node] of [['mic0', 1], ['scif:3', 3]]) {
    const sock = net.connect(4000, host);
    let got = '';
    sock.setEncoding('utf8').on('data', (d) => (got += d));
    await new Promise((r) => sock.once('connect', r));
    t.equal(sock.remoteAddress, `scif:${node}`);
    sock.end(`to node ${node}`);
    await new Promise((r) => sock.once('close', r));
    t.equal(got, `to node ${node}`);
  }
});

t.test('getNodeIds lists the online nodes', async (t) => {
  t.same(net.getNodeIds(), { self: 0, nodes: [0, 1, 2, 3] });
  net.setNodeOnline(2, false);
  t.same(net.getNodeIds().nodes, [0, 1, 3]);
  const sock = net.connect({ node: 2, port: 4000 });
  const err = await new Promise((r) => sock.once('error', r));
  t.match(err, { code: 'ENODEV', syscall: 'connect', address: 'scif:2', port: 4000 });
  net.setNodeOnline(2, true);
  t.same(net.getNodeIds().nodes, [0, 1, 2, 3]);
});

t.test('a node that does not exist', async (t) => {
  const sock = net.connect({ node: 9, port: 4000 });
  const err = await new Promise((r) => sock.once('error', r));
  t.match(err, { code: 'ENODEV', errno: -19, syscall: 'connect', address: 'scif:9', port: 4000 });
  t.match(err.message, /^connect ENODEV scif:9:4000/);
});
