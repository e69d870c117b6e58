'use strict';
// Section 2b: a flood beside a conversation. One connection writes 64-byte
// chunks to an echo server child as fast as backpressure allows while another
// connection to the same server does 8-byte round trips: the round trip's
// p50/p99/max with and without the flood, and the server's event-loop delay
// meanwhile. A transport whose flood starves the others shows it here (issue
// 13: "doorbells are coalesced so a flood cannot starve other connections").
const { startAll, stopAll, resultsFor, eachInTurn } = require('../lib/launch');
const F = require('../lib/table');

async function run(ctx) {
  const { config } = ctx;
  const started = await startAll(ctx, 'echo');
  const { pairs } = started;
  const results = resultsFor(started, config.transports, () => ({ quiet: [], flood: [] }));
  try {
    for (let rep = 0; rep < config.repeat; rep++) {
      await eachInTurn(ctx, pairs, results, rep, 'flood', async (pair, r) => {
        for (const flood of [false, true]) {
          await pair.server.call('lag');
          const res = await pair.client.call('flooded', { address: pair.address, ...config.flood, flood }, config.timeoutMs);
          res.lag = await pair.server.call('lag');
          r[flood ? 'flood' : 'quiet'].push(res);
        }
      });
    }
    const med = (runs, pick) => F.median(runs.map(pick));
    for (const r of Object.values(results)) {
      if (r.error) continue;
      for (const k of ['quiet', 'flood']) {
        const runs = r[k];
        r[`${k}Summary`] = {
          p50: med(runs, (x) => x.p50), p99: med(runs, (x) => x.p99), max: med(runs, (x) => x.max),
          lagP99: med(runs, (x) => x.lag.p99), lagMax: med(runs, (x) => x.lag.max),
          floodBytes: k === 'flood' ? med(runs, (x) => x.floodBytes) : 0,
        };
      }
    }
    return { ...config.flood, repeat: config.repeat, results };
  } finally {
    await stopAll(started);
  }
}

function render(res) {
  const rows = [];
  const q = (t) => res.results[t] && res.results[t].floodSummary;
  for (const [t, r] of Object.entries(res.results)) {
    if (r.error) {
      rows.push([t, 'FAILED', '', '', '', F.failed(r.error)]);
      continue;
    }
    const a = r.quietSummary;
    const b = r.floodSummary;
    let ratio = '';
    if (t === 'scif') {
      ratio = ['tcp', 'unix'].filter((o) => q(o)).map((o) => `p99 ${F.ratio(b.p99, q(o).p99)} ${o}`).join(', ');
    }
    rows.push([t, `${F.num(a.p50)} / ${F.num(a.p99)}`, `${F.num(b.p50)} / ${F.num(b.p99)} / ${F.num(b.max)}`,
      `${F.num(b.lagP99)} / ${F.num(b.lagMax)}`, `${(b.floodBytes / 1e6).toFixed(1)} MB`, ratio]);
  }
  return F.table(`2b. 8-byte round trips beside a flooding connection to the same echo server child (${res.iters} round trips, median of ${res.repeat} run(s)), µs; lower is better`,
    [{ name: 'transport' }, { name: 'quiet p50 / p99', right: true }, { name: 'flooded p50 / p99 / max', right: true },
      { name: 'server loop delay p99 / max', right: true }, { name: 'flood moved', right: true }, { name: 'ratio' }], rows,
    ['flood: 64-byte writes as fast as backpressure allows, echoed back and discarded; "flood moved": bytes the flooding connection wrote during the round trips']);
}

module.exports = { run, render };
