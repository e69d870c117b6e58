// Backends: the virtual fabric by default here, and the dlopen path ('hw')
// exercised against the fabric's own libscif-ABI library; a missing or wrong
// libscif is a clear error, not a crash.
require('./fixtures/fabric');
const { spawnSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');

const root = path.join(__dirname, '..');
const libscif = path.join(root, 'kernel', 'out', 'libscif.so.0');

function run(env, script) {
  return spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30000,
  });
}

t.test('auto picks the virtual fabric when there is no SCIF device', async (t) => {
  // In a process of its own: this file also runs with SCIF_NET_BACKEND=hw (.ci/run).
  const env = { ...process.env };
  delete env.SCIF_NET_BACKEND;
  delete env.SCIF_NET_LIBSCIF;
  const r = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(root)}).backend()))`], {
    env, encoding: 'utf8', timeout: 30000,
  });
  t.equal(r.status, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { name: 'virtual', note: /no SCIF device/ });
});

t.test('hw: libscif loaded with dlopen carries a connection between two processes', async (t) => {
  if (!fs.existsSync(libscif)) {
    const made = spawnSync('make', ['-s', '-C', path.join(root, 'kernel'), 'out/libscif.so.0'], { encoding: 'utf8' });
    t.equal(made.status, 0, made.stderr);
  }
  const env = { SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: libscif };
  const server = spawn(process.execPath, ['-e', `
    const net = require(${JSON.stringify(root)});
    const s = net.createServer((c) => c.pipe(c)).listen(0, () => {
      console.log(JSON.stringify({ port: s.address().port, backend: net.backend() }));
    });`], { env: { ...process.env, ...env, SCIF_NET_NODE: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => server.kill());
  const ready = JSON.parse(await new Promise((resolve) => server.stdout.once('data', resolve)));
  t.match(ready.backend, { name: 'hw', library: libscif });
  const client = run(env, `
    const net = require(${JSON.stringify(root)});
    const c = net.connect({ node: 1, port: ${ready.port} });
    let got = '';
    c.setEncoding('utf8').on('data', (d) => (got += d));
    c.on('connect', () => c.end('through dlopen'));
    c.on('close', () => console.log(JSON.stringify({ got, backend: net.backend(), family: c.remoteFamily })));`);
  t.equal(client.status, 0, client.stderr);
  t.match(JSON.parse(client.stdout), { got: 'through dlopen', backend: { name: 'hw' }, family: 'SCIF' });
});

t.test('hw with a libscif that is not there: ENXIO naming what was looked for', async (t) => {
  const r = run({ SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: '/nonexistent/libscif.so.0' }, `
    const net = require(${JSON.stringify(root)});
    net.connect({ node: 1, port: 2000 }).on('error', (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));
    try { net.backend(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`);
  t.equal(r.status, 0, r.stderr);
  const [thrown, emitted] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.match(thrown, { code: 'ENXIO', message: /cannot load \/nonexistent\/libscif\.so\.0/ });
  t.match(emitted, { code: 'ENXIO', message: /^connect ENXIO scif:1:2000 \(SCIF_NET_BACKEND=hw: cannot load \/nonexistent\/libscif\.so\.0/ });
});

t.test('hw without a SCIF device says which devices it looked for', async (t) => {
  const r = run({ SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: '' }, `
    const net = require(${JSON.stringify(root)});
    net.createServer().listen(2000).on('error', (e) => console.log(e.code, e.message));`);
  t.match(r.stdout, /^ENXIO listen ENXIO: no such device or address localhost:2000 .*no SCIF device \(looked for \/dev\/mic\/scif and \/dev\/scif\)/);
});

t.test('a library that is not libscif, and a backend that does not exist', async (t) => {
  const notScif = run({ SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: 'libc.so.6' }, `
    try { require(${JSON.stringify(root)}).backend(); } catch (e) { console.log(e.message); }`);
  t.match(notScif.stdout, /libc\.so\.6 is not a usable libscif: it lacks scif_open/);
  const bogus = run({ SCIF_NET_BACKEND: 'fpga' }, `
    try { require(${JSON.stringify(root)}).backend(); } catch (e) { console.log(e.message); }`);
  t.match(bogus.stdout, /SCIF_NET_BACKEND=fpga is not one of auto, hw, virtual/);
});
