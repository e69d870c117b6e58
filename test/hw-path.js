// The rules a SCIF driver imposes on the addon (issue "The fabric behaves like
// the real SCIF driver"): they hold on every backend, and .ci/run runs this
// file again through MPSS-strict libscif (no fabric extension: the hardware
// branches of the addon).
require('./fixtures/fabric');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn } = require('node:child_process');
const t = require('tap');
const net = require('..');
const scif = require('scif-net/scif');
const { startPeer } = require('./fixtures/peer');
const { once } = require('./helpers');

t.test('a first write larger than the queue, right after connect, arrives whole', async (t) => {
  const peer = startPeer(t, 1, 'sink');
  const { port } = await peer.until((m) => m.ready);
  const data = crypto.randomBytes(1 << 20);
  const sock = net.connect({ node: 1, port });
  sock.on('connect', () => sock.end(data));
  let answer = '';
  sock.on('data', (d) => { answer += d; });
  await once(sock, 'close');
  const got = JSON.parse(answer);
  t.equal(got.bytes, data.length);
  t.equal(got.sha256, crypto.createHash('sha256').update(data).digest('hex'));
});

t.test('a paused socket holding unread data leaves the loop asleep', async (t) => {
  // Our destroy() with data unread resets the server's end: it hears ECONNRESET.
  const server = net.createServer((s) => s.on('error', () => {}).write(Buffer.alloc(256 * 1024, 1)));
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => server.close());
  const sock = net.connect(server.address().port);
  t.teardown(() => sock.destroy());
  sock.pause();
  await once(sock, 'connect');
  // Some of it read, the rest left waiting in the queue.
  sock.resume();
  await once(sock, 'data');
  sock.pause();
  const before = process.cpuUsage();
  const wall = 1500;
  await new Promise((r) => setTimeout(r, wall));  // the window we measure, not a synchronization
  const used = process.cpuUsage(before);
  const ms = (used.user + used.system) / 1000;
  t.ok(ms < wall * 0.2, `CPU over ${wall} ms paused: ${ms.toFixed(0)} ms`);
});

// Runs `script` in a node on node 0 whose accept, close and register take
// 300 ms each (SCIF_NET_SLOW_CALLS), while a 10 ms interval counts `ticks`.
// A call made on the loop's thread stops the count while it lasts (a tick
// or so around it); one on the threadpool lets some thirty through. Counts,
// not the longest gap: on a loaded machine the gaps are long either way.
function slowDriver(t, script) {
  const child = spawn(process.execPath, ['-e', `
    const net = require(${JSON.stringify(path.join(__dirname, '..'))});
    const scif = require('scif-net/scif');
    let ticks = 0;
    const tick = setInterval(() => { ticks++; }, 10);
    (async () => { ${script} })().then(
      (r) => { clearInterval(tick); process.send(r); },
      (e) => { clearInterval(tick); process.send({ error: String(e.stack) }); });
  `], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, SCIF_NET_SLOW_CALLS: 'accept=300,close=300,register=300' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  return once(child, 'message');
}

t.test('a slow accept and a slow close do not stop timers', async (t) => {
  const r = await slowDriver(t, `
    const server = net.createServer();
    await new Promise((r) => server.listen(0, r));
    const accepted = new Promise((r) => server.once('connection', r));
    const before = ticks;
    const sock = net.connect(server.address().port);
    const s = await accepted;
    const acceptTicks = ticks - before;
    const closed = new Promise((r) => s.once('close', r));
    const t0 = process.hrtime.bigint();
    s.destroy();
    const destroyMs = Number(process.hrtime.bigint() - t0) / 1e6;
    await closed;
    sock.destroy();
    await new Promise((r) => server.close(r));
    return { acceptTicks, destroyMs };
  `);
  t.notOk(r.error, r.error);
  t.ok(r.acceptTicks >= 5, `ticks while the accept took 300 ms: ${r.acceptTicks}`);
  t.ok(r.destroyMs < 150, `destroy() returned in ${r.destroyMs?.toFixed(1)} ms (the close takes 300 ms)`);
});

t.test('a slow register does not stop timers', async (t) => {
  const r = await slowDriver(t, `
    const listener = scif.listen(0);
    const accepting = listener.accept();
    const ep = await scif.connect({ node: 0, port: listener.localPort });
    const conn = await accepting;
    const before = ticks;
    const win = await conn.register(scif.alloc(scif.pageSize));
    const registerTicks = ticks - before;
    await conn.close(); await ep.close(); await listener.close();
    return { ok: win.length === scif.pageSize, registerTicks };
  `);
  t.notOk(r.error, r.error);
  t.ok(r.ok, 'the window was registered');
  t.ok(r.registerTicks >= 5, `ticks while the register took 300 ms: ${r.registerTicks}`);
});

t.test('accepted descriptors are not inherited by child processes', async (t) => {
  const fds = () => new Set(fs.readdirSync('/proc/self/fd'));
  const server = net.createServer();
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => server.close());
  const before = fds();
  const accepted = once(server, 'connection');
  const sock = net.connect(server.address().port);
  t.teardown(() => sock.destroy());
  const s = await accepted;
  s.on('error', () => {});
  t.teardown(() => s.destroy());
  const ours = [...fds()].filter((fd) => !before.has(fd));
  t.ok(ours.length >= 1, `new descriptors: ${ours.join(', ')}`);
  const inherited = execFileSync('ls', ['/proc/self/fd'], { encoding: 'utf8' }).split(/\s+/);
  t.same(ours.filter((fd) => inherited.includes(fd) && Number(fd) > 2), [], 'none open in the child');
});

