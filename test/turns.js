// Turns of the loop: endpoints with work the descriptor will not wake them
// for (here recv(0), answered from the next turn) wait in one queue per
// environment (native/turn_queue.h). All that ask in one turn are served in
// the next; one made to ask again later in the turn that served it waits for
// the next; endpoints that keep asking leave the others their turns (and the
// loop: a loop of recv(0), each answered at once, too); one
// closed while it waits is never served and closes once; waiting keeps the
// process alive only for a ref()ed endpoint; a worker's queue goes with the
// worker.
require('./fixtures/fabric');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const t = require('tap');
const net = require('..');
const scif = require('scif-net/scif');

async function endpoints(t, pairs) {
  const l = scif.listen(0);
  const out = [];
  for (let i = 0; i < pairs; i++) out.push(...(await Promise.all([l.accept(), scif.connect({ node: 0, port: l.localPort })])));
  await l.close();
  t.teardown(() => Promise.all(out.map((ep) => ep.close())));
  return out;
}

// Counts iterations of the event loop (once per check phase) while running.
function loopCounter() {
  let n = 0;
  let running = true;
  const tick = () => {
    n++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return { get now() { return n; }, stop() { running = false; } };
}

const turns = (n) => new Promise((resolve) => {
  const next = (left) => (left === 0 ? resolve() : setImmediate(() => next(left - 1)));
  next(n);
});

t.test('endpoints that ask for a turn together are all served in the same turn', async (t) => {
  const eps = await endpoints(t, 32);
  const loop = loopCounter();
  await turns(2);
  const asked = loop.now;
  const servedAt = await Promise.all(eps.map((ep) => ep.recv(0).then(() => loop.now)));
  loop.stop();
  t.equal(servedAt.length, 64);
  t.equal(new Set(servedAt).size, 1, 'every one in the same turn');
  t.ok(servedAt[0] <= asked + 1, 'the one after they asked');
});

t.test('an endpoint that asks again later in the turn that served it waits for the next', async (t) => {
  const [a, b] = await endpoints(t, 1);
  const loop = loopCounter();
  await turns(2);
  const order = [];
  let again;
  await Promise.all([a, b].map((ep) => ep.recv(0).then(() => {
    order.push({ ep, at: loop.now });
    if (order.length === 2) again = order[0].ep.recv(0).then(() => loop.now);
  })));
  const servedAgain = await again;
  loop.stop();
  t.equal(order[0].at, order[1].at, 'both in one turn');
  t.equal(servedAgain, order[0].at + 1, 'the first, asking again while the second is served: in the next turn');
});

t.test('endpoints that keep asking leave the loop and the others their turns', async (t) => {
  const [a, b, c] = await endpoints(t, 2);
  let busy = true;
  const one = Buffer.alloc(1);
  // Every send and recv is answered from a turn.
  const asking = (async () => {
    let rounds = 0;
    while (busy) {
      await Promise.all([a.send(one), b.recv(1), b.send(one), a.recv(1)]);
      rounds++;
    }
    return rounds;
  })();
  const loop = loopCounter();
  await turns(3);
  const waited = [];
  for (let i = 0; i < 20; i++) {
    await turns(1);  // asking from outside its own turn
    const asked = loop.now;
    waited.push(await c.recv(0).then(() => loop.now - asked));
  }
  const loopTurns = loop.now;
  loop.stop();
  busy = false;
  const rounds = await asking;
  t.ok(waited.every((w) => w <= 1), `the other is served in the next turn every time (turns waited: ${waited})`);
  t.ok(rounds >= 10, `the busy ones went on meanwhile (${rounds} rounds in ${loopTurns} turns)`);
});

t.test('a loop of recv(0), each answered at once, still leaves the event loop its turns', async (t) => {
  const [, b] = await endpoints(t, 1);
  let busy = true;
  let rounds = 0;
  const asking = (async () => {
    while (busy) {
      await b.recv(0);
      rounds++;
    }
  })();
  const loop = loopCounter();
  await turns(3);  // never reached if the receives kept the loop to themselves
  loop.stop();
  busy = false;
  await asking;
  t.ok(loop.now >= 3, `the loop turned (${loop.now} turns, ${rounds} receives)`);
  t.ok(rounds > 0, 'the receives went on meanwhile');
});

t.test('an endpoint closed while it waits for its turn is not served, and closes once', async (t) => {
  const eps = await endpoints(t, 8);
  const outcomes = eps.map(() => []);
  const loop = loopCounter();
  // Whichever is served first closes all the others, which wait in the
  // same turn.
  let first = null;
  const closes = [];
  const asked = eps.map((ep, i) => ep.recv(0).then(
    () => {
      outcomes[i].push('served');
      if (first !== null) return;
      first = i;
      eps.forEach((other, j) => {
        if (j !== i) closes.push(other.close().then(() => outcomes[j].push('closed')));
      });
    },
    (err) => outcomes[i].push(err.code)));
  // And one that asks and closes at once.
  const [x, y] = await endpoints(t, 1);
  const xAsked = x.recv(0).then(() => 'served', (err) => err.code);
  const xClosed = x.close().then(() => 'closed');
  await Promise.all(asked);
  await Promise.all(closes);
  t.same(await Promise.all([xAsked, xClosed]), ['ECANCELED', 'closed']);
  await turns(5);
  loop.stop();
  t.same(outcomes[first], ['served']);
  outcomes.forEach((o, i) => {
    if (i !== first) t.same(o, ['ECANCELED', 'closed'], `endpoint ${i}: cancelled, closed once, never served`);
  });
  await y.close();
});

t.test("a socket destroyed while its turn is pending emits 'close' once and nothing else, as node:net's", async (t) => {
  const run = async (mod, host) => {
    const server = mod.createServer((s) => {
      s.on('error', () => {});
      s.resume();
    });
    await new Promise((r) => server.listen(0, host, r));
    const port = server.address().port;
    const socks = await Promise.all(Array.from({ length: 16 }, () => new Promise((resolve) => {
      const c = mod.connect(port, host, () => resolve(c));
    })));
    const logs = socks.map(() => []);
    socks.forEach((c, i) => {
      for (const ev of ['close', 'error', 'end', 'finish', 'data', 'connect', 'drain', 'timeout']) c.on(ev, () => logs[i].push(ev));
    });
    // end() finishes at once and reports from the next turn; destroy() comes first.
    socks.forEach((c) => {
      c.end('x');
      c.destroy();
    });
    await turns(10);
    await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => server.close(r));
    return logs;
  };
  const tcp = await run(require('node:net'), '127.0.0.1');
  const scifLogs = await run(net, undefined);
  t.same(scifLogs, tcp);
  t.ok(tcp.every((l) => l.length === 1 && l[0] === 'close'));
});

