// The package's types as consumers meet them: test/types/consumer.ts (and
// consumer.mts) compiled with strict under moduleResolution node10 (with
// esModuleInterop off and on), nodenext and bundler, against scif-net
// installed as a dependency (node_modules/scif-net, a link to this tree's
// package.json, dist/ and typesVersions).
const t = require('tap');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const TSC = require.resolve('typescript/bin/tsc');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-types-'));
t.teardown(() => fs.rmSync(home, { recursive: true, force: true }));
for (const f of fs.readdirSync(path.join(__dirname, 'types'))) fs.copyFileSync(path.join(__dirname, 'types', f), path.join(home, f));
fs.mkdirSync(path.join(home, 'node_modules'));
fs.symlinkSync(ROOT, path.join(home, 'node_modules', 'scif-net'), 'dir');
fs.symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(home, 'node_modules', '@types'), 'dir');
fs.writeFileSync(path.join(home, 'package.json'), '{ "name": "consumer", "private": true }\n');

function tsc(project) {
  return new Promise((resolve) =>
    execFile(process.execPath, [TSC, '-p', project, '--pretty', 'false'], { cwd: home }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, out: stdout + stderr }),
    ),
  );
}

for (const setting of ['node10', 'node10-interop', 'nodenext', 'bundler']) {
  t.test(`a strict consumer compiles under ${setting}`, async (t) => {
    const r = await tsc(`tsconfig.${setting}.json`);
    t.equal(r.out, '', 'no diagnostics');
    t.equal(r.code, 0);
  });
}

t.test('a consumer that misuses the API is refused (the test can fail)', async (t) => {
  fs.writeFileSync(path.join(home, 'wrong.ts'), "import * as net from 'scif-net';\nconst n: number = net.connect('scif:1:1');\n");
  fs.writeFileSync(
    path.join(home, 'tsconfig.wrong.json'),
    JSON.stringify({ extends: './tsconfig.node10.json', files: ['wrong.ts'] }),
  );
  const r = await tsc('tsconfig.wrong.json');
  t.not(r.code, 0);
  t.match(r.out, /wrong\.ts\(2,7\): error TS2322: Type 'Socket' is not assignable to type 'number'/);
});
