// stream.pipeline between scif-net sockets and files: a 64 MiB file through a
// socket into another file, both ways; errors on either end propagate (the
// pipeline's callback has the error, the socket is destroyed, and the peer
// sees its connection reset or ended instead of waiting); a socket piped
// through a Transform back into itself.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { pipeline, Transform, Writable } = require('node:stream');
const t = require('tap');
const net = require('..');

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const { once } = require('./helpers');
const piped = (...streams) => new Promise((resolve) => pipeline(...streams, (err) => resolve(err ?? null)));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-pipeline-'));
const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
t.teardown(removeDir);
process.once('exit', removeDir);

// The 64 MiB of random bytes every test sends, and their hash.
const source = path.join(dir, 'source.bin');
const sourceHash = (() => {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(source, 'w');
  for (let i = 0; i < SIZE / MiB; i++) {
    const chunk = crypto.randomBytes(MiB);
    hash.update(chunk);
    fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
  return hash.digest('hex');
})();

function fileHash(file) {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    fs.createReadStream(file).on('data', (d) => hash.update(d)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
  });
}

/** A scif-net server on this node; every connection goes to `onConnection`. */
async function serve(t, options, onConnection) {
  const server = net.createServer(options, onConnection);
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, resolve));
  t.teardown(() => new Promise((r) => server.close(r)));
  return server.address().port;
}

function connect(port) {
  return net.connect({ node: 0, port });
}

t.test('a 64 MiB file through a socket into a file, both ways', { timeout: 20000 }, async (t) => {
  t.test('client file -> socket -> server file', async (t) => {
    const out = path.join(dir, 'up.bin');
    let serverDone;
    const serverSide = new Promise((resolve) => (serverDone = resolve));
    const port = await serve(t, {}, (s) => pipeline(s, fs.createWriteStream(out), (err) => serverDone({ err, s })));
    const sock = connect(port);
    sock.resume();  // nothing comes back; read on to see the server's end
    const closed = once(sock, 'close');
    const started = process.hrtime.bigint();
    t.equal(await piped(fs.createReadStream(source), sock), null, 'the sending pipeline succeeded');
    const { err, s } = await serverSide;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.equal(err ?? null, null, `the receiving pipeline succeeded (${ms.toFixed(0)} ms)`);
    t.equal(fs.statSync(out).size, SIZE);
    t.equal(await fileHash(out), sourceHash, 'the copy is identical');
    t.equal(s.bytesRead, SIZE);
    t.equal(sock.bytesWritten, SIZE);
    t.equal(await closed, false, 'the client closed without error');
  });

  t.test('server file -> socket -> client file', async (t) => {
    const out = path.join(dir, 'down.bin');
    let serverDone;
    const serverSide = new Promise((resolve) => (serverDone = resolve));
    const port = await serve(t, {}, (s) => pipeline(fs.createReadStream(source), s, (err) => serverDone(err ?? null)));
    const started = process.hrtime.bigint();
    const err = await piped(connect(port), fs.createWriteStream(out));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.equal(err, null, `the receiving pipeline succeeded (${ms.toFixed(0)} ms)`);
    t.equal(await serverSide, null, 'the sending pipeline succeeded');
    t.equal(fs.statSync(out).size, SIZE);
    t.equal(await fileHash(out), sourceHash, 'the copy is identical');
  });
});

t.test('the destination fails: the error reaches the pipeline, the sender is reset', { timeout: 20000 }, async (t) => {
  const destinations = {
    'a file in a directory that is gone': {
      make() {
        const gone = fs.mkdtempSync(path.join(dir, 'gone-'));
        fs.rmSync(gone, { recursive: true });
        return fs.createWriteStream(path.join(gone, 'out.bin'));
      },
      expected: { code: 'ENOENT', syscall: 'open' },
    },
    'a Writable that fails after 5 MiB': {
      make() {
        let written = 0;
        return new Writable({
          write(chunk, encoding, cb) {
            written += chunk.length;
            cb(written > 5 * MiB ? Object.assign(new Error('disk full'), { code: 'ENOSPC' }) : null);
          },
        });
      },
      expected: { message: 'disk full', code: 'ENOSPC' },
    },
  };
  for (const [name, { make, expected }] of Object.entries(destinations)) {
    t.test(name, async (t) => {
      let serverDone;
      const serverSide = new Promise((resolve) => (serverDone = resolve));
      const port = await serve(t, {}, (s) => {
        const closed = once(s, 'close');
        pipeline(s, make(), (err) => serverDone({ err, s, closed }));
      });
      const sock = connect(port);
      sock.on('data', () => t.fail('the server sends nothing'));
      const sockClosed = once(sock, 'close');
      const clientErr = piped(fs.createReadStream(source), sock);

      const { err, s, closed } = await serverSide;
      t.match(err, expected, 'the pipeline\'s callback has the destination\'s error');
      t.equal(s.destroyed, true, 'the server\'s socket is destroyed');
      t.equal(await closed, true, 'and closes with an error');

      // The sender's pipeline fails, with ECONNRESET or EPIPE when it sees the
      // reset, or ERR_STREAM_PREMATURE_CLOSE when it reads an orderly end.
      const cerr = await clientErr;
      t.match(cerr, { code: /^(ECONNRESET|EPIPE|ERR_STREAM_PREMATURE_CLOSE)$/ },
        `the sending pipeline fails instead of hanging (${cerr?.code} ${cerr?.syscall ?? ''})`);
      await sockClosed;
      t.equal(sock.destroyed, true, 'the sender\'s socket is closed');
      t.ok(sock.bytesWritten < SIZE, 'the sender could not deliver everything');
    });
  }
});

