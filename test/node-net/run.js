#!/usr/bin/env node
// Runs Node v20's own test/parallel/test-net-*.js against scif-net
// (`npm run test:node-net`): every test not listed in excluded.js, each in a
// child process of its own, with `net` / `node:net` redirected to scif-net
// (preload.js), a fabric of its own (SCIF_NET_FABRIC: a fresh mkdtemp
// directory, mode 0700) and a time limit. By default a bare port and
// 'localhost' mean SCIF on this node, which is how most of the tests reach
// scif-net; a test that names 127.0.0.1 or a path gets node:net through
// scif-net's pass-through, and the report says which tests did which.
//
//   node test/node-net/run.js [name-or-substring ...]
//
// Tests that need something in their environment (and why) are in
// environment.js. SCIF_NET_NODE_TEST_JOBS (2), SCIF_NET_NODE_TEST_TIMEOUT (seconds, 60),
// SCIF_NET_NODE_TESTS_CACHE (where the tarball and the extracted tests live;
// node_modules/.cache/scif-net-node-tests by default). Exits 1 when a kept
// test fails, times out or skips itself (a test that cannot run here belongs
// in excluded.js, with its reason).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { nodeTests } = require('./source');
const excluded = require('./excluded');
const environment = require('./environment');

const JOBS = Math.max(1, Number(process.env.SCIF_NET_NODE_TEST_JOBS) || 2);
const TIMEOUT = (Number(process.env.SCIF_NET_NODE_TEST_TIMEOUT) || 60) * 1000;
const PRELOAD = path.join(__dirname, 'preload.js');

/** The `// Flags:` a Node test asks to be run with. */
function flagsOf(file) {
  const m = /^\/\/ Flags: (.+)$/m.exec(fs.readFileSync(file, 'utf8'));
  return m ? m[1].trim().split(/\s+/) : [];
}

function runOne(nodeDir, name) {
  const file = path.join(nodeDir, 'test', 'parallel', name);
  const fabric = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-node-fabric-'));
  fs.chmodSync(fabric, 0o700);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-node-test-'));
  const usage = path.join(scratch, 'usage');
  const env = { ...process.env };
  delete env.SCIF_NET_NODE;
  delete env.SCIF_NET_LOCALHOST;
  delete env.NODE_TEST_KNOWN_GLOBALS;
  Object.assign(env, {
    SCIF_NET_FABRIC: fabric,
    SCIF_NET_NODE_TEST_USAGE: usage,
    NODE_TEST_DIR: scratch,  // test/common/tmpdir.js makes its .tmp.* here
    NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(PRELOAD)}`.trim(),
  }, environment[name]?.[0]);
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flagsOf(file), file], {
      cwd: nodeDir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');  // the test and whatever it started
      } catch {}
    }, TIMEOUT);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // Children it left behind (its process group) go too.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      const used = fs.existsSync(usage) ? new Set(fs.readFileSync(usage, 'utf8').split('\n').filter(Boolean)) : new Set();
      fs.rmSync(fabric, { recursive: true, force: true });
      fs.rmSync(scratch, { recursive: true, force: true });
      const skipped = /^1\.\.0 # Skipped: (.*)$/m.exec(output);
      let status = code === 0 && !signal ? 'pass' : 'fail';
      if (timedOut) status = 'timeout';
      else if (status === 'pass' && skipped) status = 'skipped';
      const transport = used.has('scif') ? (used.has('node:net') ? 'scif+node:net' : 'scif') : used.has('node:net') ? 'node:net' : 'none';
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      resolve({ name, status, code, signal, output, transport, seconds, skipped: skipped?.[1] });
    });
  });
}

async function main() {
  const t0 = Date.now();
  const { dir, version } = await nodeTests();
  const parallel = path.join(dir, 'test', 'parallel');
  const found = fs.readdirSync(parallel).filter((f) => /^test-net-.*\.m?js$/.test(f)).sort();
  const stale = Object.keys(excluded).filter((f) => !found.includes(f));
  const filters = process.argv.slice(2);
  const kept = found.filter((f) => !excluded[f]);
  const selected = filters.length ? found.filter((f) => filters.some((p) => f.includes(p))) : kept;

  console.log(`TAP version 13`);
  console.log(`# Node ${version}: ${found.length} test-net-* tests, ${found.length - kept.length} excluded, ${kept.length} kept`);
  if (stale.length) console.log(`# excluded.js names tests this source does not have: ${stale.join(', ')}`);
  console.log(`1..${selected.length}`);

  const queue = selected.map((name, i) => ({ name, i }));
  const results = new Array(selected.length);
  async function worker() {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const r = await runOne(dir, job.name);
      results[job.i] = r;
      const ok = r.status === 'pass';
      let note = excluded[r.name] ? ` (excluded: ${excluded[r.name][0]})` : '';
      if (environment[r.name]) note += ` (with ${Object.entries(environment[r.name][0]).map(([k, v]) => `${k}=${v}`).join(' ')})`;
      console.log(`${ok ? 'ok' : 'not ok'} ${job.i + 1} - ${r.name} # ${r.transport}, ${r.seconds.toFixed(1)}s${ok ? '' : `, ${r.status}`}${note}`);
      if (!ok) {
        const why = r.status === 'skipped' ? `skipped itself: ${r.skipped}` : `exit ${r.code ?? r.signal}`;
        console.log(`  ---\n  ${why}\n${r.output.replace(/^/gm, '  | ')}\n  ...`);
      }
    }
  }
  await Promise.all(Array.from({ length: JOBS }, worker));

  const count = (pred) => results.filter(pred).length;
  const passed = count((r) => r.status === 'pass');
  const byTransport = {};
  for (const r of results) {
    if (r.status === 'pass') byTransport[r.transport] = (byTransport[r.transport] ?? 0) + 1;
  }
  const byReason = {};
  for (const [category] of Object.values(excluded)) byReason[category] = (byReason[category] ?? 0) + 1;
  console.log(`# ${passed}/${selected.length} passed${passed < selected.length ? `; failed: ${results.filter((r) => r.status !== 'pass').map((r) => `${r.name} (${r.status})`).join(', ')}` : ''}`);
  console.log(`# passing tests by what they used: ${JSON.stringify(byTransport)}`);
  console.log('#   scif: made SCIF connections or listened over SCIF; node:net: only TCP or pipes (scif-net\'s pass-through);');
  console.log('#   none: no connection at all (argument checks, sockets destroyed before connecting)');
  if (!filters.length) console.log(`# excluded by reason: ${JSON.stringify(byReason)}`);
  console.log(`# wall time ${((Date.now() - t0) / 1000).toFixed(1)}s, ${JOBS} at a time`);
  process.exitCode = passed === selected.length ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
