// Runs a recipe: its server.js on node 1 (a card), then its client.js on
// node 0 (the host), in a fabric of their own; the server tells its port over
// IPC ({ port }), the client gets the port as its last argument, and the
// recipe's exit code is the client's.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function runPair(dir, { clientArgs = [], clientExecArgv = [], clientEnv = {} } = {}) {
  const fabric = process.env.SCIF_NET_FABRIC || fs.mkdtempSync(path.join(os.tmpdir(), `scif-net-${path.basename(dir)}-`));
  const env = { ...process.env, SCIF_NET_FABRIC: fabric };
  const server = fork(path.join(dir, 'server.js'), [], { env: { ...env, SCIF_NET_NODE: '1' } });
  server.once('message', ({ port }) => {
    const client = fork(path.join(dir, 'client.js'), [...clientArgs, String(port)], {
      env: { ...env, ...(typeof clientEnv === 'function' ? clientEnv(port) : clientEnv), SCIF_NET_NODE: '0' },
      execArgv: [...process.execArgv, ...clientExecArgv],
    });
    client.on('exit', (code) => {
      server.kill('SIGTERM');
      server.once('exit', () => {
        if (!process.env.SCIF_NET_FABRIC) fs.rmSync(fabric, { recursive: true, force: true });
        process.exitCode = code;
      });
    });
  });
}

module.exports = { runPair };
