// Errors: SCIF's errno for bad offsets, lengths, protections and flags, as
// Node-shaped system errors (code, errno, syscall); bad arguments thrown at
// once with Node's codes; endpoints that are not connected, or closed.
require('./fixtures/fabric');
const t = require('tap');
const os = require('node:os');
const scif = require('scif-net/scif');
const { startPeer } = require('./fixtures/scif-peer');

const P = scif.pageSize;
const RO = scif.PROT_READ;
const errno = (code) => -os.constants.errno[code];
const sys = (code, syscall) => ({ code, errno: errno(code), syscall, message: `${syscall} ${code}` });

let peer, ep, theirs, rw, ro;

t.before(async () => {
  // The peer's window is 4 pages it lets us read only.
  peer = startPeer(t, 1, 'windowPeer', { size: 4 * P, prot: RO });
  const { port } = await peer.next();
  ep = await scif.connect({ node: 1, port });
  rw = await ep.register(scif.alloc(4 * P));
  ro = await ep.register(scif.alloc(P), { prot: RO });
  theirs = (await ep.recv(8)).readBigInt64LE();
  const off = Buffer.alloc(8);
  off.writeBigInt64LE(rw.offset);
  await ep.send(off);
  await peer.next();
});

t.teardown(async () => {
  await peer.request({ op: 'close' });
  await ep.close();
});

t.test('RMA: protections, ranges, lengths and flags', async (t) => {
  const cases = [
    ['writeTo into a read-only window: EACCES', () => ep.writeTo(rw.offset, P, theirs), sys('EACCES', 'scif_writeto')],
    ['vwriteTo into a read-only window: EACCES', () => ep.vwriteTo(Buffer.alloc(P), theirs), sys('EACCES', 'scif_vwriteto')],
    ['readFrom into our read-only window: EACCES', () => ep.readFrom(ro.offset, P, theirs), sys('EACCES', 'scif_readfrom')],
    ['past the end of the window: ENXIO', () => ep.readFrom(rw.offset, P, theirs + BigInt(4 * P)), sys('ENXIO', 'scif_readfrom')],
    ['partly outside it: ENXIO', () => ep.readFrom(rw.offset, 2 * P, theirs + BigInt(3 * P)), sys('ENXIO', 'scif_readfrom')],
    ['a local offset nothing is registered at: ENXIO', () => ep.readFrom(12345n * BigInt(P), P, theirs), sys('ENXIO', 'scif_readfrom')],
    ['a negative remote offset: ENXIO', () => ep.vreadFrom(Buffer.alloc(8), -P), sys('ENXIO', 'scif_vreadfrom')],
    ['length 0: EINVAL', () => ep.readFrom(rw.offset, 0, theirs), sys('EINVAL', 'scif_readfrom')],
    ['an empty buffer: EINVAL', () => ep.vreadFrom(Buffer.alloc(0), theirs), sys('EINVAL', 'scif_vreadfrom')],
    ['flags SCIF does not know: EINVAL', () => ep.readFrom(rw.offset, P, theirs, 0x100), sys('EINVAL', 'scif_readfrom')],
  ];
  for (const [name, run, want] of cases) await t.rejects(run(), want, name);
  // Not everything is an error: any byte range inside the windows will do.
  await ep.readFrom(rw.offset + 3n, 100, theirs + 5n);
  t.equal(ep.pending.inflight, 0);
});

