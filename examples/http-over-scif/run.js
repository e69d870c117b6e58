// The demo: an HTTP server on virtual node 1 (card mic0) and clients on node 0
// (the host), as three processes on a virtual SCIF fabric of their own.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const fabric = process.env.SCIF_NET_FABRIC || fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-demo-'));
const env = { ...process.env, SCIF_NET_FABRIC: fabric };
const port = process.argv[2] ?? '8080';
console.log(`[demo] virtual SCIF fabric in ${fabric}`);

const server = fork(path.join(__dirname, 'server.js'), [port], { env: { ...env, SCIF_NET_NODE: '1' } });
server.on('exit', (code) => {
  if (code) {
    console.error(`[demo] the server exited with ${code}`);
    process.exitCode = 1;
  }
});
server.once('message', ({ listening }) => {
  const client = fork(path.join(__dirname, 'client.js'), [String(listening)], { env: { ...env, SCIF_NET_NODE: '0' } });
  client.on('exit', (code) => {
    server.kill('SIGTERM');
    server.once('exit', () => {
      if (!process.env.SCIF_NET_FABRIC) fs.rmSync(fabric, { recursive: true, force: true });
      console.log(code === 0 ? '[demo] done' : `[demo] the client failed (${code})`);
      process.exitCode = code;
    });
  });
});
