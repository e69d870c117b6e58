// The README's demo runs: a node:http server on node 1 answers undici and
// node:http clients on node 0, in three processes.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const t = require('tap');

t.test('npm run demo works', async (t) => {
  const run = spawnSync(process.execPath, [path.join(__dirname, '..', 'examples', 'http-over-scif', 'run.js'), '0'], {
    encoding: 'utf8',
    timeout: 60000,
    env: { ...process.env, SCIF_NET_FABRIC: '' },
  });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /\[server\] node:http listening on scif:1:\d+/);
  t.match(run.stdout, /\[undici\] {4}GET \/hello -> 200/);
  t.match(run.stdout, /bodyBytes: 1048576/);
  t.match(run.stdout, /\[node:http\] GET \/from-node-http -> 200/);
  t.match(run.stdout, /client: 'scif:0:\d+ \(SCIF\)'/);
  t.match(run.stdout, /\[demo\] done/);
});
