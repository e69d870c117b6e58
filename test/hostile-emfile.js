// A server out of descriptors (RLIMIT_NOFILE): it reports EMFILE, each caller
// it cannot take is told EMFILE too - not ENOMEM, not a hang - and once it
// has descriptors again it serves as before.
require('./fixtures/fabric');
const { spawn } = require('node:child_process');
const path = require('node:path');
const t = require('tap');
const net = require('..');

t.test('EMFILE on both sides, then recovery', async (t) => {
  const script = path.join(__dirname, 'fixtures', 'emfile-server.js');
  const child = spawn('sh', ['-c', `ulimit -n 48 && exec "${process.execPath}" "${script}"`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const messages = [];
  const waiting = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      messages.push(m);
      waiting.splice(0).forEach((w) => w());
    }
  });
  const until = async (pred) => {
    while (!messages.some(pred)) await new Promise((r) => waiting.push(r));
    return messages.find(pred);
  };
  const { port } = await until((m) => m.port);

  // More callers than it has descriptors for: each one ends, held or refused.
  const outcomes = await Promise.all(Array.from({ length: 48 }, () => new Promise((resolve) => {
    const c = net.connect({ port });
    let got = '';
    c.on('data', (d) => (got += d));
    c.on('error', (e) => resolve(e.code));
    c.on('close', () => resolve(got.startsWith('held') ? 'held' : `closed ${got}`));
  })));
  const held = outcomes.filter((o) => o === 'held').length;
  const emfile = outcomes.filter((o) => o === 'EMFILE').length;
  t.ok(held > 0, `${held} callers were served`);
  t.ok(emfile > 0, `${emfile} callers were told EMFILE`);
  t.equal(held + emfile, outcomes.length, `nothing else: ${JSON.stringify(outcomes.filter((o) => o !== 'held' && o !== 'EMFILE'))}`);
  const errors = messages.filter((m) => m.error);
  t.ok(errors.length > 0 && errors.every((m) => m.error === 'EMFILE'), 'the server said EMFILE, never ENOMEM');
  t.ok(errors.length <= emfile, 'one error per caller it could not take: no loop on a listener it cannot drain');

  child.stdin.write('release\n');
  await until((m) => m.released);
  const again = await new Promise((resolve) => {
    const c = net.connect({ port });
    let got = '';
    c.on('data', (d) => (got += d));
    c.on('error', (e) => resolve(e.code));
    c.on('close', () => resolve(got));
  });
  t.match(again, /^held/, 'with descriptors again, it serves');
});
