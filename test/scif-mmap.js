// Remote mapping: the peer's window mapped here (and ours there) is the same
// memory - stores on either side are seen by the other at once; mappings are
// Buffers whose lifetime is safe: unmap() detaches before it unmaps, a
// mapping lent to an RMA or a send stays mapped until it is done, and the
// garbage collector unmaps what the program drops.
require('./fixtures/fabric');
const fs = require('node:fs');
const v8 = require('node:v8');
const vm = require('node:vm');
const t = require('tap');
const scif = require('scif-net/scif');
const { startPeer } = require('./fixtures/scif-peer');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const P = scif.pageSize;
const SIZE = 256 * P;
const memfds = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /memfd:scif/.test(l)).length;
const hex = (s) => Buffer.from(s).toString('hex');

let peer, ep, win, theirs;

t.before(async () => {
  peer = startPeer(t, 1, 'windowPeer', { size: SIZE });
  const { port } = await peer.next();
  ep = await scif.connect({ node: 1, port });
  win = await ep.register(scif.alloc(4 * P));
  theirs = (await ep.recv(8)).readBigInt64LE();
  const off = Buffer.alloc(8);
  off.writeBigInt64LE(win.offset);
  await ep.send(off);
  await peer.next();
});

t.test("the peer's window mapped here: each side sees the other's stores", async (t) => {
  const m = ep.mmap(theirs, 4 * P);
  t.ok(Buffer.isBuffer(m), 'a Buffer');
  t.equal(m.length, 4 * P);
  await peer.request({ op: 'write', offset: 100, hex: hex('owner wrote this') });
  t.equal(m.toString('utf8', 100, 116), 'owner wrote this', 'the owner stores into its memory, we read it through the mapping');
  m.write('mapper wrote this', 2 * P + 7);
  t.equal(Buffer.from((await peer.request({ op: 'read', offset: 2 * P + 7, length: 17 })).hex, 'hex').toString(), 'mapper wrote this',
    'we store through the mapping, the owner reads it in its memory');
  const part = ep.mmap(theirs + BigInt(P), 2 * P, scif.PROT_READ);
  m.write('same pages', P + 5);
  t.equal(part.toString('utf8', 5, 15), 'same pages', 'two mappings of one window are the same pages');
  scif.unmap(part);
  scif.unmap(m);
});

t.test('and back: our window mapped by the peer', async (t) => {
  const { id } = await peer.request({ op: 'mmap', remoteOffset: P, length: 2 * P, prot: scif.PROT_READ | scif.PROT_WRITE });
  win.buffer.write('from the owner', P + 1);
  t.equal(Buffer.from((await peer.request({ op: 'mapRead', id, offset: 1, length: 14 })).hex, 'hex').toString(), 'from the owner');
  await peer.request({ op: 'mapWrite', id, offset: P + 9, hex: hex('from the mapper') });
  t.equal(win.buffer.toString('utf8', 2 * P + 9, 2 * P + 24), 'from the mapper', 'the peer stores through its mapping into our Buffer');
  await peer.request({ op: 'unmap', id });
});

t.test('unmap() detaches first, then unmaps', async (t) => {
  const before = memfds();
  const m = ep.mmap(theirs, 8 * P);
  const view = m.subarray(P, 2 * P);
  t.ok(memfds() > before, 'a mapping of the peer\'s memfd');
  t.equal(ep.pending.mappings, 1);
  t.throws(() => scif.unmap(view), { code: 'ERR_INVALID_ARG_VALUE', message: /whole mapping/ }, 'not a part of one');
  t.equal(view.length, P, 'which stays usable');
  ep.unmap(m);
  t.equal(m.length, 0, 'the Buffer is detached: length 0');
  t.equal(view.length, 0, 'and so is every view of it');
  t.equal(m[0], undefined, 'nothing to read');
  m[0] = 1; // a store into a detached buffer goes nowhere
  t.equal(memfds(), before, 'the pages are unmapped');
  t.equal(ep.pending.mappings, 0);
  t.throws(() => scif.unmap(m), { code: 'ERR_INVALID_ARG_VALUE' }, 'twice');
  const ab = ep.mmap(theirs, P).buffer;
  scif.unmap(ab);
  t.equal(ab.byteLength, 0, 'an ArrayBuffer will do too');
  t.equal(memfds(), before);
});

