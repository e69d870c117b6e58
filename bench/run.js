'use strict';
// scif-net benchmarks, side by side with node:net over TCP loopback and over a
// Unix socket, in one run: `npm run bench` (BENCH_QUICK=1 for a smoke run).
// Every measurement runs between child processes (bench/client.js and
// bench/peers.js), on a fabric directory of its own; the tables go to stdout,
// progress to stderr, all figures to bench/results/latest.json.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { load } = require('./lib/config');
const F = require('./lib/table');
const ceiling = require('./lib/ceiling');
const stream = require('./sections/stream');
const httpSection = require('./sections/http');
const conns = require('./sections/conns');
const flood = require('./sections/flood');
const { throughputSvg } = require('./lib/chart');

const RESULTS = path.join(__dirname, 'results');

function machine() {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: cpus.length ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    memory: os.totalmem(),
    fabricRing: Number(process.env.SCIF_NET_RING) || ceiling.FABRIC_DEFAULT_RING,
    backend: process.env.SCIF_NET_BACKEND || 'auto',
    // native/busy_poll.h: microseconds; the library's default is 50.
    busyPoll: process.env.SCIF_NET_BUSY_POLL ? `${process.env.SCIF_NET_BUSY_POLL} µs` : 'off (default)',
  };
}

/** Every error recorded anywhere in the results, as "where: message". */
function errorsIn(value, where = '') {
  if (!value || typeof value !== 'object') return [];
  const out = [];
  if (typeof value.error === 'string') out.push(`${where}: ${value.error.split('\n')[0]}`);
  for (const [k, v] of Object.entries(value)) if (k !== 'error') out.push(...errorsIn(v, where ? `${where}.${k}` : k));
  return out;
}

async function main() {
  const config = load();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-bench-'));
  const fabric = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-bench-fabric-'));
  fs.chmodSync(fabric, 0o700);
  const t0 = Date.now();
  const verbose = process.stderr.isTTY || process.env.BENCH_PROGRESS === '1';
  const ctx = {
    config,
    tmp,
    fabric,
    progress: (what) => {
      if (verbose) process.stderr.write(`  [${((Date.now() - t0) / 1000).toFixed(0)}s] ${what}\n`);
    },
  };
  const info = machine();
  const results = { date: new Date().toISOString(), machine: info, config, loadavgStart: os.loadavg(), sections: {} };
  console.log(`scif-net bench${config.quick ? ' (BENCH_QUICK: smoke-run budgets, figures not meaningful)' : ''}`);
  console.log(`  ${info.node} on ${info.platform}, ${info.cores} × ${info.cpu}; fabric ring ${F.size(info.fabricRing)} per direction; backend ${info.backend}; busy polling ${info.busyPoll}`);
  console.log(`  transports: tcp = node:net over TCP loopback, unix = node:net over a Unix socket, scif = scif-net node 0 -> node 1`);
  console.log(`  load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (other work on the machine skews every figure)`);
  console.log(`  ratios read "scif = 1.50× tcp": scif's figure divided by tcp's`);

  const section = async (name, fn) => {
    if (!config.sections.includes(name)) return undefined;
    process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${name}...\n`);
    try {
      const r = await fn();
      results.sections[name] = r;
      return r;
    } catch (err) {
      results.sections[name] = { error: err.stack || String(err) };
      console.log(`\n${name}: ${F.failed(err)}`);
      return undefined;
    }
  };

  try {
    // The ceiling first: it is short, and the throughput table quotes it.
    const ceil = await section('ceiling', () => ceiling.run(ctx));
    const tp = await section('throughput', () => stream.throughput(ctx));
    if (tp) {
      console.log(stream.renderThroughput(tp, ceil));
      console.log(stream.renderMemory(tp));
    }
    const pp = await section('pingpong', () => stream.pingpong(ctx));
    if (pp) console.log(stream.renderPingpong(pp, ceil));
    const fl = await section('flood', () => flood.run(ctx));
    if (fl) console.log(flood.render(fl));
    const http = await section('http', () => httpSection.run(ctx));
    if (http) console.log(httpSection.render(http));
    const cn = await section('conns', () => conns.run(ctx));
    if (cn) console.log(conns.render(cn));
    if (ceil) console.log(ceiling.render(ceil, tp));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(fabric, { recursive: true, force: true });
  }

  results.seconds = (Date.now() - t0) / 1000;
  results.loadavgEnd = os.loadavg();
  fs.mkdirSync(RESULTS, { recursive: true });
  const out = path.join(RESULTS, 'latest.json');
  fs.writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  if (results.sections.throughput && results.sections.throughput.sizes) {
    const svg = path.join(RESULTS, 'throughput.svg');
    fs.writeFileSync(svg, throughputSvg(results.sections.throughput, results));
    console.log(`chart: ${path.relative(process.cwd(), svg) || svg}`);
  }
  const errors = errorsIn(results.sections);
  console.log(`\n${results.seconds.toFixed(0)} s, load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; figures in ${path.relative(process.cwd(), out) || out}`);
  if (errors.length) {
    console.log(`${errors.length} measurement(s) failed:`);
    for (const e of errors) console.log(`  ${e}`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
