// The bulk path on MPSS's libscif alone (issue 11): both ends load the
// MPSS-strict build of the fabric (kernel/out/strict/libscif.so.0: libscif's
// API and nothing more) through the dlopen ('hw') path, so every call the
// bulk path makes is one a card's driver offers.
require('./fixtures/fabric');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const t = require('tap');

const ROLES = path.join(__dirname, 'fixtures', 'rma-roles.js');
const STRICT = path.join(__dirname, '..', 'kernel', 'out', 'strict', 'libscif.so.0');
const MiB = 1 << 20;

function role(t, node, name, args) {
  const child = spawn(process.execPath, [ROLES, name, JSON.stringify(args)], {
    env: { ...process.env, SCIF_NET_NODE: String(node), SCIF_NET_BACKEND: 'hw', SCIF_NET_LIBSCIF: STRICT },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const queue = [];
  let waiter = null;
  child.on('message', (m) => {
    if (waiter && waiter.pred(m)) {
      waiter.resolve(m);
      waiter = null;
    } else {
      queue.push(m);
    }
  });
  t.teardown(() => child.kill('SIGKILL'));
  return {
    until(pred) {
      const i = queue.findIndex(pred);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve, reject) => {
        waiter = { pred, resolve };
        child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
      });
    },
  };
}

t.test('MPSS-strict libscif is built', async (t) => {
  t.ok(fs.existsSync(STRICT), `${STRICT} exists (make -C kernel)`);
});

t.test('MPSS-strict: 256 MiB node 0 -> node 1, checksummed, >= 90% by RMA', async (t) => {
  const total = 256 * MiB;
  const sink = role(t, 1, 'sink', {});
  const { port } = await sink.until((m) => m.ready || m.error);
  t.ok(port, 'the sink listens');
  const source = role(t, 0, 'source', { node: 1, port, bytes: total });
  const { received } = await sink.until((m) => m.received);
  const { sent } = await source.until((m) => m.sent);
  t.equal(received.bytes, total, 'every byte arrived');
  t.equal(received.sha256, sent.sha256, 'in order and intact');
  t.ok(sent.stats.sent.rma >= 0.9 * total, `>= 90% of the bytes went by RMA (${sent.stats.sent.rma})`);
  t.same(received.stats.received, sent.stats.sent, 'the receiver saw the same split');
  t.equal(received.stats.windows, 1);
});
