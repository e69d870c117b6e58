// scif-net bridge: curl and node:http over TCP reach a node:http server on
// SCIF; a SCIF client reaches a TCP server; Unix sockets too; many
// connections at once, half-close and resets passed through each way.
require('./fixtures/fabric');
const t = require('tap');
const { execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const tcp = require('node:net');
const net = require('..');
const scifHttp = require('../dist/http');
const { start } = require('./fixtures/cli');
const { once } = require('./helpers');

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// Answers every request with its method, path and the body's hash.
function hashingHandler(req, res) {
  const hash = crypto.createHash('sha256');
  req.on('data', (d) => hash.update(d));
  req.on('end', () => res.end(`${req.method} ${req.url} ${hash.digest('hex')} ${req.socket.remoteAddress}`));
}

function curl(args) {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '--fail', ...args], { encoding: 'buffer', maxBuffer: 1 << 26 }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { stderr: String(stderr) })) : resolve(stdout.toString()),
    ),
  );
}

// A TCP port from the bridge's "listening on tcp:HOST:PORT" line.
const portOf = (place) => Number(/:(\d+)$/.exec(place)[1]);

t.test('curl and node:http over TCP reach a node:http server on SCIF', async (t) => {
  const server = scifHttp.createServer(hashingHandler);
  server.listen(4400);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const bridge = start(t, ['bridge', 'tcp:127.0.0.1:0', 'scif:0:4400']);
  const port = portOf(await bridge.listening);

  // curl: several requests on one kept-alive connection, and a POST body.
  const body = crypto.randomBytes(1 << 20);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-bridge-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'body'), body);
  const got = await curl([`http://127.0.0.1:${port}/a`, `http://127.0.0.1:${port}/b`]);
  const empty = sha(Buffer.alloc(0));
  t.equal(got, `GET /a ${empty} scif:0GET /b ${empty} scif:0`, 'the server sees a SCIF peer');
  const posted = await curl(['--data-binary', `@${path.join(dir, 'body')}`, `http://127.0.0.1:${port}/up`]);
  t.equal(posted, `POST /up ${sha(body)} scif:0`);

  // node:http: 24 requests at once, each on its own connection.
  const agent = new http.Agent({ keepAlive: false, maxSockets: 24 });
  const answers = await Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      new Promise((resolve, reject) => {
        const payload = crypto.randomBytes(1000 * (i + 1));
        const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: `/n${i}`, agent }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve([text, `PUT /n${i} ${sha(payload)} scif:0`]));
        });
        req.on('error', reject);
        req.end(payload);
      }),
    ),
  );
  for (const [text, expected] of answers) t.equal(text, expected);
});

t.test('a SCIF client reaches a TCP server, half-close passed through', async (t) => {
  // Answers with the hash of everything once the client has ended: only a
  // relayed half-close lets the answer come back.
  const server = tcp.createServer({ allowHalfOpen: true }, (s) => {
    const hash = crypto.createHash('sha256');
    s.on('data', (d) => hash.update(d));
    s.on('end', () => s.end(hash.digest('hex')));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const bridge = start(t, ['bridge', '--node', '1', 'scif:4401', `tcp:127.0.0.1:${server.address().port}`]);
  t.equal(await bridge.listening, 'scif:1:4401');
  const runs = Array.from({ length: 8 }, async (_, i) => {
    const data = crypto.randomBytes(200000 + i);
    const sock = net.connect({ node: 1, port: 4401, allowHalfOpen: true });
    let text = '';
    sock.setEncoding('utf8').on('data', (d) => (text += d));
    sock.end(data);
    await once(sock, 'end');
    return [text, sha(data)];
  });
  for (const [text, expected] of await Promise.all(runs)) t.equal(text, expected);
});

t.test('resets pass through both ways', async (t) => {
  // A SCIF server that resets its connections once it reads anything.
  const scifServer = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  scifServer.listen(4402);
  await once(scifServer, 'listening');
  t.teardown(() => scifServer.close());
  const toScif = start(t, ['bridge', 'tcp:127.0.0.1:0', 'scif:0:4402']);
  const tcpClient = tcp.connect(portOf(await toScif.listening), '127.0.0.1');
  await once(tcpClient, 'connect');
  tcpClient.write('go');
  const tcpErr = await once(tcpClient, 'error');
  t.equal(tcpErr.code, 'ECONNRESET', 'the TCP client is reset');

  // A TCP server that resets; a SCIF client through the bridge.
  const tcpServer = tcp.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  tcpServer.listen(0, '127.0.0.1');
  await once(tcpServer, 'listening');
  t.teardown(() => tcpServer.close());
  const toTcp = start(t, ['bridge', 'scif:4403', `tcp:127.0.0.1:${tcpServer.address().port}`]);
  await toTcp.listening;
  const scifClient = net.connect('scif:0:4403');
  await once(scifClient, 'connect');
  scifClient.write('go');
  const scifErr = await once(scifClient, 'error');
  t.equal(scifErr.code, 'ECONNRESET', 'the SCIF client is reset');
});

t.test('a target that refuses resets the client and says why', async (t) => {
  const bridge = start(t, ['bridge', 'tcp:127.0.0.1:0', 'scif:3:4999']);
  const client = tcp.connect(portOf(await bridge.listening), '127.0.0.1');
  const err = await once(client, 'error');
  t.equal(err.code, 'ECONNRESET');
  while (!/ECONNREFUSED/.test(bridge.stderr())) await once(bridge.child.stderr, 'data');
  t.match(bridge.stderr(), /scif-net bridge: scif:3:4999: connect ECONNREFUSED scif:3:4999/);
  // The bridge goes on serving.
  t.equal(bridge.child.exitCode, null);
});

t.test('unix: sockets on either side, and SIGTERM stops the bridge', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-bridge-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  echo.listen(4404);
  await once(echo, 'listening');
  t.teardown(() => echo.close());
  const front = path.join(dir, 'front.sock');
  const first = start(t, ['bridge', `unix:${front}`, 'scif:0:4404']);
  t.equal(await first.listening, `unix:${front}`);
  // unix -> scif -> (second bridge) -> unix -> scif echo
  const back = path.join(dir, 'back.sock');
  const second = start(t, ['bridge', `unix:${back}`, 'scif:0:4404']);
  await second.listening;
  const third = start(t, ['bridge', 'scif:4405', `unix:${back}`]);
  await third.listening;
  for (const target of [front, null]) {
    const sock = target ? tcp.connect(target) : net.connect('scif:0:4405');
    const data = crypto.randomBytes(300000);
    const chunks = [];
    sock.on('data', (d) => chunks.push(d));
    sock.end(data);
    await once(sock, 'close');
    t.equal(sha(Buffer.concat(chunks)), sha(data), target ? 'unix -> scif' : 'scif -> unix -> scif');
  }
  first.child.kill('SIGTERM');
  t.same(await first.exit, { code: 0, signal: null }, 'SIGTERM closes the bridge');
  t.notOk(fs.existsSync(front), 'and its socket file');
});
