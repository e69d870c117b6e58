// RMA between two processes on different nodes (the test on node 0, a peer
// on node 1), checked with checksums on both sides, one byte to 256 MiB; the
// event loop turning meanwhile; fences ordering data before a flag the other
// side watches in its memory, through mmap or with readFrom.
require('./fixtures/fabric');
const crypto = require('node:crypto');
const fs = require('node:fs');
const t = require('tap');
const scif = require('scif-net/scif');
const { startPeer } = require('./fixtures/scif-peer');

const PAGE = scif.pageSize;
const MiB = 1 << 20;
const BIG = 256 * MiB;
const FLAGS = BIG; // the last page of each window holds flags
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const memfds = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /memfd:scif/.test(l)).length;

let peer, ep, win, mine, theirs;

// SCIF's RMA between windows is asynchronous: it has landed once a fence
// covering it has been waited for (vwriteTo/vreadFrom resolve once done).
const fence = async () => ep.fenceWait(await ep.fenceMark(scif.FENCE_INIT_SELF));

t.before(async () => {
  peer = startPeer(t, 1, 'windowPeer', { size: BIG + PAGE });
  const { port } = await peer.next();
  ep = await scif.connect({ node: 1, port });
  mine = scif.alloc(BIG + PAGE);
  win = await ep.register(mine);
  theirs = (await ep.recv(8)).readBigInt64LE();
  const off = Buffer.alloc(8);
  off.writeBigInt64LE(win.offset);
  await ep.send(off);
  const ready = await peer.next();
  t.equal(ready.peerOffset, String(win.offset), 'the peer learned our window');
});

t.test('the endpoints and windows', async (t) => {
  t.same(ep.peer, { node: 1, port: ep.peer.port });
  t.ok(ep.localPort >= 1088, 'an ephemeral local port');
  t.equal(typeof win.offset, 'bigint');
  t.equal(win.length, BIG + PAGE);
  t.equal(win.buffer, mine, 'the window shows the registered Buffer');
  t.equal(win.prot, scif.PROT_READ | scif.PROT_WRITE);
  t.equal(ep.pending.windows, 1);
});

// [length, our offset in the window, the peer's]
const CASES = [
  [1, 0, 0],
  [100, 7, 4093],
  [PAGE, 0, 0],
  [PAGE + 13, 4000, 64],
  [3 * PAGE, PAGE, 5 * PAGE],
  [MiB, 0, 3 * PAGE],
  [16 * MiB + 64, 64, 128],
  [BIG, 0, 0],
];

for (const [len, lo, ro] of CASES) {
  t.test(`${len} bytes: writeTo, readFrom, vwriteTo, vreadFrom`, async (t) => {
    const times = {};
    const timed = async (name, run) => {
      const t0 = process.hrtime.bigint();
      const r = await run();
      times[name] = Number(process.hrtime.bigint() - t0) / 1e6;
      return r;
    };

    crypto.randomFillSync(mine, lo, len);
    const sent = sha256(mine.subarray(lo, lo + len));
    await timed('writeTo', async () => {
      await ep.writeTo(win.offset + BigInt(lo), len, theirs + BigInt(ro));
      await fence();
    });
    t.equal((await peer.request({ op: 'hash', offset: ro, length: len })).sha256, sent, 'writeTo: the peer has our bytes');

    const filled = (await peer.request({ op: 'fill', offset: ro, length: len })).sha256;
    await timed('readFrom', () => ep.readFrom(win.offset + BigInt(lo), len, theirs + BigInt(ro), scif.RMA_SYNC));
    t.equal(sha256(mine.subarray(lo, lo + len)), filled, "readFrom: we have the peer's bytes");

    const plain = crypto.randomBytes(len);
    await timed('vwriteTo', () => ep.vwriteTo(plain, theirs + BigInt(ro)));
    t.equal((await peer.request({ op: 'hash', offset: ro, length: len })).sha256, sha256(plain), 'vwriteTo: the peer has our bytes');

    const filled2 = (await peer.request({ op: 'fill', offset: ro, length: len })).sha256;
    const into = Buffer.alloc(len, 0xee); // touched: the timing is the copy's, not page faults'
    const got = await timed('vreadFrom', () => ep.vreadFrom(into, theirs + BigInt(ro), scif.RMA_USECPU));
    t.equal(got, into, 'vreadFrom resolves with the buffer it filled');
    t.equal(sha256(into), filled2, "vreadFrom: we have the peer's bytes");

    if (len >= MiB) {
      t.comment(Object.entries(times).map(([k, ms]) => `${k} ${ms.toFixed(1)} ms (${(len / MiB / (ms / 1000)).toFixed(0)} MiB/s)`).join(', '));
    }
    t.same(ep.pending, { ...ep.pending, inflight: 0, sleepers: 0, recvs: 0, sends: 0 });
  });
}