t.test('the source fails mid-way: the socket is destroyed, the receiver errors', { timeout: 20000 }, async (t) => {
  const out = path.join(dir, 'partial.bin');
  let serverDone;
  const serverSide = new Promise((resolve) => (serverDone = resolve));
  const port = await serve(t, {}, (s) => pipeline(s, fs.createWriteStream(out), (err) => serverDone({ err, s })));
  const sock = connect(port);
  sock.resume();
  const sockClosed = once(sock, 'close');
  let sent = 0;
  const sentHash = crypto.createHash('sha256');
  // The file's first 8 MiB, then a failure.
  async function* breaksAt8MiB() {
    for await (const chunk of fs.createReadStream(source, { highWaterMark: MiB })) {
      yield chunk;
      sent += chunk.length;
      sentHash.update(chunk);
      if (sent >= 8 * MiB) throw new Error('source broke');
    }
  }
  const err = await piped(breaksAt8MiB, sock);
  t.match(err, { message: 'source broke' }, 'the pipeline\'s callback has the source\'s error');
  t.equal(sock.destroyed, true, 'the socket is destroyed');
  t.equal(await sockClosed, true);

  // As over TCP, a destroyed socket's peer reads an orderly end when all it
  // was sent got through, ECONNRESET when it did not: either way, no hang.
  const { err: serr, s } = await serverSide;
  if (serr) t.match(serr, { code: 'ECONNRESET', syscall: 'read' }, 'the receiver reads a reset');
  else t.pass('the receiver reads an orderly end');
  t.equal(s.destroyed, true);
  const got = fs.readFileSync(out);
  t.ok(got.length <= sent, `the receiver got ${got.length} of the ${sent} bytes sent (${serr?.code ?? 'end'})`);
  t.equal(sha256(got), sha256(fs.readFileSync(source).subarray(0, got.length)), 'what it got is the start of the source');
});

t.test('pipeline(socket, transform, socket) echoes through a Transform', { timeout: 20000 }, async (t) => {
  const upper = () => new Transform({
    transform(chunk, encoding, cb) {
      cb(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
    },
  });
  const xor = (b) => Buffer.from(b.map((x) => x ^ 0xa5));
  const transforms = {
    'a Transform stream, small writes': {
      transform: upper,
      send: Array.from({ length: 5000 }, (_, i) => `line ${i} of many\n`).map((s) => Buffer.from(s)),
      expect: (all) => Buffer.from(all.toString('latin1').toUpperCase(), 'latin1'),
    },
    'a Transform stream, 8 MiB in 1 MiB writes': {
      transform: () => new Transform({
        transform(chunk, encoding, cb) {
          cb(null, xor(chunk));
        },
      }),
      send: Array.from({ length: 8 }, () => crypto.randomBytes(MiB)),
      expect: (all) => xor(all),
    },
  };
  for (const [name, { transform, send, expect }] of Object.entries(transforms)) {
    t.test(name, async (t) => {
      let serverDone;
      const serverSide = new Promise((resolve) => (serverDone = resolve));
      const port = await serve(t, { allowHalfOpen: true }, (s) => pipeline(s, transform(), s, (err) => serverDone({ err, s })));
      const sock = connect(port);
      const parts = [];
      sock.on('data', (d) => parts.push(d));
      const ended = once(sock, 'end');
      for (const chunk of send) {
        if (!sock.write(chunk)) await once(sock, 'drain');
      }
      sock.end();
      await ended;
      const all = Buffer.concat(send);
      const got = Buffer.concat(parts);
      t.equal(got.length, all.length, `${got.length} bytes came back`);
      t.equal(sha256(got), sha256(expect(all)), 'transformed, in order');
      const { err, s } = await serverSide;
      t.equal(err ?? null, null, 'the server\'s pipeline succeeded');
      t.equal(s.bytesRead, all.length);
      t.equal(s.bytesWritten, all.length);
      t.equal(await once(sock, 'close'), false);
    });
  }
});
