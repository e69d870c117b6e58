// The README's recipes, each run as examples/<name>/run.js says: the server on
// node 1, the client on node 0, in a fabric of their own.
const { spawn } = require('node:child_process');
const path = require('node:path');
const t = require('tap');

function run(name) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', name, 'run.js')], {
      env: { ...process.env, SCIF_NET_FABRIC: '' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('exit', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

const recipes = {
  express: [
    /\[express\] listening on scif:1:\d+/,
    /request 1: 200 \{"hello":"world","from":"scif:0"\}/,
    /request 3: 200 \{"hello":"world","from":"scif:0"\}/,
    /request 4: 429 /,  // express-rate-limit, keyed by the SCIF node
  ],
  koa: [/\[koa\] listening on scif:1:\d+/, /GET \/koa: 200 \{"path":"\/koa","peer":"scif:0","family":"SCIF"\}/],
  fastify: [/\[fastify\] listening on scif:1:\d+/, /GET \/sum\?a=2&b=40: 200 \{"sum":42,"peer":"scif:0"\}/],
  grpc: [/\[grpc server\] listening on scif:1:\d+/, /SayHello -> \{"message":"Hello, SCIF","peer":"scif:0:\d+"\}/],
  'socket.io': [
    /\[socket\.io\] listening on scif:1:\d+/,
    /welcome: \{"transport":"polling","peer":"scif:0"\}/,
    /upgraded to websocket/,
    /add\(2, 40\) -> 42/,
  ],
  jayson: [/\[jayson\] listening on scif:1:\d+/, /add\(2, 40\) -> 42/],
  mqtt: [
    /\[mqtt broker\] listening on scif:1:\d+/,
    /\[mqtt broker\] client host-0 from scif:0/,
    /cards\/mic0\/temperature -> 47\.5/,
  ],
};

for (const [name, expected] of Object.entries(recipes)) {
  t.test(name, async (t) => {
    const r = await run(name);
    t.same({ status: r.status, signal: r.signal }, { status: 0, signal: null }, r.stderr);
    for (const pattern of expected) t.match(r.stdout, pattern);
    t.notMatch(r.stderr, /ERR_ERL_|Error/, 'nothing on stderr: no warnings (express-rate-limit validations included)');
  });
}