t.test('mappings the program drops are unmapped by the garbage collector', async (t) => {
  const before = memfds();
  (() => {
    for (let i = 0; i < 20; i++) ep.mmap(theirs + BigInt(i * P), P)[0] = i;
  })();
  t.equal(ep.pending.mappings, 20);
  t.ok(memfds() >= before + 1, 'mapped');
  let rounds = 0;
  while (ep.pending.mappings > 0 && rounds < 100) {
    gc();
    rounds++;
    await new Promise((resolve) => setImmediate(resolve)); // finalizers run from the loop
  }
  t.equal(ep.pending.mappings, 0, `all finalized (after ${rounds} collections)`);
  t.equal(memfds(), before, 'and unmapped');
  t.equal(Buffer.from((await peer.request({ op: 'read', offset: 19 * P, length: 1 })).hex, 'hex')[0], 19, 'their stores stayed');
});

t.test('a mapping lent to an RMA or a send stays mapped until it is done', async (t) => {
  const before = memfds();
  const length = 64 * P;
  const { sha256: source } = await peer.request({ op: 'fill', offset: 0, length });
  const m = ep.mmap(theirs, length, scif.PROT_READ);
  // Copies the peer's pages (through our mapping) into another part of its window.
  const writing = ep.vwriteTo(m, theirs + BigInt(128 * P));
  scif.unmap(m);
  t.equal(m.length, 0, 'detached at once: JS cannot reach it any more');
  t.equal(ep.pending.mappings, 1, 'but still mapped for the RMA under way');
  await writing;
  t.equal(ep.pending.mappings, 0, 'unmapped once the RMA was done');
  t.equal(memfds(), before);
  t.equal((await peer.request({ op: 'hash', offset: 128 * P, length })).sha256, source, 'and it copied the right bytes');

  const s = ep.mmap(theirs + BigInt(P), P, scif.PROT_READ);
  const want = Buffer.from(s);
  const sending = ep.send(s);
  scif.unmap(s);
  t.equal(ep.pending.mappings, 1, 'a send waiting to go keeps it too');
  const received = peer.request({ op: 'recv', length: P });
  t.equal(await sending, P);
  t.equal((await received).hex, want.toString('hex'), 'the peer got the mapped bytes');
  t.equal(ep.pending.mappings, 0);
  t.equal(memfds(), before);
});

t.test('a thousand mappings made and unmapped leave nothing behind', async (t) => {
  const before = memfds();
  for (let i = 0; i < 1000; i++) {
    const m = ep.mmap(theirs + BigInt((i % 200) * P), 4 * P, i % 2 ? scif.PROT_READ : scif.PROT_READ | scif.PROT_WRITE);
    if (m.length !== 4 * P) t.fail('bad length');
    scif.unmap(m);
  }
  t.equal(memfds(), before);
  t.equal(ep.pending.mappings, 0);
});

t.test('a mapping outlives close() and stays the same memory until unmapped', async (t) => {
  const m = ep.mmap(theirs, 2 * P);
  await peer.request({ op: 'write', offset: 8, hex: hex('before close') });
  await ep.close();
  t.equal(m.toString('utf8', 8, 20), 'before close', 'readable after close');
  m.write('after close', P);
  t.equal(m.toString('utf8', P, P + 11), 'after close', 'and writable');
  t.ok(memfds() >= 1, 'only the mapping is left');
  scif.unmap(m);
  t.equal(memfds(), 0, 'nothing is left');
  const closed = await peer.request({ op: 'close' });
  t.equal(closed.memfds, 0, 'nor anything on the peer');
});
