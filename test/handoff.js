// Handing connections to another process over Node's IPC: a scif-net socket
// connected over SCIF, or a server listening over SCIF, cannot go (its
// endpoint is not a handle Node's IPC carries), so child.send() and
// process.send() fail at once with ERR_INVALID_HANDLE_TYPE and a message
// saying why and what to do - never the silent drop of the handle that
// node:child_process made of it. The socket stays usable; TCP sockets still
// go as before.
require('./fixtures/fabric');
const tcp = require('node:net');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

const ROLES = require.resolve('./fixtures/handoff-roles');
const { once } = require('node:events');

async function echoPair(t) {
  const accepted = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    s.pipe(s);
  });
  await new Promise((resolve) => server.listen(0, resolve));
  const client = net.connect(server.address().port);
  await once(client, 'connect');
  while (accepted.length === 0) await once(server, 'connection');
  t.teardown(() => {
    client.destroy();
    accepted.forEach((s) => s.destroy());
    server.close();
  });
  return { server, client, accepted: accepted[0] };
}

t.test('child.send() with a SCIF socket or server throws, and nothing is sent', async (t) => {
  const peer = startPeer(t, 1, 'receiver', {}, { roles: ROLES });
  await peer.until((m) => m.ready);
  const { server, client, accepted } = await echoPair(t);

  const socketError = {
    name: 'TypeError',
    code: 'ERR_INVALID_HANDLE_TYPE',
    message: /^This handle type cannot be sent\. A scif-net socket connected over SCIF cannot be sent to another process: .*Keep the connection in this process/,
  };
  t.throws(() => peer.child.send('socket', client), socketError, 'the connecting end');
  t.throws(() => peer.child.send('socket', accepted, { keepOpen: true }), socketError, "the server's end, with options");
  t.throws(() => peer.child.send('socket', accepted, () => t.fail('no callback: it throws')), socketError, 'with a callback');
  t.throws(() => peer.child.send('server', server), {
    code: 'ERR_INVALID_HANDLE_TYPE', message: /A scif-net server listening over SCIF cannot be sent to another process: .*listen itself/,
  }, 'the server');

  peer.send('after');
  t.same(await peer.next(), { got: 'after', handle: null }, 'the child got none of the failed sends');

  client.write('still works');
  const [echo] = await once(client, 'data');
  t.equal(echo.toString(), 'still works', 'the connection is still ours and works');
  t.equal(server.listening, true, 'so is the server');
});

t.test('process.send() in a child with a SCIF socket throws too', async (t) => {
  const peer = startPeer(t, 1, 'receiver', {}, { roles: ROLES });
  await peer.until((m) => m.ready);
  const lines = [];
  const server = net.createServer((s) => s.on('data', (d) => lines.push(d.toString())));
  await new Promise((resolve) => server.listen(0, resolve));
  t.teardown(() => server.close());
  const closed = new Promise((resolve) => server.once('connection', (s) => s.once('close', resolve)));
  peer.send({ connectAndSendBack: server.address().port });
  const report = await peer.until((m) => m.sendBackError || m.sentBack);
  t.match(report.sendBackError, { code: 'ERR_INVALID_HANDLE_TYPE', name: 'TypeError', message: /scif-net socket connected over SCIF cannot be sent/ });
  await closed;
  t.same(lines.join(''), 'still mine\n', 'the child kept its connection and used it');
});

t.test('TCP sockets still go to the child', async (t) => {
  const peer = startPeer(t, 1, 'receiver', {}, { roles: ROLES });
  await peer.until((m) => m.ready);
  const server = tcp.createServer({ pauseOnConnect: true });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = tcp.connect(server.address().port, '127.0.0.1');
  const [accepted] = await once(server, 'connection');
  peer.child.send('tcp-socket', accepted);
  t.same(await peer.next(), { got: 'tcp-socket', handle: 'Socket' });
  let text = '';
  client.on('data', (d) => { text += d; });
  await once(client, 'end');
  t.equal(text, 'from the child\n');
});
