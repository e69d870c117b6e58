// One connection flooding a server must not starve another connection to it
// (issue 13: a flood costs bounded CPU and doorbells are coalesced). The
// measure is bytes, not time: the quiet connection's round trips must all
// complete while the flooding one is still going, long before it has pushed
// FLOOD_LIMIT through the server. (How long the round trips take beside a
// flood, against TCP and Unix sockets, is bench section 2b.)
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');
const { startPeer } = require('./fixtures/peer');

const ROUNDS = 300;
const FLOOD_LIMIT = 64 << 20;

function flood(sock) {
  const state = { written: 0, echoed: 0, stopped: false };
  const chunk = Buffer.alloc(64, 0x66);
  sock.on('data', (d) => { state.echoed += d.length; });
  // Writes that complete at once never say false: a turn of the loop after
  // every 256 writes lets the other connection's events run.
  const pump = () => {
    for (let i = 0; i < 256 && !state.stopped; i++) {
      state.written += chunk.length;
      if (!sock.write(chunk)) {
        sock.once('drain', pump);
        return;
      }
    }
    if (!state.stopped) setImmediate(pump);
  };
  pump();
  return state;
}

function roundTrips(sock, n) {
  return new Promise((resolve, reject) => {
    const msg = Buffer.from('ping1234');
    let got = 0;
    let done = 0;
    sock.on('error', reject);
    sock.on('data', (d) => {
      got += d.length;
      while (got >= 8) {
        got -= 8;
        if (++done === n) return resolve(done);
        sock.write(msg);
      }
    });
    sock.write(msg);
  });
}

t.test('round trips complete beside a connection flooding the same server', async (t) => {
  const peer = startPeer(t, 1, 'echo');
  const { port } = await peer.next();
  const flooder = net.connect({ node: 1, port });
  await new Promise((resolve) => flooder.once('connect', resolve));
  const state = flood(flooder);
  // The flood is under way before the conversation starts.
  while (state.echoed < 1 << 20) await new Promise(setImmediate);
  const talker = net.connect({ node: 1, port });
  const starved = new Promise((resolve) => {
    const look = () => {
      if (state.written >= FLOOD_LIMIT) resolve('starved');
      else if (!state.stopped) setImmediate(look);
    };
    look();
  });
  const outcome = await Promise.race([roundTrips(talker, ROUNDS).then(() => 'done'), starved]);
  state.stopped = true;
  t.equal(outcome, 'done', `${ROUNDS} round trips done before the flood pushed ${FLOOD_LIMIT >> 20} MiB`);
  t.ok(state.echoed > 1 << 20, `the flood kept moving too (${(state.echoed / 1e6).toFixed(1)} MB echoed)`);
  talker.destroy();
  flooder.destroy();
});