t.test('fences: flags, alignment, and where signals may go', async (t) => {
  const S = scif.FENCE_INIT_SELF;
  await t.rejects(ep.fenceMark(0), sys('EINVAL', 'scif_fence_mark'), 'neither SELF nor PEER');
  await t.rejects(ep.fenceMark(scif.FENCE_INIT_SELF | scif.FENCE_INIT_PEER), sys('EINVAL', 'scif_fence_mark'), 'both');
  // The driver takes any mark (it waits for what the mark's number covers).
  await ep.fenceWait(0x7fffffff);
  t.pass('a mark no fenceMark gave waits for none');
  await t.rejects(ep.fenceSignal(rw.offset + 2n, 1, 0, 0, S | scif.SIGNAL_LOCAL), sys('EINVAL', 'scif_fence_signal'), 'an offset not 4-byte aligned');
  await t.rejects(ep.fenceSignal(rw.offset, 1, 0, 0, S), sys('EINVAL', 'scif_fence_signal'), 'no SIGNAL_LOCAL/REMOTE');
  await t.rejects(ep.fenceSignal(0, 0, 999n * BigInt(P), 1, S | scif.SIGNAL_REMOTE), sys('ENXIO', 'scif_fence_signal'), 'nothing registered there');
  await t.rejects(ep.fenceSignal(0, 0, theirs, 1, S | scif.SIGNAL_REMOTE), sys('EACCES', 'scif_fence_signal'), "the peer's window is read-only");
  await t.rejects(ep.fenceSignal(ro.offset, 1, 0, 0, S | scif.SIGNAL_LOCAL), sys('EACCES', 'scif_fence_signal'), 'so is this one of ours');
  await ep.fenceSignal(rw.offset + 8n, 0xabcdef0123456789n, 0, 0, S | scif.SIGNAL_LOCAL);
  t.equal(rw.buffer.readBigUInt64LE(8), 0xabcdef0123456789n, 'a 64-bit value lands whole');
});

t.test('register and unregister', async (t) => {
  await t.rejects(ep.register(scif.alloc(P), { offset: 100 }), sys('EINVAL', 'scif_register'), 'a fixed offset not page-aligned');
  await t.rejects(ep.register(scif.alloc(P), { offset: -P }), sys('EINVAL', 'scif_register'), 'a negative one');
  const fixed = await ep.register(scif.alloc(2 * P), { offset: 16 * P });
  t.equal(fixed.offset, BigInt(16 * P), 'MAP_FIXED: exactly there');
  await t.rejects(ep.register(scif.alloc(P), { offset: 17 * P }), sys('EADDRINUSE', 'scif_register'), 'overlapping a window');
  await t.rejects(ep.register(scif.alloc(P), { prot: 4 }), sys('EINVAL', 'scif_register'), 'a protection SCIF does not know');
  await t.rejects(ep.register(new ArrayBuffer(0)), sys('EINVAL', 'scif_register'), 'nothing to register');
  const mapped = ep.mmap(theirs, P, RO);
  await t.rejects(ep.register(mapped), sys('EFAULT', 'scif_register'), "the peer's pages cannot be registered here");
  scif.unmap(mapped);
  const hinted = await ep.register(scif.alloc(P), { offset: 64 * P, fixed: false });
  t.not(hinted.offset, BigInt(64 * P), 'without MAP_FIXED the offset is only a hint');

  await t.rejects(ep.unregister({ offset: fixed.offset, length: P }), sys('EINVAL', 'scif_unregister'), 'a range cutting a window');
  await t.rejects(ep.unregister({ offset: fixed.offset, length: 100 }), sys('EINVAL', 'scif_unregister'), 'a length of part of a page');
  await t.rejects(ep.unregister({ offset: 777n * BigInt(P), length: P }), sys('ENXIO', 'scif_unregister'), 'nothing there');
  t.equal(ep.pending.windows, 4, 'failed unregisters changed nothing');
  await ep.unregister(fixed);
  await ep.unregister(hinted);
  t.equal(ep.pending.windows, 2);
  await t.rejects(ep.unregister(fixed), sys('ENXIO', 'scif_unregister'), 'twice');
  const again = await ep.register(fixed.buffer, { offset: 16 * P });
  t.equal(again.offset, fixed.offset, 'the range is free again, and the memory can be registered again');
  await ep.unregister(again);
});

t.test('mmap', async (t) => {
  t.throws(() => ep.mmap(theirs, P, scif.PROT_WRITE), sys('EACCES', 'scif_mmap'), 'writable, of a read-only window');
  t.throws(() => ep.mmap(theirs, 100, RO), sys('EINVAL', 'scif_mmap'), 'part of a page');
  t.throws(() => ep.mmap(theirs + 8n, P, RO), sys('EINVAL', 'scif_mmap'), 'an offset not page-aligned');
  t.throws(() => ep.mmap(999n * BigInt(P), P, RO), sys('ENXIO', 'scif_mmap'), 'nothing registered there');
  t.throws(() => ep.mmap(theirs, 8 * P, RO), sys('ENXIO', 'scif_mmap'), 'past the end');
  t.throws(() => ep.mmap(theirs, P, 4), sys('EINVAL', 'scif_mmap'), 'a protection SCIF does not know');
  t.equal(ep.pending.mappings, 0, 'failed mmaps leave nothing behind');
});

