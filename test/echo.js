// Echo over SCIF inside one process, and the events a node:net user counts on.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');

function listen(server, ...args) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...args, () => resolve(server.address()));
  });
}

t.test('echoes bytes back, with node:net event order', async (t) => {
  const server = net.createServer((s) => s.pipe(s));
  const addr = await listen(server, 0);
  t.match(addr, { address: 'scif:0', family: 'SCIF' });
  t.ok(addr.port >= 1088, 'port 0 gets an ephemeral port');

  const events = [];
  const sock = net.connect(addr.port);
  t.equal(sock.connecting, true);
  t.equal(sock.pending, true);
  t.equal(sock.readyState, 'opening');
  for (const e of ['connect', 'ready', 'end', 'finish', 'close']) sock.on(e, () => events.push(e));
  let got = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => {
    if (!events.includes('data')) events.push('data');
    got += d;
  });
  await new Promise((r) => sock.once('connect', r));
  t.equal(sock.connecting, false);
  t.equal(sock.pending, false);
  t.equal(sock.readyState, 'open');
  t.equal(sock.remoteAddress, 'scif:0');
  t.equal(sock.remotePort, addr.port);
  t.equal(sock.remoteFamily, 'SCIF');
  t.equal(sock.localAddress, 'scif:0');
  t.ok(sock.localPort >= 1088);
  t.same(sock.address(), { address: 'scif:0', family: 'SCIF', port: sock.localPort });

  sock.write('hello, ');
  sock.end('world');
  const hadError = await new Promise((r) => sock.once('close', r));
  t.equal(hadError, false);
  t.equal(got, 'hello, world');
  // 'finish' (our end flushed) may come before or after the echo arrives.
  const order = (a, b) => t.ok(events.indexOf(a) < events.indexOf(b), `${a} before ${b}: ${events}`);
  t.equal(events.length, 6, `each event once: ${events}`);
  order('connect', 'ready');
  order('ready', 'data');
  order('data', 'end');
  order('end', 'close');
  order('finish', 'close');
  t.equal(events[5], 'close', 'close comes last');
  t.equal(sock.bytesRead, 12);
  t.equal(sock.bytesWritten, 12);
  t.equal(sock.readyState, 'closed');
  t.equal(sock.destroyed, true);
  await new Promise((r) => server.close(r));
});

t.test('the accepted socket sees its peer and counts bytes', async (t) => {
  let accepted;
  let acceptedPort;
  const server = net.createServer((s) => {
    accepted = s;
    acceptedPort = s.localPort;
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  const { port } = await listen(server, 0);
  const sock = net.connect({ port, host: 'localhost' });
  await new Promise((r) => sock.once('connect', r));
  const localPort = sock.localPort;
  sock.end(Buffer.alloc(5000, 1));
  sock.resume();
  await new Promise((r) => sock.once('close', r));
  t.equal(accepted.remoteAddress, 'scif:0');
  t.equal(accepted.remotePort, localPort);
  t.equal(accepted.remoteFamily, 'SCIF');
  t.equal(acceptedPort, port, 'an accepted socket shares its listener\'s port');
  t.equal(accepted.bytesRead, 5000);
  t.equal(accepted.bytesWritten, 5000);
  t.equal(accepted.server, server);
  await new Promise((r) => server.close(r));
});

t.test('many small writes arrive in order', async (t) => {
  const server = net.createServer((s) => s.pipe(s));
  const { port } = await listen(server, 0);
  const sock = net.connect(`scif:0:${port}`);
  const parts = [];
  for (let i = 0; i < 20000; i++) parts.push(`${i},`);
  for (const p of parts) sock.write(p);
  sock.end();
  let got = '';
  sock.setEncoding('utf8');
  sock.on('data', (d) => (got += d));
  await new Promise((r) => sock.once('close', r));
  t.equal(got, parts.join(''));
  await new Promise((r) => server.close(r));
});

t.test('address forms all reach the same listener', async (t) => {
  const server = net.createServer((s) => s.end('ok'));
  const { port } = await listen(server, 0);
  const forms = [
    [`scif:0:${port}`], [`scif://0:${port}`], [{ node: 0, port }], [port], [port, 'host'],
    [port, 'scif:0'], [port, 'scif://0'], [port, 'localhost'], [{ host: 'host', port }], [String(port)],
  ];
  for (const args of forms) {
    const sock = net.connect(...args);
    t.type(sock, net.Socket, `connect(${JSON.stringify(args)}) makes a scif-net socket`);
    let got = '';
    sock.setEncoding('utf8').on('data', (d) => (got += d));
    await new Promise((resolve, reject) => sock.once('close', resolve).once('error', reject));
    t.equal(got, 'ok', JSON.stringify(args));
  }
  await new Promise((r) => server.close(r));
});

t.test('non-SCIF hosts go to node:net', async (t) => {
  const tcp = require('node:net');
  const server = tcp.createServer((s) => s.end('tcp'));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.connect(server.address().port, '127.0.0.1');
  t.type(sock, tcp.Socket);
  t.type(sock, net.Socket, 'scif-net sockets are node:net sockets, whatever they carry');
  let got = '';
  let family;
  sock.on('connect', () => (family = sock.remoteFamily));
  sock.setEncoding('utf8').on('data', (d) => (got += d));
  await new Promise((r) => sock.once('close', r));
  t.equal(got, 'tcp');
  t.equal(family, 'IPv4');
  t.equal(net.isSCIF('127.0.0.1'), false);
  t.equal(net.isSCIF('scif:1:2000'), true);
  t.equal(net.isSCIF('mic0'), true);
  t.equal(net.isIP('127.0.0.1'), 4);
  await new Promise((r) => server.close(r));
});
