// Errors as node:net gives them: system errors with code, errno, syscall,
// address and port; bad arguments thrown at once with Node's codes.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');

const { once } = require('./helpers');

t.test('nobody listening: ECONNREFUSED', async (t) => {
  const sock = net.connect('scif:1:2999');
  let errorEvents = 0;
  sock.on('error', () => errorEvents++);
  const err = await once(sock, 'error');
  t.match(err, { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: 'scif:1', port: 2999 });
  t.equal(err.message, 'connect ECONNREFUSED scif:1:2999');
  t.equal(await once(sock, 'close'), true, "'close' says there was an error");
  t.equal(errorEvents, 1);
  t.equal(sock.destroyed, true);
});

t.test('a port in use: EADDRINUSE', async (t) => {
  const a = net.createServer();
  await new Promise((r) => a.listen(3100, r));
  const b = net.createServer();
  b.listen(3100);
  const err = await once(b, 'error');
  t.match(err, { code: 'EADDRINUSE', syscall: 'listen', address: 'scif:0', port: 3100 });
  t.match(err.message, /^listen EADDRINUSE: address already in use scif:0:3100/);
  t.equal(b.listening, false);
  t.equal(b.address(), null);
  await new Promise((r) => a.close(r));
  // Free again once closed.
  await new Promise((r) => b.listen(3100, r));
  await new Promise((r) => b.close(r));
});

t.test('listening twice throws ERR_SERVER_ALREADY_LISTEN', async (t) => {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, r));
  t.throws(() => s.listen(0), { code: 'ERR_SERVER_ALREADY_LISTEN' });
  await new Promise((r) => s.close(r));
  const err = await new Promise((r) => s.close(r));
  t.match(err, { code: 'ERR_SERVER_NOT_RUNNING' });
});

t.test('bad addresses and arguments throw at once', async (t) => {
  t.throws(() => net.connect(70000), { code: 'ERR_SOCKET_BAD_PORT', name: 'RangeError' });
  t.throws(() => net.connect(-1), { code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => net.connect({ node: 1, port: 1.5 }), { code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => net.connect({ node: 1, port: true }), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
  t.throws(() => net.connect({ node: 1 }), { code: 'ERR_MISSING_ARGS' });
  t.throws(() => net.connect(), { code: 'ERR_MISSING_ARGS' });
  t.throws(() => net.connect({ node: 'one', port: 2000 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => net.connect({ node: 64, port: 2000 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => net.connect({ node: {}, port: 2000 }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new net.Socket().connect({ host: 5, port: 2000 }), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => net.createServer().listen(65536), { code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => net.createServer().listen({ port: 'x' }), { code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => net.createServer('nope'), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => new net.Socket().setTimeout(-1), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => new net.Socket().setTimeout('1'), { code: 'ERR_INVALID_ARG_TYPE' });
});

t.test('places that are not SCIF go to node:net, with its errors', async (t) => {
  const dns = new net.Socket().connect(2000, 'no-such-host.invalid');
  t.match(await once(dns, 'error'), { code: 'ENOTFOUND', syscall: 'getaddrinfo' });
  const ipc = new net.Socket().connect('/nonexistent/some.sock');
  t.match(await once(ipc, 'error'), { code: 'ENOENT', syscall: 'connect', address: '/nonexistent/some.sock' });
  const server = net.createServer().listen(2000, 'no-such-host.invalid');
  t.match(await once(server, 'error'), { code: 'ENOTFOUND' });
});

t.test('a host that names another node: listen gives EADDRNOTAVAIL', async (t) => {
  const s = net.createServer();
  s.listen(2000, 'mic1');
  const err = await once(s, 'error');
  t.match(err, { code: 'EADDRNOTAVAIL', syscall: 'listen', address: 'scif:2', port: 2000 });
});

t.test('write after end: ERR_STREAM_WRITE_AFTER_END', async (t) => {
  const server = net.createServer((s) => s.resume());
  await new Promise((r) => server.listen(0, r));
  const sock = net.connect(server.address().port);
  const emitted = once(sock, 'error');
  sock.end('done');
  const err = await new Promise((resolve) => sock.write('more', resolve));
  t.match(err, { code: 'ERR_STREAM_WRITE_AFTER_END' });
  t.equal(await emitted, err, "and the same error as an 'error' event");
  await once(sock, 'close');
  await new Promise((r) => server.close(r));
});

t.test('writing on a destroyed socket fails, reading a destroyed socket ends quietly', async (t) => {
  const server = net.createServer((s) => s.resume());
  await new Promise((r) => server.listen(0, r));
  const sock = net.connect(server.address().port);
  await once(sock, 'connect');
  sock.destroy();
  const err = await new Promise((resolve) => sock.write('x', resolve));
  t.match(err, { code: 'ERR_STREAM_DESTROYED' });
  await new Promise((r) => server.close(r));
});

t.test('a write queued while connecting fails if the connect does', async (t) => {
  const sock = net.connect('scif:0:2998');
  const writeErr = new Promise((resolve) => sock.write('hello', resolve));
  const err = await once(sock, 'error');
  t.equal(err.code, 'ECONNREFUSED');
  t.ok(await writeErr, 'the write callback gets an error');
});
