// The launcher on the host (node 0): starts an agent on each card node, hands
// out ranks over SCIF, gathers their output, and shuts them down.
//   node examples/launcher/run.js [ranks]
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const net = require('scif-net');

const ranks = Number(process.argv[2] ?? 6);
const fabric = process.env.SCIF_NET_FABRIC || fs.mkdtempSync(path.join(os.tmpdir(), 'scif-net-launcher-'));
process.env.SCIF_NET_FABRIC = fabric;
process.env.SCIF_NET_NODE = '0';

const cards = net.getNodeIds().nodes.filter((n) => n !== 0);
const agents = [];
const results = [];

const server = net.createServer((socket) => {
  const send = (msg) => socket.write(`${JSON.stringify(msg)}\n`);
  readline.createInterface({ input: socket }).on('line', (line) => {
    const msg = JSON.parse(line);
    if (msg.type === 'hello') {
      agents.push({ node: msg.node, send });
      console.log(`[launcher] agent on node ${msg.node} (${socket.remoteAddress}) is up`);
      if (agents.length === cards.length) start();
    } else if (msg.type === 'exit') {
      results.push(msg);
      console.log(`[launcher] rank ${msg.rank} on node ${msg.node} exited ${msg.code}: ${msg.stdout.trim()}`);
      if (results.length === ranks) finish();
    }
  });
});

function start() {
  for (let rank = 0; rank < ranks; rank++) {
    const agent = agents[rank % agents.length];
    agent.send({ type: 'run', rank, file: process.execPath, args: ['-e', 'console.log(`rank ${process.env.RANK} of pid ${process.pid}`)'] });
  }
}

function finish() {
  for (const a of agents) a.send({ type: 'shutdown' });
  server.close(() => {
    if (!process.env.SCIF_NET_FABRIC_KEEP) fs.rmSync(fabric, { recursive: true, force: true });
    const failed = results.filter((r) => r.code !== 0).length;
    console.log(`[launcher] ${ranks} ranks on ${cards.length} card nodes, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
}

server.listen(0, () => {
  const { port } = server.address();
  console.log(`[launcher] control channel on scif:0:${port}; starting agents on nodes ${cards.join(', ')}`);
  for (const node of cards) {
    fork(path.join(__dirname, 'agent.js'), [String(port)], { env: { ...process.env, SCIF_NET_NODE: String(node) } });
  }
});
