// The rest of the Socket and Server surface a node:net user relies on.
require('./fixtures/fabric');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const t = require('tap');
const net = require('..');

const { once } = require('./helpers');

async function pair(t, serverOptions = {}) {
  const server = net.createServer(serverOptions);
  await new Promise((r) => server.listen(0, r));
  const accepted = once(server, 'connection');
  const client = net.connect(server.address().port);
  await once(client, 'connect');
  const peer = await accepted;
  t.teardown(() => {
    client.destroy();
    peer.destroy();
    return new Promise((r) => server.close(r));
  });
  return { server, client, peer };
}

t.test('setTimeout emits timeout when idle, does not close, and can be cancelled', async (t) => {
  const { client, peer } = await pair(t);
  const start = Date.now();
  client.setTimeout(50);
  t.equal(client.timeout, 50);
  await once(client, 'timeout');
  t.ok(Date.now() - start >= 45, 'not before the time');
  t.equal(client.destroyed, false, 'a timeout does not close the socket');
  // Traffic postpones it; 0 cancels it.
  let fired = 0;
  client.setTimeout(0);
  t.equal(client.timeout, 0, 'as node:net reports a cancelled timeout');
  client.on('timeout', () => fired++);
  peer.write('x');
  await once(client, 'data');
  await new Promise((r) => setTimeout(r, 80));
  t.equal(fired, 0, 'cancelled');
});

t.test('connect with a timeout option', async (t) => {
  const server = net.createServer((s) => s.resume());
  await new Promise((r) => server.listen(0, r));
  const sock = net.connect({ port: server.address().port, timeout: 30 });
  await once(sock, 'timeout');
  t.equal(sock.timeout, 30);
  sock.destroy();
  await new Promise((r) => server.close(r));
});

t.test('destroy() and destroy(err)', async (t) => {
  const { client, peer } = await pair(t);
  const events = [];
  client.on('close', (hadError) => events.push(['close', hadError]));
  const peerEnded = once(peer, 'end');
  client.destroy();
  t.equal(client.destroyed, true);
  await once(client, 'close');
  t.same(events, [['close', false]]);
  await peerEnded;  // the peer sees an orderly end
  const { client: c2 } = await pair(t);
  const err = new Error('boom');
  c2.destroy(err);
  t.equal(await once(c2, 'error'), err);
  t.equal(await once(c2, 'close'), true);
});

t.test('resetAndDestroy: the peer reads ECONNRESET', async (t) => {
  const { client, peer } = await pair(t);
  client.resetAndDestroy();
  const err = await once(peer, 'error');
  t.match(err, { code: 'ECONNRESET', syscall: 'read' });
});

t.test('destroySoon ends, then destroys once flushed', async (t) => {
  const { client, peer } = await pair(t);
  let got = 0;
  peer.on('data', (d) => (got += d.length));
  const ended = once(peer, 'end');
  client.write(Buffer.alloc(300000));
  client.destroySoon();
  await once(client, 'close');
  await ended;
  t.equal(got, 300000);
});

t.test('maxConnections drops the ones over the limit', async (t) => {
  const server = net.createServer((s) => s.resume());
  server.maxConnections = 1;
  await new Promise((r) => server.listen(0, r));
  const first = net.connect(server.address().port);
  await once(server, 'connection');
  const dropped = once(server, 'drop');
  const second = net.connect(server.address().port);
  second.resume();
  const info = await dropped;
  t.match(info, { localAddress: 'scif:0', localPort: server.address().port, remoteAddress: 'scif:0', remoteFamily: 'SCIF' });
  await once(second, 'close');
  t.equal(server._connections, 1);
  first.destroy();
  await new Promise((r) => server.close(r));
});

t.test('a closed server refuses new connections', async (t) => {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  const sock = net.connect(port);
  t.match(await once(sock, 'error'), { code: 'ECONNREFUSED' });
});

t.test('pauseOnConnect hands over a paused socket', async (t) => {
  const { client, peer } = await pair(t, { pauseOnConnect: true });
  t.equal(peer.isPaused(), true);
  client.write('hi');
  let got = '';
  peer.setEncoding('utf8').on('data', (d) => (got += d));
  await new Promise((r) => setImmediate(r));
  t.equal(got, '', 'nothing flows until resume()');
  peer.resume();
  await once(peer, 'data');
  t.equal(got, 'hi');
});

t.test('listen forms and the listening event', async (t) => {
  for (const args of [[0], [{ port: 0 }], [0, 'localhost'], [0, 'scif:0', 10], ['scif:0:3456']]) {
    const server = net.createServer();
    const listening = once(server, 'listening');
    server.listen(...args);
    await listening;
    t.equal(server.listening, true, JSON.stringify(args));
    t.match(server.address(), { address: 'scif:0', family: 'SCIF' });
    await new Promise((r) => server.close(r));
  }
  const signalled = net.createServer();
  const ac = new AbortController();
  signalled.listen({ port: 0, signal: ac.signal });
  await once(signalled, 'listening');
  ac.abort();
  await once(signalled, 'close');
  t.equal(signalled.listening, false, 'an aborted signal closes the server');
});

t.test('setNoDelay and setKeepAlive are accepted', async (t) => {
  const { client } = await pair(t);
  t.equal(client.setNoDelay(true), client);
  t.equal(client.setKeepAlive(true, 1000), client);
  t.equal(client.ref(), client);
  t.equal(client.unref(), client);
});

t.test('unref lets the process exit; ref keeps it alive', async (t) => {
  const index = JSON.stringify(path.join(__dirname, '..'));
  const script = (ref) => `
    const net = require(${index});
    const server = net.createServer((s) => s.unref()).listen(0, () => {
      const c = net.connect(server.address().port);
      c.on('connect', () => { c.unref(); server.unref(); ${ref ? 'c.ref();' : ''} console.log('up'); });
    });`;
  const free = spawnSync(process.execPath, ['-e', script(false)], { timeout: 20000, encoding: 'utf8' });
  t.equal(free.status, 0, 'exits by itself with everything unref()ed');
  t.equal(free.stdout.trim(), 'up');
  const held = spawnSync(process.execPath, ['-e', script(true)], { timeout: 1500, encoding: 'utf8' });
  t.equal(held.signal, 'SIGTERM', 'a ref()ed socket keeps it running');
});
