'use strict';
// Section 4b: many idle connections. One client process opens N connections
// to a server child and holds them; we report how long opening took, memory
// and descriptors per connection on both sides, and how long closing took.
// One transport at a time (they would otherwise share the descriptor and
// memory figures of the machine), in turn, BENCH_CONNS_REPEAT times; TCP
// loopback and a Unix socket for scale.
const { startPair, stopPair } = require('../lib/launch');
const F = require('../lib/table');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitOpen(server, want, timeoutMs) {
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await server.call('stats');
    if (s.open === want) return Number(process.hrtime.bigint() - t0);
    if (Date.now() > deadline) throw new Error(`server holds ${s.open} connections, expected ${want}`);
    await sleep(20);
  }
}

async function one(ctx, t) {
  const { config } = ctx;
  const { n, parallel } = config.conns;
  const pair = await startPair(ctx, 'hold', t, { gc: true });
  try {
    // One connection opened and closed first, on every transport: what the
    // first one sets up once (the client loads scif-net at its first connect;
    // code paged in; the fabric's tables and threads) is no connection's
    // share. Reported on its own.
    const [cw, sw] = await Promise.all([pair.client.call('gc'), pair.server.call('gc')]);
    await pair.client.call('open', { address: pair.address, n: 1, parallel: 1 }, config.timeoutMs);
    await waitOpen(pair.server, 1, config.timeoutMs);
    await pair.client.call('closeAll', {}, config.timeoutMs);
    await waitOpen(pair.server, 0, config.timeoutMs);
    const [c0, s0] = await Promise.all([pair.client.call('gc'), pair.server.call('gc')]);
    const opened = await pair.client.call('open', { address: pair.address, n, parallel }, config.timeoutMs);
    const serverWaitNs = await waitOpen(pair.server, opened.opened, config.timeoutMs);
    const [c1, s1] = await Promise.all([pair.client.call('gc'), pair.server.call('gc')]);
    const closed = await pair.client.call('closeAll', {}, config.timeoutMs);
    const serverCloseNs = await waitOpen(pair.server, 0, config.timeoutMs);
    const [c2, s2] = await Promise.all([pair.client.call('gc'), pair.server.call('gc')]);
    const per = (a, b, key) => (b[key] - a[key]) / Math.max(opened.opened, 1);
    return {
      n,
      opened: opened.opened,
      errors: opened.errors,
      firstError: opened.firstError,
      openNs: opened.ns,
      serverSawAllNs: serverWaitNs,
      closeNs: closed.ns,
      serverClosedNs: serverCloseNs,
      client: { first: c0.rss - cw.rss, before: c0, open: c1, closed: c2, rssPerConn: per(c0, c1, 'rss'), fdsPerConn: per(c0, c1, 'fds') },
      server: { first: s0.rss - sw.rss, before: s0, open: s1, closed: s2, rssPerConn: per(s0, s1, 'rss'), fdsPerConn: per(s0, s1, 'fds') },
    };
  } finally {
    await stopPair(pair);
  }
}

// The median of a transport's repetitions, field by field (each run's own
// figures stay in `runs`, for the JSON).
function medianOf(runs) {
  const ok = runs.filter((r) => !r.error);
  if (!ok.length) return { error: runs[0].error, runs };
  const m = (f) => F.median(ok.map(f));
  const side = (k) => ({
    first: m((r) => r[k].first),
    rssPerConn: m((r) => r[k].rssPerConn),
    fdsPerConn: m((r) => r[k].fdsPerConn),
    openFds: m((r) => r[k].open.fds),
    keptRss: m((r) => r[k].closed.rss - r[k].before.rss),
    youngGrew: m((r) => r[k].open.youngGen - r[k].before.youngGen),
  });
  const failed = ok.find((r) => r.errors);
  return {
    n: ok[0].n,
    repeats: ok.length,
    opened: Math.min(...ok.map((r) => r.opened)),
    errors: ok.reduce((a, r) => a + r.errors, 0),
    firstError: failed ? failed.firstError : undefined,
    openNs: m((r) => r.openNs + r.serverSawAllNs),
    closeNs: m((r) => r.closeNs + r.serverClosedNs),
    rssPerConnBoth: m((r) => r.client.rssPerConn + r.server.rssPerConn),
    client: side('client'),
    server: side('server'),
    runs,
  };
}

