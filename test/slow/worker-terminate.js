// Soak: twenty workers terminated from outside at twenty points of their
// conversations (test/worker.js has one of each kind): the process survives
// every one and the server sees each connection end.
require('../fixtures/fabric');
const t = require('tap');
const { echoServer, startWorker } = require('../fixtures/workers');

t.test('twenty workers terminated at twenty points of their conversations', async (t) => {
  const { port, ends } = await echoServer(t);
  for (let i = 0; i < 20; i++) {
    const w = startWorker({ port, rounds: Infinity, report: 1 + i * 37 });
    await w.message;
    await w.w.terminate();
    t.equal(await w.exit, 1, `worker ${i}`);
  }
  const seen = await Promise.all(ends);
  t.equal(seen.filter((e) => e === 'close' || e === 'ECONNRESET').length, 20, 'the server saw every connection end');
});