t.test('connections', async (t) => {
  await t.rejects(scif.connect({ node: 1, port: 3999 }), { ...sys('ECONNREFUSED', 'scif_connect'), address: 'scif:1', port: 3999, message: 'scif_connect ECONNREFUSED scif:1:3999' });
  await t.rejects(scif.connect({ node: 9, port: 3999 }), { code: 'ENODEV', syscall: 'scif_connect' }, 'a node the fabric does not have');
  const a = new scif.Endpoint();
  const port = a.bind(0);
  t.ok(port >= 1089, `bind(0) picks a port above 1088 as MPSS 4 does (${port})`);
  t.throws(() => a.bind(0), sys('EINVAL', 'scif_bind'), 'bound already');
  const b = new scif.Endpoint();
  // SCIF's own errno for a port in use ("the endpoint or the port are already bound").
  t.throws(() => b.bind(port), { code: 'EINVAL', syscall: 'scif_bind' }, 'the port is taken: EINVAL, as the driver says');
  t.throws(() => b.listen(), sys('EINVAL', 'scif_listen'), 'listening unbound');
  await t.rejects(b.accept(), sys('EINVAL', 'scif_accept'), 'accepting without listening');
  await t.rejects(b.send(Buffer.from('x')), sys('ENOTCONN', 'scif_send'));
  await t.rejects(b.recv(1), sys('ENOTCONN', 'scif_recv'));
  await t.rejects(b.writeTo(0, P, 0), sys('ENOTCONN', 'scif_writeto'));
  await t.rejects(b.fenceMark(), sys('ENOTCONN', 'scif_fence_mark'));
  await t.rejects(b.register(scif.alloc(P)), sys('ENOTCONN', 'scif_register'));
  t.throws(() => b.mmap(0, P), sys('ENOTCONN', 'scif_mmap'));
  await Promise.all([a.close(), b.close()]);
});

t.test('a closed endpoint: EBADF; waiting calls: ECANCELED', async (t) => {
  const listener = scif.listen(0);
  const accepting = listener.accept();
  // Nobody accepts this one: its connect waits (scif_accept never waits for a caller, callers wait for it).
  const other = scif.listen(0);
  const caller = new scif.Endpoint();
  const connecting = caller.connect({ node: 0, port: other.localPort });
  const closing = Promise.all([listener.close(), caller.close()]);
  t.equal(listener.close(), listener.close(), 'close() twice is the same close');
  await t.rejects(accepting, sys('ECANCELED', 'scif_accept'));
  await t.rejects(connecting, { code: 'ECANCELED', syscall: 'scif_connect' });
  await closing;
  t.ok(listener.closed);
  await t.rejects(listener.accept(), sys('EBADF', 'scif_accept'));
  await t.rejects(caller.writeTo(0, P, 0), sys('EBADF', 'scif_writeto'));
  await t.rejects(caller.send(Buffer.from('x')), sys('EBADF', 'scif_send'));
  await t.rejects(caller.register(scif.alloc(P)), sys('EBADF', 'scif_register'));
  t.throws(() => caller.bind(0), sys('EBADF', 'scif_bind'));
  t.throws(() => caller.mmap(0, P), sys('EBADF', 'scif_mmap'));
  await other.close();
});