t.test('a SCIF device without its library is an error naming both, not a quiet fall back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-dev-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const device = path.join(dir, 'scif');
  fs.writeFileSync(device, '');
  const out = execFileSync(process.execPath, ['-e', `
    const net = require(${JSON.stringify(path.join(__dirname, '..'))});
    let backend; try { net.backend(); } catch (e) { backend = { code: e.code, message: e.message }; }
    const s = net.connect({ node: 0, port: 2000 });
    s.on('error', (e) => console.log(JSON.stringify({ backend, connect: e.code })));
  `], {
    env: { ...process.env, SCIF_NET_BACKEND: 'auto', SCIF_NET_DEVICES: device, SCIF_NET_LIBSCIF: path.join(dir, 'no-libscif.so.0') },
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  t.equal(r.backend.code, 'ENXIO');
  t.match(r.backend.message, device, 'names the device');
  t.match(r.backend.message, 'no-libscif.so.0', 'and the library');
  t.equal(r.connect, 'ENXIO', 'sockets fail with it too');
});

t.test('listen on a port in use is EADDRINUSE, whatever errno the driver gives', async (t) => {
  const a = net.createServer();
  await new Promise((r) => a.listen(0, r));
  t.teardown(() => a.close());
  const b = net.createServer();
  b.listen(a.address().port);
  const err = await once(b, 'error');
  t.equal(err.code, 'EADDRINUSE');
  t.equal(err.syscall, 'listen');
});

t.test('scif.Endpoint: a send of more than the queue takes, and fence marks of both kinds', async (t) => {
  const listener = scif.listen(0);
  t.teardown(() => listener.close());
  const accepting = listener.accept();
  const ep = await scif.connect({ node: 0, port: listener.localPort });
  t.teardown(() => ep.close());
  const conn = await accepting;
  t.teardown(() => conn.close());
  const data = crypto.randomBytes(100 * 1024);
  const [sent, got] = await Promise.all([ep.send(data), conn.recv(data.length)]);
  t.equal(sent, data.length);
  t.ok(got.equals(data), 'every byte, in order');
  for (const flags of [scif.FENCE_INIT_SELF, scif.FENCE_INIT_PEER]) {
    const mark = await ep.fenceMark(flags);
    t.type(mark, 'number', `a mark (${mark})`);
    await ep.fenceWait(mark);
  }
});
