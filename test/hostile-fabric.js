// A fabric directory that is not ours alone is refused, with a sentence that
// says why: a symbolic link (whoever made it chose where our fabric is),
// another user's directory, one others may enter.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const t = require('tap');

const root = path.join(__dirname, '..');
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-fabric-dirs-'));
t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));

// What listen() says in a process whose fabric is dir.
function listenIn(dir) {
  const r = spawnSync(process.execPath, ['-e', `
    const s = require(${JSON.stringify(root)}).createServer();
    s.on('error', (e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); process.exit(0); });
    s.listen(0, () => { console.log(JSON.stringify({ listening: true })); s.close(); });
  `], { env: { ...process.env, SCIF_NET_FABRIC: dir }, encoding: 'utf8' });
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

t.test('a symbolic link is refused', async (t) => {
  const real = path.join(base, 'real');
  fs.mkdirSync(real, { mode: 0o700 });
  const link = path.join(base, 'link');
  fs.symlinkSync(real, link);
  const r = listenIn(link);
  t.equal(r.code, 'EACCES');
  t.match(r.message, /symbolic link/);
  t.same(fs.readdirSync(real), [], 'nothing was made through the link');
});

t.test('a directory others may enter is refused', async (t) => {
  const open = path.join(base, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o755);
  const r = listenIn(open);
  t.equal(r.code, 'EACCES');
  t.match(r.message, /others may enter it.*mode 0755/);
});

t.test("another user's directory is refused", { skip: process.getuid() !== 0 && 'needs root to give a directory away' }, async (t) => {
  const theirs = path.join(base, 'theirs');
  fs.mkdirSync(theirs, { mode: 0o700 });
  fs.chownSync(theirs, 65534, 65534);
  const r = listenIn(theirs);
  t.equal(r.code, 'EACCES');
  t.match(r.message, /another user owns it/);
});

t.test('our own 0700 directory is used', async (t) => {
  const ours = path.join(base, 'ours');
  fs.mkdirSync(ours, { mode: 0o700 });
  t.same(listenIn(ours), { listening: true });
});
