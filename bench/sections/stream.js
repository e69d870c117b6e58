'use strict';
// Sections 1 and 2: stream throughput per write size (with the peak memory of
// both sides), and 8-byte round trips. Transports are interleaved within each
// repetition, in a rotating order, so a slow patch of the machine does not
// land on one transport only.
const { startAll, stopAll, resultsFor, eachInTurn } = require('../lib/launch');
const F = require('../lib/table');

async function throughput(ctx) {
  const { config } = ctx;
  const lanes = [...config.transports, ...config.scifRings.map((ring) => ({
    name: `scif ring ${F.size(ring)}`, transport: 'scif', env: { SCIF_NET_RING: String(ring) },
  }))];
  const names = lanes.map((l) => (typeof l === 'string' ? l : l.name));
  const started = await startAll(ctx, 'discard', {}, lanes);
  const { pairs } = started;
  const sizes = config.throughput.map(([size, total]) => ({ size, total, results: resultsFor(started, names, () => ({ samples: [], cpu: [] })) }));
  try {
    // Warm-up: JIT and first-touch of buffers on both sides.
    for (const t of Object.keys(pairs)) {
      for (const [size, total] of [[64, 1 << 20], [16384, 32 << 20]]) {
        await pairs[t].client.call('throughput', { address: pairs[t].address, size, total }, config.timeoutMs).catch(() => {});
      }
    }
    for (let rep = 0; rep < config.repeat; rep++) {
      for (const s of sizes) {
        await eachInTurn(ctx, pairs, s.results, rep, `throughput ${F.size(s.size)}`, async (pair, r) => {
          const before = await pair.server.call('stats');
          const res = await pair.client.call('throughput', { address: pair.address, size: s.size, total: s.total }, config.timeoutMs);
          const after = await pair.server.call('stats');
          r.samples.push((res.bytes / res.ns) * 1e3);
          // CPU seconds both processes spent per GB (10^9 B) moved: steadier than wall time here.
          r.cpu.push(((res.cpuUs + after.cpuUs - before.cpuUs) / 1e6) / (res.bytes / 1e9));
          if (res.scifStats) r.scifStats = res.scifStats;
        });
      }
    }
    for (const s of sizes) {
      for (const r of Object.values(s.results)) {
        r.mbps = r.samples && r.samples.length ? F.median(r.samples) : NaN;
        r.cpuPerGB = r.cpu && r.cpu.length ? F.median(r.cpu) : NaN;
      }
    }
    // Peak memory over the whole throughput run, both sides.
    const memory = {};
    for (const t of names) {
      if (!pairs[t]) {
        memory[t] = { error: started.errors[t].message };
        continue;
      }
      try {
        const [client, server] = await Promise.all([pairs[t].client.call('stats'), pairs[t].server.call('stats')]);
        memory[t] = { client, server };
      } catch (err) {
        memory[t] = { error: err.message };
      }
    }
    return { repeat: config.repeat, sizes, memory };
  } finally {
    await stopAll(started);
  }
}

function scifRatios(results, better = 'higher', name = 'scif') {
  const s = results[name];
  if (!s || !Number.isFinite(s.value)) return '';
  const parts = [];
  for (const t of ['tcp', 'unix']) {
    if (results[t] && Number.isFinite(results[t].value)) parts.push(`${F.ratio(s.value, results[t].value)} ${t}`);
  }
  return parts.length ? `${name.split(' ')[0]} = ${parts.join(', ')}` + (better === 'lower' ? ' (lower is better)' : '') : '';
}

/** "rma 99.9%, 1 window, 0 fallbacks": how a scif lane's last run moved its bytes. */
function moved(stats) {
  if (!stats) return '';
  const { rma, messages } = stats.sent;
  const total = rma + messages;
  return `by RMA ${total ? F.pct(rma, total) : '-'}, ${stats.fallbacks} fallback(s)`;
}

