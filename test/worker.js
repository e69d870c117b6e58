// scif-net in worker threads: each worker's sockets work, and a worker that
// goes away in the middle of a conversation (process.exit() inside a 'data'
// callback, or terminate() from outside) takes its connections down cleanly -
// no crash of the process, and the peer sees them end.
require('./fixtures/fabric');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const net = require('..');

if (!isMainThread) {
  const sock = net.connect(workerData.port);
  let rounds = 0;
  sock.on('connect', () => sock.write('ping'));
  sock.on('data', () => {
    rounds++;
    if (rounds === workerData.report) parentPort.postMessage({ rounds });
    if (rounds === workerData.exitAt) process.exit(7);  // from inside the callback
    if (rounds === workerData.rounds) return sock.end();
    sock.write('ping');
  });
  return;
}

const t = require('tap');

async function echoServer(t) {
  const ends = [];
  const server = net.createServer((s) => {
    const end = new Promise((resolve) => {
      s.on('error', (err) => resolve(err.code));
      s.on('close', () => resolve('close'));
    });
    ends.push(end);
    s.pipe(s);
  });
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => new Promise((r) => server.close(r)));
  return { port: server.address().port, ends };
}

function start(data) {
  const w = new Worker(__filename, { workerData: data });
  const exit = new Promise((resolve) => w.once('exit', resolve));
  const error = new Promise((resolve) => w.once('error', resolve));
  return { w, exit, error, message: new Promise((resolve) => w.once('message', resolve)) };
}

t.test('a worker talks over SCIF and ends normally', async (t) => {
  const { port, ends } = await echoServer(t);
  const w = start({ port, rounds: 2000, report: 2000 });
  t.same(await w.message, { rounds: 2000 });
  t.equal(await w.exit, 0);
  t.equal(await ends[0], 'close', 'the server saw the connection end');
});

t.test('a worker that exits inside a data callback, mid-conversation', async (t) => {
  const { port, ends } = await echoServer(t);
  const w = start({ port, rounds: Infinity, exitAt: 1000 });
  t.equal(await w.exit, 7, "the worker's own exit code: the process lives on");
  t.ok(['close', 'ECONNRESET'].includes(await ends[0]), 'the server saw the connection end');
});

t.test('a worker terminated from outside while it talks', async (t) => {
  const { port, ends } = await echoServer(t);
  const w = start({ port, rounds: Infinity, report: 500 });
  t.same(await w.message, { rounds: 500 });
  await w.w.terminate();
  t.equal(await w.exit, 1);
  t.ok(['close', 'ECONNRESET'].includes(await ends[0]), 'the server saw the connection end');
});

t.test('twenty workers terminated at twenty points of their conversations', async (t) => {
  const { port, ends } = await echoServer(t);
  for (let i = 0; i < 20; i++) {
    const w = start({ port, rounds: Infinity, report: 1 + i * 37 });
    await w.message;
    await w.w.terminate();
    t.equal(await w.exit, 1, `worker ${i}`);
  }
  const seen = await Promise.all(ends);
  t.equal(seen.filter((e) => e === 'close' || e === 'ECONNRESET').length, 20, 'the server saw every connection end');
});
