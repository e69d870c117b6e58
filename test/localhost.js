// SCIF_NET_LOCALHOST decides what plain 'localhost' (and no host at all)
// means: this process's SCIF node (the default) or TCP, as node:net has it.
require('./fixtures/fabric');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const t = require('tap');

const root = JSON.stringify(path.join(__dirname, '..'));
const script = `
  const net = require(${root});
  const server = net.createServer((s) => s.end(s.remoteFamily)).listen(0, () => {
    const where = server.address();
    const c = net.connect(where.port, 'localhost');
    let got = '';
    c.setEncoding('utf8').on('data', (d) => (got += d));
    c.on('close', () => {
      console.log(JSON.stringify({ server: where.family, seenByServer: got, isSCIF: net.isSCIF('localhost') }));
      server.close();
    });
  });`;

function run(localhost) {
  const env = { ...process.env };
  if (localhost === undefined) delete env.SCIF_NET_LOCALHOST;
  else env.SCIF_NET_LOCALHOST = localhost;
  const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stderr: r.stderr, out: r.status === 0 ? JSON.parse(r.stdout) : null };
}

t.test('by default localhost is this SCIF node', async (t) => {
  const r = run(undefined);
  t.equal(r.status, 0, r.stderr);
  t.same(r.out, { server: 'SCIF', seenByServer: 'SCIF', isSCIF: true });
});

t.test('SCIF_NET_LOCALHOST=tcp: localhost and a bare port are TCP', async (t) => {
  const r = run('tcp');
  t.equal(r.status, 0, r.stderr);
  t.match(r.out, { server: /^IPv[46]$/, seenByServer: /^IPv[46]$/, isSCIF: false });
});
