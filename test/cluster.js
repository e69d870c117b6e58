// node:cluster over SCIF. Workers listening on one SCIF port share it, as
// they share a TCP port: the primary opens the listener once and hands its
// descriptor to each worker, which accepts on it (src/net/cluster.ts). That
// needs a backend that accepts on a listener's descriptor another process
// opened: Intel MPSS does; the virtual fabric does not yet (README,
// "Cluster"), so there the sharing test is a todo and what is checked is
// that workers fail clearly instead.
require('./fixtures/fabric');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const t = require('tap');
const scifHttp = require('../dist/http');
const { binding } = require('../dist/binding');

const ROOT = path.join(__dirname, '..');
const shares = binding.sharesListeners() === true;

// scif-net installed as a dependency, for `--require scif-net/register`.
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-cluster-'));
fs.mkdirSync(path.join(home, 'node_modules'));
fs.symlinkSync(ROOT, path.join(home, 'node_modules', 'scif-net'), 'dir');
process.on('exit', () => fs.rmSync(home, { recursive: true, force: true }));

/** Runs a cluster program on node 1; `lines()` resolves with its first n JSON lines. */
function runCluster(t, argv, env = {}) {
  const child = spawn(process.execPath, argv, {
    cwd: home, env: { ...process.env, SCIF_NET_NODE: '1', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.teardown(() => {
    child.kill();
    return exited;
  });
  const got = [];
  const waiters = [];
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      got.push(JSON.parse(buffered.slice(0, nl)));
      buffered = buffered.slice(nl + 1);
      for (const w of waiters.splice(0)) w();
    }
  });
  return {
    async lines(n) {
      while (got.length < n) await new Promise((resolve) => waiters.push(resolve));
      return got.slice(0, n);
    },
  };
}

const get = (port) => new Promise((resolve, reject) => {
  http.get({ host: 'mic0', port, path: '/', agent: new scifHttp.Agent() }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve(JSON.parse(body)));
  }).on('error', reject);
});

t.test('an unmodified cluster program: workers share one SCIF port and each accepts on it', {
  todo: shares ? false : 'the virtual fabric cannot yet accept on a listening endpoint another process opened (README, "Cluster")',
}, async (t) => {
  const port = 18300 + (process.pid % 1000);
  const workers = 3;
  const app = runCluster(t, ['--require', 'scif-net/register', path.join(__dirname, 'fixtures/unmodified/cluster.js'), port, workers],
    { SCIF_NET_MAP: `127.0.0.1:${port}=scif:1` });
  const [first] = await app.lines(1);
  t.notOk(first.error, `no worker fails to listen: ${JSON.stringify(first.error)}`);
  t.same(first.listening, Array(workers).fill({ address: 'scif:1', family: 'SCIF', port }), 'every worker listens on the same SCIF port');
  // Each worker answers once and stops accepting, so each answer is another worker's.
  const pids = new Set();
  for (let i = 0; i < workers; i++) {
    const answer = await get(port);
    t.equal(answer.remoteFamily, 'SCIF');
    pids.add(answer.pid);
  }
  t.equal(pids.size, workers, 'every worker accepted a connection on the shared port');
});

t.test('cluster workers that cannot share a SCIF port fail with EADDRINUSE saying why', async (t) => {
  const port = 18400 + (process.pid % 1000);
  t.test('the primary did not load scif-net', async (t) => {
    const app = runCluster(t, [path.join(__dirname, 'fixtures/cluster-workers.js'), port, 2]);
    const outcomes = await app.lines(2);
    t.same(outcomes.filter((o) => o.listening).map((o) => o.listening), [{ address: 'scif:1', family: 'SCIF', port }], 'one worker listens');
    t.match(outcomes.find((o) => o.error), {
      error: {
        code: 'EADDRINUSE',
        message: `listen EADDRINUSE: address already in use scif:1:${port} (cluster workers share a SCIF port when their primary loaded scif-net before forking them: node --require scif-net/register, or require('scif-net') in the primary)`,
      },
    }, 'the other says why');
  });

  t.test('the backend cannot share listeners between processes', { skip: shares && 'this backend shares them' }, async (t) => {
    const app = runCluster(t, ['--require', 'scif-net/register', path.join(__dirname, 'fixtures/unmodified/cluster.js'), port + 1, 2],
      { SCIF_NET_MAP: `127.0.0.1:${port + 1}=scif:1` });
    const [line] = await app.lines(1);
    t.match(line.error, {
      code: 'EADDRINUSE',
      message: `listen EADDRINUSE: address already in use scif:1:${port + 1} (cluster workers cannot share a SCIF port here: this SCIF backend cannot accept on a listener another process opened)`,
    });
  });
});