function renderThroughput(res, ceiling) {
  const rows = [];
  for (const s of res.sizes) {
    const vals = {};
    const cpus = {};
    for (const [t, r] of Object.entries(s.results)) {
      vals[t] = { value: r.mbps };
      cpus[t] = { value: r.cpuPerGB };
    }
    let first = true;
    for (const [t, r] of Object.entries(s.results)) {
      const label = first ? F.size(s.size) : '';
      if (r.error) {
        rows.push([label, t, 'FAILED', '', '', F.failed(r.error)]);
      } else {
        const scif = t.startsWith('scif');
        const cpuRatio = scif ? scifRatios(cpus, 'lower', t).replace(/^scif = /, 'CPU ') : '';
        rows.push([label, t, F.num(r.mbps), F.num(r.cpuPerGB), scif ? moved(r.scifStats) : '',
          scif ? [scifRatios(vals, 'higher', t), cpuRatio].filter(Boolean).join('; ') : '']);
      }
      first = false;
    }
    const c = ceiling && ceiling.rings && ceiling.rings[0];
    if (c && c.mbps[s.size]) {
      rows.push(['', `C ring ${F.size(c.ring)}`, F.num(c.mbps[s.size]), '', '', `scif = ${F.pct(vals.scif && vals.scif.value, c.mbps[s.size])} of this ceiling`]);
    }
    rows.push(null);
  }
  rows.pop();
  const budgets = res.sizes.map((s) => `${F.size(s.size)}: ${F.size(s.total)}`).join(', ');
  return F.table('1. Stream throughput, MB/s (10^6 B/s), end to end to a discarding server child; higher is better. CPU s/GB: both processes\' CPU seconds per 10^9 bytes, lower is better',
    [{ name: 'write' }, { name: 'transport' }, { name: 'MB/s', right: true }, { name: 'CPU s/GB', right: true }, { name: 'scif-net moved' }, { name: 'ratio' }], rows,
    [`bytes per measurement: ${budgets}; median of ${res.repeat} run(s); "scif-net moved": socket.scifStats of the last run (large writes by RMA, the rest by messages)`]);
}

function renderMemory(res) {
  const rows = [];
  const m = res.memory;
  for (const t of Object.keys(m)) {
    if (m[t].error) {
      rows.push([t, 'FAILED', '', '', '', F.failed(m[t].error)]);
      continue;
    }
    let note = '';
    if (t === 'scif' && m.tcp && m.tcp.client && m.unix && m.unix.client) {
      const sum = (x) => x.client.maxRSS + x.server.maxRSS;
      note = `client+server = ${F.ratio(sum(m.scif), sum(m.tcp))} tcp, ${F.ratio(sum(m.scif), sum(m.unix))} unix`;
    }
    rows.push([t, F.mem(m[t].client.maxRSS), F.mem(m[t].server.maxRSS), F.mem(m[t].client.rss), F.mem(m[t].server.rss), note]);
  }
  return F.table('4a. Peak RSS over the throughput runs (resourceUsage().maxRSS), and RSS at the end',
    [{ name: 'transport' }, { name: 'client peak', right: true }, { name: 'server peak', right: true },
      { name: 'client end', right: true }, { name: 'server end', right: true }, { name: 'ratio' }], rows);
}

async function pingpong(ctx) {
  const { config } = ctx;
  const started = await startAll(ctx, 'echo');
  const { pairs } = started;
  const results = resultsFor(started, config.transports, () => ({ samples: [], cpu: [] }));
  try {
    for (let rep = 0; rep < config.repeat; rep++) {
      await eachInTurn(ctx, pairs, results, rep, 'ping-pong', async (pair, r) => {
        const before = await pair.server.call('stats');
        const res = await pair.client.call('pingpong', { address: pair.address, ...config.pingpong }, config.timeoutMs);
        const after = await pair.server.call('stats');
        r.samples.push(res.ns / res.iters / 1e3);
        // CPU both processes spent per round trip (busy polling spends some to save latency).
        r.cpu.push((res.cpuUs + after.cpuUs - before.cpuUs) / res.rounds);
      });
    }
    for (const r of Object.values(results)) {
      r.us = r.samples && r.samples.length ? F.median(r.samples) : NaN;
      r.cpuUs = r.cpu && r.cpu.length ? F.median(r.cpu) : NaN;
    }
    return { iters: config.pingpong.iters, repeat: config.repeat, results };
  } finally {
    await stopAll(started);
  }
}

function renderPingpong(res, ceiling) {
  const vals = {};
  for (const [t, r] of Object.entries(res.results)) vals[t] = { value: r.us };
  const rows = Object.entries(res.results).map(([t, r]) => r.error ? [t, 'FAILED', '', F.failed(r.error)] : [t, F.num(r.us), F.num(r.cpuUs), t === 'scif' ? scifRatios(vals, 'lower') : '']);
  if (ceiling && ceiling.rings && Number.isFinite(ceiling.rings[0].rttUs)) rows.push([`C ring (spinning)`, F.num(ceiling.rings[0].rttUs), '', '']);
  return F.table(`2. 8-byte ping-pong with an echo server child, µs per round trip (${res.iters} round trips, median of runs), and CPU µs both processes spent per round trip; lower is better`,
    [{ name: 'transport' }, { name: 'µs', right: true }, { name: 'CPU µs', right: true }, { name: 'ratio' }], rows);
}

module.exports = { throughput, renderThroughput, renderMemory, pingpong, renderPingpong, scifRatios };
