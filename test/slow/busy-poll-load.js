// Soak: busy polling (native/busy_poll.h) under keep-alive HTTP load, 16
// connections x 1200 requests, each answer checked against its request. A
// lost wake-up stalls a connection and fails a request.
// The spinner is off by default: these tests ask for it (children inherit it).
process.env.SCIF_NET_BUSY_POLL ??= '50';
require('../fixtures/fabric');
const t = require('tap');
const { startPeer } = require('../fixtures/peer');

t.test('keep-alive HTTP under load: every request answered, none stalls', async (t) => {
  const undici = require('undici');
  const { createDispatcher } = require('scif-net/http');
  const peer = startPeer(t, 1, 'http');
  const { port } = await peer.until((m) => m.ready);
  const dispatcher = createDispatcher({ connections: 16 });
  t.teardown(() => dispatcher.close());
  let wrong = 0;
  let done = 0;
  // A lost wake-up stalls a connection until the server's keep-alive timeout
  // resets it: the request then fails, and so does this test.
  await Promise.all(Array.from({ length: 16 }, async (_, w) => {
    for (let i = 0; i < 1200; i++) {
      const url = `/w${w}/r${i}`;
      const res = await undici.request(`http://mic0:${port}${url}`, { dispatcher });
      const body = await res.body.json();
      if (res.statusCode !== 200 || body.url !== url) wrong++;
      done++;
    }
  }));
  t.equal(done, 16 * 1200);
  t.equal(wrong, 0, 'each answer is to its own request');
});
