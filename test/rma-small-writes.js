// Small writes on the bulk path (issue 11): a stream of 1 KiB writes moves by
// RMA one chunk per write, and the reader hands out the chunks that one read
// of the queue announced as one Buffer - in order, and never past a pause.
// (Chunk per Buffer, the reader spent more on Buffers and 'data' events than
// on the bytes: 1 KiB writes ran no faster than over a Unix socket.)
// 1 KiB writes go by RMA on every copy (the fabric's mapping says 1 KiB
// already; a driver's DMA, as on the MPSS-strict run, would say 16 KiB).
process.env.SCIF_NET_RMA_THRESHOLD = '1024';
require('./fixtures/fabric');
const t = require('tap');
const net = require('..');
const { once } = require('./helpers');

const KiB = 1024;

// Byte i of a pattern stream, so that a piece out of order shows.
const pattern = (from, n) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) % 251));

// A connected pair in this process whose window is in place (large writes
// ask for it and go by messages until it comes: write them until one went by
// RMA), with the server side paused before the data under test.
async function pairWithWindow(t) {
  let accepted;
  const server = net.createServer((s) => (accepted = s));
  await new Promise((r) => server.listen(0, r));
  t.teardown(() => server.close());
  const client = net.connect(server.address().port);
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  while (!accepted) await once(server, 'connection');
  const warm = Buffer.alloc(64 * KiB, 1);
  let got = 0;
  accepted.on('data', (d) => (got += d.length));
  for (let sent = 0; client.scifStats.sent.rma === 0;) {
    client.write(warm);
    sent += warm.length;
    while (got < sent) await once(accepted, 'data');
  }
  accepted.removeAllListeners('data');
  accepted.pause();
  return { client, server: accepted };
}

// Writes n 1 KiB writes, each complete (on the fabric it is copied into the
// peer's window before its callback), from byte `from` of the pattern.
async function writeSmall(sock, n, from) {
  for (let i = 0; i < n; i++) {
    await new Promise((resolve, reject) => sock.write(pattern(from + i * KiB, KiB), (err) => (err ? reject(err) : resolve())));
  }
}

t.test('64 writes of 1 KiB by RMA, read in one go: fewer Buffers than chunks, every byte in order', async (t) => {
  const { client, server } = await pairWithWindow(t);
  const rmaBefore = client.scifStats.sent.rma;
  await writeSmall(client, 64, 0);
  t.equal(client.scifStats.sent.rma - rmaBefore, 64 * KiB, 'each write went by RMA');
  const pieces = [];
  let bytes = 0;
  server.on('data', (d) => {
    pieces.push(d);
    bytes += d.length;
  });
  server.resume();
  while (bytes < 64 * KiB) await once(server, 'data');
  t.equal(bytes, 64 * KiB);
  t.ok(pieces.length < 64, `${pieces.length} Buffers for 64 chunks`);
  t.same(Buffer.concat(pieces), pattern(0, 64 * KiB), 'in order and intact');
  t.equal(server.scifStats.received.rma >= 64 * KiB, true, 'the reader counted them as RMA bytes');
});

t.test('chunks held while the reader is stopped go out together when it resumes, in order', async (t) => {
  // Copied through the mapping, every write completes before the loop
  // polls again, so the reader meets all 150 chunks in one read of its
  // queue: the first 64 KiB go out as 'data' (and the reader pauses), the
  // next 64 KiB fill the paused stream's buffer (which stops the reader), and
  // the rest are held by the native side until it resumes.
  process.env.SCIF_NET_RMA_COPY = 'mmap';
  t.teardown(() => delete process.env.SCIF_NET_RMA_COPY);
  const { client, server } = await pairWithWindow(t);
  const chunks = 150;
  let written = 0;
  await new Promise((resolve, reject) => {
    for (let i = 0; i < chunks; i++) {
      client.write(pattern(i * KiB, KiB), (err) => (err ? reject(err) : ++written === chunks && resolve()));
    }
  });
  const pieces = [];
  let bytes = 0;
  let pausedWith = -1;
  let whilePaused = 0;
  server.on('data', (d) => {
    if (server.isPaused()) whilePaused++;
    pieces.push(d);
    bytes += d.length;
    if (pausedWith < 0) {
      server.pause();
      pausedWith = bytes;
      // A few turns of the loop for anything held to leak out, then on.
      setImmediate(() => setImmediate(() => server.resume()));
    }
  });
  server.resume();
  while (bytes < chunks * KiB) await once(server, 'data');
  t.ok(pausedWith > 0 && pausedWith < chunks * KiB, `paused after ${pausedWith} bytes`);
  t.equal(whilePaused, 0, 'nothing was handed out while paused');
  t.ok(pieces.length <= chunks / 16, `${chunks} chunks came in ${pieces.length} Buffers`);
  t.same(Buffer.concat(pieces), pattern(0, chunks * KiB), 'in order and intact');
});

t.test('small chunks, then a message-sized write, then the end: the order holds', async (t) => {
  const { client, server } = await pairWithWindow(t);
  await writeSmall(client, 8, 0);
  const tail = pattern(8 * KiB, 100);  // below the threshold: a message frame
  client.end(tail);
  const pieces = [];
  server.on('data', (d) => pieces.push(d));
  server.resume();
  await once(server, 'end');
  t.same(Buffer.concat(pieces), pattern(0, 8 * KiB + 100));
});
