// The package as users get it (npm run test:pack; minutes: it builds the
// addon and the library from source): `npm pack` ships what a build needs and
// nothing else; installed into an empty project it builds the addon,
// kernel/out/libscif.so.0 and scif-net.pc; two processes there talk over SCIF;
// the scif-net command runs from node_modules/.bin; a C program builds with
// `scif-net cflags --libs`; `make -C kernel` works without the test files.
require('./fixtures/fabric');
const t = require('tap');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-pack-'));
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
const project = path.join(work, 'project');
const pkg = path.join(project, 'node_modules', 'scif-net');

function sh(file, args, options = {}) {
  return new Promise((resolve) =>
    execFile(file, args, { maxBuffer: 1 << 26, encoding: 'utf8', ...options }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

// Users' environment: no tap preloads in what npm and node run.
const env = { ...process.env };
delete env.NODE_OPTIONS;

let tarball;

t.test('npm pack ships exactly what a build and its users need', async (t) => {
  const r = await sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env });
  t.equal(r.code, 0, r.stderr);
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
  tarball = path.join(work, info.filename);
  const files = info.files.map((f) => f.path).sort();
  const allowed = [
    /^(LICENSE|README\.md|package\.json|binding\.gyp)$/,
    /^bin\/scif-net\.js$/,
    /^dist\/.*\.(js|d\.ts)$/,
    /^esm\/register\.mjs$/,
    /^native\/[a-z_]+\.(cc|h)$/,
    /^kernel\/(Makefile|README\.md|libscif\.map|libscif-net\.map)$/,
    /^kernel\/src\/[a-z_]+\.[ch]$/,
    /^kernel\/include\/(scif|scif_net)\.h$/,
  ];
  t.same(files.filter((f) => !allowed.some((re) => re.test(f))), [], 'nothing else (no tests, sources maps, build output)');
  const fromTree = (dir, re) => fs.readdirSync(path.join(ROOT, dir)).filter((f) => re.test(f)).map((f) => `${dir}/${f}`);
  const needed = [
    'LICENSE', 'README.md', 'package.json', 'binding.gyp', 'bin/scif-net.js', 'esm/register.mjs',
    'dist/index.js', 'dist/index.d.ts', 'dist/http.d.ts', 'dist/scif.d.ts', 'dist/register.d.ts', 'dist/cli/main.js',
    'kernel/Makefile', 'kernel/libscif.map', 'kernel/libscif-net.map', 'kernel/include/scif.h', 'kernel/include/scif_net.h',
    ...fromTree('kernel/src', /\.[ch]$/),
    ...fromTree('native', /\.(cc|h)$/),
  ];
  t.same(needed.filter((f) => !files.includes(f)), [], 'everything the build and the README promise');
  const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  t.same(manifest.os, ['linux']);
  t.equal(manifest.license, 'MIT');
  t.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/);
});

t.test('installed into an empty project, it builds everything', async (t) => {
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "consumer", "version": "1.0.0", "private": true }\n');
  const args = ['install', '--no-audit', '--no-fund', tarball];
  let r = await sh('npm', [...args, '--offline'], { cwd: project, env });
  // The cache may lack a dependency's metadata: then the registry is asked.
  if (r.code !== 0 && /ENOTCACHED/.test(r.stderr)) r = await sh('npm', [...args, '--prefer-offline'], { cwd: project, env });
  t.equal(r.code, 0, r.stderr);
  for (const built of ['build/Release/scif_net.node', 'kernel/out/libscif.so.0', 'kernel/out/strict/libscif.so.0', 'kernel/out/scif-net.pc'])
    t.ok(fs.existsSync(path.join(pkg, built)), built);
  t.ok(fs.existsSync(path.join(pkg, 'node_modules', 'node-addon-api')) || fs.existsSync(path.join(project, 'node_modules', 'node-addon-api')), 'node-addon-api resolved');
});

t.test('two processes of the project echo over SCIF', async (t) => {
  fs.writeFileSync(
    path.join(project, 'server.js'),
    "const net = require('scif-net');\n" +
      "const s = net.createServer((c) => c.pipe(c)).listen(4500, () => process.send('ready'));\n" +
      "process.on('message', () => s.close(() => process.disconnect()));\n",
  );
  fs.writeFileSync(
    path.join(project, 'client.js'),
    "const net = require('scif-net');\n" +
      "const c = net.connect('scif:1:4500');\n" +
      "let got = '';\n" +
      "c.setEncoding('utf8').on('data', (d) => (got += d)).on('end', () => console.log(got, c.remoteAddress));\n" +
      "c.end('echo over SCIF');\n",
  );
  const { fork } = require('node:child_process');
  const server = fork(path.join(project, 'server.js'), { cwd: project, env: { ...env, SCIF_NET_NODE: '1' } });
  const exited = new Promise((resolve) => server.on('exit', resolve));
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL');
    return exited;
  });
  await new Promise((resolve) => server.once('message', resolve));
  const r = await sh(process.execPath, ['client.js'], { cwd: project, env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'echo over SCIF scif:1\n');
  server.send('close');
  t.equal(await exited, 0);
});

t.test('the scif-net command from node_modules/.bin', async (t) => {
  const bin = path.join(project, 'node_modules', '.bin', 'scif-net');
  const r = await sh(bin, ['nodes', '--json', '--node', '3'], { cwd: project, env });
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { self: 3, nodes: [0, 1, 2, 3], backend: { name: 'virtual' } });
});

t.test('a C program builds against the installed libscif', async (t) => {
  const bin = path.join(project, 'node_modules', '.bin', 'scif-net');
  const flags = (await sh(bin, ['cflags', '--libs'], { env })).stdout.trim().split(' ');
  t.match(flags, [`-I${path.join(pkg, 'kernel', 'include')}`]);
  fs.writeFileSync(
    path.join(project, 'prog.c'),
    '#include <stdio.h>\n#include <scif.h>\n' +
      'int main(void) { uint16_t ids[8], self; int n = scif_get_nodeIDs(ids, 8, &self); printf("%d %u\\n", n, self); return n > 0 ? 0 : 1; }\n',
  );
  const cc = await sh('cc', ['prog.c', '-o', 'prog', ...flags], { cwd: project, env });
  t.equal(cc.code, 0, cc.stderr);
  const r = await sh(path.join(project, 'prog'), [], { env: { ...env, SCIF_NET_NODE: '2' } });
  t.equal(r.stdout, '4 2\n', 'it runs on the fabric, as node 2');
  const pc = await sh('pkg-config', ['--cflags', '--libs', 'scif-net'], { env: { ...env, PKG_CONFIG_PATH: path.join(pkg, 'kernel', 'out') } });
  if (pc.code === 127 || /ENOENT/.test(String(pc.code))) {
    t.comment('pkg-config is not installed: scif-net.pc not checked by it');
  } else {
    t.equal(pc.code, 0, pc.stderr);
    t.match(pc.stdout, `-I${path.join(pkg, 'kernel', 'include')}`);
    t.match(pc.stdout, '-lscif');
  }
});

t.test('make -C kernel works in the installed package (no test files there)', async (t) => {
  const r = await sh('make', ['-s', '-C', path.join(pkg, 'kernel')], { env });
  t.equal(r.code, 0, r.stderr);
  t.notOk(fs.existsSync(path.join(pkg, 'kernel', 'test')));
});
