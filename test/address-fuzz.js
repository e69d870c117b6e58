// Property-based tests (fast-check) of the address parser and of the public
// arguments: whatever a caller passes, the answer is a value or a Node-style
// coded error - never a crash, a hang, a Unix socket path or a TCP lookup for
// something that says 'scif:'.
require('./fixtures/fabric');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const t = require('tap');
const fc = require('fast-check');
const net = require('..');
const scif = require('scif-net/scif');

const { parseAddress, parseHost, isSCIF, formatAddress } = net;
const RUNS = Number(process.env.FUZZ_RUNS) || 300;

// A Node-style error: a code, ERR_* for argument errors or an errno name.
function coded(err) {
  return err instanceof Error && typeof err.code === 'string' && /^(ERR_[A-Z_]+|E[A-Z0-9]+)$/.test(err.code);
}

// Runs the rest of test t in an empty working directory, where a string
// taken for a Unix socket path would leave a file: the directory.
function inEmptyCwd(t) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-fuzz-cwd-'));
  const before = process.cwd();
  process.chdir(cwd);
  t.teardown(() => {
    process.chdir(before);
    fs.rmSync(cwd, { recursive: true, force: true });
  });
  return cwd;
}

const scheme = fc.constantFrom('scif:', 'SCIF:', 'scif://', 'Scif://', ' scif:');
const node = fc.integer({ min: 0, max: 63 });
const port = fc.integer({ min: 0, max: 65535 });

t.test('every well-formed address parses to its node and port, and prints back', async (t) => {
  fc.assert(fc.property(scheme, node, port, (s, n, p) => {
    const got = parseAddress(`${s}${n}:${p}`);
    return got !== null && got.node === n && got.port === p &&
      parseAddress(formatAddress(n, p)).node === n && isSCIF(`${s}${n}:${p}`);
  }), { numRuns: RUNS });
  t.pass(`${RUNS} addresses`);
});

t.test("anything after 'scif:' is an address, a host, or a coded error", async (t) => {
  const tail = fc.oneof(fc.string(), fc.stringMatching(/^[0-9:/]{0,12}$/), fc.tuple(fc.integer(), fc.integer()).map(([a, b]) => `${a}:${b}`));
  fc.assert(fc.property(scheme, tail, (s, rest) => {
    const text = `${s}${rest}`;
    let full;
    try {
      full = parseAddress(text);
    } catch (err) {
      return coded(err) && ['ERR_INVALID_ARG_VALUE', 'ERR_SOCKET_BAD_PORT'].includes(err.code);
    }
    if (full) return Number.isInteger(full.node) && full.node <= 63 && full.port <= 65535;
    // Not a full address: then a host ('scif:N'), or a coded error from parseHost.
    try {
      const n = parseHost(text);
      return Number.isInteger(n) && n >= 0 && n <= 63;
    } catch (err) {
      return coded(err) && err.code === 'ERR_INVALID_ARG_VALUE';
    }
  }), { numRuns: RUNS });
  t.pass();
});

t.test("strings that do not say 'scif:' are never taken for one", async (t) => {
  fc.assert(fc.property(fc.string().filter((s) => !/^\s*scif:/i.test(s)), (s) => parseAddress(s) === null), { numRuns: RUNS });
  t.pass();
});

t.test("a malformed 'scif:' string is refused by listen() and connect(), and no socket file appears", async (t) => {
  const cwd = inEmptyCwd(t);
  const malformed = fc.oneof(
    fc.constantFrom('scif::', 'scif:', 'scif:1:', 'scif::80', 'scif:99:2001', 'scif:1:70000', 'scif:1:x', 'scif:-1:80', 'scif://', 'scif:1:2:3'),
    fc.tuple(fc.integer({ min: 64, max: 99999 }), port).map(([n, p]) => `scif:${n}:${p}`),
    fc.tuple(node, fc.integer({ min: 65536, max: 99999 })).map(([n, p]) => `scif:${n}:${p}`),
  );
  fc.assert(fc.property(malformed, (text) => {
    for (const call of [() => net.createServer().listen(text), () => net.connect(text), () => net.createConnection(text),
      () => net.connect({ host: text, port: 80 }), () => net.createServer().listen({ host: text, port: 0 })]) {
      let thrown = null;
      try {
        const r = call();
        if (r && typeof r.destroy === 'function') r.destroy();
        if (r && typeof r.close === 'function') r.close();
      } catch (err) {
        thrown = err;
      }
      if (!coded(thrown) || !['ERR_INVALID_ARG_VALUE', 'ERR_SOCKET_BAD_PORT'].includes(thrown.code)) return false;
    }
    return true;
  }), { numRuns: Math.min(RUNS, 200) });
  t.same(fs.readdirSync(cwd), [], 'nothing was created in the working directory');
});

