// Half-close: one side ends, the other still writes, in both directions; and
// without allowHalfOpen the socket ends its side by itself.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');

function collect(sock) {
  let data = '';
  sock.setEncoding('utf8').on('data', (d) => (data += d));
  return () => data;
}

t.test('client ends first, server answers after seeing the end', async (t) => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const got = collect(s);
    s.on('end', () => {
      t.equal(s.writable, true, 'the server can still write after the client ended');
      s.end(`you said: ${got()}`);
    });
  });
  await new Promise((r) => server.listen(0, r));
  const sock = net.connect({ port: server.address().port, allowHalfOpen: true });
  const got = collect(sock);
  sock.end('question');
  await new Promise((r) => sock.once('finish', r));
  t.equal(sock.readable, true, 'the client still reads after ending');
  t.equal(sock.readyState, 'readOnly');
  await new Promise((r) => sock.once('close', r));
  t.equal(got(), 'you said: question');
  await new Promise((r) => server.close(r));
});

t.test('server ends first, client keeps writing', async (t) => {
  let serverGot;
  const done = new Promise((resolve) => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      serverGot = collect(s);
      s.end('bye');
      t.equal(s.readyState, 'readOnly');
      s.on('end', () => resolve(server));
    });
    server.listen(0, () => {
      const sock = net.connect({ port: server.address().port, allowHalfOpen: true });
      const got = collect(sock);
      sock.on('end', () => {
        t.equal(got(), 'bye');
        t.equal(sock.readyState, 'writeOnly');
        sock.write('still ');
        sock.end('here');
      });
    });
  });
  const server = await done;
  t.equal(serverGot(), 'still here');
  await new Promise((r) => server.close(r));
});

t.test('without allowHalfOpen the peer\'s end ends our side too', async (t) => {
  const server = net.createServer((s) => s.resume());
  await new Promise((r) => server.listen(0, r));
  const accepted = new Promise((r) => server.once('connection', r));
  const sock = net.connect(server.address().port);
  sock.resume();
  await new Promise((r) => sock.once('connect', r));
  const events = [];
  sock.on('end', () => events.push('end'));
  sock.on('finish', () => events.push('finish'));
  // The server's accept may land after our connect (on the hw path it runs
  // on the threadpool): wait for it, not for a turn of the loop.
  const serverSock = await accepted;
  serverSock.end();
  await new Promise((r) => sock.once('close', r));
  t.same(events, ['end', 'finish'], 'end, then our own finish without calling end()');
  t.equal(sock.destroyed, true);
  await new Promise((r) => server.close(r));
});

t.test('writing after the peer ended without allowHalfOpen is EPIPE', async (t) => {
  const server = net.createServer((s) => s.end());
  await new Promise((r) => server.listen(0, r));
  const sock = net.connect(server.address().port);
  sock.resume();
  await new Promise((r) => sock.once('end', r));
  await new Promise((r) => setImmediate(r));
  const err = await new Promise((resolve) => {
    sock.on('error', resolve);
    sock.write('late', (e) => e && resolve(e));
  });
  t.ok(['EPIPE', 'ERR_STREAM_WRITE_AFTER_END'].includes(err.code), `late write fails (${err.code})`);
  await new Promise((r) => server.close(r));
});