// Transports in turn within each repetition, in rotating order, as section 1's.
async function run(ctx) {
  const { transports, conns } = ctx.config;
  const runs = Object.fromEntries(transports.map((t) => [t, []]));
  for (let rep = 0; rep < conns.repeat; rep++) {
    const k = rep % transports.length;
    for (const t of transports.slice(k).concat(transports.slice(0, k))) {
      try {
        runs[t].push(await one(ctx, t));
      } catch (err) {
        runs[t].push({ error: err.message });
      }
      ctx.progress(`connections ${t} rep ${rep + 1}`);
    }
  }
  const results = Object.fromEntries(transports.map((t) => [t, medianOf(runs[t])]));
  return { n: conns.n, parallel: conns.parallel, repeat: conns.repeat, results };
}

function render(res) {
  const rows = [];
  const r = res.results;
  for (const [t, x] of Object.entries(r)) {
    if (x.error) {
      rows.push([t, 'FAILED', '', '', '', '', '', '', '', '', F.failed(x.error)]);
      continue;
    }
    let note = x.errors ? `${x.errors} failed: ${x.firstError}` : '';
    if (t === 'scif' && !x.errors && r.tcp && !r.tcp.error) {
      note = `open time ${F.ratio(x.openNs, r.tcp.openNs)} tcp, RSS/conn ${F.ratio(x.rssPerConnBoth, r.tcp.rssPerConnBoth)} tcp`;
    }
    const grew = [x.client.youngGrew, x.server.youngGrew];
    if (grew.some((g) => g !== 0)) note += `${note ? '; ' : ''}young generation grew ${F.mem(grew[0])} / ${F.mem(grew[1])}`;
    rows.push([
      t,
      `${x.opened}/${x.n}`,
      F.ms(x.openNs),
      F.mem(x.client.rssPerConn),
      F.mem(x.server.rssPerConn),
      `${F.num(x.client.fdsPerConn)} / ${F.num(x.server.fdsPerConn)}`,
      `${x.client.openFds} / ${x.server.openFds}`,
      F.ms(x.closeNs),
      `${F.mem(x.client.first)} / ${F.mem(x.server.first)}`,
      `${F.mem(x.client.keptRss)} / ${F.mem(x.server.keptRss)}`,
      note,
    ]);
  }
  return F.table(`4b. ${res.n} concurrent idle connections from one client process (at most ${res.parallel} connecting at once), then closed; median of ${res.repeat} run(s)`,
    [{ name: 'transport' }, { name: 'open', right: true }, { name: 'open time', right: true }, { name: 'RSS/conn cli', right: true },
      { name: 'RSS/conn srv', right: true }, { name: 'fds/conn cli/srv', right: true }, { name: 'fds open cli/srv', right: true },
      { name: 'close time', right: true }, { name: 'first conn RSS cli/srv', right: true }, { name: 'RSS kept after close cli/srv', right: true }, { name: 'ratio' }], rows,
    ['open time: until the server has accepted all; RSS after a forced GC on both sides; "kept" = RSS after closing all minus before opening',
      'before the measured ones, one connection is opened and closed on each transport, so what the first sets up once is not counted per connection;',
      '"first conn RSS": what that one left in RSS after it closed (the transport\'s one-time cost: for scif-net, loading it, its addon and the fabric\'s tables)',
      'each figure is the median over the runs (transports in turn, rotating order); the RSS ratio is of client + server per connection',
      '"young generation grew" (client / server): V8 enlarged its young generation while the connections opened (a heuristic of its scavenger, not kept',
      'per connection, and not given back by a GC); its pages are in that side\'s RSS/conn']);
}

module.exports = { run, render };
