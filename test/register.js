// Redirection: unmodified programs (test/fixtures/unmodified, which know
// nothing of SCIF) run with `--require scif-net/register` or `--import
// scif-net/register` and a map in SCIF_NET_MAP. Servers run on node 1 and
// clients on node 0; each side reports what it sees of the other, which must
// be SCIF ('scif:N' addresses, family 'SCIF'), and nothing listens on the
// mapped TCP port. Places the map does not name stay TCP, with node:net's own
// errors; a bad map stops the program before it runs, naming the entry.
require('./fixtures/fabric');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const t = require('tap');
const { makeCert } = require('./fixtures/cert');

const ROOT = path.join(__dirname, '..');
const PROGRAMS = path.join(__dirname, 'fixtures', 'unmodified');

// Where the programs run: a directory with scif-net installed as a
// dependency (node_modules/scif-net), so `scif-net/register` resolves as it
// does for users.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-register-'));
fs.mkdirSync(path.join(home, 'node_modules'));
fs.symlinkSync(ROOT, path.join(home, 'node_modules', 'scif-net'), 'dir');
process.on('exit', () => fs.rmSync(home, { recursive: true, force: true }));

const cert = makeCert(t, { cn: 'localhost', names: ['localhost'] });

/** A TCP port nothing listens on now (for the map to name). */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Runs `program args` under the loader on `node`; resolves with the first
 * JSON line it prints ({ line, child, output() }). The child is killed at the
 * test's end if still running.
 */
function run(t, { program, args, node, map, loader = '--require', env = {} }) {
  const argv = loader ? [loader, 'scif-net/register'] : [];
  const child = spawn(process.execPath, [...argv, path.join(PROGRAMS, program), ...args.map(String)], {
    cwd: home,
    env: { ...process.env, SCIF_NET_NODE: String(node), SCIF_NET_MAP: map ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    child.kill();
    return exited;
  });
  const line = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(stdout.slice(0, nl)));
    });
    child.stderr.on('data', (d) => { stderr += d; });
    exited.then(({ code, signal }) => reject(new Error(`${program} ${args.join(' ')} exited (${code ?? signal}) before printing: ${stderr}`)));
  });
  line.catch(() => {});  // a program expected to fail never prints; its test looks at exited
  return { line, exited, child, stderr: () => stderr };
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function tcpListening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

const SCIF_FROM_NODE_0 = { remoteAddress: 'scif:0', remoteFamily: 'SCIF' };

/**
 * A server program of `kind` on node 1 and a client program on node 0, both
 * redirected by `map(port)`; checks that they met over SCIF. Returns the
 * client's report.
 */
async function pair(t, { server, client, host, map, port, serverLoader = '--require', clientLoader = '--import', extra = [], clientExtra = extra, env = {} }) {
  port = port ?? await freePort();
  const mapText = map(port);
  const srv = run(t, { program: 'server.js', args: [server, port, ...extra], node: 1, map: mapText, loader: serverLoader, env });
  const { listening } = await srv.line;
  if (listening.address !== undefined) t.same(listening, { address: 'scif:1', family: 'SCIF', port }, `${server}: server.address() is the SCIF place`);
  t.equal(await tcpListening(port), false, `${server}: nothing listens on TCP port ${port}`);
  const cli = run(t, { program: 'client.js', args: [client, host, port, ...clientExtra], node: 0, map: mapText, loader: clientLoader, env });
  const report = await cli.line;
  t.same(await cli.exited, { code: 0, signal: null }, `${client}: the client ends by itself`);
  t.notOk(report.error, `${client}: no error ${JSON.stringify(report.error)}`);
  if (report.client) {
    t.same(report.client, { remoteAddress: 'scif:1', remotePort: port, remoteFamily: 'SCIF' }, `${client}: the client's socket is on node 1's SCIF port`);
  }
  return report;
}

const loopback = (host) => (port) => `${host}:${port}=scif:1:${port}`;

t.test('node:net: net.createServer().listen(port, 127.0.0.1) and net.connect(port, host)', async (t) => {
  const r = await pair(t, { server: 'net', client: 'net', host: '127.0.0.1', map: loopback('127.0.0.1') });
  t.match(r.server, SCIF_FROM_NODE_0, 'the server sees node 0');
});

