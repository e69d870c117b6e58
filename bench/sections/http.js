'use strict';
// Section 3: HTTP requests per second through undici (keep-alive, several
// requests in flight) against a node:http server in a child process.
// The comparison the targets name is SCIF against a Unix socket; TCP is shown
// too.
const { startAll, stopAll, resultsFor, eachInTurn } = require('../lib/launch');
const F = require('../lib/table');
const { scifRatios } = require('./stream');

async function run(ctx) {
  const { config } = ctx;
  const started = await startAll(ctx, 'http');
  const { pairs } = started;
  const results = resultsFor(started, config.transports, () => ({ samples: [] }));
  try {
    // Warm-up: one untimed run per transport, so both sides are compiled
    // before the first timed one.
    for (const t of Object.keys(pairs)) {
      await pairs[t].client.call('http', { address: pairs[t].address, ...config.http }, config.timeoutMs).catch(() => {});
    }
    for (let rep = 0; rep < config.repeat; rep++) {
      await eachInTurn(ctx, pairs, results, rep, 'http', async (pair, r) => {
        const res = await pair.client.call('http', { address: pair.address, ...config.http }, config.timeoutMs);
        r.samples.push(res.requests / (res.ns / 1e9));
      });
    }
    for (const r of Object.values(results)) r.rps = r.samples && r.samples.length ? F.median(r.samples) : NaN;
    return { ...config.http, repeat: config.repeat, results };
  } finally {
    await stopAll(started);
  }
}

function render(res) {
  const vals = {};
  for (const [t, r] of Object.entries(res.results)) vals[t] = { value: r.rps };
  const rows = Object.entries(res.results).map(([t, r]) => r.error ? [t, 'FAILED', F.failed(r.error)] : [t, F.num(r.rps), t === 'scif' ? scifRatios(vals) : '']);
  return F.table(`3. HTTP through undici.request to a node:http child, requests/s (${res.requests} requests, ${res.concurrency} in flight, keep-alive); higher is better`,
    [{ name: 'transport' }, { name: 'req/s', right: true }, { name: 'ratio' }], rows);
}

module.exports = { run, render };
