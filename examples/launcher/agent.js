// An agent on a card node: connects back to the launcher on the host and runs
// what it is told, reporting output and exit codes - the shape of an MPI
// launcher's control channel (hydra/mpirun proxies), over SCIF.
//   SCIF_NET_NODE=K node examples/launcher/agent.js <launcher port>
const net = require('scif-net');
const readline = require('node:readline');
const { execFile } = require('node:child_process');

const node = Number(process.env.SCIF_NET_NODE ?? 0);
const socket = net.connect(Number(process.argv[2]), 'host');
const send = (msg) => socket.write(`${JSON.stringify(msg)}\n`);

socket.on('connect', () => send({ type: 'hello', node, pid: process.pid }));
readline.createInterface({ input: socket }).on('line', (line) => {
  const msg = JSON.parse(line);
  if (msg.type === 'run') {
    execFile(msg.file, msg.args, { env: { ...process.env, RANK: String(msg.rank) } }, (err, stdout, stderr) => {
      send({ type: 'exit', rank: msg.rank, node, code: err ? err.code ?? 1 : 0, stdout, stderr });
    });
  } else if (msg.type === 'shutdown') {
    socket.end();
  }
});
socket.on('error', (err) => {
  console.error(`[agent ${node}] ${err.code}: ${err.message}`);
  process.exitCode = 1;
});