t.test("the peer's RMAs into and out of our window", async (t) => {
  crypto.randomFillSync(mine, 0, 8 * MiB);
  const ours = sha256(mine.subarray(0, 8 * MiB));
  await peer.request({ op: 'rma', kind: 'readFrom', localOffset: 0, length: 8 * MiB, remoteOffset: 0 });
  t.equal((await peer.request({ op: 'hash', offset: 0, length: 8 * MiB })).sha256, ours, 'the peer read our window');

  const { sha256: written } = await peer.request({ op: 'rma', kind: 'vwriteTo', length: 5 * MiB + 3, remoteOffset: PAGE + 1 });
  t.equal(sha256(mine.subarray(PAGE + 1, PAGE + 1 + 5 * MiB + 3)), written, 'the peer wrote into our window');
});

t.test('RMA is asynchronous: a program that forgets the fence races, and the fabric shows it', async (t) => {
  // A second peer whose DMA engine waits 300 ms before each copy
  // (SCIF_NET_DMA_DELAY_US), as a busy card's may: the race always loses.
  const slow = startPeer(t, 1, 'windowPeer', { size: MiB }, { SCIF_NET_DMA_DELAY_US: '300000' });
  const { port } = await slow.next();
  const e = await scif.connect({ node: 1, port });
  t.teardown(() => e.close());
  const memory = scif.alloc(MiB);
  const w = await e.register(memory);
  const peerOffset = (await e.recv(8)).readBigInt64LE();
  const off = Buffer.alloc(8);
  off.writeBigInt64LE(w.offset);
  await e.send(off);
  await slow.next();
  const { sha256: want } = await slow.request({ op: 'fill', offset: 0, length: MiB });
  t.not(sha256(memory), want, 'before: our window is not the peer\'s data');
  await slow.request({ op: 'writeToUnfenced', length: MiB });
  t.not(sha256(memory), want, 'scif_writeto returned, no fence: the data has not landed');
  await slow.request({ op: 'fence' });
  t.equal(sha256(memory), want, 'after the peer\'s fence: it has');
  t.equal(typeof peerOffset, 'bigint');
});

t.test('many RMAs at once each land where they should', async (t) => {
  const N = 16;
  const piece = MiB;
  crypto.randomFillSync(mine, 0, N * piece);
  const vbufs = Array.from({ length: N }, () => crypto.randomBytes(piece));
  await Promise.all([
    ...Array.from({ length: N }, (_, i) => ep.writeTo(win.offset + BigInt(i * piece), piece, theirs + BigInt(i * piece))),
    ...vbufs.map((b, i) => ep.vwriteTo(b, theirs + BigInt((N + i) * piece))),
  ]);
  await fence();
  t.equal(ep.pending.inflight, 0);
  const want = sha256(Buffer.concat([mine.subarray(0, N * piece), ...vbufs]));
  t.equal((await peer.request({ op: 'hash', offset: 0, length: 2 * N * piece })).sha256, want);
});