t.test("'scif:N' where a path is taken names no port: an error, never a file called 'scif:N'", async (t) => {
  const cwd = inEmptyCwd(t);
  const hostOnly = fc.tuple(node, fc.constantFrom('scif:', 'scif://', 'SCIF:', ' scif:')).map(([n, s]) => `${s}${n}`);
  fc.assert(fc.property(hostOnly, (text) => {
    for (const call of [() => net.createServer().listen(text), () => net.connect(text), () => net.createConnection(text, () => {}),
      () => net.connect({ path: text }), () => net.createServer().listen({ path: text })]) {
      let thrown = null;
      try {
        const r = call();
        if (r && typeof r.destroy === 'function') r.destroy();
        if (r && typeof r.close === 'function') r.close();
      } catch (err) {
        thrown = err;
      }
      if (!coded(thrown) || thrown.code !== 'ERR_INVALID_ARG_VALUE' || !/no port/.test(thrown.message)) return false;
    }
    return true;
  }), { numRuns: Math.min(RUNS, 100) });
  t.same(fs.readdirSync(cwd), [], 'nothing was created in the working directory');
});

t.test("{ path: 'scif:N:P' } is a SCIF address for connect() as for listen()", async (t) => {
  const server = net.createServer((s) => s.end('over scif'));
  await new Promise((resolve) => server.listen({ path: 'scif:0:0' }, resolve));
  t.teardown(() => server.close());
  const { port } = server.address();
  const sock = net.connect({ path: `scif:0:${port}` });
  let got = '';
  sock.on('data', (d) => { got += d; });
  await new Promise((resolve, reject) => { sock.on('end', resolve); sock.on('error', reject); });
  t.equal(got, 'over scif');
  t.equal(sock.remoteFamily, 'SCIF');
});

t.test('connect() and listen() options: a socket or a coded error, for any values', async (t) => {
  const value = fc.oneof(fc.anything(), fc.integer(), fc.double(), fc.string(), node, port, fc.constant(undefined));
  await fc.assert(fc.asyncProperty(value, value, async (n, p) => {
    let sock;
    try {
      sock = net.connect({ node: n, port: p });
    } catch (err) {
      return coded(err);
    }
    // A valid target with nobody listening: an errno, asynchronously.
    const err = await new Promise((resolve) => {
      sock.once('error', resolve);
      sock.once('connect', () => resolve(null));
    });
    sock.destroy();
    return err === null || coded(err);
  }), { numRuns: Math.min(RUNS, 150) });
  t.pass();
});

t.test('scif-net/scif: any argument to any call gives a value or a coded error', async (t) => {
  const value = fc.oneof(fc.anything(), fc.integer(), fc.bigInt(), fc.double(), fc.string(), fc.constant(undefined),
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)));
  const calls = [
    (ep, a) => ep.bind(a),
    (ep, a) => ep.listen(a),
    (ep, a) => ep.connect(a),
    (ep, a) => ep.send(a),
    (ep, a) => ep.recv(a),
    (ep, a, b) => ep.vwriteTo(a, b),
    (ep, a, b) => ep.vreadFrom(a, b),
    (ep, a, b, c) => ep.readFrom(a, b, c),
    (ep, a, b) => ep.mmap(a, b),
    (ep, a) => ep.register(a),
    (ep, a) => ep.unregister(a),
    (ep, a) => ep.fenceMark(a),
    (ep, a) => ep.fenceWait(a),
  ];
  await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: calls.length - 1 }), value, value, value, async (i, a, b, c) => {
    const ep = new scif.Endpoint();
    try {
      let r;
      try {
        r = calls[i](ep, a, b, c);
      } catch (err) {
        return coded(err);
      }
      if (r && typeof r.then === 'function') {
        // An unconnected endpoint: what it is asked to do fails, coded,
        // or (bind, listen, connect to a valid place) settles.
        const settled = await Promise.race([r.then(() => null, (err) => err)]);
        return settled === null || coded(settled);
      }
      return true;
    } finally {
      await ep.close();
    }
  }), { numRuns: Math.min(RUNS, 200) });
  t.pass();
});