t.test('bad arguments throw at once', async (t) => {
  const e = { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' };
  const r = { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' };
  const v = { code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' };
  t.throws(() => ep.register(123), e);
  t.throws(() => ep.register('pages'), e);
  t.throws(() => ep.register(Buffer.alloc(5000)), { ...v, message: /must start at a page boundary and be whole pages of \d+ bytes \(scif\.alloc\(\) makes such Buffers\)/ });
  t.throws(() => ep.register(scif.alloc(2 * P).subarray(1, P + 1)), v, 'a view that does not start at a page');
  t.throws(() => ep.register(scif.alloc(2 * P).subarray(0, P + 8)), v, 'or is not whole pages');
  t.throws(() => ep.register(scif.alloc(P), 'rw'), e);
  t.throws(() => ep.register(scif.alloc(P), { offset: 1.5 }), r);
  t.throws(() => ep.register(scif.alloc(P), { offset: 2n ** 63n }), r);
  t.throws(() => ep.register(scif.alloc(P), { offset: '0' }), e);
  t.throws(() => ep.register(scif.alloc(P), { fixed: 'yes' }), e);
  t.throws(() => ep.register(scif.alloc(P), { prot: 1.5 }), r);
  t.throws(() => ep.writeTo('0', P, 0), e);
  t.throws(() => ep.writeTo(0, -1, 0), r);
  t.throws(() => ep.writeTo(0, P, 0, 1.5), r);
  t.throws(() => ep.writeTo(2 ** 53, P, 0), { ...r, message: /safe integer \(or a bigint\)/ });
  t.throws(() => ep.readFrom(0, P, null), e);
  t.throws(() => ep.vwriteTo('bytes', 0), e);
  t.throws(() => ep.vreadFrom([1, 2, 3], 0), e);
  t.throws(() => ep.mmap(0, -P), r);
  t.throws(() => ep.unregister(null), e);
  t.throws(() => ep.unregister({ offset: 0, length: 'all' }), e);
  t.throws(() => ep.recv(-1), r);
  t.throws(() => ep.recv(1.5), r);
  t.throws(() => ep.recv('1'), e);
  t.throws(() => ep.send('text'), e);
  t.throws(() => ep.fenceMark('self'), e);
  t.throws(() => ep.fenceWait(1.5), r);
  t.throws(() => ep.fenceSignal(0, -1, 0, 0, scif.FENCE_INIT_SELF | scif.SIGNAL_LOCAL), r);
  t.throws(() => ep.fenceSignal(0, 2n ** 64n, 0, 0, scif.FENCE_INIT_SELF | scif.SIGNAL_LOCAL), r);
  t.throws(() => ep.fenceSignal(0, 0, 0, 0), e, 'flags are required');
  const fresh = new scif.Endpoint();
  t.throws(() => fresh.bind(-1), r);
  t.throws(() => fresh.bind(65536), r);
  t.throws(() => fresh.bind('2000'), e);
  t.throws(() => fresh.listen(-1), r);
  t.throws(() => fresh.connect(), e);
  t.throws(() => fresh.connect('scif:1:2000'), e);
  t.throws(() => fresh.connect({ node: 1 }), e);
  t.throws(() => fresh.connect({ node: 70000, port: 1 }), r);
  t.throws(() => scif.connect({ node: 1, port: -1 }), r);
  t.throws(() => scif.alloc(0), r);
  t.throws(() => scif.alloc(-1), r);
  t.throws(() => scif.alloc('1'), e);
  t.throws(() => scif.unmap('x'), e);
  t.throws(() => scif.unmap(Buffer.alloc(8)), { ...v, message: /not a mapping made by mmap\(\)/ });
  t.equal(ep.pending.inflight, 0, 'nothing was started');
  await fresh.close();
});

// Sockets' connections are no longer stream-only (their large writes move by
// RMA): a raw endpoint connected to a socket server has the RMA family, and
// meets no window of the socket's until the socket registers one.
t.test('a raw endpoint connected to a socket server: RMA works, the socket announced no window', async (t) => {
  const net = require('..');
  // The raw side closes without the sockets' end-of-stream frame: a reset there.
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise((r) => server.listen(0, r));
  const raw = await scif.connect({ node: net.getNodeIds().self, port: server.address().port });
  const win = await raw.register(scif.alloc(P));
  t.equal(typeof win.offset, 'bigint', 'a window registers');
  await t.rejects(raw.vwriteTo(Buffer.alloc(P), 0n), sys('ENXIO', 'scif_vwriteto'));
  await raw.unregister(win);
  await raw.close();
  await new Promise((r) => server.close(r));
});
