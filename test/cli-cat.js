// scif-net cat: a checksummed file piped both ways at once between
// `cat -l` on node 1 and `cat scif:1:P` on node 0, each ending its direction
// (half-close) at its stdin's end while still reading the other's.
require('./fixtures/fabric');
const t = require('tap');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('..');
const { run, start } = require('./fixtures/cli');
const { once } = require('./helpers');

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

function files(t) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-cat-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  return (name, content) => {
    const file = path.join(tmp, name);
    if (content) fs.writeFileSync(file, content);
    return file;
  };
}

t.test('cat -l and cat move a file each way, with half-close', async (t) => {
  const file = files(t);
  const up = crypto.randomBytes(3 * 1024 * 1024 + 17);  // odd-sized, several rings' worth
  const down = crypto.randomBytes(2 * 1024 * 1024 + 5);
  const upFile = file('up', up);
  const downFile = file('down', down);
  const gotUp = file('got-up');
  const gotDown = file('got-down');
  const listener = start(t, ['cat', '-l', '--node', '1', '4300'], {
    stdio: [fs.openSync(downFile, 'r'), fs.openSync(gotUp, 'w'), 'pipe'],
  });
  t.equal(await listener.listening, 'scif:4300');
  const client = start(t, ['cat', 'scif:1:4300'], {
    stdio: [fs.openSync(upFile, 'r'), fs.openSync(gotDown, 'w'), 'pipe'],
  });
  const [a, b] = await Promise.all([listener.exit, client.exit]);
  t.same(a, { code: 0, signal: null }, listener.stderr());
  t.same(b, { code: 0, signal: null }, client.stderr());
  t.equal(sha(fs.readFileSync(gotUp)), sha(up), 'node 1 got node 0\'s file');
  t.equal(sha(fs.readFileSync(gotDown)), sha(down), 'node 0 got node 1\'s file');
});

t.test('half-close: the peer reads our end and still answers', async (t) => {
  // A server that answers only after the client's end: only half-close lets it.
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const hash = crypto.createHash('sha256');
    s.on('data', (d) => hash.update(d));
    s.on('end', () => s.end(`${hash.digest('hex')}\n`));
  });
  server.listen(4301);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const data = crypto.randomBytes(500000);
  const r = await run(['cat', 'scif:0:4301'], { env: { SCIF_NET_NODE: '2' }, input: data });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `${sha(data)}\n`);
});

t.test('a reset peer is exit status 1, with the reason', async (t) => {
  const server = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
  server.listen(4302);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const child = start(t, ['cat', 'scif:0:4302']);
  // No listening line for a client: write, and wait for the end.
  child.child.stdin.write('hello\n');
  const { code } = await child.exit;
  t.equal(code, 1);
  t.match(child.stderr(), /ECONNRESET/);
});

t.test('cat -l takes one connection and lets the port go', async (t) => {
  const listener = start(t, ['cat', '-l', '4303']);
  await listener.listening;
  const a = net.connect('scif:0:4303');
  await once(a, 'connect');
  // The listener is closed once the first connection came: a second is
  // refused, or - when it reached the backlog before the close, as over TCP -
  // reset; never served.
  const b = net.connect('scif:0:4303');
  const err = await once(b, 'error');
  t.match(err.code, /^(ECONNREFUSED|ECONNRESET)$/);
  let got = '';
  listener.child.stdout.setEncoding('utf8').on('data', (d) => (got += d));
  a.end('to stdout\n');
  listener.child.stdin.end('from stdin\n');
  let back = '';
  a.setEncoding('utf8').on('data', (d) => (back += d));
  await once(a, 'close');
  t.same(await listener.exit, { code: 0, signal: null });
  t.equal(got, 'to stdout\n');
  t.equal(back, 'from stdin\n');
});
