// scif-net in worker threads: each worker's sockets work, and a worker that
// goes away in the middle of a conversation (process.exit() inside a 'data'
// callback, or terminate() from outside) takes its connections down cleanly -
// no crash of the process, and the peer sees them end. (Twenty terminations
// at twenty points: test/slow/worker-terminate.js.)
require('./fixtures/fabric');
const t = require('tap');
const { echoServer, startWorker } = require('./fixtures/workers');

t.test('a worker talks over SCIF and ends normally', async (t) => {
  const { port, ends } = await echoServer(t);
  const w = startWorker({ port, rounds: 2000, report: 2000 });
  t.same(await w.message, { rounds: 2000 });
  t.equal(await w.exit, 0);
  t.equal(await ends[0], 'close', 'the server saw the connection end');
});

t.test('a worker that exits inside a data callback, mid-conversation', async (t) => {
  const { port, ends } = await echoServer(t);
  const w = startWorker({ port, rounds: Infinity, exitAt: 1000 });
  t.equal(await w.exit, 7, "the worker's own exit code: the process lives on");
  t.ok(['close', 'ECONNRESET'].includes(await ends[0]), 'the server saw the connection end');
});

t.test('a worker terminated from outside while it talks', async (t) => {
  const { port, ends } = await echoServer(t);
  const w = startWorker({ port, rounds: Infinity, report: 500 });
  t.same(await w.message, { rounds: 500 });
  await w.w.terminate();
  t.equal(await w.exit, 1);
  t.ok(['close', 'ECONNRESET'].includes(await ends[0]), 'the server saw the connection end');
});