t.test('the event loop keeps turning while 256 MiB are written', async (t) => {
  let turns = 0;
  let spinning = true;
  const spin = () => {
    turns++;
    if (spinning) setImmediate(spin);
  };
  let timers = 0;
  const interval = setInterval(() => timers++, 1);
  setImmediate(spin);
  const t0 = process.hrtime.bigint();
  const write = ep.writeTo(win.offset, BIG, theirs).then(fence);
  const atCall = turns;
  await write;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  spinning = false;
  clearInterval(interval);
  t.equal(atCall, 0, 'writeTo returned before the loop turned once');
  t.ok(turns > 50, `the loop turned ${turns} times during a ${ms.toFixed(1)} ms writeTo and its fence`);
  t.ok(timers > 0, `timers fired (${timers}) meanwhile`);
  const loopTurnsDuringRead = [];
  const read = ep.readFrom(win.offset, BIG, theirs).then(fence);
  // A recv that waits on the descriptor meanwhile is answered too.
  const recv = ep.recv(5);
  await peer.request({ op: 'send', hex: Buffer.from('hello').toString('hex') });
  loopTurnsDuringRead.push((await recv).toString());
  await read;
  t.same(loopTurnsDuringRead, ['hello'], 'recv works while an RMA runs');
});

t.test('fences: a flag the peer sees in its own memory comes after the data (writeTo, fenceSignal REMOTE)', async (t) => {
  for (let round = 1; round <= 5; round++) {
    const value = 0xda7a0000 + round;
    const length = 32 * MiB;
    const waiting = peer.request({ op: 'waitFlag', flagOffset: FLAGS, value, dataOffset: 0, dataLength: length });
    crypto.randomFillSync(mine, 0, length);
    const want = sha256(mine.subarray(0, length));
    await ep.writeTo(win.offset, length, theirs); // begun (and, here, done) before the fence
    await ep.fenceSignal(0, 0, theirs + BigInt(FLAGS), value, scif.FENCE_INIT_SELF | scif.SIGNAL_REMOTE);
    const seen = await waiting;
    t.equal(seen.sha256, want, `round ${round}: the data was there when the flag was (${seen.spins} spins)`);
  }
});

t.test('fences: a flag in our window the peer watches through mmap (vwriteTo, fenceSignal LOCAL)', async (t) => {
  const mapped = await peer.request({ op: 'mmap', remoteOffset: FLAGS, length: PAGE, prot: scif.PROT_READ });
  for (let round = 1; round <= 5; round++) {
    const value = 0xf1a90000n + BigInt(round);
    const length = 16 * MiB;
    const waiting = peer.request({ op: 'waitFlag', id: mapped.id, flagOffset: 8, value: String(value), dataOffset: PAGE, dataLength: length });
    const data = crypto.randomBytes(length);
    await ep.vwriteTo(data, theirs + BigInt(PAGE));
    await ep.fenceSignal(win.offset + BigInt(FLAGS + 8), value, 0, 0, scif.FENCE_INIT_SELF | scif.SIGNAL_LOCAL);
    t.equal(mine.readBigUInt64LE(FLAGS + 8), value, 'the local signal is in our memory');
    const seen = await waiting;
    t.equal(seen.sha256, sha256(data), `round ${round}: the peer saw the flag through its mapping after the data`);
  }
  await peer.request({ op: 'unmap', id: mapped.id });
});

t.test('fences: a flag the peer polls with readFrom (writeTo, fenceSignal LOCAL and REMOTE)', async (t) => {
  const value = 0x5eed5eedn;
  const length = 8 * MiB;
  const waiting = peer.request({ op: 'waitFlagReadFrom', flagOffset: FLAGS + 16, scratch: FLAGS + 64, value: String(value), dataOffset: 2 * PAGE, dataLength: length });
  crypto.randomFillSync(mine, 0, length);
  await ep.writeTo(win.offset, length, theirs + BigInt(2 * PAGE));
  await ep.fenceSignal(win.offset + BigInt(FLAGS + 16), value, theirs + BigInt(FLAGS + 128), value,
    scif.FENCE_INIT_SELF | scif.SIGNAL_LOCAL | scif.SIGNAL_REMOTE);
  const seen = await waiting;
  t.equal(seen.sha256, sha256(mine.subarray(0, length)), `the peer polled ${seen.polls} times and then had the data`);
  t.equal((await peer.request({ op: 'read', offset: FLAGS + 128, length: 8 })).hex, Buffer.from('ed5eed5e00000000', 'hex').toString('hex'),
    'the remote signal landed too');
});