t.test('waiting for a turn keeps the process alive only for a ref()ed endpoint', async (t) => {
  const fixture = path.join(__dirname, 'fixtures', 'turn-liveness.js');
  const run = (scenario) => new Promise((resolve, reject) => {
    execFile(process.execPath, [fixture, scenario], { timeout: 20000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim().split('\n'))));
  });
  const served = (n) => Array.from({ length: n }, (_, i) => `served ${i + 1}`);
  const expected = {
    'waits, unref()ed': ['exit'],
    'waits, ref()ed': [...served(1), 'exit'],
    'waits unref()ed, then ref()': [...served(1), 'exit'],
    'waits ref()ed, then unref()': ['exit'],
    'many wait, one of them ref()ed': [...served(22), 'exit'],
    'busy, unref()ed': ['exit'],
    'busy, ref()ed': ['alive'],
    'busy unref()ed, and a ref()ed turn': [...served(1), 'exit'],
  };
  for (const [scenario, outcome] of Object.entries(expected)) t.same(await run(scenario), outcome, scenario);
});

t.test("a worker's endpoints wait in the worker's queue, which goes with it", async (t) => {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const scif = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'scif'))});
    (async () => {
      const l = scif.listen(0);
      const [a, b] = await Promise.all([l.accept(), scif.connect({ node: 0, port: l.localPort })]);
      await l.close();
      const one = Buffer.alloc(1);
      let rounds = 0;
      for (;;) {
        // Many waiting in every turn when the worker goes.
        await Promise.all([a.send(one), b.recv(1), b.send(one), a.recv(1), a.recv(0), b.recv(0)]);
        if (++rounds === 200) parentPort.postMessage(rounds);
        if (rounds === 400 && workerData.exit) process.exit(7);
      }
    })();`;
  const [c] = await endpoints(t, 1);
  for (const exit of [false, true]) {
    const w = new Worker(source, { eval: true, workerData: { exit } });
    const exited = new Promise((resolve) => w.once('exit', resolve));
    w.once('error', (err) => t.fail(err.stack));
    t.equal(await new Promise((resolve) => w.once('message', resolve)), 200, 'the worker turns');
    const mine = await c.recv(0).then(() => 'served');
    t.equal(mine, 'served', 'and so does this thread, by its own queue');
    if (!exit) await w.terminate();
    t.equal(await exited, exit ? 7 : 1, exit ? 'process.exit() inside a turn' : 'terminated from outside');
  }
  t.equal(await c.recv(0).then(() => 'served'), 'served', "this thread's queue outlives the workers'");
});
