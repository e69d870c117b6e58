// A hostile peer (kernel/test/hostile_peer.c: a C process of the fabric that
// writes into the shared queue pair what no peer of ours would - ring offsets
// out of range, wrapping, moving back or racing, token counts, locks held for
// good or scribbled on, windows on short or unsealed memfds, an unsealed ring
// in the handshake) against Node sockets and scif endpoints, as their server
// and as their client. Each case must end with EPROTO on that connection
// alone (or, for garbage in the lock words, work or end cleanly), ECONNRESET
// at the hostile side, and a process that still serves others.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const t = require('tap');
const net = require('..');
const scif = require('scif-net/scif');
const { once } = require('./helpers');

const kernel = path.join(__dirname, '..', 'kernel');
const program = path.join(kernel, 'out', 'hostile_peer');
const WINDOW_OFF = 0x100000n;
const BIG = 4 << 20;

t.before(() => {
  const made = spawnSync('make', ['-s', '-C', kernel, 'out/hostile_peer'], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`building hostile_peer: ${made.stderr}`);
});

function cases() {
  const r = spawnSync(program, ['cases'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`hostile_peer cases: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => {
    const [name, meet] = l.split(' ');
    return { name, meet };
  });
}

// The hostile program on node 1: its stdout lines, one at a time, and its exit.
function hostile(t, args) {
  const child = spawn(program, args, {
    env: { ...process.env, SCIF_NET_NODE: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = [];
  const waiting = [];
  let buf = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (waiting.length) waiting.shift()(line);
      else lines.push(line);
    }
  });
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exit;
  });
  return {
    next: () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r))),
    // Once connected it waits for this: the victim holds the connection.
    go: () => child.stdin.write('go\n'),
    exit,
  };
}

// Watches the victim socket from the start: it may meet the corruption (and
// fail) as soon as the hostile side acts, before the test looks.
function watch(sock) {
  sock.failed = once(sock, 'error');
  sock.on('data', () => {});
  return sock;
}

// The victim socket meets the corruption: its 'error' is EPROTO.
async function meetSocket(sock, meet) {
  if (meet === 'send') sock.write(Buffer.alloc(BIG, 7));
  return sock.failed;
}

// A server that echoes, for the connections after the hostile one.
function echoServer() {
  const server = net.createServer();
  const accepted = [];
  server.on('connection', (sock) => {
    if (accepted.length === 0) {
      accepted.push(sock);
      server.emit('hostile', watch(sock));
      return;
    }
    sock.pipe(sock);
  });
  return server;
}

// An echo server on node 0 and a hostile client (case name) connected to
// it, once the client has acted: the server, its port, the client and the
// server's side of the connection.
async function hostileClient(t, name) {
  const server = echoServer();
  await new Promise((r) => server.listen(0, r));
  const port = server.address().port;
  const victim = once(server, 'hostile');
  const h = hostile(t, ['client', '0', String(port), name]);
  const sock = await victim;
  t.equal(await h.next(), 'connected');
  h.go();
  t.equal(await h.next(), 'acted');
  return { server, port, h, sock };
}

async function stillServes(t, port) {
  const c = net.connect({ node: 0, port });
  const back = [];
  c.on('data', (d) => back.push(d));
  c.end('still here');
  await once(c, 'close');
  t.equal(Buffer.concat(back).toString(), 'still here', 'the server still serves a healthy peer');
}

for (const { name, meet } of cases().filter((c) => c.meet === 'send' || c.meet === 'recv')) {
  t.test(`${name}: a hostile client against a Node server`, async (t) => {
    const { server, port, h, sock } = await hostileClient(t, name);
    const err = await meetSocket(sock, meet);
    t.match(err, { code: 'EPROTO' }, 'that connection fails with EPROTO');
    const exit = await h.exit;
    t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `the hostile side saw ECONNRESET ${exit.stderr}`);
    await stillServes(t, port);
    await new Promise((r) => server.close(r));
  });

  t.test(`${name}: a hostile server against a Node client`, async (t) => {
    const h = hostile(t, ['server', name]);
    const port = Number((await h.next()).split(' ')[1]);
    const sock = watch(net.connect({ node: 1, port }));
    await once(sock, 'connect');
    t.equal(await h.next(), 'connected');
    h.go();
    t.equal(await h.next(), 'acted');
    const err = await meetSocket(sock, meet);
    t.match(err, { code: 'EPROTO' }, 'the client fails with EPROTO');
    const exit = await h.exit;
    t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `the hostile side saw ECONNRESET ${exit.stderr}`);
  });
}

// The hostile side scribbles on the queue pair's lock words and echoes:
// 200-byte round trips (data frames, below the RMA threshold, which the echo
// hands back as they went) for 1.5 s. Each ends with the bytes back, or the
// socket fails cleanly (EPROTO, ECONNRESET); or nothing comes back for 5 s -
// a settle that met the garbage may count a token wrong, and the socket then
// waits as for a peer that stopped sending (the hostile side breaks its end
// on such a count when it next looks, so this is rare).
async function exchange(sock) {
  let got = Buffer.alloc(0);
  let error = null;
  let closed = false;
  let wake = () => {};
  sock.on('data', (d) => { got = Buffer.concat([got, d]); wake(); });
  sock.on('error', (e) => { error = e; wake(); });
  sock.on('close', () => { closed = true; wake(); });
  const t0 = Date.now();
  let rounds = 0;
  while (Date.now() - t0 < 1500) {
    const out = crypto.randomBytes(200);
    sock.write(out);
    const deadline = Date.now() + 5000;
    while (got.length < out.length && !error && !closed && Date.now() < deadline) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 100);
        wake = () => { clearTimeout(timer); resolve(); };
      });
    }
    if (error || closed) break;
    if (got.length < out.length) return { outcome: 'stalled', rounds };
    if (!got.subarray(0, out.length).equals(out)) return { outcome: 'corrupt', rounds };
    got = got.subarray(out.length);
    rounds++;
  }
  return { outcome: error ? error.code : closed ? 'closed' : 'worked', rounds };
}

for (const { name } of cases().filter((c) => c.meet === 'echo')) {
  const clean = ['worked', 'EPROTO', 'ECONNRESET', 'closed', 'stalled'];

  t.test(`${name}: a hostile client against a Node server`, async (t) => {
    const { server, port, h, sock } = await hostileClient(t, name);
    const { outcome, rounds } = await exchange(sock);
    t.ok(clean.includes(outcome), `the exchange worked or ended cleanly: ${outcome} after ${rounds} round trips`);
    sock.destroy();
    const exit = await h.exit;
    t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `the hostile side saw the end ${exit.stderr}`);
    await stillServes(t, port);
    await new Promise((r) => server.close(r));
  });

  t.test(`${name}: a hostile server against a Node client`, async (t) => {
    const h = hostile(t, ['server', name]);
    const port = Number((await h.next()).split(' ')[1]);
    const sock = net.connect({ node: 1, port });
    sock.on('error', () => {});
    await once(sock, 'connect');
    t.equal(await h.next(), 'connected');
    h.go();
    t.equal(await h.next(), 'acted');
    const { outcome, rounds } = await exchange(sock);
    t.ok(clean.includes(outcome), `the exchange worked or ended cleanly: ${outcome} after ${rounds} round trips`);
    sock.destroy();
    const exit = await h.exit;
    t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, `the hostile side saw the end ${exit.stderr}`);
  });
}

// RMA into a window the hostile side announced on a bad memfd: refused, and
// the connection reset; no SIGBUS in the copy. A lock the peer holds for
// good (chan-lock) makes the first RMA wait its bound (5 s) on the
// threadpool; meanwhile() shows the process serving others all along.
async function meetRma(t, ep, meanwhile) {
  const buf = Buffer.alloc(2 * scif.pageSize, 1);
  const first = t.rejects(ep.vwriteTo(buf, WINDOW_OFF, scif.RMA_SYNC), 'an RMA into the refused window fails');
  if (meanwhile) await meanwhile();
  await first;
  await t.rejects(ep.vwriteTo(buf, WINDOW_OFF, scif.RMA_SYNC), { code: 'EPROTO' }, 'then the connection says EPROTO');
}

// Another connection to listener l moves bytes.
async function served(t, l) {
  const [c, s] = await Promise.all([scif.connect({ node: 0, port: l.localPort }), l.accept()]);
  await c.send(Buffer.from('fine'));
  t.equal((await s.recv(4)).toString(), 'fine', 'another connection is served');
  await Promise.all([c.close(), s.close()]);
}

for (const { name } of cases().filter((c) => c.meet === 'rma')) {
  t.test(`${name}: a hostile client against a scif listener`, async (t) => {
    const l = scif.listen(0);
    const h = hostile(t, ['client', '0', String(l.localPort), name]);
    const ep = await l.accept();
    t.equal(await h.next(), 'connected');
    h.go();
    t.equal(await h.next(), 'acted');
    await meetRma(t, ep, () => served(t, l));
    t.same((await h.exit).code, 0, 'the hostile side saw ECONNRESET');
    await ep.close();
    // Served still, after.
    await served(t, l);
    await l.close();
  });

  t.test(`${name}: a hostile acceptor against a scif client`, async (t) => {
    const h = hostile(t, ['server', name]);
    const port = Number((await h.next()).split(' ')[1]);
    const ep = await scif.connect({ node: 1, port });
    t.equal(await h.next(), 'connected');
    h.go();
    t.equal(await h.next(), 'acted');
    await meetRma(t, ep);
    t.same((await h.exit).code, 0, 'the hostile side saw ECONNRESET');
    await ep.close();
  });
}

t.test('an acceptor answering with an unsealed ring: the connect fails with EPROTO', async (t) => {
  const h = hostile(t, ['unsealed']);
  const port = Number((await h.next()).split(' ')[1]);
  const sock = net.connect({ node: 1, port });
  t.match(await once(sock, 'error'), { code: 'EPROTO' });
  t.same((await h.exit).code, 0);
  const h2 = hostile(t, ['unsealed']);
  const port2 = Number((await h2.next()).split(' ')[1]);
  await t.rejects(scif.connect({ node: 1, port: port2 }), { code: 'EPROTO' });
  t.same((await h2.exit).code, 0);
});
