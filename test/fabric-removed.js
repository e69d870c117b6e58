// The fabric directory removed (rm -rf) under running processes: a server
// hears of it ('error': ENODEV from accept, saying the directory went), listens
// again on the same port in the directory made anew, and a process started
// afterwards reaches it; a connection made before goes on.
const fabric = require('./fixtures/fabric');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const t = require('tap');
const { startPeer } = require('./fixtures/peer');

const ROLES = path.join(__dirname, 'fixtures', 'fabric-removed-roles.js');
// MPSS's libscif has no scif_net_last_error(): through the 'hw' path the
// error is the errno alone, its sentence unknown.
const sentences = process.env.SCIF_NET_BACKEND !== 'hw';
const PORT = 3100;
const CLUSTER_PORT = 3200;

t.test('a server whose fabric directory was removed says so, and listens again', async (t) => {
  const server = startPeer(t, 1, 'server', { port: PORT }, { roles: ROLES });
  t.same(await server.until((m) => m.ready), { ready: PORT });
  const holder = startPeer(t, 2, 'holder', { node: 1, port: PORT }, { roles: ROLES });
  await holder.until((m) => m.connected);
  holder.send({ say: 'before' });
  t.same(await holder.until((m) => m.heard), { heard: 'before' });
  const before = fs.statSync(fabric.dir);

  fs.rmSync(fabric.dir, { recursive: true, force: true });
  const { error, listening } = await server.until((m) => m.error);
  t.match(error, { code: 'ENODEV', errno: -19, syscall: 'accept', address: 'scif:1', port: PORT });
  if (sentences) t.match(error.message, /fabric directory .* was removed/, 'the message says why');
  t.equal(listening, false, 'the server no longer listens');

  t.same(await server.until((m) => m.relistened), { relistened: PORT }, 'it listens again on the same port');
  const after = fs.statSync(fabric.dir);
  t.equal(after.mode & 0o777, 0o700, 'in a directory made anew, ours alone');
  t.not(after.ino, before.ino);

  const client = startPeer(t, 3, 'client', { node: 1, port: PORT, word: 'after' }, { roles: ROLES });
  t.same(await client.until((m) => 'echoed' in m || m.error), { echoed: 'after' },
    'a process started afterwards reaches it');

  holder.send({ say: 'still' });
  t.same(await holder.until((m) => m.heard || m.error), { heard: 'still' }, 'the connection from before still echoes');
});

/** A cluster program on node 1; `until(pred)` resolves with its first JSON line that matches. */
function runCluster(t, port, workers) {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'fabric-removed-cluster.js'), String(port), String(workers)], {
    env: { ...process.env, SCIF_NET_NODE: '1' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  t.teardown(() => {
    child.kill();
    return exited;
  });
  const lines = [];
  const waiters = [];
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    for (let i; (i = buffered.indexOf('\n')) >= 0; buffered = buffered.slice(i + 1)) {
      const msg = JSON.parse(buffered.slice(0, i));
      const w = waiters.findIndex((x) => x.pred(msg));
      if (w >= 0) waiters.splice(w, 1)[0].resolve(msg);
      else lines.push(msg);
    }
  });
  return {
    until(pred) {
      const i = lines.findIndex(pred);
      if (i >= 0) return Promise.resolve(lines.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}

t.test('cluster workers sharing a port hear of it, and share it again', async (t) => {
  const cluster = runCluster(t, CLUSTER_PORT, 2);
  for (let i = 0; i < 2; i++) t.match(await cluster.until((m) => m.listening), { listening: CLUSTER_PORT });

  fs.rmSync(fabric.dir, { recursive: true, force: true });
  for (let i = 0; i < 2; i++) {
    t.match(await cluster.until((m) => m.error), { error: { code: 'ENODEV', syscall: 'accept' } }, 'each worker hears');
  }
  for (let i = 0; i < 2; i++) {
    t.match(await cluster.until((m) => m.relistened), { relistened: CLUSTER_PORT }, 'and listens again');
  }
  const client = startPeer(t, 3, 'client', { node: 1, port: CLUSTER_PORT, word: 'hi' }, { roles: ROLES });
  t.match(await client.until((m) => 'echoed' in m || m.error), { echoed: /^[12]$/ }, 'a worker answers a process started afterwards');
});
