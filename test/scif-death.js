// A peer killed (SIGKILL) in the middle of RMAs: every call under way or
// later ends with ECONNRESET - none hangs - and once the endpoint is closed
// and its mappings unmapped, no shared memory is left mapped here.
require('./fixtures/fabric');
const fs = require('node:fs');
const t = require('tap');
const scif = require('scif-net/scif');
const { startPeer } = require('./fixtures/scif-peer');

const P = scif.pageSize;
const BIG = 256 << 20;
const memfds = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /memfd:scif/.test(l)).length;
const reset = (syscall) => ({ code: 'ECONNRESET', errno: -104, syscall });

// A connection to a windowPeer on node 1, with a BIG window each way.
async function connected(t) {
  const peer = startPeer(t, 1, 'windowPeer', { size: BIG });
  const { port } = await peer.next();
  const ep = await scif.connect({ node: 1, port });
  const mine = scif.alloc(BIG);
  const win = await ep.register(mine);
  const theirs = (await ep.recv(8)).readBigInt64LE();
  const off = Buffer.alloc(8);
  off.writeBigInt64LE(win.offset);
  await ep.send(off);
  await peer.next();
  return { peer, ep, mine, win, theirs };
}

// Spins (without yielding: the copy runs on another thread) until mem[at] reads value.
function until(mem, at, value) {
  const t0 = Date.now();
  while (mem[at] !== value) {
    if (Date.now() - t0 > 10000) throw new Error('the copy never began');
  }
}

t.test('killed while our RMA copies out of its window', async (t) => {
  const { peer, ep, win, mine, theirs } = await connected(t);
  const early = ep.mmap(theirs, P);
  await peer.request({ op: 'write', offset: 0, hex: 'a5'.repeat(16) });
  const recv = ep.recv(1); // waits on the descriptor meanwhile
  const withRecv = recv.catch((err) => err);

  // Into memory never touched: the copy takes its page faults as it goes, so
  // it lasts well beyond the peer's death.
  const into = Buffer.alloc(BIG);
  const first = ep.vreadFrom(into, theirs);
  until(into, 0, 0xa5); // the copy has begun
  const t0 = process.hrtime.bigint();
  peer.kill();
  await t.rejects(first, reset('scif_vreadfrom'), 'the RMA under way when the peer died: ECONNRESET');
  t.comment(`it ended ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms after the kill`);
  t.match(await withRecv, reset('scif_recv'), 'a recv waiting meanwhile: ECONNRESET');

  // Everything later fails at once, and nothing waits for a peer that is gone.
  await t.rejects(ep.writeTo(win.offset, BIG, theirs), reset('scif_writeto'));
  await t.rejects(ep.readFrom(win.offset, BIG, theirs), reset('scif_readfrom'));
  await t.rejects(ep.vwriteTo(Buffer.alloc(P), theirs), reset('scif_vwriteto'));
  await t.rejects(ep.fenceSignal(0, 0, theirs, 1, scif.FENCE_INIT_SELF | scif.SIGNAL_REMOTE), reset('scif_fence_signal'));
  await t.rejects(ep.send(Buffer.from('x')), reset('scif_send'));
  t.throws(() => ep.mmap(theirs, P), reset('scif_mmap'));
  await t.rejects(ep.register(scif.alloc(P)), reset('scif_register'));
  t.same((await peer.exit).signal, 'SIGKILL');

  t.equal(early.toString('hex', 0, 16), 'a5'.repeat(16), "a mapping made before the death is still the peer's memory");
  scif.unmap(early);
  await ep.close();
  t.equal(memfds(), 0, 'closed and unmapped: no shared memory left');
  mine.fill(1);
  t.equal(mine[BIG - 1], 1, 'our window memory is ours again');
  t.same(ep.pending, { connect: 0, accepts: 0, recvs: 0, sends: 0, inflight: 0, sleepers: 0, windows: 0, watching: false, mappings: 0 });
});

t.test('killed while RMAs stream both ways from several threads', async (t) => {
  const { peer, ep, mine, win, theirs } = await connected(t);
  const plain = Buffer.alloc(64 << 20, 7);
  const loop = async (run) => {
    let n = 0;
    for (;;) {
      try {
        await run();
        n++;
      } catch (err) {
        return { n, err };
      }
    }
  };
  const loops = [
    loop(() => ep.writeTo(win.offset, BIG, theirs)),
    loop(() => ep.readFrom(win.offset + BigInt(BIG / 2), BIG / 2, theirs)),
    loop(() => ep.vwriteTo(plain, theirs + BigInt(P))),
    loop(() => ep.vreadFrom(plain, theirs)),
  ];
  mine[0] = 0x5a;
  until(mine, 0, 0x5a);
  await new Promise((resolve) => setImmediate(resolve));
  peer.kill();
  const ended = await Promise.all(loops);
  for (const [i, { n, err }] of ended.entries()) t.match(err, { code: 'ECONNRESET' }, `stream ${i} ended with ECONNRESET after ${n} RMAs`);
  t.equal(ep.pending.inflight, 0);
  await ep.close();
  t.equal(memfds(), 0, 'no shared memory left');
});

t.test("killed while its RMA into our window runs: our fence wait for it ends with ECONNRESET", async (t) => {
  const { peer, ep, mine } = await connected(t);
  await peer.request({ op: 'fill', offset: 0, length: P });
  mine.fill(0);
  const expected = (await peer.request({ op: 'read', offset: 0, length: 1 })).hex;
  const value = parseInt(expected, 16);
  t.not(value, 0);
  peer.send({ op: 'rma', kind: 'writeTo', localOffset: 0, length: BIG, remoteOffset: 0 });
  until(mine, 0, value); // the peer's copy has begun
  const mark = await ep.fenceMark(scif.FENCE_INIT_PEER);
  const waiting = ep.fenceWait(mark).then(() => 'completed', (err) => err);
  peer.kill();
  const outcome = await waiting;
  if (outcome === 'completed') {
    t.comment('the peer finished its RMA before it died');
  } else {
    t.match(outcome, reset('scif_fence_wait'), 'the wait for a dead peer\'s RMA: ECONNRESET');
  }
  t.ok(outcome === 'completed' || outcome.code === 'ECONNRESET', 'the fence wait did not hang');
  t.equal(ep.pending.sleepers, 0);
  await t.rejects(ep.fenceMark(scif.FENCE_INIT_PEER), reset('scif_fence_mark'), 'and later fences too');
  await ep.close();
  t.equal(memfds(), 0, 'no shared memory left');
  mine[BIG - 1] = 3;
  t.equal(mine[BIG - 1], 3, 'our memory is ours');
});
