// Idle connections give their rings' pages back (kernel/src/reclaim.h): 50
// connections with 1 MiB rings each carry a 1 MiB burst each way, then sit
// idle; the shared memory this process has mapped for them (the Rss of its
// queue-pair mappings, both ends of each connection being here) goes back
// down to their header pages, and every connection still carries checked
// data both ways.
require('./fixtures/fabric');
// Read once, when the fabric opens: before the addon's first call.
process.env.SCIF_NET_RING = String(1 << 20);
// Longer than the bursts take, so that none of their rings goes back before
// it is measured.
process.env.SCIF_NET_RECLAIM_MS = '5000';
// The bulk path off: the bursts go through the rings.
process.env.SCIF_NET_RMA_THRESHOLD = '0';
const fs = require('node:fs');
const crypto = require('node:crypto');
const t = require('tap');
const net = require('..');

const N = 50;
const BURST = 1 << 20;

// kB resident in this process's mappings of queue pairs, and how many.
function qpResident() {
  let kb = 0;
  let maps = 0;
  let inQp = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inQp = line.includes('memfd:scif-qp');
      if (inQp) maps++;
    } else if (inQp && line.startsWith('Rss:')) {
      kb += Number(line.split(/\s+/)[1]);
    }
  }
  return { kb, maps };
}

function shmemKb() {
  return Number(/^Shmem:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]);
}

// Waits, looking every 50 ms, until cond() holds or ms pass: whether it held.
async function waitFor(cond, ms) {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) return cond();
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const digest = (b) => crypto.createHash('sha256').update(b).digest('hex');

// Sends bytes on sock and resolves with the digest of as many bytes back.
function roundTrip(sock, bytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let got = 0;
    const onData = (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes.length) {
        sock.off('data', onData);
        resolve(digest(Buffer.concat(chunks)));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(bytes);
  });
}

t.test('idle connections give their rings back after a burst, and still work', async (t) => {
  const server = net.createServer((s) => s.pipe(s));
  await new Promise((r) => server.listen(0, r));
  const socks = await Promise.all(Array.from({ length: N }, () => new Promise((resolve, reject) => {
    const s = net.connect(server.address().port, () => resolve(s));
    s.once('error', reject);
  })));
  const idle = qpResident();
  const shmem0 = shmemKb();
  t.equal(idle.maps, 2 * N, 'both ends of every connection map a queue pair here');

  const burst = crypto.randomBytes(BURST);
  const tBurst = Date.now();
  const sums = await Promise.all(socks.map((s) => roundTrip(s, burst)));
  t.comment(`bursts took ${Date.now() - tBurst} ms`);
  t.ok(sums.every((d) => d === digest(burst)), 'every burst came back intact');
  const busy = qpResident();
  const shmemBusy = shmemKb();
  // Each connection's two 1 MiB rings, in each of its two mappings: the
  // pages stay after the ring drains until the connection has been idle
  // (bursts slower than the period on a loaded machine may lose a few).
  t.ok(busy.kb >= N * 2 * 2 * 1024 * 0.75, `after the bursts: ${busy.kb} kB resident in the mappings`);

  const headers = 2 * N * 4;  // the header page of each mapping, kB
  const t0 = Date.now();
  t.ok(await waitFor(() => qpResident().kb <= headers, 30000),
    `back to the header pages (${headers} kB) once idle: ${qpResident().kb} kB`);
  const after = qpResident();
  const shmemAfter = shmemKb();
  t.comment(`${N} connections, 1 MiB rings: queue-pair Rss ${idle.kb} kB idle, ` +
    `${busy.kb} kB after a 1 MiB burst each way, ${after.kb} kB ${Date.now() - t0} ms later; ` +
    `the machine's Shmem (other processes' too) ${shmem0} -> ${shmemBusy} -> ${shmemAfter} kB`);

  const again = crypto.randomBytes(256 * 1024);
  const sums2 = await Promise.all(socks.map((s) => roundTrip(s, again)));
  t.ok(sums2.every((d) => d === digest(again)), 'every connection still echoes intact');

  for (const s of socks) s.destroy();
  await new Promise((r) => server.close(r));
});
