'use strict';
// Section 5 (optional): the C shared-memory ring ceiling, bench/ring-ceiling.c,
// compiled into a temporary directory and run for a 1 MiB ring and for
// the fabric's own ring size, so scif-net's figures can be read as a fraction
// of what a byte ring between two processes can do on this machine.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

// The fabric's default ring, read from kernel/src/fabric.h so the two never drift apart.
const FABRIC_DEFAULT_RING = (() => {
  const header = fs.readFileSync(path.join(__dirname, '..', '..', 'kernel', 'src', 'fabric.h'), 'utf8');
  // `4096u` or `(1024u * 1024)`: a product of unsigned literals.
  const m = /#define FABRIC_DEFAULT_RING\s+\(?([\du *]+?)\)?\s*(?:\/\*|$)/m.exec(header);
  const factors = m ? m[1].split('*').map((f) => Number(f.trim().replace(/u$/, ''))) : [];
  if (!factors.length || factors.some((f) => !Number.isInteger(f) || f <= 0)) {
    throw new Error('bench: cannot find FABRIC_DEFAULT_RING in kernel/src/fabric.h');
  }
  return factors.reduce((a, b) => a * b, 1);
})();

function parse(out) {
  const mbps = {};
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+(?:\.\d+)?)\s*$/.exec(line);
    if (m) mbps[Number(m[1])] = Number(m[2]);
  }
  const rtt = /round trip:\s*([\d.]+)/.exec(out);
  return { mbps, rttUs: rtt ? Number(rtt[1]) : NaN };
}

function run(ctx) {
  const src = ctx.config.ceilingSource;
  if (!fs.existsSync(src)) return { skipped: `${src} not found` };
  const bin = path.join(ctx.tmp, 'ring-ceiling');
  try {
    execFileSync('gcc', ['-O2', '-o', bin, src], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    return { skipped: `gcc failed: ${String(err.stderr || err.message).split('\n')[0]}` };
  }
  const fabricRing = Number(process.env.SCIF_NET_RING) || FABRIC_DEFAULT_RING;
  // A spinning pair needs both cores to itself: anything else running drags it
  // down, so the ceiling is the best of a few runs.
  const runs = Math.max(1, ctx.config.repeat);
  const rings = [];
  for (const ring of [1 << 20, fabricRing].filter((v, i, a) => a.indexOf(v) === i)) {
    const best = { ring, fabric: ring === fabricRing, runs, mbps: {}, rttUs: Infinity };
    for (let i = 0; i < runs; i++) {
      const r = parse(execFileSync(bin, [String(ring)], { encoding: 'utf8', timeout: 120000 }));
      for (const [size, v] of Object.entries(r.mbps)) best.mbps[size] = Math.max(best.mbps[size] || 0, v);
      best.rttUs = Math.min(best.rttUs, r.rttUs);
    }
    rings.push(best);
    ctx.progress(`ring ceiling ${ring} bytes`);
  }
  return { source: src, rings };
}

/** The ceiling per write size beside scif-net's throughput (section 1's result, if it ran). */
function render(res, throughput) {
  const F = require('./table');
  if (res.skipped) return F.table('5. C shared-memory ring ceiling', [{ name: 'note' }], [[`skipped: ${res.skipped}`]]);
  const scif = {};
  if (throughput) for (const s of throughput.sizes) scif[s.size] = s.results.scif && s.results.scif.mbps;
  const sizes = Object.keys(res.rings[0].mbps).map(Number);
  const rows = [];
  for (const size of sizes) {
    for (const r of res.rings) {
      const label = `C ring ${F.size(r.ring)}${r.fabric ? ' (= fabric ring)' : ''}`;
      rows.push([rows.length % res.rings.length ? '' : F.size(size), label, F.num(r.mbps[size]), Number.isFinite(scif[size]) ? `scif-net = ${F.pct(scif[size], r.mbps[size])}` : '']);
    }
  }
  rows.push(null);
  for (const r of res.rings) rows.push(['8 B rtt', `C ring ${F.size(r.ring)}`, `${F.num(r.rttUs)} µs`, '']);
  return F.table(`5. Ceiling: ${path.basename(res.source)} (gcc -O2), one SPSC ring in shared memory, both sides spinning; MB/s, best of ${res.rings[0].runs} run(s)`,
    [{ name: 'write' }, { name: 'ring' }, { name: 'MB/s', right: true }, { name: 'ratio' }], rows);
}

module.exports = { run, render, FABRIC_DEFAULT_RING };
