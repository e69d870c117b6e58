// Busy polling (native/busy_poll.h): whatever SCIF_NET_BUSY_POLL says, bytes
// arrive intact, an idle process still exits, and a connection kept hot never
// keeps the loop from timers, TCP sockets or other SCIF connections. (Keep-alive
// HTTP under load, the lost wake-up hunt: test/slow/busy-poll-load.js.)
// The spinner is off by default: these tests ask for it (children inherit it).
process.env.SCIF_NET_BUSY_POLL ??= '50';
require('./fixtures/fabric');
const crypto = require('node:crypto');
const nodeNet = require('node:net');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

async function echoPeer(t) {
  const peer = startPeer(t, 1, 'echo');
  const { port } = await peer.until((m) => m.ready);
  return { node: 1, port };
}

for (const setting of ['0', '50', '1000', 'junk']) {
  t.test(`round trips with SCIF_NET_BUSY_POLL=${setting}`, async (t) => {
    const { node, port } = await echoPeer(t);
    const client = startPeer(t, 2, 'pingpong', { node, port, rounds: 2000 }, { env: { SCIF_NET_BUSY_POLL: setting } });
    t.same(await client.next(), { rounds: 2000, mismatches: 0 }, 'every answer matches');
    t.same(await client.exit, { code: 0, signal: null }, 'the process ends by itself once idle');
  });
}

function connect(opts) {
  return new Promise((resolve, reject) => {
    const s = net.connect(opts, () => resolve(s));
    s.once('error', reject);
  });
}

function roundTrip(sock, payload) {
  return new Promise((resolve) => {
    const got = [];
    let n = 0;
    const onData = (d) => {
      got.push(d);
      n += d.length;
      if (n < payload.length) return;
      sock.off('data', onData);
      resolve(Buffer.concat(got));
    };
    sock.on('data', onData);
    sock.write(payload);
  });
}

t.test('a hot connection leaves the loop to timers, TCP and other connections', async (t) => {
  const addr = await echoPeer(t);
  const hot = await connect(addr);
  const other = await connect(addr);
  const tcpServer = nodeNet.createServer((s) => s.pipe(s));
  await new Promise((r) => tcpServer.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => tcpServer.close(r)));

  // Keep `hot` busy with round trips until everything else has been served.
  let stop = false;
  let rounds = 0;
  let mismatches = 0;
  const busy = (async () => {
    while (!stop) {
      const msg = crypto.randomBytes(64);
      if (!(await roundTrip(hot, msg)).equals(msg)) mismatches++;
      rounds++;
    }
  })();
  const timer = new Promise((r) => setTimeout(r, 20));
  const tcp = (async () => {
    const s = nodeNet.connect(tcpServer.address().port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    const back = await roundTrip(s, Buffer.from('over tcp'));
    s.destroy();
    return back.toString();
  })();
  const second = roundTrip(other, Buffer.from('another scif connection'));
  const immediate = new Promise((r) => setImmediate(r));
  await immediate;
  await timer;
  t.equal(await tcp, 'over tcp', 'a TCP round trip completes meanwhile');
  t.equal((await second).toString(), 'another scif connection', 'so does one on another SCIF connection');
  stop = true;
  await busy;
  t.ok(rounds > 0, `the hot connection made ${rounds} round trips meanwhile`);
  t.equal(mismatches, 0, 'and every answer on it matched');
  hot.destroy();
  other.destroy();
});