t.test('node:http server; node:http, undici and the global fetch as clients', async (t) => {
  for (const client of ['http', 'undici', 'fetch']) {
    const r = await pair(t, { server: 'http', client, host: '127.0.0.1', map: loopback('127.0.0.1') });
    t.match(r.server, SCIF_FROM_NODE_0, `${client}: the server sees node 0`);
  }
  // The loaders the other way round: the server with --import, the client with --require.
  const r = await pair(t, {
    server: 'http', client: 'http', host: '127.0.0.1', map: loopback('127.0.0.1'), serverLoader: '--import', clientLoader: '--require',
  });
  t.match(r.server, SCIF_FROM_NODE_0, 'loaders swapped: the server sees node 0');
});

t.test('an ES module: the global fetch and named imports of node:net and node:http', async (t) => {
  const port = await freePort();
  const map = `127.0.0.1:${port}=scif:1:${port}`;
  const srv = run(t, { program: 'server.js', args: ['http', port], node: 1, map, loader: '--import' });
  await srv.line;
  const cli = run(t, { program: 'fetch.mjs', args: ['127.0.0.1', port], node: 0, map, loader: '--import' });
  const r = await cli.line;
  t.match(r.fetch, SCIF_FROM_NODE_0, 'fetch()');
  t.match(r.http, SCIF_FROM_NODE_0, "get() from 'node:http'");
  t.equal(r.net.remoteFamily, 'SCIF', "connect() from 'node:net'");
  t.match(r.net.answer, SCIF_FROM_NODE_0);
});

t.test('node:https, node:tls and http2 over TLS, each with the program checking the certificate', async (t) => {
  for (const kind of ['https', 'tls', 'h2']) {
    const r = await pair(t, {
      server: kind, client: kind, host: 'localhost', map: loopback('localhost'),
      extra: [cert.keyFile, cert.certFile], clientExtra: [cert.certFile],
    });
    t.match(r.server, SCIF_FROM_NODE_0, `${kind}: the server sees node 0`);
  }
});

t.test('http2 without TLS (h2c)', async (t) => {
  const r = await pair(t, { server: 'h2c', client: 'h2c', host: '127.0.0.1', map: loopback('127.0.0.1') });
  t.match(r.server, SCIF_FROM_NODE_0);
});

t.test("express's app.listen(port) (all addresses), a node:http client on localhost", async (t) => {
  const r = await pair(t, { server: 'express', client: 'http', host: 'localhost', map: loopback('localhost') });
  t.match(r.server, { ...SCIF_FROM_NODE_0, ip: 'scif:0' }, "express's req.ip is the SCIF peer");
});

t.test("koa's app.listen(port), mapped by a map file; undici as the client (--require on both ends)", async (t) => {
  const port = await freePort();
  const file = path.join(home, 'koa.map');
  fs.writeFileSync(file, `# services\nlocalhost:${port}=scif:1   # koa, same port\n`);
  const r = await pair(t, {
    port, server: 'koa', client: 'undici', host: 'localhost', map: () => '', clientLoader: '--require', env: { SCIF_NET_MAP_FILE: file },
  });
  t.match(r.server, SCIF_FROM_NODE_0);
});

t.test("fastify's listen({ port, host: '127.0.0.1' })", async (t) => {
  const r = await pair(t, { server: 'fastify', client: 'http', host: '127.0.0.1', map: loopback('127.0.0.1') });
  t.match(r.server, SCIF_FROM_NODE_0);
});

t.test('grpc-js: server.bindAsync(localhost:port) and a client of localhost:port (resolved by grpc-js itself)', async (t) => {
  const r = await pair(t, { server: 'grpc', client: 'grpc', host: 'localhost', map: loopback('localhost') });
  t.equal(r.server.message, 'hello, world');
  t.match(r.server.peer, /^scif:0:\d+$/, "the call's peer is on node 0");
});

t.test("jayson's TCP server and TCP client", async (t) => {
  const r = await pair(t, { server: 'jayson', client: 'jayson', host: '127.0.0.1', map: loopback('127.0.0.1') });
  t.match(r.server, { sum: 42, ...SCIF_FROM_NODE_0 });
});

