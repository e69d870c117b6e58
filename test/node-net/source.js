// Node's own net tests, from Debian's copy of Node 20's source: downloaded
// once into a cache outside the repo's tracked files, checked against a
// SHA-256, and only the parts the runner needs extracted (test/common/, the
// test-net-* files of test/parallel/ and the fixtures those use). Nothing of
// it is committed.
//
// The pinned tarball is Debian trixie's nodejs 20.19.2 orig tarball. Should
// Debian replace that revision (the pool then answers 404), the current
// nodejs 20.x orig tarball is looked up in trixie's Sources.xz, itself
// checked against trixie's InRelease (whose signature gpgv checks with the
// Debian archive keyring when both are installed), and snapshot.debian.org,
// which keeps every file ever published, is tried for the pinned file.
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const PINNED = {
  file: 'nodejs_20.19.2+dfsg.orig.tar.xz',
  size: 19886184,
  sha256: '5e5559381ad031d245a8efa403458abbb73755f74c3e6380f185a4dd342b7949',
  sha1: '7ed7a340dc165334953d0a57eb4c2600e4d3081a',
};
const ARCHIVE = 'http://deb.debian.org/debian';
const SUITE = 'trixie';
const POOL = 'pool/main/n/nodejs';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

const root = path.resolve(__dirname, '..', '..');

function cacheDir() {
  return process.env.SCIF_NET_NODE_TESTS_CACHE || path.join(root, 'node_modules', '.cache', 'scif-net-node-tests');
}

function log(message) {
  process.stderr.write(`# ${message}\n`);
}

async function download(url) {
  const res = await fetch(url, { redirect: 'follow' });
  if (!res.ok) {
    const err = new Error(`GET ${url}: ${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return Buffer.from(await res.arrayBuffer());
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');

function verify(data, expected, what) {
  const got = sha256(data);
  if (got !== expected) throw new Error(`${what}: SHA-256 ${got}, expected ${expected}`);
}

/** The nodejs 20.x orig tarball trixie lists now: { file, size, sha256, url }. */
async function lookUpCurrent() {
  const inRelease = await download(`${ARCHIVE}/dists/${SUITE}/InRelease`);
  const tmp = path.join(cacheDir(), 'InRelease');
  fs.writeFileSync(tmp, inRelease);
  if (fs.existsSync(KEYRING)) {
    try {
      execFileSync('gpgv', ['--keyring', KEYRING, tmp], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`${SUITE}/InRelease: its signature does not check out (${String(err.stderr || err.message).trim()})`);
    }
  } else {
    log(`no ${KEYRING}: ${SUITE}/InRelease used without checking its signature`);
  }
  const m = /^ ([0-9a-f]{64}) +(\d+) main\/source\/Sources\.xz$/m.exec(inRelease.toString());
  if (!m) throw new Error(`${SUITE}/InRelease lists no main/source/Sources.xz`);
  const sourcesXz = await download(`${ARCHIVE}/dists/${SUITE}/main/source/Sources.xz`);
  verify(sourcesXz, m[1], 'Sources.xz');
  const sources = execFileSync('xz', ['-dc'], { input: sourcesXz, maxBuffer: 1 << 30 }).toString();
  for (const stanza of sources.split(/\n\n/)) {
    if (!/^Package: nodejs$/m.test(stanza) || !/^Version: 20\./m.test(stanza)) continue;
    const dir = /^Directory: (.+)$/m.exec(stanza)[1];
    const sums = stanza.split(/^Checksums-Sha256:\n/m)[1] ?? '';
    const orig = / ([0-9a-f]{64}) (\d+) (nodejs_[^ \n]+\.orig\.tar\.xz)$/m.exec(sums);
    if (orig) return { sha256: orig[1], size: Number(orig[2]), file: orig[3], url: `${ARCHIVE}/${dir}/${orig[3]}` };
  }
  throw new Error(`${SUITE}'s Sources.xz has no nodejs 20.x`);
}

/** The path of a verified Node 20 source tarball, downloading it if need be. */
async function tarball() {
  const dir = cacheDir();
  fs.mkdirSync(dir, { recursive: true });
  const cached = fs.readdirSync(dir).filter((f) => /^nodejs_20\..*\.orig\.tar\.xz$/.test(f));
  const pinned = path.join(dir, PINNED.file);
  if (cached.includes(PINNED.file) && sha256(fs.readFileSync(pinned)) === PINNED.sha256) return pinned;

  const tries = [
    async () => ({ ...PINNED, url: `${ARCHIVE}/${POOL}/${PINNED.file}` }),
    lookUpCurrent,
    async () => ({ ...PINNED, url: `https://snapshot.debian.org/file/${PINNED.sha1}` }),
  ];
  const failures = [];
  for (const next of tries) {
    let want;
    let data;
    try {
      want = await next();
      const file = path.join(dir, want.file);
      if (fs.existsSync(file) && sha256(fs.readFileSync(file)) === want.sha256) return file;
      log(`downloading ${want.url}`);
      data = await download(want.url);
      verify(data, want.sha256, want.file);
    } catch (err) {
      failures.push(err.message);
      continue;
    }
    if (want.file !== PINNED.file) log(`the pinned ${PINNED.file} is gone; using ${want.file} (trixie's current)`);
    const file = path.join(dir, want.file);
    fs.writeFileSync(`${file}.part`, data);
    fs.renameSync(`${file}.part`, file);
    return file;
  }
  throw new Error(`no Node 20 source tarball could be had:\n  ${failures.join('\n  ')}`);
}

function tar(file, into, patterns) {
  execFileSync('tar', ['-xJf', file, '-C', into, '--strip-components=1', '--wildcards', ...patterns], { stdio: 'pipe' });
}

/**
 * Node's test tree (test/common, test/parallel/test-net-*, the fixtures the
 * tests named by `wanted` use), extracted from the tarball: its directory.
 */
async function nodeTests() {
  const file = await tarball();
  const version = /^nodejs_(.+)\.orig\.tar\.xz$/.exec(path.basename(file))[1];
  const dir = path.join(cacheDir(), `node-${version}`);
  const done = path.join(dir, '.complete');
  if (fs.existsSync(done)) return { dir, version };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  tar(file, dir, ['*/test/common/*', '*/test/parallel/test-net-*']);
  // The fixtures the net tests name (fixtures.path('x'), fixtures.readSync('x'), ...).
  const parallel = path.join(dir, 'test', 'parallel');
  const fixtures = new Set();
  for (const test of fs.readdirSync(parallel)) {
    const text = fs.readFileSync(path.join(parallel, test), 'utf8');
    for (const m of text.matchAll(/fixtures\.(?:path|readSync|fileURL)\(\s*'([^']+)'/g)) fixtures.add(m[1]);
  }
  if (fixtures.size) tar(file, dir, [...fixtures].map((f) => `*/test/fixtures/${f}`));
  fs.writeFileSync(done, `${path.basename(file)}\n`);
  return { dir, version };
}

module.exports = { nodeTests, PINNED };
