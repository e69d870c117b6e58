// The examples run as their READMEs say: an RPC service and an MPI-launcher
// style control channel, each across virtual nodes.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const t = require('tap');

const run = (file, args = []) => spawnSync(process.execPath, [path.join(__dirname, '..', 'examples', file), ...args], {
  encoding: 'utf8', timeout: 60000, env: { ...process.env, SCIF_NET_FABRIC: '' },
});

t.test('rpc: a JSON-lines service on node 1, 1000 calls in flight from node 0', async (t) => {
  const r = run('rpc/run.js');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /whoami -> \{ node: 1, pid: \d+ \}/);
  t.match(r.stdout, /add\(2, 40\) -> 42/);
  t.match(r.stdout, /1000 calls in flight, sum of answers -> 999000/);
});

t.test('launcher: agents on every card node run the ranks they are given', async (t) => {
  const r = run('launcher/run.js', ['6']);
  t.equal(r.status, 0, r.stderr);
  for (const node of [1, 2, 3]) t.match(r.stdout, new RegExp(`agent on node ${node} \\(scif:${node}\\) is up`));
  for (let rank = 0; rank < 6; rank++) t.match(r.stdout, new RegExp(`rank ${rank} on node \\d exited 0: rank ${rank} of pid`));
  t.match(r.stdout, /6 ranks on 3 card nodes, 0 failed/);
});
