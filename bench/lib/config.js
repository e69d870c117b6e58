'use strict';
// What one `npm run bench` measures, and how much. BENCH_QUICK=1 shrinks every
// budget to a smoke run of a few seconds (for tests); the other BENCH_* knobs
// are documented in bench/README.md.

const path = require('node:path');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function int(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v} is not a non-negative integer`);
  return n;
}

function flag(name, def) {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  return !['0', 'false', 'no', 'off'].includes(v.toLowerCase());
}

const SECTIONS = ['throughput', 'pingpong', 'flood', 'http', 'conns', 'ceiling'];

function load() {
  const quick = flag('BENCH_QUICK', false);
  const only = (process.env.BENCH_ONLY || '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of only) {
    if (!SECTIONS.includes(s)) throw new Error(`BENCH_ONLY: unknown section ${s} (one of ${SECTIONS.join(', ')})`);
  }
  const sections = only.length ? only : SECTIONS.filter((s) => !(quick && s === 'ceiling'));

  // Write size -> bytes sent per measurement. Every budget is a multiple of its size.
  const throughput = quick
    ? [[64, 1 * MiB], [1 * KiB, 4 * MiB], [16 * KiB, 16 * MiB], [64 * KiB, 16 * MiB], [1 * MiB, 32 * MiB]]
    : [[64, 64 * MiB], [1 * KiB, 256 * MiB], [16 * KiB, 512 * MiB], [64 * KiB, 1 * GiB], [1 * MiB, 1 * GiB]];

  return {
    quick,
    sections,
    transports: ['tcp', 'unix', 'scif'],
    // Each measurement is repeated and the median kept (all samples go to the JSON).
    repeat: int('BENCH_REPEAT', quick ? 1 : 5),
    throughput,
    pingpong: { iters: int('BENCH_PINGPONG', quick ? 500 : 20000), warmup: quick ? 100 : 2000 },
    flood: { iters: int('BENCH_FLOOD_ROUNDS', quick ? 200 : 5000), warmup: quick ? 50 : 500 },
    http: {
      requests: int('BENCH_HTTP_REQUESTS', quick ? 300 : 10000),
      concurrency: int('BENCH_HTTP_CONCURRENCY', 16),
      warmup: quick ? 50 : 3000,
    },
    conns: { n: int('BENCH_CONNS', quick ? 100 : 2000), parallel: int('BENCH_CONN_PARALLEL', 256), repeat: int('BENCH_CONNS_REPEAT', quick ? 1 : 3) },
    // A command that takes longer than this is reported as failed, not waited on forever.
    timeoutMs: int('BENCH_TIMEOUT_MS', quick ? 60000 : 180000),
    // Extra scif lanes in the throughput section, one per ring size (bytes per
    // direction, SCIF_NET_RING): BENCH_SCIF_RINGS=1048576,4194304.
    scifRings: (process.env.BENCH_SCIF_RINGS || '').split(',').map((s) => s.trim()).filter(Boolean).map((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 4096) throw new Error(`BENCH_SCIF_RINGS: ${v} is not a ring size in bytes`);
      return n;
    }),
    ceilingSource: process.env.BENCH_CEILING_SRC || path.join(__dirname, '..', 'ring-ceiling.c'),
  };
}

module.exports = { load, KiB, MiB, GiB, SECTIONS };
