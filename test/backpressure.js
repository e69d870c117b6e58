// A slow reader holds the writer back: write() says false, the bytes taken
// from the writer stay bounded while the reader is paused, and nothing is
// lost once it reads again.
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');

t.test('a paused reader bounds what the writer can hand over', async (t) => {
  const TOTAL = 64 * 1024 * 1024;
  let serverSide;
  const server = net.createServer((s) => {
    serverSide = s;
    s.pause();
  });
  await new Promise((r) => server.listen(0, r));
  const connection = new Promise((r) => server.once('connection', r));
  const sock = net.connect(server.address().port);
  await new Promise((r) => sock.once('connect', r));
  // The server's accept may land after our connect (on the hw path it runs
  // on the threadpool): its side is to be there, paused, before we write.
  await connection;

  const chunk = Buffer.alloc(64 * 1024, 0xab);
  let accepted = 0;  // bytes whose write callback fired: taken by the transport
  let queued = 0;
  let sawFalse = false;
  // Offer everything while the reader is paused, respecting backpressure.
  await new Promise((resolve) => {
    const pump = () => {
      while (queued < TOTAL) {
        queued += chunk.length;
        const more = sock.write(chunk, () => (accepted += chunk.length));
        if (!more) {
          sawFalse = true;
          // Wait for 'drain' or for the writer to stall for good.
          const stall = setImmediate(check);
          sock.once('drain', () => {
            clearImmediate(stall);
            pump();
          });
          return;
        }
      }
      resolve();
    };
    let last = -1;
    const check = () => {
      if (accepted === last) return resolve();  // no progress for a whole turn: stalled
      last = accepted;
      setImmediate(check);
    };
    pump();
  });
  t.ok(sawFalse, 'write() returned false');
  // What a paused peer can absorb: its ring, its stream buffer and one read.
  const bound = 16 * 1024 * 1024;
  t.ok(accepted < bound, `bytes taken while the reader is paused (${accepted}) stay below ${bound}`);
  t.ok(sock.writableLength <= 2 * chunk.length + sock.writableHighWaterMark,
    `the writer's own queue stays near its high water mark (${sock.writableLength})`);
  const heldBefore = process.memoryUsage().arrayBuffers;

  // Now read everything: every byte offered arrives.
  let received = 0;
  serverSide.on('data', (d) => (received += d.length));
  serverSide.resume();
  await new Promise((resolve) => {
    const pump = () => {
      while (queued < TOTAL) {
        queued += chunk.length;
        if (!sock.write(chunk)) return sock.once('drain', pump);
      }
      sock.end();
      resolve();
    };
    pump();
  });
  await new Promise((r) => serverSide.once('end', r));
  t.equal(received, TOTAL, 'nothing lost');
  t.ok(heldBefore < 64 * 1024 * 1024, `buffers held while paused (${heldBefore}) are not the whole stream`);
  serverSide.destroy();
  await new Promise((r) => server.close(r));
});

t.test('pause() and resume() on the receiving side stop and restart data events', async (t) => {
  const server = net.createServer((s) => s.end(Buffer.alloc(4 * 1024 * 1024, 1)));
  await new Promise((r) => server.listen(0, r));
  const sock = net.connect(server.address().port);
  let got = 0;
  sock.on('data', (d) => {
    got += d.length;
    if (got >= 1024 * 1024 && !sock.isPaused() && got < 2 * 1024 * 1024) {
      sock.pause();
      const at = got;
      setImmediate(() => setImmediate(() => {
        t.equal(got, at, 'no data while paused');
        sock.resume();
      }));
    }
  });
  await new Promise((r) => sock.once('end', r));
  t.equal(got, 4 * 1024 * 1024);
  await new Promise((r) => server.close(r));
});
