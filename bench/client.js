'use strict';
// The client side of every benchmark, one child process per transport:
//
//   node bench/client.js <transport>
//
// It runs what the orchestrator asks for against a peer's address and answers
// with raw figures (nanoseconds, bytes, counts); bench/run.js does the maths.
const { serve } = require('./lib/proc');
const T = require('./lib/transports');

const [transport] = process.argv.slice(2);
const now = () => process.hrtime.bigint();
const held = [];

/**
 * Writes `total` bytes in `size`-byte writes as fast as backpressure allows;
 * ns until the server has them all, this process's CPU time meanwhile, and
 * (scif) how the bytes moved.
 */
async function throughput({ address, size, total }) {
  const sock = await T.connect(transport, address);
  const cpu0 = process.cpuUsage();
  const buf = Buffer.alloc(size, 0x61);
  const header = Buffer.alloc(8);
  header.writeBigUInt64LE(BigInt(total));
  return new Promise((resolve, reject) => {
    let sent = 0;
    let drains = 0;
    sock.once('error', reject);
    const t0 = now();
    sock.once('data', () => {
      const ns = Number(now() - t0);
      const cpu = process.cpuUsage(cpu0);
      const scifStats = sock.scifStats;
      sock.destroy();
      resolve({ ns, bytes: total, writes: total / size, drains, cpuUs: cpu.user + cpu.system, scifStats });
    });
    sock.write(header);
    const pump = () => {
      while (sent < total) {
        sent += size;
        if (!sock.write(buf)) {
          drains++;
          sock.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

/**
 * `rounds` 8-byte round trips on sock, each echoed; calls onEach(k, t) with
 * the round trip's number (1 on) and the time it came back.
 */
function roundTrips(sock, rounds, onEach) {
  if (typeof sock.setNoDelay === 'function') sock.setNoDelay(true);
  const msg = Buffer.alloc(8, 0x70);
  return new Promise((resolve, reject) => {
    let got = 0;
    let done = 0;
    sock.once('error', reject);
    sock.on('data', (chunk) => {
      got += chunk.length;
      if (got < 8) return;
      got -= 8;
      done++;
      onEach(done, now());
      if (done === rounds) {
        resolve();
        return;
      }
      sock.write(msg);
    });
    sock.write(msg);
  });
}

/**
 * 8-byte ping-pong with an echo server: ns for `iters` round trips after
 * `warmup` ones, and this process's CPU time over all of them.
 */
async function pingpong({ address, iters, warmup }) {
  const sock = await T.connect(transport, address);
  const cpu0 = process.cpuUsage();
  let t0 = now();
  let t1 = t0;
  await roundTrips(sock, warmup + iters, (k, t) => {
    if (k === warmup) t0 = t;
    t1 = t;
  });
  const cpu = process.cpuUsage(cpu0);
  sock.destroy();
  return { ns: Number(t1 - t0), iters, rounds: warmup + iters, cpuUs: cpu.user + cpu.system };
}

/**
 * 8-byte round trips on one connection while (flood) another connection to
 * the same server writes 64-byte chunks as fast as backpressure allows and
 * reads what comes back: every round trip's µs (p50, p99, max), and the
 * flooding connection's bytes meanwhile.
 */
async function flooded({ address, iters, warmup, flood }) {
  let flooder = null;
  let flooded = 0;
  if (flood) {
    flooder = await T.connect(transport, address);
    flooder.on('error', () => {});
    flooder.resume();
    const chunk = Buffer.alloc(64, 0x66);
    // A socket whose writes complete at once (TCP, Unix) never says false:
    // a turn of the loop after every 256 writes lets the round trips run.
    const pump = () => {
      for (let i = 0; i < 256 && !flooder.destroyed; i++) {
        flooded += chunk.length;
        if (!flooder.write(chunk)) {
          flooder.once('drain', pump);
          return;
        }
      }
      if (!flooder.destroyed) setImmediate(pump);
    };
    pump();
  }
  const sock = await T.connect(transport, address);
  const rtts = [];
  const startFlooded = flooded;
  let last = now();
  await roundTrips(sock, warmup + iters, (k, t) => {
    if (k > warmup) rtts.push(Number(t - last) / 1e3);
    last = t;
  });
  sock.destroy();
  if (flooder) flooder.destroy();
  rtts.sort((a, b) => a - b);
  const at = (q) => rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))];
  return { p50: at(0.5), p99: at(0.99), max: rtts[rtts.length - 1], floodBytes: flooded - startFlooded };
}

/** `requests` GETs through undici, `concurrency` in flight, keep-alive: ns for them (after a warm-up). */
async function httpRequests({ address, requests, concurrency, warmup }) {
  const undici = T.undici();
  const { dispatcher, origin } = T.httpClient(transport, address, { keepAliveTimeout: 60000, connections: concurrency });
  let bytes = 0;
  const one = async () => {
    const res = await undici.request(`${origin}/`, { dispatcher });
    const body = await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    bytes += body.byteLength;
  };
  const batch = async (n) => {
    let next = 0;
    const worker = async () => {
      while (next < n) {
        next++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  };
  try {
    await batch(warmup);
    const t0 = now();
    await batch(requests);
    const ns = Number(now() - t0);
    await dispatcher.close();
    return { ns, requests, bytes };
  } catch (err) {
    dispatcher.destroy().catch(() => {});
    throw err;
  }
}

/** Opens n connections, at most `parallel` connecting at a time, and keeps them: ns until all are connected. */
async function open({ address, n, parallel }) {
  const t0 = now();
  let next = 0;
  let errors = 0;
  let firstError = null;
  const worker = async () => {
    while (next < n) {
      next++;
      try {
        const sock = await T.connect(transport, address);
        sock.on('error', () => {});
        held.push(sock);
      } catch (err) {
        errors++;
        firstError = firstError || `${err.code || ''} ${err.message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return { ns: Number(now() - t0), opened: held.length, errors, firstError };
}

/** Ends every held connection: ns until all have closed on this side. */
async function closeAll() {
  const t0 = now();
  await Promise.all(held.splice(0).map((sock) => new Promise((resolve) => {
    if (sock.destroyed) {
      resolve();
      return;
    }
    sock.once('close', resolve);
    sock.end();
    sock.resume();
  })));
  return { ns: Number(now() - t0) };
}

serve({
  throughput,
  pingpong,
  flooded,
  http: httpRequests,
  open,
  closeAll,
  stats: () => ({ ...T.stats(), open: held.length }),
  gc: () => {
    if (global.gc) {
      global.gc();
      global.gc();
    }
    return T.stats();
  },
}, { pid: process.pid });