t.test("fences: the peer's data, then its flag in our window (peer writeTo, fenceSignal REMOTE)", async (t) => {
  const length = 24 * MiB;
  const value = 0x0dd0;
  mine.writeBigUInt64LE(0n, FLAGS + 256);
  const { sha256: want } = await peer.request({ op: 'fill', offset: 0, length });
  const writing = peer.request({ op: 'writeThenSignal', length, localOffset: 0, remoteOffset: 0, flagOffset: FLAGS + 256, value });
  let spins = 0;
  while (mine.readBigUInt64LE(FLAGS + 256) !== BigInt(value)) {
    spins++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(sha256(mine.subarray(0, length)), want, `our memory had the data once the flag was up (${spins} spins)`);
  await writing;
});

t.test('fenceMark and fenceWait, ours and the peer\'s', async (t) => {
  const writes = Array.from({ length: 4 }, (_, i) => ep.writeTo(win.offset + BigInt(i * MiB), MiB, theirs + BigInt(i * MiB)));
  await writes[0];
  const self = await ep.fenceMark(scif.FENCE_INIT_SELF);
  t.ok(Number.isInteger(self) && self >= 0, `a mark of ours (${self})`);
  await ep.fenceWait(self);
  await Promise.all(writes);

  await peer.request({ op: 'rma', kind: 'writeTo', localOffset: 0, length: 4 * MiB, remoteOffset: 0 });
  const theirsMark = await ep.fenceMark(scif.FENCE_INIT_PEER);
  t.ok(Number.isInteger(theirsMark) && theirsMark < 0, `a mark of the peer's RMAs, bit 31 set as on MPSS 4 (${theirsMark})`);
  // A recv waiting on the descriptor while a fence may sleep on it.
  const recv = ep.recv(3);
  const waited = ep.fenceWait(theirsMark);
  await peer.request({ op: 'send', hex: '616263' });
  t.equal((await recv).toString(), 'abc');
  await waited;
  t.same((await peer.request({ op: 'hash', offset: 0, length: 4 * MiB })).sha256, sha256(mine.subarray(0, 4 * MiB)));
  t.equal(ep.pending.sleepers, 0);
});

t.test("a recv is answered while a fence waits for the peer's RMA (the fence's thread may swallow the doorbell)", async (t) => {
  for (let round = 1; round <= 3; round++) {
    const before = await ep.fenceMark(scif.FENCE_INIT_PEER);
    // The peer reads our window into memory it never touched: a slow copy.
    peer.send({ op: 'rma', kind: 'vreadFrom', length: BIG, remoteOffset: 0 });
    let mark = before;
    let looks = 0;
    while (mark === before) {
      looks++;
      mark = await ep.fenceMark(scif.FENCE_INIT_PEER); // changes once the peer's RMA has begun
    }
    let fenced = false;
    const fence = ep.fenceWait(mark).then(() => (fenced = true));
    t.equal(ep.pending.sleepers, 1, 'a thread of ours waits in the fabric');
    const recv = ep.recv(2);
    peer.send({ op: 'send', hex: '6869' });
    t.equal((await recv).toString(), 'hi');
    t.equal(fenced, false, `round ${round}: the recv came while the fence still waited (mark seen after ${looks} looks)`);
    await fence;
    const replies = [await peer.next(), await peer.next()];
    t.ok(replies.some((r) => r.sha256) && replies.some((r) => r.bytes === 2), 'the peer finished its RMA and its send');
  }
  t.equal(ep.pending.sleepers, 0);
});

t.test('close releases everything: no shared memory left on either side', async (t) => {
  const before = memfds();
  t.ok(before > 0, `windows and the ring are shared memory while connected (${before} mappings)`);
  const closed = await peer.request({ op: 'close' });
  t.equal(closed.memfds, 0, 'the peer has no memfd mapping left');
  await ep.close();
  t.equal(memfds(), 0, 'nor have we');
  t.same(ep.pending, { connect: 0, accepts: 0, recvs: 0, sends: 0, inflight: 0, sleepers: 0, windows: 0, watching: false, mappings: 0 });
  t.equal(mine.length, BIG + PAGE, 'our Buffer is ours again');
  mine.fill(1, 0, PAGE);
  t.equal(mine[PAGE - 1], 1);
  t.same(await peer.exit, { code: 0, signal: null }, 'the peer exited by itself once closed');
});
