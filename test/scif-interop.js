// scif-net/scif against a plain libscif program: kernel/test/scif_sample.c,
// written as MPSS's samples are (<scif.h> only, -lscif), built here with the
// system's cc against kernel/include/scif.h and kernel/out/libscif.so.0. The
// JS endpoint plays the other half of its protocol - raw send/recv of
// offsets, writeTo, fenceSignal, fenceMark/fenceWait, mmap and vreadFrom - as
// either role, on the virtual fabric and through the dlopen ('hw') backend.
require('./fixtures/fabric');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const t = require('tap');
const scif = require('scif-net/scif');
const sample = require('./fixtures/scif-sample');
const { startPeer } = require('./fixtures/scif-peer');

const root = path.join(__dirname, '..');
const out = path.join(root, 'kernel', 'out');
const libscif = path.join(out, 'libscif.so.0');

let program;

t.before(() => {
  if (!fs.existsSync(libscif)) {
    const made = spawnSync('make', ['-s', '-C', path.join(root, 'kernel'), 'out/libscif.so.0'], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`building libscif.so.0: ${made.stderr}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-sample-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  program = path.join(dir, 'scif_sample');
  // As MPSS users build: the header and -lscif, nothing of scif-net's.
  const cc = spawnSync(process.env.CC || 'cc', [
    '-std=c11', '-O2', '-Wall', '-Wextra', '-Werror',
    `-I${path.join(root, 'kernel', 'include')}`,
    path.join(root, 'kernel', 'test', 'scif_sample.c'),
    '-o', program, `-L${out}`, '-lscif', `-Wl,-rpath,${out}`, '-pthread',
  ], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc scif_sample.c: ${cc.stderr}`);
});

// Runs the C program on `node`; resolves with its exit and output.
function runC(t, node, args, onStdout) {
  const child = spawn(program, args, {
    env: { ...process.env, SCIF_NET_NODE: String(node) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    stdout += d;
    if (onStdout) onStdout(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return exit;
  });
  return exit;
}

t.test('the C program links libscif.so.0 and nothing of scif-net', async (t) => {
  const ldd = spawnSync('ldd', [program], { encoding: 'utf8' });
  t.equal(ldd.status, 0, ldd.stderr);
  t.match(ldd.stdout, new RegExp(`libscif\\.so\\.0 => ${libscif.replace(/[.]/g, '\\.')}`));
  t.notMatch(ldd.stdout, /scif_net/);
});

t.test('JS client, C server (node 1)', async (t) => {
  const port = 4100;
  let listening;
  const ready = new Promise((resolve) => (listening = resolve));
  const c = runC(t, 1, ['server', String(port)], (s) => s.includes('listening') && listening());
  await ready;
  const result = await sample.client(1, port);
  t.equal(result.mapped, 0, 'unmap() detached the mapped flag page');
  const exit = await c;
  t.same({ code: exit.code, stderr: exit.stderr }, { code: 0, stderr: '' }, 'the C server checked our data and finished');
});

t.test('JS server, C client (node 1)', async (t) => {
  const listener = scif.listen(0);
  const c = runC(t, 1, ['client', '0', String(listener.localPort)]);
  const result = await sample.server(listener);
  t.same(result.peer.node, 1, 'the C client is on node 1');
  await listener.close();
  const exit = await c;
  t.same({ code: exit.code, stderr: exit.stderr }, { code: 0, stderr: '' }, 'the C client checked our answer and finished');
});

t.test('both roles again through the dlopen path (SCIF_NET_BACKEND=hw)', async (t) => {
  const hw = { SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: libscif };

  let listening;
  const ready = new Promise((resolve) => (listening = resolve));
  const server = runC(t, 1, ['server', '4101'], (s) => s.includes('listening') && listening());
  await ready;
  const client = startPeer(t, 0, 'sampleClient', { node: 1, port: 4101 }, hw);
  const asClient = await client.next();
  t.match(asClient, { ok: true, backend: { name: 'hw', library: libscif } }, 'JS on libscif.so.0 via dlopen, as the client');
  t.equal((await server).code, 0);

  const jsServer = startPeer(t, 0, 'sampleServer', {}, hw);
  const { port } = await jsServer.next();
  const c = runC(t, 1, ['client', '0', String(port)]);
  t.match(await jsServer.next(), { ok: true, peer: { node: 1 }, backend: { name: 'hw' } }, 'and as the server');
  t.same((await c).code, 0);
});
