// connect()'s options and the rarer parts of the API: onread, signal,
// setEncoding, reconnecting a destroyed socket, asyncDispose.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const t = require('tap');
const net = require('..');

const { once } = require('./helpers');

async function serve(t, onConnection) {
  const server = net.createServer((s) => {
    s.on('error', () => {});  // a client that leaves with our bytes unread resets us, as over TCP
    onConnection(s);
  });
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return server.address().port;
}

t.test('onread with a buffer: bytes land in it, no data events', async (t) => {
  const payload = crypto.randomBytes(300000);
  const port = await serve(t, (s) => s.end(payload));
  const buffer = Buffer.alloc(4096);
  const parts = [];
  let dataEvents = 0;
  const sock = net.connect({
    port,
    onread: {
      buffer,
      callback(n, buf) {
        t.equal(buf, buffer, 'our own buffer');
        parts.push(Buffer.from(buf.subarray(0, n)));
      },
    },
  });
  sock.on('data', () => dataEvents++);
  await once(sock, 'end');
  t.equal(dataEvents, 0);
  t.ok(Buffer.concat(parts).equals(payload), 'every byte, in order');
  t.ok(parts.every((p) => p.length <= 4096), 'never more than the buffer holds');
  t.equal(sock.bytesRead, payload.length);
});

t.test('onread with a buffer factory, and a callback returning false pauses', async (t) => {
  const payload = crypto.randomBytes(100000);
  const port = await serve(t, (s) => s.end(payload));
  const parts = [];
  let paused = false;
  const sock = net.connect({
    port,
    onread: {
      buffer: () => Buffer.alloc(1000),
      callback(n, buf) {
        parts.push(Buffer.from(buf.subarray(0, n)));
        if (parts.length === 10) {
          paused = true;
          return false;
        }
        return true;
      },
    },
  });
  await new Promise((resolve) => {
    const check = () => (paused ? resolve() : setImmediate(check));
    check();
  });
  const at = parts.length;
  await new Promise((r) => setImmediate(() => setImmediate(r)));
  t.equal(parts.length, at, 'nothing more while paused');
  t.equal(sock.isPaused(), false, 'reading stops; the stream is not paused (as with node:net)');
  sock.resume();
  await once(sock, 'end');
  t.ok(Buffer.concat(parts).equals(payload), 'all of it after resume()');
});

t.test('an AbortSignal aborts the connection', async (t) => {
  const port = await serve(t, (s) => s.resume());
  const ac = new AbortController();
  const sock = net.connect({ port, signal: ac.signal });
  await once(sock, 'connect');
  ac.abort();
  const err = await once(sock, 'error');
  t.match(err, { name: 'AbortError', code: 'ABORT_ERR' });
  await once(sock, 'close');
  const early = net.connect({ port, signal: AbortSignal.abort() });
  t.match(await once(early, 'error'), { name: 'AbortError' });
});

t.test('setEncoding, noDelay and keepAlive options', async (t) => {
  const port = await serve(t, (s) => s.end('héllo wörld'));
  const sock = net.connect({ port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 1000 });
  sock.setEncoding('utf8');
  const chunks = [];
  sock.on('data', (d) => chunks.push(d));
  await once(sock, 'end');
  t.ok(chunks.every((c) => typeof c === 'string'));
  t.equal(chunks.join(''), 'héllo wörld');
});

t.test('a destroyed socket can connect again', async (t) => {
  const port = await serve(t, (s) => s.end('again'));
  const sock = new net.Socket();
  sock.connect(port);
  await once(sock, 'connect');
  sock.destroy();
  await once(sock, 'close');
  let got = '';
  sock.connect(port);
  sock.setEncoding('utf8').on('data', (d) => (got += d));
  await once(sock, 'end');
  t.equal(got, 'again');
});

t.test('await using: Symbol.asyncDispose closes the server', async (t) => {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, r));
  t.equal(server.listening, true);
  await server[Symbol.asyncDispose]();
  t.equal(server.listening, false);
});
