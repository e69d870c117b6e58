// The Buffers a reader is given are its own: reads share one native buffer,
// handing out pieces of it, and a piece kept must never change under a later
// read (nor a piece paused and resumed, nor one read with onread).
require('./fixtures/fabric');
const t = require('tap');
const crypto = require('node:crypto');
const net = require('..');
const { once } = require('./helpers');

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, () => resolve(server.address().port));
  });
}

// Messages of 1 B to 3 KiB, each its own bytes: a read into a piece handed
// out earlier would show as a changed message.
function messages(count) {
  const out = [];
  for (let i = 0; i < count; i++) out.push(crypto.randomBytes(1 + ((i * 7919) % 3072)));
  return out;
}

// Sends each message after the reader has taken the one before (an ack per
// message), so each comes in a read of its own, into the same shared buffer.
async function conversation(t, { pauseEvery = 0 } = {}) {
  const sent = messages(600);
  const kept = [];
  let server;
  const done = new Promise((resolve) => {
    server = net.createServer((s) => {
      let n = 0;
      s.on('data', (chunk) => {
        kept.push(chunk);
        n++;
        if (pauseEvery && n % pauseEvery === 0) {
          s.pause();
          setImmediate(() => s.resume());
        }
        s.write('k');
      });
      s.on('end', () => {
        s.end();
        resolve();
      });
    });
  });
  const port = await listen(server);
  const c = net.connect(port);
  await once(c, 'connect');
  let acks = 0;
  let wake = null;
  c.on('data', (d) => {
    acks += d.length;
    if (wake) wake();
  });
  let taken = 0;
  for (const m of sent) {
    const before = acks;
    c.write(m);
    // An ack a chunk: a message read in two pieces acks twice.
    if (acks === before) await new Promise((r) => (wake = r));
    wake = null;
    taken += m.length;
  }
  c.end();
  await done;
  server.close();
  const got = Buffer.concat(kept);
  t.ok(kept.length >= sent.length / 2, `mostly a read a message (${kept.length} reads, ${sent.length} messages)`);
  t.equal(got.length, taken, 'every byte came');
  t.ok(got.equals(Buffer.concat(sent)), 'each piece kept is as it came, after all the reads that followed');
  // The pieces share read buffers: what makes the check above one that could fail.
  t.ok(new Set(kept.map((b) => b.buffer)).size < kept.length, 'pieces share a read buffer');
}

t.test('pieces kept by the reader stay intact', (t) => conversation(t));
t.test('...with the reader pausing and resuming', (t) => conversation(t, { pauseEvery: 3 }));

t.test('onread: what the callback takes is copied into its own buffer', async (t) => {
  const sent = messages(200);
  const total = sent.reduce((a, m) => a + m.length, 0);
  const given = Buffer.alloc(4096);
  const copies = [];
  let got = 0;
  let all;
  const allCame = new Promise((r) => (all = r));
  const server = net.createServer((s) => s.pipe(s));
  const port = await listen(server);
  const c = net.connect({
    port,
    onread: {
      buffer: given,
      callback(n, buf) {
        if (buf !== given) t.fail('onread hands out its own buffer');
        copies.push(Buffer.from(buf.subarray(0, n)));
        got += n;
        if (got === total) all();
      },
    },
  });
  await once(c, 'connect');
  for (const m of sent) c.write(m);
  await allCame;
  c.destroy();
  server.close();
  t.ok(Buffer.concat(copies).equals(Buffer.concat(sent)), 'every byte, in order');
});
