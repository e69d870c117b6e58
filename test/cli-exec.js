// scif-net exec: unmodified programs (test/fixtures/unmodified) run over SCIF
// with the map given on the command line; the program's exit status is ours.
require('./fixtures/fabric');
const t = require('tap');
const { spawn } = require('node:child_process');
const path = require('node:path');
const tcp = require('node:net');
const { BIN, run, userEnv } = require('./fixtures/cli');

const PROGRAMS = path.join(__dirname, 'fixtures', 'unmodified');

t.test('an unmodified http server on node 1 and client on node 0', async (t) => {
  const port = 18650;
  const map = `127.0.0.1:${port}=scif:1:${port}`;
  const server = spawn(process.execPath, [BIN, 'exec', '--node', '1', '--map', map, '--', process.execPath, path.join(PROGRAMS, 'server.js'), 'http', String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: userEnv(),
  });
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => {
    server.kill('SIGTERM');
    return exited;
  });
  const line = await new Promise((resolve) => {
    let out = '';
    server.stdout.setEncoding('utf8').on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
  });
  t.same(JSON.parse(line), { listening: { address: 'scif:1', family: 'SCIF', port } }, 'it listens on SCIF, not TCP');
  // Nothing on the TCP port.
  const probe = tcp.connect(port, '127.0.0.1');
  const err = await new Promise((resolve) => probe.once('error', resolve));
  t.equal(err.code, 'ECONNREFUSED');

  const client = await run(['exec', '--map', map, '--', process.execPath, path.join(PROGRAMS, 'client.js'), 'http', '127.0.0.1', String(port)]);
  t.equal(client.code, 0, client.stderr);
  const seen = JSON.parse(client.stdout);
  t.match(seen, { server: { remoteAddress: 'scif:0', remoteFamily: 'SCIF' }, client: { remoteAddress: 'scif:1', remotePort: port, remoteFamily: 'SCIF' } });

  // SIGTERM reaches the program through exec, and its end is exec's.
  server.kill('SIGTERM');
  t.same(await exited, { code: null, signal: 'SIGTERM' });
});

t.test('the exit status is the program\'s; failures to start are ours', async (t) => {
  const seven = await run(['exec', '--map', '127.0.0.1:1=scif:1:1', '--', process.execPath, '-e', 'process.exit(7)']);
  t.equal(seven.code, 7);
  const env = await run(['exec', '--map', 'a:1=scif:1:1', '--map', 'b:2=scif:2', '--', process.execPath, '-p', 'process.env.SCIF_NET_MAP']);
  t.equal(env.stdout, 'a:1=scif:1:1,b:2=scif:2\n', 'the maps are joined into SCIF_NET_MAP');
  const missing = await run(['exec', '--map', '127.0.0.1:1=scif:1:1', '--', '/nonexistent/program']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /cannot run \/nonexistent\/program: .*ENOENT/);
  const bad = await run(['exec', '--map', 'nonsense', '--', process.execPath, '-e', '0']);
  t.equal(bad.code, 1, 'a bad map stops the program before it runs');
  t.match(bad.stderr, /ERR_INVALID_ARG_VALUE|nonsense/);
});
