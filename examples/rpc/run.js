// The RPC example: a server on node 1, a client on node 0, a fabric of their own.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const fabric = process.env.SCIF_NET_FABRIC || fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-rpc-'));
const env = { ...process.env, SCIF_NET_FABRIC: fabric };
const server = fork(path.join(__dirname, 'server.js'), ['0'], { env: { ...env, SCIF_NET_NODE: '1' } });
server.once('message', ({ port }) => {
  const client = fork(path.join(__dirname, 'client.js'), ['mic0', String(port)], { env: { ...env, SCIF_NET_NODE: '0' } });
  client.on('exit', (code) => {
    server.kill('SIGTERM');
    server.once('exit', () => {
      if (!process.env.SCIF_NET_FABRIC) fs.rmSync(fabric, { recursive: true, force: true });
      process.exitCode = code;
    });
  });
});