t.test('places the map does not name stay TCP, with the same results and errors', async (t) => {
  // A TCP server of this process's (which loads no redirection).
  const tcpServer = net.createServer((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'));
  await new Promise((resolve) => tcpServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => tcpServer.close());
  const tcpPort = tcpServer.address().port;
  let tcpPeer = null;
  tcpServer.on('connection', (s) => { tcpPeer = s.remoteFamily; });
  const map = `127.0.0.1:${await freePort()}=scif:1`;

  const ok = run(t, { program: 'client.js', args: ['http', '127.0.0.1', tcpPort], node: 0, map });
  t.same((await ok.line).client, { remoteAddress: '127.0.0.1', remotePort: tcpPort, remoteFamily: 'IPv4' }, 'an unmapped port: TCP');
  t.equal(tcpPeer, 'IPv4');

  const closed = await freePort();
  const plain = run(t, { program: 'client.js', args: ['net', '127.0.0.1', closed], node: 0, loader: null });
  const redirected = run(t, { program: 'client.js', args: ['net', '127.0.0.1', closed], node: 0, map });
  const [a, b] = [await plain.line, await redirected.line];
  t.same(b, a, 'the same error as without scif-net/register');
  t.match(b.error, { code: 'ECONNREFUSED', address: '127.0.0.1', port: closed, message: `connect ECONNREFUSED 127.0.0.1:${closed}` });
});

t.test('a mapped place whose SCIF side is not there: SCIF errors, with SCIF addresses', async (t) => {
  const port = await freePort();
  const cli = run(t, { program: 'client.js', args: ['net', '127.0.0.1', port], node: 0, map: `127.0.0.1:${port}=scif:1:${port}` });
  t.match((await cli.line).error, { code: 'ECONNREFUSED', address: 'scif:1', port, message: `connect ECONNREFUSED scif:1:${port}` });

  // Listening on a place the map sends to another node.
  const srv = run(t, { program: 'server.js', args: ['http', port], node: 2, map: `127.0.0.1:${port}=scif:1:${port}` });
  const { code } = await srv.exited;
  t.equal(code, 1, 'the unhandled listen error ends the program');
  t.match(srv.stderr(), `listen EADDRNOTAVAIL: address not available scif:1:${port}`);
  t.match(srv.stderr(), `SCIF_NET_MAP ('127.0.0.1:${port}=scif:1:${port}') sends port ${port} to node 1, and this process is on node 2`);
});

t.test('a bad map stops the program before it runs, naming the entry', async (t) => {
  const cases = [
    ['SCIF_NET_MAP', '127.0.0.1:80=scif:1:80,127.0.0.1:8080=tcp:1:8080', "SCIF_NET_MAP: bad entry '127.0.0.1:8080=tcp:1:8080': 'tcp:1:8080' is not a SCIF place"],
    ['SCIF_NET_MAP', 'localhost=scif:1', "SCIF_NET_MAP: bad entry 'localhost=scif:1': 'localhost' has no port"],
    ['SCIF_NET_MAP', '::1:80=scif:1:80', "write an IPv6 address in brackets ('[::1]:80')"],
    ['SCIF_NET_MAP', '*:*=scif:1:80', "a '*' port keeps its number"],
    ['SCIF_NET_MAP', 'a:1=scif:1,A:1=scif:2', "'a:1' is mapped already, by 'a:1=scif:1'"],
    ['SCIF_NET_MAP_FILE', 'ok:1=scif:1\n\n# fine\nlocalhost:99999=scif:0', ":4: bad entry 'localhost:99999=scif:0': '99999' is not a port"],
  ];
  for (const loader of ['--require', '--import']) {
    for (const [variable, text, says] of cases) {
      let env = { SCIF_NET_MAP: text };
      if (variable === 'SCIF_NET_MAP_FILE') {
        const file = path.join(home, 'bad.map');
        fs.writeFileSync(file, text);
        env = { SCIF_NET_MAP_FILE: file };
      }
      const p = run(t, { program: 'server.js', args: ['http', 1], node: 1, loader, env });
      const { code } = await p.exited;
      t.equal(code, 1, `${loader} ${JSON.stringify(text)}: exit code 1`);
      t.match(p.stderr(), 'ERR_INVALID_ARG_VALUE', 'a coded error');
      t.match(p.stderr(), says, 'naming the entry and what is wrong');
    }
  }
});
