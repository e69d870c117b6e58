'use strict';
// Starting the processes of one measurement: a server peer (bench/peers.js)
// and a client (bench/client.js) per transport. For scif the server plays
// card node 1 and the client the host, node 0, on the run's own fabric.
const path = require('node:path');
const { Peer } = require('./proc');

const PEERS = path.join(__dirname, '..', 'peers.js');
const CLIENT = path.join(__dirname, '..', 'client.js');

function env(ctx, node, extra) {
  return { SCIF_NET_FABRIC: ctx.fabric, SCIF_NET_NODE: String(node), BENCH_TMP: ctx.tmp, ...extra };
}

/**
 * { server, client } for one transport; both stopped by stopPair. A lane may
 * be a transport name or { name, transport, env } (a variant, e.g. another
 * SCIF_NET_RING).
 */
async function startPair(ctx, kind, lane, { gc = false } = {}) {
  const { name, transport, env: extra } = typeof lane === 'string' ? { name: lane, transport: lane, env: {} } : lane;
  const execArgv = gc ? ['--expose-gc'] : [];
  const server = await Peer.start(PEERS, [kind, transport], {
    env: env(ctx, transport === 'scif' ? 1 : 0, extra), execArgv, label: `${kind} server (${name})`,
  });
  try {
    const client = await Peer.start(CLIENT, [transport], { env: env(ctx, 0, extra), execArgv, label: `client (${name})` });
    return { server, client, address: server.info.address };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function stopPair(pair) {
  if (!pair) return;
  await Promise.all([pair.client.stop(), pair.server.stop()]);
}

/** startPair for every transport (or lane); one that cannot start is recorded in .errors. */
async function startAll(ctx, kind, opts, lanes = ctx.config.transports) {
  const pairs = {};
  const errors = {};
  for (const lane of lanes) {
    const name = typeof lane === 'string' ? lane : lane.name;
    try {
      pairs[name] = await startPair(ctx, kind, lane, opts);
    } catch (err) {
      errors[name] = err;
    }
  }
  return { pairs, errors };
}

async function stopAll({ pairs }) {
  await Promise.all(Object.values(pairs).map(stopPair));
}

/** A result per name: fresh() for a pair that started, its error for one that did not. */
function resultsFor(started, names, fresh) {
  const results = {};
  for (const t of names) results[t] = started.errors[t] ? { error: started.errors[t].message } : fresh();
  return results;
}

/**
 * One repetition of a measurement: measure(pair, result) for every pair that
 * started and has not failed, in an order that rotates with rep (so a slow
 * patch of the machine does not land on one transport only). A failure is
 * recorded in that result, and the others go on.
 */
async function eachInTurn(ctx, pairs, results, rep, label, measure) {
  const names = Object.keys(results);
  const k = rep % names.length;
  for (const t of names.slice(k).concat(names.slice(0, k))) {
    const r = results[t];
    if (!pairs[t] || r.error) continue;
    try {
      await measure(pairs[t], r);
    } catch (err) {
      r.error = err.message;
    }
    ctx.progress(`${label} ${t} rep ${rep + 1}`);
  }
}

module.exports = { startPair, stopPair, startAll, stopAll, resultsFor, eachInTurn };
